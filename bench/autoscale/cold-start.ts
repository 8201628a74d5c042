/**
 * What the cold-start model changes in GPU-hours (issue 16): every policy on every trace with
 * the two wake-ups of the scaling model, a download at start (what the operator's pods do
 * today) and a read from a complete cache. The wake-up is both the simulated cold start and
 * our policy's forecast horizon, so ours adapts to it as the operator would.
 */
import type { ScalingModel, WakeUp, WeightSource } from "../../src/autoscale/model.ts";
import { simulate, type RunResult } from "./fleet.ts";
import {
  benchContext,
  formatColumns,
  makePolicy,
  type BenchConfig,
  type BenchResults,
} from "./harness.ts";
import type { Trace } from "./traces.ts";

export interface ColdStartRow {
  readonly trace: string;
  readonly policy: string;
  readonly download: RunResult;
  readonly cached: RunResult;
}

export interface ColdStartComparison {
  readonly wakeUp: Readonly<Record<WeightSource, WakeUp>>;
  readonly rows: readonly ColdStartRow[];
}

const OTHER: Record<WeightSource, WeightSource> = { download: "cached", cached: "download" };

/**
 * Runs the policies (the oracle left out: its schedule is a search per trace, not a policy
 * whose cost a cold start changes) with the weight source `results` was not run with;
 * `model` is the scaling model `results` was run with (its wake-up is reported).
 */
export function compareColdStarts(
  traces: readonly Trace[],
  cfg: BenchConfig,
  model: ScalingModel,
  results: BenchResults,
): ColdStartComparison {
  const otherCfg: BenchConfig = { ...cfg, weights: OTHER[cfg.weights] };
  const otherCtx = benchContext(otherCfg);
  const rows: ColdStartRow[] = [];
  for (const trace of traces) {
    const fleet = otherCtx.fleet(trace);
    for (const policy of cfg.policies) {
      if (policy === "oracle") continue;
      const mine = results.traces[trace.name]?.[policy];
      if (mine === undefined) continue;
      const other = simulate(trace, makePolicy(policy, trace, otherCfg, otherCtx), fleet);
      rows.push({
        trace: trace.name,
        policy,
        download: cfg.weights === "download" ? mine : other,
        cached: cfg.weights === "cached" ? mine : other,
      });
    }
  }
  const byWeights = { [cfg.weights]: model.wakeUp, [otherCfg.weights]: otherCtx.model.wakeUp };
  return { wakeUp: byWeights as Record<WeightSource, WakeUp>, rows };
}

/** A wake-up as its sum: "N s node + N s weights + N s engine = N s". */
export const describeWakeUp = (w: WakeUp): string =>
  `${w.nodeProvisioningSeconds} s node + ${w.weightLoadSeconds.toFixed(0)} s weights + ` +
  `${w.engineStartSeconds} s engine = ${w.seconds} s`;

export function formatColdStarts(c: ColdStartComparison): string {
  const header = ["trace", "policy", "download GPU-h", "SLO %", "cached GPU-h", "SLO %", "GPU-h"];
  const rows: string[][] = [header];
  for (const r of c.rows) {
    const change = (r.cached.gpuHours / r.download.gpuHours - 1) * 100;
    rows.push([
      r.trace,
      r.policy,
      r.download.gpuHours.toFixed(1),
      (r.download.sloAttainment * 100).toFixed(1),
      r.cached.gpuHours.toFixed(1),
      (r.cached.sloAttainment * 100).toFixed(1),
      `${change >= 0 ? "+" : ""}${change.toFixed(1)} %`,
    ]);
  }
  return (
    `cold start: download (${describeWakeUp(c.wakeUp.download)}) vs complete cache ` +
    `(${describeWakeUp(c.wakeUp.cached)})\n${formatColumns(rows)}`
  );
}
