/**
 * The builtin autoscaling decision: pure, deterministic, no clock and no I/O. The caller
 * scrapes the pods, turns counters into rates (rates.ts), keeps the history this returns, and
 * writes `desiredReplicas` through the scale subresource.
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
import type { Plan } from "../planner/plan.ts";
import {
  decodePoint,
  prefillTokensPerSecond,
  replicaPerf,
  type PerfAssumptions,
  type ReplicaPerf,
} from "./perf.ts";

export type AutoscalingSpec = Spec["autoscaling"];

// ---------------------------------------------------------------------------------------------
// The per-replica target

export interface TargetOptions {
  /** Inter-token latency the target keeps decode under (default 0.05 s: 20 tokens/s a user). */
  readonly itlSloSeconds: number;
  /** Share of the throughput at that batch the target asks for (default 0.7). */
  readonly share: number;
  /** Average KV context of a running sequence, prompt plus output so far (default 2048). */
  readonly typicalContextTokens: number;
  /** Prompt length the prefill rate is quoted at (default 2048). */
  readonly typicalPromptTokens: number;
  readonly perf?: Partial<PerfAssumptions>;
}

export const DEFAULT_TARGET_OPTIONS: TargetOptions = {
  itlSloSeconds: 0.05,
  share: 0.7,
  typicalContextTokens: 2048,
  typicalPromptTokens: 2048,
};

export interface TargetModel {
  /** Generation tokens/s one replica should carry (the spec's default target). */
  readonly tokensPerSecond: number;
  /**
   * Decode tokens/s / prefill tokens/s: converts compute-bound load (prompt + generated
   * tokens/s) into generation-token equivalents (see loadTokensPerSecond).
   */
  readonly promptTokenWeight: number;
  /** The batch the target is taken at: the largest that keeps ITL under the SLO. */
  readonly batch: number;
  readonly itlSeconds: number;
  /** Decode throughput at that batch, before the share. */
  readonly decodeTokensPerSecond: number;
  /** Prompt tokens/s a replica prefills when doing nothing else. */
  readonly prefillTokensPerSecond: number;
  /** The formula with its numbers, for status and docs. */
  readonly explanation: string;
}

/**
 * The default per-replica target, derived from the plan:
 *
 *   decode is memory-bandwidth bound, so one step at batch B takes
 *     ITL(B) = overhead + (dense weights/GPU + routed experts/GPU x touched(B)
 *                          + B x context x KV bytes/token) / (bandwidth x efficiency) + TP comm
 *   (see perf.ts), and decode throughput is B / ITL(B);
 *   B* = the largest batch <= max-num-seqs with ITL(B) <= itlSloSeconds (at least 1);
 *   target = floor(share x B* / ITL(B*))          (share 0.7: 30 % headroom for bursts/prefill)
 *
 * For FP8 on 2x A100-80GB (TP 2, max-num-seqs 64, 2048-token contexts) that is
 * B* = 64, ITL ~ 42 ms, ~1520 tokens/s, target ~1060 tokens/s.
 *
 * promptTokenWeight = decode tokens/s at B* / prefill tokens/s (compute bound: TP x peak
 * FLOP/s x MFU / (2 x active params)); ~0.088 on that plan: a replica whose steps are full of
 * prompt chunks is as busy at 1000 prompt tokens/s as a decode-only one at 88 tokens/s.
 */
export function targetModel(plan: Plan, options: Partial<TargetOptions> = {}): TargetModel {
  const o = { ...DEFAULT_TARGET_OPTIONS, ...options };
  const p: ReplicaPerf = replicaPerf(plan, o.perf);
  let batch = 1;
  for (let b = 1; b <= p.maxNumSeqs; b++) {
    if (decodePoint(p, b, o.typicalContextTokens).itlSeconds <= o.itlSloSeconds) batch = b;
  }
  const point = decodePoint(p, batch, o.typicalContextTokens);
  const prefill = prefillTokensPerSecond(p, o.typicalPromptTokens);
  const tokensPerSecond = Math.max(1, Math.floor(o.share * point.tokensPerSecond));
  const promptTokenWeight = point.tokensPerSecond / prefill;
  return {
    tokensPerSecond,
    promptTokenWeight,
    batch,
    itlSeconds: point.itlSeconds,
    decodeTokensPerSecond: point.tokensPerSecond,
    prefillTokensPerSecond: prefill,
    explanation:
      `${o.share} x decode throughput at batch ${batch} (ITL ${(point.itlSeconds * 1000).toFixed(1)} ms <= ` +
      `${(o.itlSloSeconds * 1000).toFixed(0)} ms): ${o.share} x ${point.tokensPerSecond.toFixed(0)} = ` +
      `${tokensPerSecond} generation tokens/s per replica; a prompt token weighs ` +
      `${promptTokenWeight.toFixed(3)} (prefill ${prefill.toFixed(0)} tokens/s)`,
  };
}

/** The default `targetGenerationTokensPerSecond` for a plan (see targetModel for the formula). */
export function defaultTarget(plan: Plan, options: Partial<TargetOptions> = {}): number {
  return targetModel(plan, options).tokensPerSecond;
}

export interface WakeUpOptions {
  /** A new GPU node: launch, boot, driver and device plugin (default 240 s). 0 on a warm node. */
  readonly nodeProvisioningSeconds: number;
  /** Rate weights load at from the model cache (default 0.4 GB/s, a shared network volume). */
  readonly weightLoadBytesPerSecond: number;
  /** Engine start besides loading: KV profiling, CUDA graphs, API server (default 60 s). */
  readonly engineStartSeconds: number;
}

export const DEFAULT_WAKE_UP: WakeUpOptions = {
  nodeProvisioningSeconds: 240,
  weightLoadBytesPerSecond: 0.4e9,
  engineStartSeconds: 60,
};

/**
 * Seconds from asking for a replica to it serving: node provisioning + weight load + engine
 * start. FP8 (120.9 GB) with the defaults: 240 + 302 + 60 = 602 s.
 */
export function wakeUpSeconds(plan: Plan, options: Partial<WakeUpOptions> = {}): number {
  const o = { ...DEFAULT_WAKE_UP, ...options };
  return Math.ceil(
    o.nodeProvisioningSeconds +
      plan.weightBytesTotal / o.weightLoadBytesPerSecond +
      o.engineStartSeconds,
  );
}

/**
 * The load of generation and prompt tokens/s in generation-token equivalents: the busier of
 * the replica's two roofs. Decode-heavy chat load is bandwidth bound (prompts ride free in the
 * decode steps' idle compute); prompt-heavy load (code completion, RAG) is compute bound.
 */
export function loadTokensPerSecond(
  generationTokensPerSecond: number,
  promptTokensPerSecond: number,
  promptTokenWeight: number,
): number {
  return Math.max(
    generationTokensPerSecond,
    (generationTokensPerSecond + promptTokensPerSecond) * promptTokenWeight,
  );
}

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
   * A rising trend is projected `forecastSeconds` ahead, so a replica asked for now is ready
   * when the load it is for arrives.
   */
  readonly trendWindowSeconds: number;
  /** How far ahead a rising trend is projected (default 600 s: about a cold start). */
  readonly forecastSeconds: number;
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
  forecastSeconds: 600,
  maxForecastGrowth: 0.5,
  forecastUtilisation: 0.85,
};

/** Target / capacity when the caller gives no capacity: the default target's 70 % share. */
export const DEFAULT_TARGET_SHARE = DEFAULT_TARGET_OPTIONS.share;

export interface PolicyInput {
  /** Seconds. */
  readonly now: number;
  readonly autoscaling: AutoscalingSpec;
  /** Generation tokens/s per replica: the spec's target or defaultTarget(plan). */
  readonly targetTokensPerSecond: number;
  /** Converts compute-bound load into generation tokens (targetModel(plan).promptTokenWeight). */
  readonly promptTokenWeight?: number;
  /**
   * Token-equivalents/s one replica can serve at most (targetModel(plan).decodeTokensPerSecond);
   * the headroom above the target is what drains a backlog. Default: target / 0.7.
   */
  readonly capacityTokensPerSecond?: number;
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

/**
 * Decides the replica count.
 *
 * 1. Arrivals, in token-equivalents/s: what the answering ready pods serve
 *    (loadTokensPerSecond: the busier of decode and prefill) plus the growth of their queues over the last minute (arrivals above
 *    service), averaged over `demandWindowSeconds`. Pods that did not answer are assumed to
 *    carry the mean load of those that did, never zero.
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
 * 4. Step limits: at most maxReplicasPerStep added (removed) per periodSeconds, counting the
 *    decisions already made in the period.
 * 5. Never scale down while a pod's load is unknown. min/max always hold; zero only with
 *    scaleToZero, after a whole scale-down window with nothing running or waiting; at zero the
 *    count stays there (nothing is scraped) until minReplicas asks for more.
 * 6. Optional (`cancelStartingWindowSeconds`, off by default): replicas still starting are
 *    cancelled once no recommendation of that window asks for them.
 */
export function decide(input: PolicyInput): PolicyOutput {
  const o = { ...DEFAULT_POLICY_OPTIONS, ...input.options };
  const a = input.autoscaling;
  const now = input.now;
  const target = input.targetTokensPerSecond;
  const w = input.promptTokenWeight ?? 0;
  const current = input.currentReplicas;
  const known = input.ready;
  const unknown = input.unknownPods;
  const starting = input.starting.length;

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
  const served = loadTokensPerSecond(gen, prompt, w);
  const perRequest =
    requestRateKnown && requestRate > 0 && served > 0
      ? served / requestRate
      : o.defaultTokensPerRequest;
  const backlog = waiting * perRequest;
  const partial = unknown > 0;
  const extrapolate = known.length > 0 ? (known.length + unknown) / known.length : 1;

  // Arrivals above what is served show up as queue growth.
  const ref = input.history.recommendations.find(
    (r) => !r.partial && r.time < now && r.time >= now - o.queueGrowthWindowSeconds,
  );
  const growth = ref === undefined ? 0 : (backlog - ref.backlogTokens) / (now - ref.time);
  const arrivalNow = Math.max(0, served + growth) * extrapolate;
  // Averaged over the demand window with the earlier complete evaluations.
  let arrivalSum = arrivalNow;
  let arrivalCount = 1;
  for (const r of input.history.recommendations) {
    if (r.partial || r.time >= now || r.time <= now - o.demandWindowSeconds) continue;
    arrivalSum += r.arrivalTokensPerSecond;
    arrivalCount++;
  }
  const arrival = arrivalSum / arrivalCount;
  const slowWindow = o.scaleDownDemandWindowSeconds ?? a.scaleDown.stabilizationWindowSeconds;
  let slowSum = arrivalNow;
  let slowCount = 1;
  for (const r of input.history.recommendations) {
    if (r.partial || r.time >= now || r.time <= now - slowWindow) continue;
    slowSum += r.arrivalTokensPerSecond;
    slowCount++;
  }
  const arrivalSlow = slowSum / slowCount;
  const slope =
    o.trendWindowSeconds > 0 ? trendSlope(input.history, now, arrivalNow, o.trendWindowSeconds) : 0;
  const projected = Math.min(
    arrival * (1 + o.maxForecastGrowth),
    arrival + Math.max(0, slope) * o.forecastSeconds,
  );
  const capacity = input.capacityTokensPerSecond ?? target / DEFAULT_TARGET_SHARE;
  // The backlog drains on the headroom between the target and the capacity; while replicas
  // start, the backlog is theirs to drain (it built up because they are not serving yet).
  const drain = starting > 0 ? 0 : (backlog * extrapolate) / o.backlogDrainSeconds;
  const demand = arrival + drain;
  const idle = !partial && known.length > 0 && served === 0 && waiting === 0 && running === 0;
  const noData = known.length === 0;

  const replicasFor = (load: number): number => {
    const x = Math.max(load / target, (load + drain) / capacity);
    // Within the tolerance of the current count: hold (never from zero).
    if (current > 0 && Math.abs(x / current - 1) <= o.tolerance) return current;
    let n = Math.ceil(x - 1e-9);
    if (!idle && (running > 0 || waiting > 0)) n = Math.max(n, 1);
    return n;
  };
  // The target sizes for the load of now; the load projected a cold start ahead must only fit
  // under the replicas' capacity (forecastUtilisation of it) by the time new ones could serve.
  let raw = Math.max(
    replicasFor(arrival),
    Math.ceil(Math.max(0, projected) / (capacity * o.forecastUtilisation) - 1e-9),
  );
  let rawDown = Math.max(raw, replicasFor(arrivalSlow));
  if (noData) raw = rawDown = current; // nothing to measure (all starting or unknown): hold
  const recommendation: Recommendation = {
    time: now,
    replicas: raw,
    replicasDown: rawDown,
    arrivalTokensPerSecond: noData ? 0 : arrivalNow,
    backlogTokens: backlog,
    idle,
    partial: partial || noData,
  };

  // Stabilization (HPA semantics, the new recommendation included).
  const recs = [...input.history.recommendations, recommendation];
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
  if (input.history.recommendations.length === 0) downRec = Math.max(downRec, current);
  let desired = current;
  if (desired < upRec) desired = upRec;
  if (desired > downRec) desired = downRec;

  // Replicas still starting serve nobody yet: when the load that asked for them is gone for a
  // whole cancel window, they are cancelled without waiting for the scale-down window (which
  // protects serving capacity from short dips). Ready replicas still wait for it.
  let cancelled = 0;
  if (
    o.cancelStartingWindowSeconds !== undefined &&
    starting > 0 &&
    desired >= current &&
    !noData
  ) {
    let recent = raw;
    for (const r of recs) {
      if (r.time > now - o.cancelStartingWindowSeconds) recent = Math.max(recent, r.replicas);
    }
    const floorServing = current - starting;
    const keep = Math.max(floorServing, recent);
    if (keep < current) {
      cancelled = current - keep;
      desired = keep;
    }
  }

  const notes: string[] = [];
  if (desired > current) {
    const { added, removed } = changeInPeriod(
      input.history.decisions,
      now,
      a.scaleUp.periodSeconds,
    );
    const limit = Math.max(current, current - added + removed + a.scaleUp.maxReplicasPerStep);
    if (desired > limit) {
      notes.push(`limited to +${a.scaleUp.maxReplicasPerStep} per ${a.scaleUp.periodSeconds} s`);
      desired = limit;
    }
  } else if (cancelled > 0) {
    notes.push(
      `cancelling ${cancelled} starting replica(s): no recommendation above ${desired} for ${o.cancelStartingWindowSeconds} s`,
    );
  } else if (desired < current) {
    if (unknown > 0) {
      notes.push(`holding: ${unknown} pod(s) did not report, their load is unknown`);
      desired = current;
    } else {
      const { added, removed } = changeInPeriod(
        input.history.decisions,
        now,
        a.scaleDown.periodSeconds,
      );
      const limit = Math.min(current, current - added + removed - a.scaleDown.maxReplicasPerStep);
      if (desired < limit) {
        notes.push(
          `limited to -${a.scaleDown.maxReplicasPerStep} per ${a.scaleDown.periodSeconds} s`,
        );
        desired = limit;
      }
    }
  } else if (raw < current && current === downRec) {
    notes.push(
      `stabilizing: a recommendation of ${downRec} within the last ${a.scaleDown.stabilizationWindowSeconds} s`,
    );
  }

  // Bounds. Zero only when allowed and idle for a whole scale-down window.
  const window = a.scaleDown.stabilizationWindowSeconds;
  const inWindow = recs.filter((r) => r.time > now - window);
  const covered =
    input.history.recommendations.length > 0 &&
    input.history.recommendations[0]!.time <= now - window;
  const idleLongEnough = covered && inWindow.every((r) => r.idle);
  const floor =
    a.scaleToZero && a.minReplicas === 0 && (idleLongEnough || current === 0)
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
  if (desired === 0 && current > 0) notes.push(`idle for ${window} s: scaling to zero`);

  const kvMean = kvCount > 0 ? kvSum / kvCount : undefined;
  const metrics: Record<string, string> = {
    demandTokensPerSecond: fmt(demand),
    arrivalTokensPerSecond: fmt(arrival),
    generationTokensPerSecond: fmt(gen),
    promptTokensPerSecond: fmt(prompt),
    queueGrowthTokensPerSecond: fmt(growth),
    trendTokensPerSecondPerMinute: fmt(slope * 60),
    forecastTokensPerSecond: fmt(Math.max(arrival, projected)),
    backlogTokens: fmt(backlog),
    waitingRequests: String(waiting),
    runningRequests: String(running),
    targetTokensPerSecond: String(target),
    readyReplicas: String(known.length),
    startingReplicas: String(starting),
    unknownReplicas: String(unknown),
  };
  if (kvMean !== undefined) metrics["kvCacheUsage"] = kvMean.toFixed(3);

  const verb = desired > current ? "scale up" : desired < current ? "scale down" : "hold";
  const reason =
    (noData
      ? `no metrics (${starting} starting, ${unknown} unknown): ${verb} ${current} -> ${desired}`
      : `demand ${fmt(demand)} tok/s (max(gen ${fmt(gen)}, (gen + prompt ${fmt(prompt)}) x ${w.toFixed(3)}), ` +
        `queue growth ${fmt(growth)}/s, ${waiting} waiting${drain > 0 ? ` = ${fmt(drain)}/s to drain` : ""}` +
        `${projected > arrival ? `; forecast ${fmt(projected)} in ${o.forecastSeconds} s` : ""}) ` +
        `vs ${target}/replica -> ${raw}; ${known.length} ready, ${starting} starting, ${unknown} unknown: ` +
        `${verb} ${current} -> ${desired}`) + notes.map((n) => `; ${n}`).join("");

  return { desiredReplicas: desired, reason, recommendation, metrics };
}

/**
 * The history to pass next time: the new recommendation and decision appended, entries older
 * than every window the policy looks at dropped.
 */
export function appendHistory(
  history: PolicyHistory,
  out: PolicyOutput,
  currentReplicas: number,
  autoscaling: AutoscalingSpec,
  options: Partial<PolicyOptions> = {},
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
  if (out.desiredReplicas !== currentReplicas) {
    decisions.push({
      time: now,
      from: currentReplicas,
      to: out.desiredReplicas,
      reason: out.reason,
    });
  }
  return { recommendations, decisions };
}
