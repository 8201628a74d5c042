/**
 * The autoscaling benchmark: every trace x every policy through the same fleet simulation.
 */
import { parseSpec } from "../../api/validate.ts";
import { plan as makePlan, type Plan } from "../../planner/plan.ts";
import { decodePoint, replicaPerf } from "../perf.ts";
import {
  targetModel,
  type AutoscalingSpec,
  type PolicyOptions,
  type TargetModel,
} from "../policy.ts";
import {
  DEFAULT_COLD_START,
  DEFAULT_SLO,
  simulate,
  type ColdStart,
  type FleetConfig,
  type RunResult,
  type SimPolicy,
  type Slo,
} from "./fleet.ts";
import {
  HpaPolicy,
  KubeAiPolicy,
  OraclePolicy,
  OursPolicy,
  PRODUCTION_STACK_HPA,
  kubeAiTargetRequests,
} from "./policies.ts";
import { CHAT_TOKENS, meanTokens, syntheticTraces, type Trace } from "./traces.ts";

export const POLICY_NAMES = ["ours", "hpa", "kubeai", "oracle"] as const;
export type PolicyName = (typeof POLICY_NAMES)[number];

export interface BenchConfig {
  readonly seed: number;
  readonly plan: Plan;
  readonly coldStart: ColdStart;
  readonly slo: Slo;
  readonly minReplicas: number;
  readonly maxReplicas: number;
  readonly policies: readonly PolicyName[];
  /** Overrides of our policy's tuning (defaults in policy.ts). */
  readonly ours?: Partial<PolicyOptions>;
  /** Overrides of the autoscaling spec our policy runs with (defaults from the schema). */
  readonly oursSpec?: Partial<AutoscalingSpec>;
}

/** The plan the benchmark sizes replicas with: FP8 on A100-80GB, planner defaults (TP 2). */
export function defaultBenchPlan(): Plan {
  return makePlan(parseSpec({ gpu: { type: "a100-80gb" } }));
}

export function defaultBenchConfig(overrides: Partial<BenchConfig> = {}): BenchConfig {
  return {
    seed: 42,
    plan: defaultBenchPlan(),
    coldStart: DEFAULT_COLD_START,
    slo: DEFAULT_SLO,
    minReplicas: 1,
    maxReplicas: 24,
    policies: POLICY_NAMES,
    ...overrides,
  };
}

/** Requests/s one replica carries at its target with chat-like requests. */
export function chatUnitRate(target: TargetModel): number {
  const m = meanTokens(CHAT_TOKENS);
  return target.tokensPerSecond / (m.gen + target.promptTokenWeight * m.prompt);
}

export function benchTraces(cfg: BenchConfig): Trace[] {
  return syntheticTraces(chatUnitRate(targetModel(cfg.plan)), cfg.seed);
}

export interface BenchContext {
  readonly target: TargetModel;
  readonly kubeAiTargetRequests: number;
  readonly fleet: (trace: Trace) => FleetConfig;
  readonly autoscaling: AutoscalingSpec;
}

export function benchContext(cfg: BenchConfig): BenchContext {
  const target = targetModel(cfg.plan);
  const perf = replicaPerf(cfg.plan);
  const coldStart = cfg.coldStart.nodeProvisioningSeconds + cfg.coldStart.weightLoadSeconds;
  const autoscaling: AutoscalingSpec = {
    ...parseSpec({
      gpu: { type: cfg.plan.gpuType },
      autoscaling: {
        enabled: true,
        minReplicas: cfg.minReplicas,
        maxReplicas: cfg.maxReplicas,
        scaleToZero: cfg.minReplicas === 0,
      },
      replicas: Math.max(1, cfg.minReplicas),
    }).autoscaling,
    ...cfg.oursSpec,
  };
  const targetRequests = kubeAiTargetRequests(
    target,
    (b) => decodePoint(perf, b, 2048),
    cfg.plan.maxNumSeqs,
  );
  return {
    target,
    kubeAiTargetRequests: targetRequests,
    autoscaling,
    fleet: (trace) => {
      // Every policy starts from the same fleet: what the opening load needs until a replica
      // asked for at t = 0 could serve.
      const oracle = new OraclePolicy(trace, target, coldStart);
      const initial = Math.min(
        cfg.maxReplicas,
        Math.max(cfg.minReplicas, 1, oracle.needBetween(0, coldStart)),
      );
      return {
        perf,
        coldStart: cfg.coldStart,
        minReplicas: cfg.minReplicas,
        maxReplicas: cfg.maxReplicas,
        initialReplicas: initial,
        drainGraceSeconds: 120,
        slo: cfg.slo,
        tailSeconds: 3600,
      };
    },
  };
}

export function makePolicy(
  name: PolicyName,
  trace: Trace,
  cfg: BenchConfig,
  ctx: BenchContext,
): SimPolicy {
  const coldStart = cfg.coldStart.nodeProvisioningSeconds + cfg.coldStart.weightLoadSeconds;
  switch (name) {
    case "ours":
      return new OursPolicy(ctx.autoscaling, ctx.target, cfg.ours);
    case "hpa":
      return new HpaPolicy(ctx.target.tokensPerSecond, PRODUCTION_STACK_HPA);
    case "kubeai":
      return new KubeAiPolicy({
        intervalSeconds: 10,
        timeWindowSeconds: 600,
        scaleDownDelaySeconds: 30,
        targetRequests: ctx.kubeAiTargetRequests,
      });
    case "oracle":
      return new OraclePolicy(trace, ctx.target, coldStart);
  }
}

export interface BenchResults {
  readonly traces: Record<string, Record<string, RunResult>>;
}

export function runBench(
  traces: readonly Trace[],
  cfg: BenchConfig,
  onResult?: (r: RunResult) => void,
): BenchResults {
  const ctx = benchContext(cfg);
  const out: Record<string, Record<string, RunResult>> = {};
  for (const trace of traces) {
    const fleet = ctx.fleet(trace);
    const row: Record<string, RunResult> = {};
    for (const name of cfg.policies) {
      const r = simulate(trace, makePolicy(name, trace, cfg, ctx), fleet);
      row[name] = r;
      onResult?.(r);
    }
    out[trace.name] = row;
  }
  return { traces: out };
}

/** The JSON the issue asks for: {"traces": {name: {policy: {gpuHours, sloAttainment, scaleActions}}}}. */
export function toJson(results: BenchResults): {
  traces: Record<
    string,
    Record<string, { gpuHours: number; sloAttainment: number; scaleActions: number }>
  >;
} {
  const traces: Record<
    string,
    Record<string, { gpuHours: number; sloAttainment: number; scaleActions: number }>
  > = {};
  for (const [t, row] of Object.entries(results.traces)) {
    traces[t] = {};
    for (const [p, r] of Object.entries(row)) {
      traces[t][p] = {
        gpuHours: Math.round(r.gpuHours * 100) / 100,
        sloAttainment: Math.round(r.sloAttainment * 10000) / 10000,
        scaleActions: r.scaleActions,
      };
    }
  }
  return { traces };
}

export function formatTable(results: BenchResults): string {
  const header = [
    "trace",
    "policy",
    "GPU-h",
    "vs oracle",
    "SLO %",
    "actions",
    "mean rep",
    "max rep",
    "p95 TTFT s",
    "failed",
  ];
  const rows: string[][] = [header];
  for (const [t, row] of Object.entries(results.traces)) {
    const oracle = row["oracle"]?.gpuHours;
    for (const [p, r] of Object.entries(row)) {
      rows.push([
        t,
        p,
        r.gpuHours.toFixed(1),
        oracle === undefined ? "-" : `${(r.gpuHours / oracle).toFixed(2)}x`,
        (r.sloAttainment * 100).toFixed(1),
        String(r.scaleActions),
        r.meanReplicas.toFixed(2),
        String(r.maxReplicas),
        r.p95TtftSeconds.toFixed(2),
        String(r.failed),
      ]);
    }
  }
  const widths = header.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows
    .map((r) => r.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  "))
    .join("\n");
}
