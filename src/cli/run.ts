/** `msd run`: the operator process. */
import { parseArgs } from "node:util";
import { pino } from "pino";
import { Operator } from "../controller/manager.ts";
import { OPERATOR_NAME } from "../render/names.ts";
import { LOG_LEVELS, RUN_DEFAULTS, type LogLevel } from "../util/identity.ts";
import { EXIT, type CommandResult } from "./commands.ts";
import { UsageError } from "./main.ts";

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** "a,b , c" -> ["a", "b", "c"]; refuses anything that is not a namespace name. */
export function namespaceList(value: string): string[] {
  const names = value
    .split(",")
    .map((n) => n.trim())
    .filter((n) => n !== "");
  const bad = names.filter((n) => n.length > 63 || !DNS_LABEL.test(n));
  if (names.length === 0 || bad.length > 0) {
    throw new UsageError(
      `--namespace must be a comma-separated list of namespace names, got ${JSON.stringify(value)}`,
    );
  }
  return [...new Set(names)];
}

export { LOG_LEVELS, type LogLevel };
export const DEFAULT_LOG_LEVEL: LogLevel = RUN_DEFAULTS.logLevel;

export function logLevel(value: string | undefined): LogLevel {
  if (value === undefined) return DEFAULT_LOG_LEVEL;
  if ((LOG_LEVELS as readonly string[]).includes(value)) return value as LogLevel;
  throw new UsageError(`--log-level must be one of ${LOG_LEVELS.join(", ")}, got ${value}`);
}

export async function runOperator(argv: string[]): Promise<CommandResult> {
  const { values } = parseArgs({
    args: argv,
    options: {
      kubeconfig: { type: "string" },
      context: { type: "string" },
      namespace: { type: "string" },
      port: { type: "string" },
      "lease-namespace": { type: "string" },
      "no-leader-election": { type: "boolean" },
      "lease-duration": { type: "string" },
      concurrency: { type: "string" },
      "resync-seconds": { type: "string" },
      "autoscale-interval-seconds": { type: "string" },
      "log-level": { type: "string" },
    },
    strict: true,
  });
  const int = (name: string, v: string | undefined, dflt: number) => {
    if (v === undefined) return dflt;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0)
      throw new UsageError(`--${name} must be a non-negative integer, got ${v}`);
    return n;
  };
  const podNamespace = process.env.POD_NAMESPACE === "" ? undefined : process.env.POD_NAMESPACE;
  const leaseNamespace = values["lease-namespace"] ?? podNamespace;
  const logger = pino({ name: OPERATOR_NAME, level: logLevel(values["log-level"]) });
  const operator = new Operator({
    logger,
    ...(values.kubeconfig === undefined ? {} : { kubeconfig: values.kubeconfig }),
    ...(values.context === undefined ? {} : { context: values.context }),
    // A comma-separated list: the namespaced install mode (Roles in each, no ClusterRole).
    ...(values.namespace === undefined ? {} : { namespaces: namespaceList(values.namespace) }),
    port: int("port", values.port, RUN_DEFAULTS.port),
    leaderElection: values["no-leader-election"] !== true,
    // Unset: the operator takes the kubeconfig context's (or service account's) namespace.
    ...(leaseNamespace === undefined ? {} : { leaseNamespace }),
    leaseDurationSeconds: int(
      "lease-duration",
      values["lease-duration"],
      RUN_DEFAULTS.leaseDurationSeconds,
    ),
    concurrency: int("concurrency", values.concurrency, RUN_DEFAULTS.concurrency),
    resyncMs: int("resync-seconds", values["resync-seconds"], RUN_DEFAULTS.resyncSeconds) * 1000,
    autoscaleIntervalMs:
      int(
        "autoscale-interval-seconds",
        values["autoscale-interval-seconds"],
        RUN_DEFAULTS.autoscaleIntervalSeconds,
      ) * 1000,
    ...(process.env.POD_NAME === undefined ? {} : { identity: process.env.POD_NAME }),
    onLostLeadership: () => {
      // Restart clean rather than run half a controller.
      process.exit(1);
    },
  });
  const done = new Promise<void>((resolve) => {
    const shutdown = (signal: string) => {
      operator.log.info({ signal }, "signal received");
      void operator.stop().then(resolve);
    };
    process.once("SIGTERM", () => shutdown("SIGTERM"));
    process.once("SIGINT", () => shutdown("SIGINT"));
  });
  await operator.start();
  await done;
  return { code: EXIT.ok, stdout: "", stderr: "" };
}
