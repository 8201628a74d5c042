/**
 * The operator's one name and its run-time defaults, each defined once: the npm package, the
 * chart, the image, the field manager, the managed-by label, the Lease and the logger all use
 * OPERATOR_NAME; `msd run`, the Operator class and the install manifests all use RUN_DEFAULTS.
 */

export const OPERATOR_NAME = "mistral-small-operator";

/** `app.kubernetes.io/name` of the vLLM pods and of every object rendered for a deployment. */
export const MODEL_SERVER_APP = "mistral-small";

/** pino's levels, most to least verbose; `silent` logs nothing. */
export const LOG_LEVELS = ["trace", "debug", "info", "warn", "error", "fatal", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** What `msd run` does when a flag is not given (and what the chart passes by default). */
export const RUN_DEFAULTS = {
  /** /healthz, /readyz and /metrics. */
  port: 8080,
  leaseDurationSeconds: 15,
  /** Reconciles in flight at once (distinct keys; one key is never reconciled twice at once). */
  concurrency: 8,
  /** Every cached object is re-enqueued this often: a safety net for missed events. */
  resyncSeconds: 600,
  /** How often the builtin autoscaler scrapes and decides. */
  autoscaleIntervalSeconds: 15,
  logLevel: "info" satisfies LogLevel,
} as const;
