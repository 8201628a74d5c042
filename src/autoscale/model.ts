/**
 * The scaling model of one MistralSmallDeployment: every number the autoscaling decision is
 * sized with, derived once from the spec and the plan. The builtin autoscaler, the renderer of
 * the `hpa` and `keda` modes and the benchmark all call `scalingModel`, so a replica's target,
 * its capacity, the weight of a prompt token, its wake-up time and the forecast horizon have one
 * formula each.
 *
 * Units: seconds; throughput in generation-token equivalents per second (see
 * loadTokensPerSecond).
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

const DEFAULT_TARGET_OPTIONS: TargetOptions = {
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
// Wake-up: from asking for a replica to it serving

/**
 * Where a new replica's weights come from. `download`: the pod fetches the checkpoint at start
 * (what the operator's pods do today: from the Hub into the shared model volume), so the GPUs
 * wait for the download. `cached`: a complete cache was filled before (issue 16's loader Job),
 * so the pod only reads the weights from it.
 */
export type WeightSource = "download" | "cached";

export interface WakeUpOptions {
  /** A new GPU node: launch, boot, driver and device plugin (default 240 s). 0 on a warm node. */
  readonly nodeProvisioningSeconds: number;
  /** Rate a pod downloads the weights at start (default 0.4 GB/s into a shared network volume). */
  readonly downloadBytesPerSecond: number;
  /**
   * Rate the weights load from a complete cache (default 2 GB/s: node-local NVMe or a volume
   * provisioned for throughput). An assumption, not a measurement, like perf.ts's constants.
   */
  readonly cachedLoadBytesPerSecond: number;
  /** Engine start besides loading: KV profiling, CUDA graphs, API server (default 60 s). */
  readonly engineStartSeconds: number;
}

const DEFAULT_WAKE_UP: WakeUpOptions = {
  nodeProvisioningSeconds: 240,
  downloadBytesPerSecond: 0.4e9,
  cachedLoadBytesPerSecond: 2e9,
  engineStartSeconds: 60,
};

export interface WakeUp {
  readonly weights: WeightSource;
  /** The pod is Pending (no node) for this long. */
  readonly nodeProvisioningSeconds: number;
  /** Download or cache read of the weights. */
  readonly weightLoadSeconds: number;
  readonly engineStartSeconds: number;
  /** The whole wake-up, rounded up to a second: what status.scaling.wakeUpSeconds states. */
  readonly seconds: number;
}

/**
 * Seconds from asking for a replica to it serving: node provisioning + weight load (download or
 * cache read) + engine start. FP8 downloading with the defaults: 240 + weights / 0.4 GB/s + 60.
 */
export function wakeUp(
  plan: Plan,
  weights: WeightSource = "download",
  options: Partial<WakeUpOptions> = {},
): WakeUp {
  const o = { ...DEFAULT_WAKE_UP, ...options };
  const rate = weights === "download" ? o.downloadBytesPerSecond : o.cachedLoadBytesPerSecond;
  const weightLoadSeconds = plan.weightBytesTotal / rate;
  return {
    weights,
    nodeProvisioningSeconds: o.nodeProvisioningSeconds,
    weightLoadSeconds,
    engineStartSeconds: o.engineStartSeconds,
    seconds: Math.ceil(o.nodeProvisioningSeconds + weightLoadSeconds + o.engineStartSeconds),
  };
}

// ---------------------------------------------------------------------------------------------
// The scaling model

export interface ScalingModel {
  /** The plan's default target and how it was derived. */
  readonly target: TargetModel;
  /** Generation tokens/s per replica: the spec's target, else the plan's default. */
  readonly targetTokensPerSecond: number;
  /**
   * Token-equivalents/s one replica serves at most. A target set in the spec keeps the
   * default's ratio to capacity: the headroom that drains backlogs and that a forecast must fit.
   */
  readonly capacityTokensPerSecond: number;
  /** Converts compute-bound load into generation-token equivalents. */
  readonly promptTokenWeight: number;
  readonly wakeUp: WakeUp;
  /** How far ahead a rising trend is projected: one wake-up, so a replica is ready in time. */
  readonly forecastSeconds: number;
}

export interface ScalingModelOptions {
  /** Where new replicas' weights come from (default `download`: what the pods do today). */
  readonly weights?: WeightSource;
  readonly wakeUp?: Partial<WakeUpOptions>;
  readonly target?: Partial<TargetOptions>;
}

export function scalingModel(
  spec: Spec,
  plan: Plan,
  options: ScalingModelOptions = {},
): ScalingModel {
  const target = targetModel(plan, options.target);
  const targetTokensPerSecond =
    spec.autoscaling.targetGenerationTokensPerSecond ?? target.tokensPerSecond;
  const w = wakeUp(plan, options.weights, options.wakeUp);
  const capacityTokensPerSecond =
    targetTokensPerSecond === target.tokensPerSecond
      ? target.decodeTokensPerSecond
      : (target.decodeTokensPerSecond * targetTokensPerSecond) / target.tokensPerSecond;
  return {
    target,
    targetTokensPerSecond,
    capacityTokensPerSecond,
    promptTokenWeight: target.promptTokenWeight,
    wakeUp: w,
    forecastSeconds: w.seconds,
  };
}
