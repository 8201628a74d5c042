import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { CHART_DIR, REPO_ROOT } from "../../src/delivery/chart.ts";
import { DASHBOARD_FILE, dashboard, dashboardExpressions } from "../../src/delivery/dashboard.ts";
import { OperatorMetrics } from "../../src/controller/metrics.ts";

const FIXTURE = join(import.meta.dirname, "..", "fixtures", "vllm-metrics-sample.txt");
const KEYWORDS = new Set(["by", "without", "on", "ignoring", "group_left", "group_right", "bool"]);
const OPERATORS = new Set(["and", "or", "unless", "offset"]);

/** Metric names a PromQL expression reads: identifiers that are not functions, labels or keywords. */
function metricNames(expr: string): string[] {
  let e = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""') // string literals
    .replace(/\{[^}]*\}/g, "") // label matchers
    .replace(/\[[^\]]*\]/g, "") // range selectors
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, "") // label lists
    .replace(/\$\w+/g, ""); // Grafana variables
  // label_values(metric, label): the second argument is a label.
  e = e.replace(/label_values\(([^,()]*),[^)]*\)/g, "($1)");
  const names: string[] = [];
  for (const m of e.matchAll(/[A-Za-z_:][A-Za-z0-9_:]*/g)) {
    const rest = e.slice(m.index + m[0].length);
    if (/^\s*\(/.test(rest)) continue; // a function call
    if (KEYWORDS.has(m[0]) || OPERATORS.has(m[0])) continue;
    names.push(m[0]);
  }
  return names;
}

/** Series names of an exposition page: samples, and what TYPE lines promise. */
function exposed(text: string): Set<string> {
  const out = new Set<string>();
  for (const line of text.split("\n")) {
    const type = /^# TYPE (\S+) (\w+)/.exec(line);
    if (type !== null) {
      const [, name, kind] = type as unknown as [string, string, string];
      out.add(name);
      if (kind === "histogram") for (const s of ["_bucket", "_sum", "_count"]) out.add(name + s);
      if (kind === "counter" && !name.endsWith("_total")) out.add(`${name}_total`);
      continue;
    }
    const sample = /^([A-Za-z_:][A-Za-z0-9_:]*)[{ ]/.exec(line);
    if (sample !== null) out.add(sample[1]!);
  }
  return out;
}

describe("Grafana dashboard", () => {
  const committed = readFileSync(join(REPO_ROOT, CHART_DIR, "dashboards", DASHBOARD_FILE), "utf8");

  test("the chart's JSON parses and is what src/delivery/dashboard.ts builds", () => {
    const parsed = JSON.parse(committed) as Record<string, unknown>;
    assert.deepEqual(parsed, dashboard());
    assert.ok(Array.isArray(parsed.panels) && parsed.panels.length >= 8);
  });

  test("the ConfigMap template carries the sidecar label and reads that file verbatim", () => {
    const t = readFileSync(
      join(REPO_ROOT, CHART_DIR, "templates", "grafana-dashboard.yaml"),
      "utf8",
    );
    assert.match(t, /kind: ConfigMap/);
    assert.match(t, /grafana_dashboard: "1"/);
    assert.ok(t.includes(`.Files.Get "dashboards/${DASHBOARD_FILE}"`));
    assert.ok(t.includes(`${DASHBOARD_FILE}: |-`));
  });

  test("the metric-name reader finds names and skips functions, labels and variables", () => {
    assert.deepEqual(
      metricNames(
        'histogram_quantile(0.9, sum by (le, pod) (rate(vllm:x_bucket{a=~"$b"}[$__rate_interval])))',
      ),
      ["vllm:x_bucket"],
    );
    assert.deepEqual(metricNames('label_values(msd_leader{a="b"}, namespace)'), ["msd_leader"]);
    assert.deepEqual(metricNames("a_total / on (pod) b_total"), ["a_total", "b_total"]);
  });

  test("every expression names only metrics vLLM or the operator exports", async () => {
    const known = new Set([
      ...exposed(readFileSync(FIXTURE, "utf8")),
      ...exposed(await new OperatorMetrics().registry.metrics()),
    ]);
    assert.ok(known.has("vllm:generation_tokens_total") && known.has("msd_replicas"));
    assert.ok(!known.has("vllm:does_not_exist"), "the check can fail");
    const unknown: string[] = [];
    const exprs = dashboardExpressions();
    for (const expr of exprs) {
      const names = metricNames(expr);
      assert.ok(names.length > 0, `no metric in ${expr}`);
      for (const n of names) if (!known.has(n)) unknown.push(`${n} in ${expr}`);
    }
    assert.deepEqual(unknown, []);
  });

  test("it shows what the issue asks for", () => {
    const all = dashboardExpressions().flatMap(metricNames);
    for (const m of [
      "vllm:generation_tokens_total",
      "vllm:prompt_tokens_total",
      "vllm:time_to_first_token_seconds_bucket",
      "vllm:inter_token_latency_seconds_bucket",
      "vllm:num_requests_running",
      "vllm:num_requests_waiting",
      "vllm:kv_cache_usage_perc",
      "msd_replicas",
    ]) {
      assert.ok(all.includes(m), m);
    }
    const exprs = dashboardExpressions().join("\n");
    assert.match(exprs, /histogram_quantile\(0\.99/);
    assert.match(exprs, /changes\(msd_replicas\{[^}]*kind="desired"/);
  });
});
