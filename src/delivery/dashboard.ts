/**
 * The Grafana dashboard the chart ships (a ConfigMap labelled grafana_dashboard: "1", which the
 * Grafana sidecar of kube-prometheus-stack loads). Built here so a unit test can check every
 * PromQL expression against the metrics vLLM and the operator really export.
 *
 * vLLM series carry app_kubernetes_io_instance (the deployment's name) from the PodMonitor's
 * podTargetLabels; the operator's msd_replicas carries namespace and name itself (the chart's
 * ServiceMonitor keeps them with honorLabels).
 */

import { OPERATOR_NAME } from "../util/identity.ts";

type Json = Record<string, unknown>;

export const DASHBOARD_UID = OPERATOR_NAME;
export const DASHBOARD_FILE = "mistral-small.json";

const BY = "app_kubernetes_io_instance";
/** vLLM series of the selected deployments. */
const VLLM = `{namespace="$namespace", ${BY}=~"$deployment"}`;
/** The operator's per-deployment series. */
const MSD = `{namespace="$namespace", name=~"$deployment"}`;

interface Target {
  readonly expr: string;
  readonly legend: string;
}

interface Panel {
  readonly title: string;
  readonly description: string;
  readonly unit: string;
  readonly targets: readonly Target[];
}

const rate = (metric: string, sel = VLLM) => `rate(${metric}${sel}[$__rate_interval])`;

const quantiles = (histogram: string): Target[] =>
  [0.5, 0.9, 0.99].map((q) => ({
    expr: `histogram_quantile(${q}, sum by (le, ${BY}) (${rate(`${histogram}_bucket`)}))`,
    legend: `{{${BY}}} p${Math.round(q * 100)}`,
  }));

const perDeployment = (expr: string) => `sum by (${BY}) (${expr})`;

const PANELS: readonly Panel[] = [
  {
    title: "Generation tokens/s",
    description: "Output tokens produced per second, per deployment.",
    unit: "short",
    targets: [{ expr: perDeployment(rate("vllm:generation_tokens_total")), legend: `{{${BY}}}` }],
  },
  {
    title: "Prompt tokens/s",
    description: "Prompt tokens processed (prefill) per second, per deployment.",
    unit: "short",
    targets: [{ expr: perDeployment(rate("vllm:prompt_tokens_total")), legend: `{{${BY}}}` }],
  },
  {
    title: "Time to first token",
    description: "p50, p90 and p99 of the time from request arrival to the first output token.",
    unit: "s",
    targets: quantiles("vllm:time_to_first_token_seconds"),
  },
  {
    title: "Inter-token latency",
    description: "p50, p90 and p99 of the time between two output tokens of one request.",
    unit: "s",
    targets: quantiles("vllm:inter_token_latency_seconds"),
  },
  {
    title: "Requests running and waiting",
    description: "Requests in the running batch and in the queue, per deployment.",
    unit: "short",
    targets: [
      { expr: perDeployment(`vllm:num_requests_running${VLLM}`), legend: `{{${BY}}} running` },
      { expr: perDeployment(`vllm:num_requests_waiting${VLLM}`), legend: `{{${BY}}} waiting` },
    ],
  },
  {
    title: "KV cache use",
    description:
      "Share of the KV cache in use, per pod (1 = full: requests queue or are preempted).",
    unit: "percentunit",
    targets: [
      {
        expr: `max by (${BY}, pod) (vllm:kv_cache_usage_perc${VLLM})`,
        legend: `{{pod}}`,
      },
    ],
  },
  {
    title: "Preemptions/s",
    description: "Requests preempted for lack of KV cache, per deployment.",
    unit: "short",
    targets: [{ expr: perDeployment(rate("vllm:num_preemptions_total")), legend: `{{${BY}}}` }],
  },
  {
    title: "Replicas desired and ready",
    description: "What the operator asks for (desired) and what serves (ready).",
    unit: "short",
    targets: [{ expr: `max by (name, kind) (msd_replicas${MSD})`, legend: "{{name}} {{kind}}" }],
  },
  {
    title: "Scaling decisions",
    description: "Changes of the desired replica count (autoscaler decisions or spec edits).",
    unit: "short",
    targets: [
      {
        expr: `max by (name) (changes(msd_replicas{namespace="$namespace", name=~"$deployment", kind="desired"}[$__rate_interval]))`,
        legend: "{{name}}",
      },
    ],
  },
  {
    title: "Operator reconciles/s",
    description: "Reconciles by result, and the operator's work queue depth.",
    unit: "short",
    targets: [
      {
        expr: "sum by (result) (rate(msd_reconciles_total[$__rate_interval]))",
        legend: "{{result}}",
      },
      { expr: "max(msd_workqueue_depth)", legend: "queue depth" },
    ],
  },
];

function panelJson(p: Panel, i: number): Json {
  return {
    id: i + 1,
    type: "timeseries",
    title: p.title,
    description: p.description,
    datasource: { type: "prometheus", uid: "${datasource}" },
    gridPos: { h: 8, w: 12, x: (i % 2) * 12, y: Math.floor(i / 2) * 8 },
    fieldConfig: { defaults: { unit: p.unit }, overrides: [] },
    options: { legend: { displayMode: "list", placement: "bottom" } },
    targets: p.targets.map((t, j) => ({
      refId: String.fromCharCode(65 + j),
      datasource: { type: "prometheus", uid: "${datasource}" },
      expr: t.expr,
      legendFormat: t.legend,
    })),
  };
}

function variable(name: string, label: string, query: string, multi: boolean): Json {
  return {
    name,
    label,
    type: "query",
    datasource: { type: "prometheus", uid: "${datasource}" },
    query: { query, refId: `${name}-values` },
    definition: query,
    refresh: 2,
    sort: 1,
    multi,
    includeAll: multi,
    ...(multi ? { allValue: ".*" } : {}),
  };
}

export function dashboard(): Json {
  return {
    uid: DASHBOARD_UID,
    title: "Mistral Small 4 on vLLM",
    description:
      "Throughput, latency, queue, KV cache and replicas of MistralSmallDeployments (mistral-small-operator).",
    tags: ["vllm", "mistral-small", "llm"],
    schemaVersion: 39,
    version: 1,
    editable: true,
    time: { from: "now-3h", to: "now" },
    refresh: "30s",
    templating: {
      list: [
        {
          name: "datasource",
          label: "Data source",
          type: "datasource",
          query: "prometheus",
        },
        variable(
          "namespace",
          "Namespace",
          "label_values(vllm:num_requests_running, namespace)",
          false,
        ),
        variable(
          "deployment",
          "Deployment",
          `label_values(vllm:num_requests_running{namespace="$namespace"}, ${BY})`,
          true,
        ),
      ],
    },
    panels: PANELS.map(panelJson),
  };
}

/** Every PromQL expression of the dashboard: panel targets and variable queries. */
export function dashboardExpressions(d: Json = dashboard()): string[] {
  const panels = (d.panels as { targets: { expr: string }[] }[]).flatMap((p) =>
    p.targets.map((t) => t.expr),
  );
  const vars = ((d.templating as { list: Json[] }).list ?? [])
    .filter((v) => v.type === "query")
    .map((v) => (v.query as { query: string }).query);
  return [...panels, ...vars];
}

export function dashboardFile(): string {
  return `${JSON.stringify(dashboard(), null, 2)}\n`;
}
