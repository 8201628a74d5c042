/**
 * Writes the generated parts of charts/mistral-small-operator/ (Chart.yaml,
 * templates/crds.yaml, templates/rbac.yaml, values.schema.json, dashboards/) from package.json,
 * crds/, src/operator/rbac.ts, src/delivery/values.ts and src/delivery/dashboard.ts.
 * `--check` writes nothing and exits 1 when a file differs (what the unit test does too).
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { CHART_DIR, REPO_ROOT, generatedChartFiles } from "../src/delivery/chart.ts";

const check = process.argv.includes("--check");
const files = generatedChartFiles();
let stale = 0;
for (const [rel, content] of files) {
  const path = join(REPO_ROOT, rel);
  const current = existsSync(path) ? readFileSync(path, "utf8") : undefined;
  if (current === content) continue;
  stale++;
  if (check) {
    console.error(`${rel}: out of date`);
    continue;
  }
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, content);
  console.log(`wrote ${rel}`);
}
// The CRD is a template now (templates/crds.yaml): a chart crds/ folder is stale. Helm
// would install it on a fresh install besides the template and never upgrade it.
const chartCrds = join(REPO_ROOT, CHART_DIR, "crds");
if (existsSync(chartCrds)) {
  stale++;
  if (check) console.error(`${join(CHART_DIR, "crds")}: stale (the CRD is templates/crds.yaml)`);
  else {
    rmSync(chartCrds, { recursive: true });
    console.log(`removed ${join(CHART_DIR, "crds")}`);
  }
}
if (check && stale > 0) {
  console.error("the chart's generated files drifted: run `npm run gen`");
  process.exitCode = 1;
}
