/**
 * The benchmark's per-trace time series, as plain data for a chart: per minute, the offered
 * load, each policy's replica count and its SLO misses. Nothing here draws.
 */
import { loadTokensPerSecond } from "../../src/autoscale/model.ts";
import { SERIES_BIN_SECONDS, type RunResult } from "./fleet.ts";
import type { BenchResults } from "./harness.ts";
import type { Trace } from "./traces.ts";

export interface SeriesPoint {
  /** Start of the bin, seconds from the trace's start. */
  readonly time: number;
  /** Requests arriving in the bin, per second. */
  readonly offeredRequestsPerSecond: number;
  /** Their load in generation-token equivalents/s (loadTokensPerSecond), what ours sizes for. */
  readonly offeredLoadTokensPerSecond: number;
  /** Each policy's replica count (the scale subresource's) at the bin's start. */
  readonly replicas: Readonly<Record<string, number>>;
  /** Each policy's requests, arriving in the bin, that missed the SLO (rejected included). */
  readonly sloMisses: Readonly<Record<string, number>>;
}

export interface TraceSeries {
  readonly trace: string;
  readonly binSeconds: number;
  readonly points: readonly SeriesPoint[];
  /** Each policy's GPU-hours over the trace (for a legend). */
  readonly gpuHours: Readonly<Record<string, number>>;
  /** Each policy's exact (time, replicas) steps, for a step chart finer than the bins. */
  readonly timelines: Readonly<Record<string, RunResult["timeline"]>>;
}

/** The replica count a timeline gives at `t` (the last change at or before it). */
function replicasAt(timeline: RunResult["timeline"], t: number): number {
  let n = timeline[0]?.[1] ?? 0;
  for (const [time, replicas] of timeline) {
    if (time > t) break;
    n = replicas;
  }
  return n;
}

/** One trace's series from the runs of every policy on it. */
export function traceSeries(
  trace: Trace,
  runs: Readonly<Record<string, RunResult>>,
  promptTokenWeight: number,
  binSeconds = SERIES_BIN_SECONDS,
): TraceSeries {
  const bins = Math.floor(trace.durationSeconds / binSeconds) + 1;
  const count = new Array<number>(bins).fill(0);
  const gen = new Array<number>(bins).fill(0);
  const prompt = new Array<number>(bins).fill(0);
  for (const r of trace.requests) {
    const i = Math.min(bins - 1, Math.floor(r.t / binSeconds));
    count[i]!++;
    gen[i]! += r.gen;
    prompt[i]! += r.prompt;
  }
  const policies = Object.keys(runs);
  const points: SeriesPoint[] = [];
  for (let i = 0; i < bins; i++) {
    const time = i * binSeconds;
    const replicas: Record<string, number> = {};
    const sloMisses: Record<string, number> = {};
    for (const p of policies) {
      const run = runs[p]!;
      replicas[p] = replicasAt(run.timeline, time);
      sloMisses[p] = misses(run, time, binSeconds);
    }
    points.push({
      time,
      offeredRequestsPerSecond: count[i]! / binSeconds,
      offeredLoadTokensPerSecond: loadTokensPerSecond(
        gen[i]! / binSeconds,
        prompt[i]! / binSeconds,
        promptTokenWeight,
      ),
      replicas,
      sloMisses,
    });
  }
  return {
    trace: trace.name,
    binSeconds,
    points,
    gpuHours: Object.fromEntries(policies.map((p) => [p, runs[p]!.gpuHours])),
    timelines: Object.fromEntries(policies.map((p) => [p, runs[p]!.timeline])),
  };
}

/** A run's misses in [from, from + width), re-binned from its per-minute counts. */
function misses(run: RunResult, from: number, width: number): number {
  let n = 0;
  const first = Math.floor(from / SERIES_BIN_SECONDS);
  const last = Math.ceil((from + width) / SERIES_BIN_SECONDS);
  for (let i = first; i < last && i < run.missesPerBin.length; i++) n += run.missesPerBin[i]!;
  return n;
}

/** Every trace's series from a benchmark run (`runBench`), in the traces' order. */
export function benchSeries(
  traces: readonly Trace[],
  results: BenchResults,
  promptTokenWeight: number,
  binSeconds = SERIES_BIN_SECONDS,
): TraceSeries[] {
  return traces.flatMap((t) => {
    const runs = results.traces[t.name];
    return runs === undefined ? [] : [traceSeries(t, runs, promptTokenWeight, binSeconds)];
  });
}
