/** The operator's own Prometheus metrics, and the /healthz, /readyz, /metrics server. */
import { createServer, type Server } from "node:http";
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

/** Prefix of prom-client's default process and Node.js metrics. */
export const PROCESS_METRICS_PREFIX = "msd_";

/** What each of the operator's own metrics counts, by name (its HELP line on /metrics). */
const HELP = {
  msd_reconciles_total: "Reconciles by result (success, error, requeue).",
  msd_reconcile_duration_seconds: "Time one reconcile took.",
  msd_workqueue_depth: "Keys waiting in the work queue.",
  msd_api_requests_total:
    "Kubernetes API requests by verb, resource and HTTP status code (0 = no answer).",
  msd_api_errors_total: "Kubernetes API requests that failed (status 0 or >= 400), by verb.",
  msd_replicas: "Replicas per MistralSmallDeployment, by kind (desired, ready).",
  msd_leader: "1 while this operator instance holds the leader lease.",
} as const;
type MetricName = keyof typeof HELP;

export class OperatorMetrics {
  readonly registry = new Registry();
  readonly reconciles = this.counter("msd_reconciles_total", "result");
  readonly reconcileDuration = new Histogram({
    name: "msd_reconcile_duration_seconds",
    help: HELP.msd_reconcile_duration_seconds,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  readonly queueDepth = this.gauge("msd_workqueue_depth");
  readonly apiRequests = this.counter("msd_api_requests_total", "verb", "resource", "code");
  readonly apiErrors = this.counter("msd_api_errors_total", "verb");
  readonly replicas = this.gauge("msd_replicas", "namespace", "name", "kind");
  readonly leader = this.gauge("msd_leader");

  private counter<L extends string>(name: MetricName, ...labelNames: L[]) {
    return new Counter<L>({ name, help: HELP[name], labelNames, registers: [this.registry] });
  }

  private gauge<L extends string>(name: MetricName, ...labelNames: L[]) {
    return new Gauge<L>({ name, help: HELP[name], labelNames, registers: [this.registry] });
  }

  constructor() {
    // prom-client's names already start with process_ or nodejs_: one msd_ prefix, so
    // msd_process_cpu_seconds_total rather than msd_process_process_cpu_seconds_total.
    collectDefaultMetrics({ register: this.registry, prefix: PROCESS_METRICS_PREFIX });
  }
}

export interface HealthState {
  healthy(): boolean;
  ready(): boolean;
  /** Why not ready, one line each (e.g. which watch is forbidden): the /readyz body. */
  notReadyBecause?(): string[];
}

export function startHttpServer(
  port: number,
  metrics: OperatorMetrics,
  health: HealthState,
  host = "0.0.0.0",
): Promise<Server> {
  const server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (path === "/healthz" || path === "/readyz") {
      const ok = path === "/healthz" ? health.healthy() : health.ready();
      const why = ok || path === "/healthz" ? [] : (health.notReadyBecause?.() ?? []);
      const body = ok ? "ok" : ["not ready", ...why].join("\n");
      res.writeHead(ok ? 200 : 503, { "Content-Type": "text/plain" }).end(body);
      return;
    }
    if (path === "/metrics") {
      metrics.registry
        .metrics()
        .then((text) =>
          res.writeHead(200, { "Content-Type": metrics.registry.contentType }).end(text),
        )
        .catch((err: unknown) => res.writeHead(500).end(String(err)));
      return;
    }
    res.writeHead(404).end("not found");
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve(server));
  });
}
