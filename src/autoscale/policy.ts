/**
 * The builtin autoscaling decision: pure, deterministic, no clock and no I/O. The caller
 * (pipeline.ts) scrapes the pods, turns counters into rates (rates.ts), keeps the history this
 * returns, and writes `desiredReplicas` through the scale subresource. The numbers a replica is
 * sized with (target, capacity, prompt weight, forecast horizon) come from model.ts.
 *
 * Units: times in seconds; throughput in generation-token equivalents per second. A replica
 * has two roofs (perf.ts): decode is memory-bandwidth bound (generation tokens/s), prefill is
 * compute bound (prompt plus generated tokens/s, every token costs the same FLOPs). With
 * chunked prefill both share each engine step, so prompt tokens ride in the compute a
 * bandwidth-bound decode step leaves idle: the load is the larger of the two, not their sum.
 * In generation-token equivalents: max(generation, (generation + prompt) x promptTokenWeight),
 * where promptTokenWeight = decode tokens/s / prefill tokens/s of the replica.
 */
import type { Spec } from "../api/schema.ts";
import { loadTokensPerSecond } from "./model.ts";

export type AutoscalingSpec = Spec["autoscaling"];

// ---------------------------------------------------------------------------------------------
// The decision

export interface ReadyReplicaMetrics {
  readonly name: string;
  readonly generationTokensPerSecond: number;
  readonly promptTokensPerSecond: number;
  /** Finished requests/s, when known: sizes an average request for the queue backlog. */
  readonly requestsPerSecond?: number;
  readonly running: number;
  readonly waiting: number;
  readonly kvCacheUsage?: number;
}

export interface StartingReplica {
  readonly name: string;
  readonly ageSeconds: number;
}

/** What the load asked for at one evaluation, before stabilization and limits. */
export interface Recommendation {
  readonly time: number;
  /** What the load asks for now (scale-up and cancelling use it). */
  readonly replicas: number;
  /** What the load of the longer scale-down demand window asks for (>= replicas never needed). */
  readonly replicasDown?: number;
  /** Token-equivalents/s: served throughput plus the queue's growth. */
  readonly arrivalTokensPerSecond: number;
  /** Token-equivalents waiting in the queues. */
  readonly backlogTokens: number;
  /** Nothing ran, nothing waited, every pod answered. */
  readonly idle: boolean;
  /** Some pods did not answer: the numbers are extrapolated. */
  readonly partial: boolean;
}

export interface ScalingDecision {
  readonly time: number;
  readonly from: number;
  readonly to: number;
  readonly reason: string;
}

export interface PolicyHistory {
  readonly recommendations: readonly Recommendation[];
  readonly decisions: readonly ScalingDecision[];
}

export const EMPTY_HISTORY: PolicyHistory = { recommendations: [], decisions: [] };

export interface PolicyOptions {
  /** Seconds over which a queue backlog should drain (default 300). */
  readonly backlogDrainSeconds: number;
  /** Token-equivalents of one request when no request rate is known (default 512). */
  readonly defaultTokensPerRequest: number;
  /** How far back the queue's growth is measured (default 60 s). */
  readonly queueGrowthWindowSeconds: number;
  /**
   * Arrival rates are averaged over this window (default 60 s): a replica takes minutes to
   * start, so second-scale bursts are absorbed by the target's headroom, not chased.
   */
  readonly demandWindowSeconds: number;
  /**
   * Scale-down recommendations use arrivals averaged over this longer window (default: the
   * spec's scaleDown.stabilizationWindowSeconds): the highest of many noisy one-minute
   * recommendations would keep a replica too many.
   */
  readonly scaleDownDemandWindowSeconds?: number;
  /**
   * No change while demand / target is within this share of the current count (default 0.1,
   * as the HPA's --horizontal-pod-autoscaler-tolerance): the target has headroom up to the
   * replica's capacity, and a replica costs minutes to start.
   */
  readonly tolerance: number;
  /**
   * Seconds of arrivals a linear trend is fitted over (default 600; 0 turns forecasting off).
   * A rising trend is projected the input's `forecastSeconds` ahead, so a replica asked for now
   * is ready when the load it is for arrives.
   */
  readonly trendWindowSeconds: number;
  /** The projection adds at most this share of the current arrivals (default 0.5). */
  readonly maxForecastGrowth: number;
  /** Share of a replica's capacity the projected load may fill (default 0.85). */
  readonly forecastUtilisation: number;
  /**
   * Cancel replicas that are still starting once no recommendation of this window asks for
   * them (undefined, the default: never; they wait for the scale-down window like ready ones).
   */
  readonly cancelStartingWindowSeconds?: number;
}

export const DEFAULT_POLICY_OPTIONS: PolicyOptions = {
  backlogDrainSeconds: 300,
  defaultTokensPerRequest: 512,
  queueGrowthWindowSeconds: 60,
  demandWindowSeconds: 60,
  tolerance: 0.1,
  trendWindowSeconds: 600,
  maxForecastGrowth: 0.5,
  forecastUtilisation: 0.85,
};

export interface PolicyInput {
  /** Seconds. */
  readonly now: number;
  readonly autoscaling: AutoscalingSpec;
  /** Generation tokens/s per replica (ScalingModel.targetTokensPerSecond). */
  readonly targetTokensPerSecond: number;
  /** Converts compute-bound load into generation tokens (ScalingModel.promptTokenWeight). */
  readonly promptTokenWeight: number;
  /**
   * Token-equivalents/s one replica can serve at most (ScalingModel.capacityTokensPerSecond);
   * the headroom above the target is what drains a backlog.
   */
  readonly capacityTokensPerSecond: number;
  /** How far ahead a rising trend is projected (ScalingModel.forecastSeconds: one wake-up). */
  readonly forecastSeconds: number;
  /** The scale subresource's replicas (ready, starting and unknown pods together). */
  readonly currentReplicas: number;
  /** Ready pods that answered, with rates. */
  readonly ready: readonly ReadyReplicaMetrics[];
  /** Pods created but not ready yet: capacity that is coming. */
  readonly starting: readonly StartingReplica[];
  /** Ready pods that did not answer or have no rate yet. Never counted as idle. */
  readonly unknownPods: number;
  readonly history: PolicyHistory;
  readonly options?: Partial<PolicyOptions>;
}

export interface PolicyOutput {
  readonly desiredReplicas: number;
  /** One sentence with the numbers behind the decision. */
  readonly reason: string;
  /** Append to the history (appendHistory) before the next call. */
  readonly recommendation: Recommendation;
  /** The metric values, as strings, for status.scaling.lastDecisions[].metrics. */
  readonly metrics: Readonly<Record<string, string>>;
}

function changeInPeriod(
  decisions: readonly ScalingDecision[],
  now: number,
  period: number,
): { added: number; removed: number } {
  let added = 0;
  let removed = 0;
  for (const d of decisions) {
    if (d.time <= now - period) continue;
    if (d.to > d.from) added += d.to - d.from;
    else removed += d.from - d.to;
  }
  return { added, removed };
}

/**
 * Least-squares slope (token-equivalents/s per second) of the arrivals of the complete
 * evaluations within `window` seconds, now included; 0 with fewer than half a window of them.
 */
export function trendSlope(
  history: PolicyHistory,
  now: number,
  arrivalNow: number,
  window: number,
): number {
  const xs: number[] = [0];
  const ys: number[] = [arrivalNow];
  let oldest = now;
  for (const r of history.recommendations) {
    if (r.partial || r.time >= now || r.time <= now - window) continue;
    xs.push(r.time - now);
    ys.push(r.arrivalTokensPerSecond);
    oldest = Math.min(oldest, r.time);
  }
  if (now - oldest < window / 2 || xs.length < 3) return 0;
  const n = xs.length;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let sxy = 0;
  let sxx = 0;
  for (let i = 0; i < n; i++) {
    sxy += (xs[i]! - mx) * (ys[i]! - my);
    sxx += (xs[i]! - mx) * (xs[i]! - mx);
  }
  return sxx > 0 ? sxy / sxx : 0;
}

const fmt = (n: number): string => (Math.abs(n) >= 100 ? n.toFixed(0) : n.toFixed(1));

/** What the answering ready pods report, summed. */
interface FleetTotals {
  readonly gen: number;
  readonly prompt: number;
  readonly waiting: number;
  readonly running: number;
  /** Finished requests/s, when every pod reported it. */
  readonly requestRate: number | undefined;
  readonly kvMean: number | undefined;
}

function sumReadyMetrics(known: readonly ReadyReplicaMetrics[]): FleetTotals {
  let gen = 0;
  let prompt = 0;
  let waiting = 0;
  let running = 0;
  let requestRate = 0;
  let requestRateKnown = known.length > 0;
  let kvSum = 0;
  let kvCount = 0;
  for (const r of known) {
    gen += r.generationTokensPerSecond;
    prompt += r.promptTokensPerSecond;
    waiting += r.waiting;
    running += r.running;
    if (r.requestsPerSecond === undefined) requestRateKnown = false;
    else requestRate += r.requestsPerSecond;
    if (r.kvCacheUsage !== undefined) {
      kvSum += r.kvCacheUsage;
      kvCount++;
    }
  }
  return {
    gen,
    prompt,
    waiting,
    running,
    requestRate: requestRateKnown ? requestRate : undefined,
    kvMean: kvCount > 0 ? kvSum / kvCount : undefined,
  };
}

/** The mean arrivals of now and of the complete evaluations within `window` seconds. */
function meanArrivals(
  history: PolicyHistory,
  now: number,
  arrivalNow: number,
  window: number,
): number {
  let sum = arrivalNow;
  let count = 1;
  for (const r of history.recommendations) {
    if (r.partial || r.time >= now || r.time <= now - window) continue;
    sum += r.arrivalTokensPerSecond;
    count++;
  }
  return sum / count;
}

/** Step 1: the load, in token-equivalents/s, now, averaged and projected. */
interface Demand {
  readonly served: number;
  readonly backlog: number;
  readonly growth: number;
  readonly arrivalNow: number;
  /** Averaged over demandWindowSeconds. */
  readonly arrival: number;
  /** Averaged over the scale-down demand window. */
  readonly arrivalSlow: number;
  readonly slope: number;
  readonly projected: number;
  /** Backlog tokens/s to drain on the headroom (0 while replicas start). */
  readonly drain: number;
  readonly partial: boolean;
  readonly idle: boolean;
  readonly noData: boolean;
}

function measureDemand(input: PolicyInput, o: PolicyOptions, t: FleetTotals): Demand {
  const { now, history } = input;
  const known = input.ready.length;
  const unknown = input.unknownPods;
  const served = loadTokensPerSecond(t.gen, t.prompt, input.promptTokenWeight);
  const perRequest =
    t.requestRate !== undefined && t.requestRate > 0 && served > 0
      ? served / t.requestRate
      : o.defaultTokensPerRequest;
  const backlog = t.waiting * perRequest;
  const partial = unknown > 0;
  // Pods that did not answer carry the mean load of those that did, never zero.
  const extrapolate = known > 0 ? (known + unknown) / known : 1;
  // Arrivals above what is served show up as queue growth.
  const ref = history.recommendations.find(
    (r) => !r.partial && r.time < now && r.time >= now - o.queueGrowthWindowSeconds,
  );
  const growth = ref === undefined ? 0 : (backlog - ref.backlogTokens) / (now - ref.time);
  const arrivalNow = Math.max(0, served + growth) * extrapolate;
  const arrival = meanArrivals(history, now, arrivalNow, o.demandWindowSeconds);
  const slowWindow =
    o.scaleDownDemandWindowSeconds ?? input.autoscaling.scaleDown.stabilizationWindowSeconds;
  const arrivalSlow = meanArrivals(history, now, arrivalNow, slowWindow);
  const slope =
    o.trendWindowSeconds > 0 ? trendSlope(history, now, arrivalNow, o.trendWindowSeconds) : 0;
  const projected = Math.min(
    arrival * (1 + o.maxForecastGrowth),
    arrival + Math.max(0, slope) * input.forecastSeconds,
  );
  // The backlog drains on the headroom between the target and the capacity; while replicas
  // start, the backlog is theirs to drain (it built up because they are not serving yet).
  const drain = input.starting.length > 0 ? 0 : (backlog * extrapolate) / o.backlogDrainSeconds;
  return {
    served,
    backlog,
    growth,
    arrivalNow,
    arrival,
    arrivalSlow,
    slope,
    projected,
    drain,
    partial,
    idle: !partial && known > 0 && served === 0 && t.waiting === 0 && t.running === 0,
    noData: known === 0,
  };
}

/** Step 2: the replicas the load asks for, before stabilization and limits. */
function recommend(
  input: PolicyInput,
  o: PolicyOptions,
  t: FleetTotals,
  d: Demand,
): Recommendation {
  const current = input.currentReplicas;
  const target = input.targetTokensPerSecond;
  const capacity = input.capacityTokensPerSecond;
  const replicasFor = (load: number): number => {
    const x = Math.max(load / target, (load + d.drain) / capacity);
    // Within the tolerance of the current count: hold (never from zero).
    if (current > 0 && Math.abs(x / current - 1) <= o.tolerance) return current;
    let n = Math.ceil(x - 1e-9);
    if (!d.idle && (t.running > 0 || t.waiting > 0)) n = Math.max(n, 1);
    return n;
  };
  // The target sizes for the load of now; the load projected a cold start ahead must only fit
  // under the replicas' capacity (forecastUtilisation of it) by the time new ones could serve.
  let raw = Math.max(
    replicasFor(d.arrival),
    Math.ceil(Math.max(0, d.projected) / (capacity * o.forecastUtilisation) - 1e-9),
  );
  let rawDown = Math.max(raw, replicasFor(d.arrivalSlow));
  if (d.noData) raw = rawDown = current; // nothing to measure (all starting or unknown): hold
  return {
    time: input.now,
    replicas: raw,
    replicasDown: rawDown,
    arrivalTokensPerSecond: d.noData ? 0 : d.arrivalNow,
    backlogTokens: d.backlog,
    idle: d.idle,
    partial: d.partial || d.noData,
  };
}

/** Step 3: HPA stabilization over the windows, the new recommendation included. */
function stabilize(
  input: PolicyInput,
  recs: readonly Recommendation[],
  raw: number,
): { readonly desired: number; readonly downRec: number } {
  const a = input.autoscaling;
  const now = input.now;
  let upRec = raw;
  let downRec = raw;
  for (const r of recs) {
    if (r.time > now - a.scaleUp.stabilizationWindowSeconds) upRec = Math.min(upRec, r.replicas);
    if (r.time > now - a.scaleDown.stabilizationWindowSeconds) {
      downRec = Math.max(downRec, r.replicasDown ?? r.replicas);
    }
  }
  // A policy with no history yet acts as if it had recommended the current count just now
  // (the HPA's maybeInitScaleDownStabilizationWindow): a restart never scales down at once.
  if (input.history.recommendations.length === 0)
    downRec = Math.max(downRec, input.currentReplicas);
  let desired = input.currentReplicas;
  if (desired < upRec) desired = upRec;
  if (desired > downRec) desired = downRec;
  return { desired, downRec };
}

/**
 * Step 4 (optional): replicas still starting serve nobody yet; when the load that asked for
 * them is gone for a whole cancel window, they are cancelled without waiting for the
 * scale-down window (which protects serving capacity from short dips). Ready ones still wait.
 * Returns how many are cancelled (0: none).
 */
function startingToCancel(
  input: PolicyInput,
  o: PolicyOptions,
  recs: readonly Recommendation[],
  raw: number,
  desired: number,
  noData: boolean,
): number {
  const starting = input.starting.length;
  const current = input.currentReplicas;
  const window = o.cancelStartingWindowSeconds;
  if (window === undefined || starting === 0 || desired < current || noData) return 0;
  let recent = raw;
  for (const r of recs) if (r.time > input.now - window) recent = Math.max(recent, r.replicas);
  const keep = Math.max(current - starting, recent);
  return keep < current ? current - keep : 0;
}

/**
 * Step 5: at most maxReplicasPerStep added (removed) per periodSeconds, counting the decisions
 * already made in the period; never down while a pod's load is unknown.
 */
function limitSteps(input: PolicyInput, desired: number, notes: string[]): number {
  const a = input.autoscaling;
  const current = input.currentReplicas;
  if (desired > current) {
    const { added, removed } = changeInPeriod(
      input.history.decisions,
      input.now,
      a.scaleUp.periodSeconds,
    );
    const limit = Math.max(current, current - added + removed + a.scaleUp.maxReplicasPerStep);
    if (desired <= limit) return desired;
    notes.push(`limited to +${a.scaleUp.maxReplicasPerStep} per ${a.scaleUp.periodSeconds} s`);
    return limit;
  }
  if (input.unknownPods > 0) {
    notes.push(`holding: ${input.unknownPods} pod(s) did not report, their load is unknown`);
    return current;
  }
  const { added, removed } = changeInPeriod(
    input.history.decisions,
    input.now,
    a.scaleDown.periodSeconds,
  );
  const limit = Math.min(current, current - added + removed - a.scaleDown.maxReplicasPerStep);
  if (desired >= limit) return desired;
  notes.push(`limited to -${a.scaleDown.maxReplicasPerStep} per ${a.scaleDown.periodSeconds} s`);
  return limit;
}

/**
 * Step 6: min/max always hold; zero only with scaleToZero, after a whole scale-down window
 * with nothing running or waiting; at zero the count stays there until minReplicas asks.
 */
function applyBounds(
  input: PolicyInput,
  recs: readonly Recommendation[],
  desired: number,
  notes: string[],
): number {
  const a = input.autoscaling;
  const now = input.now;
  const window = a.scaleDown.stabilizationWindowSeconds;
  const history = input.history.recommendations;
  const covered = history.length > 0 && history[0]!.time <= now - window;
  const idleLongEnough = covered && recs.filter((r) => r.time > now - window).every((r) => r.idle);
  const floor =
    a.scaleToZero && a.minReplicas === 0 && (idleLongEnough || input.currentReplicas === 0)
      ? 0
      : Math.max(1, a.minReplicas);
  if (desired < floor) {
    notes.push(`minimum ${floor}`);
    desired = floor;
  }
  if (desired > a.maxReplicas) {
    notes.push(`maximum ${a.maxReplicas}`);
    desired = a.maxReplicas;
  }
  if (desired === 0 && input.currentReplicas > 0)
    notes.push(`idle for ${window} s: scaling to zero`);
  return desired;
}

/** The metric values behind a decision, for status.scaling.lastDecisions[].metrics. */
function decisionMetrics(input: PolicyInput, t: FleetTotals, d: Demand): Record<string, string> {
  const metrics: Record<string, string> = {
    demandTokensPerSecond: fmt(d.arrival + d.drain),
    arrivalTokensPerSecond: fmt(d.arrival),
    generationTokensPerSecond: fmt(t.gen),
    promptTokensPerSecond: fmt(t.prompt),
    queueGrowthTokensPerSecond: fmt(d.growth),
    trendTokensPerSecondPerMinute: fmt(d.slope * 60),
    forecastTokensPerSecond: fmt(Math.max(d.arrival, d.projected)),
    backlogTokens: fmt(d.backlog),
    waitingRequests: String(t.waiting),
    runningRequests: String(t.running),
    targetTokensPerSecond: String(input.targetTokensPerSecond),
    readyReplicas: String(input.ready.length),
    startingReplicas: String(input.starting.length),
    unknownReplicas: String(input.unknownPods),
  };
  if (t.kvMean !== undefined) metrics["kvCacheUsage"] = t.kvMean.toFixed(3);
  return metrics;
}

/** One sentence with the numbers behind the decision. */
function explain(
  input: PolicyInput,
  t: FleetTotals,
  d: Demand,
  raw: number,
  desired: number,
  notes: readonly string[],
): string {
  const current = input.currentReplicas;
  const starting = input.starting.length;
  const unknown = input.unknownPods;
  const w = input.promptTokenWeight;
  const verb = desired > current ? "scale up" : desired < current ? "scale down" : "hold";
  const head = d.noData
    ? `no metrics (${starting} starting, ${unknown} unknown): ${verb} ${current} -> ${desired}`
    : `demand ${fmt(d.arrival + d.drain)} tok/s (max(gen ${fmt(t.gen)}, (gen + prompt ${fmt(t.prompt)}) x ${w.toFixed(3)}), ` +
      `queue growth ${fmt(d.growth)}/s, ${t.waiting} waiting${d.drain > 0 ? ` = ${fmt(d.drain)}/s to drain` : ""}` +
      `${d.projected > d.arrival ? `; forecast ${fmt(d.projected)} in ${input.forecastSeconds} s` : ""}) ` +
      `vs ${input.targetTokensPerSecond}/replica -> ${raw}; ${input.ready.length} ready, ${starting} starting, ${unknown} unknown: ` +
      `${verb} ${current} -> ${desired}`;
  return head + notes.map((n) => `; ${n}`).join("");
}

/**
 * Decides the replica count.
 *
 * 1. Arrivals, in token-equivalents/s: what the answering ready pods serve
 *    (loadTokensPerSecond: the busier of decode and prefill) plus the growth of their queues
 *    over the last minute (arrivals above service), averaged over `demandWindowSeconds`. Pods
 *    that did not answer are assumed to carry the mean load of those that did, never zero.
 * 2. Recommendation = ceil(max(arrivals / target, (arrivals + backlog / backlogDrainSeconds) /
 *    capacity)): the target's headroom up to the replica's capacity drains the queued backlog
 *    (waiting x tokens of an average request). Replicas already starting are part of the current
 *    count, so the same load never asks twice; while any is starting the backlog term is left
 *    out, because the queue that builds up during a cold start is what the starting replicas
 *    will drain (llm-d's pending-capacity guard). With no metrics at all (everything starting
 *    or unknown) the count holds. Within `tolerance` (10 %) of the current count it holds too.
 *    A rising trend (least squares over `trendWindowSeconds`) projected `forecastSeconds`
 *    ahead (at most +maxForecastGrowth) must fit in forecastUtilisation x capacity: the replica
 *    a rising load will need is asked for a cold start before the load arrives.
 * 3. Stabilization as the HPA does it: scale up to the lowest recommendation of the scale-up
 *    window (default 0 s: at once), scale down only to the highest of the scale-down window,
 *    whose recommendations (`replicasDown`) use arrivals averaged over that window.
 *    Without history the current count counts as recommended now (no scale-down at start).
 * 4. Optional (`cancelStartingWindowSeconds`, off by default): replicas still starting are
 *    cancelled once no recommendation of that window asks for them.
 * 5. Step limits: at most maxReplicasPerStep added (removed) per periodSeconds, counting the
 *    decisions already made in the period. Never scale down while a pod's load is unknown.
 * 6. min/max always hold; zero only with scaleToZero, after a whole scale-down window with
 *    nothing running or waiting; at zero the count stays there (nothing is scraped) until
 *    minReplicas asks for more.
 */
export function decide(input: PolicyInput): PolicyOutput {
  const o = { ...DEFAULT_POLICY_OPTIONS, ...input.options };
  const a = input.autoscaling;
  const current = input.currentReplicas;
  const totals = sumReadyMetrics(input.ready);
  const demand = measureDemand(input, o, totals);
  const recommendation = recommend(input, o, totals, demand);
  const raw = recommendation.replicas;
  const recs = [...input.history.recommendations, recommendation];
  const stable = stabilize(input, recs, raw);
  const cancelled = startingToCancel(input, o, recs, raw, stable.desired, demand.noData);
  const notes: string[] = [];
  let desired = cancelled > 0 ? current - cancelled : stable.desired;
  if (cancelled > 0) {
    notes.push(
      `cancelling ${cancelled} starting replica(s): no recommendation above ${desired} for ${o.cancelStartingWindowSeconds} s`,
    );
  } else if (desired !== current) {
    desired = limitSteps(input, desired, notes);
  } else if (raw < current && current === stable.downRec) {
    notes.push(
      `stabilizing: a recommendation of ${stable.downRec} within the last ${a.scaleDown.stabilizationWindowSeconds} s`,
    );
  }
  desired = applyBounds(input, recs, desired, notes);
  return {
    desiredReplicas: desired,
    reason: explain(input, totals, demand, raw, desired, notes),
    recommendation,
    metrics: decisionMetrics(input, totals, demand),
  };
}

/**
 * The history to pass next time: the new recommendation and decision appended, entries older
 * than every window the policy looks at dropped. `applied` false (the scale write failed) keeps
 * the recommendation, which measured the load, but not the decision: a change that never
 * happened must not spend the step budget of the period.
 */
export function appendHistory(
  history: PolicyHistory,
  out: PolicyOutput,
  currentReplicas: number,
  autoscaling: AutoscalingSpec,
  options: Partial<PolicyOptions> = {},
  applied = true,
): PolicyHistory {
  const o = { ...DEFAULT_POLICY_OPTIONS, ...options };
  const now = out.recommendation.time;
  const keepRecs =
    Math.max(
      autoscaling.scaleUp.stabilizationWindowSeconds,
      autoscaling.scaleDown.stabilizationWindowSeconds,
      o.queueGrowthWindowSeconds,
      o.demandWindowSeconds,
      o.scaleDownDemandWindowSeconds ?? 0,
      o.trendWindowSeconds,
    ) + 1;
  const keepDecisions =
    Math.max(autoscaling.scaleUp.periodSeconds, autoscaling.scaleDown.periodSeconds) + 1;
  // Keep one recommendation older than the windows: it proves the window is covered.
  const recs: readonly Recommendation[] =
    history.recommendations.length > 0
      ? history.recommendations
      : [
          {
            time: now,
            replicas: currentReplicas,
            arrivalTokensPerSecond: 0,
            backlogTokens: 0,
            idle: false,
            partial: true,
          },
        ];
  let firstKept = recs.findIndex((r) => r.time > now - keepRecs);
  if (firstKept < 0) firstKept = recs.length;
  const recommendations = [...recs.slice(Math.max(0, firstKept - 1)), out.recommendation];
  const decisions = history.decisions.filter((d) => d.time > now - keepDecisions);
  if (applied && out.desiredReplicas !== currentReplicas) {
    decisions.push({
      time: now,
      from: currentReplicas,
      to: out.desiredReplicas,
      reason: out.reason,
    });
  }
  return { recommendations, decisions };
}
