/**
 * Writes the generated parts of charts/mistral-small-operator/ (Chart.yaml, crds/,
 * templates/rbac.yaml, dashboards/) from package.json, crds/, src/operator/rbac.ts and
 * src/delivery/dashboard.ts.
 * `--check` writes nothing and exits 1 when a file differs (what the unit test does too).
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
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
// A CRD removed from crds/ must leave the chart too.
const chartCrds = join(REPO_ROOT, CHART_DIR, "crds");
for (const f of existsSync(chartCrds) ? readdirSync(chartCrds) : []) {
  const rel = join(CHART_DIR, "crds", f);
  if (files.has(rel)) continue;
  stale++;
  if (check) console.error(`${rel}: not generated from crds/ (stale)`);
  else {
    rmSync(join(REPO_ROOT, rel));
    console.log(`removed ${rel}`);
  }
}
if (check && stale > 0) {
  console.error("the chart's generated files drifted: run `npm run gen`");
  process.exitCode = 1;
}
