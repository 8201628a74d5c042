/**
 * The plain per-trace series plot.ts draws, taken from a trace and the benchmark's runs on it:
 * requests and load binned by arrival, each run's replica timeline and its SLO misses binned by
 * the arrival of the missed requests.
 */
import { loadTokensPerSecond, type TargetModel } from "../../src/autoscale/model.ts";
import type { RunResult } from "./fleet.ts";
import type { PlotSeries, PolicySeries } from "./plot.ts";
import type { Trace } from "./traces.ts";

/** Bin widths a plot may use (seconds): round numbers a reader can name. */
const BIN_CHOICES = [10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600] as const;

/** The smallest round bin giving at most `maxBins` bins over the duration. */
export function binSecondsFor(durationSeconds: number, maxBins = 240): number {
  return BIN_CHOICES.find((b) => durationSeconds / b <= maxBins) ?? 3600;
}

function binOf(t: number, binSeconds: number, bins: number): number {
  return Math.min(bins - 1, Math.max(0, Math.floor(t / binSeconds)));
}

/**
 * The series of one trace. `runs` in legend order; `target`, when given, adds the offered load
 * in replicas' worth (load tokens/s of the bin / the target's tokens/s).
 */
export function plotSeries(
  trace: Trace,
  runs: readonly RunResult[],
  target?: TargetModel,
  maxBins = 240,
): PlotSeries {
  const binSeconds = binSecondsFor(trace.durationSeconds, maxBins);
  const bins = Math.max(1, Math.ceil(trace.durationSeconds / binSeconds));
  const width = (i: number): number =>
    Math.min(binSeconds, trace.durationSeconds - i * binSeconds) || binSeconds;
  const count = new Array<number>(bins).fill(0);
  const gen = new Array<number>(bins).fill(0);
  const prompt = new Array<number>(bins).fill(0);
  for (const r of trace.requests) {
    const i = binOf(r.t, binSeconds, bins);
    count[i]! += 1;
    gen[i]! += r.gen;
    prompt[i]! += r.prompt;
  }
  const policies: PolicySeries[] = runs.map((run) => {
    const misses = new Array<number>(bins).fill(0);
    for (const t of run.missedArrivals) misses[binOf(t, binSeconds, bins)]! += 1;
    return {
      policy: run.policy,
      gpuHours: run.gpuHours,
      sloAttainment: run.sloAttainment,
      replicas: run.timeline,
      missesPerBin: misses,
    };
  });
  return {
    trace: trace.name,
    description: trace.description,
    durationSeconds: trace.durationSeconds,
    binSeconds,
    offeredRequestsPerSecond: count.map((n, i) => n / width(i)),
    ...(target === undefined
      ? {}
      : {
          neededReplicas: gen.map(
            (g, i) =>
              loadTokensPerSecond(g, prompt[i]!, target.promptTokenWeight) /
              width(i) /
              target.tokensPerSecond,
          ),
        }),
    policies,
  };
}
