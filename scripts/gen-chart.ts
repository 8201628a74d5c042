/**
 * Writes the generated parts of charts/mistral-small-operator/ (Chart.yaml,
 * templates/crds.yaml, templates/rbac.yaml, values.schema.json, dashboards/) from package.json,
 * crds/, src/controller/rbac.ts, src/delivery/values.ts and src/delivery/dashboard.ts.
 * `--check` writes nothing and exits 1 when a file differs (what the unit test does too).
 */
import { join } from "node:path";
import { CHART_DIR, generatedChartFiles } from "../src/delivery/chart.ts";
import { writeGenerated } from "./lib/generated.ts";

writeGenerated({
  files: generatedChartFiles(),
  // The CRD is a template (templates/crds.yaml): a chart crds/ folder is stale. Helm would
  // install it on a fresh install besides the template and never upgrade it.
  stale: [join(CHART_DIR, "crds")],
  onDrift: "the chart's generated files drifted: run `npm run gen`",
});
