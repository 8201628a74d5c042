/**
 * A roofline performance model of one vLLM replica of Mistral Small 4, derived from the
 * sizing plan. Used for the scaling model (model.ts: target, capacity, prompt weight) and by
 * the simulator (bench/autoscale), so both reason about the same replica. Nothing here was
 * measured on a GPU: every constant is a named assumption below, each one entry to change.
 *
 * One engine step (continuous batching with chunked prefill, as vLLM V1 runs it) processes
 * one token for each of the B decoding sequences plus up to `maxNumBatchedTokens - B` prompt
 * tokens. Its time is
 *
 *   step = overhead + max(memory, compute) + tensor-parallel communication
 *
 *   memory  = (dense weight bytes per GPU                       read every step
 *             + routed-expert bytes per GPU x touched(n)         MoE: only experts some token routes to
 *             + context tokens x KV bytes per token)             the MLA latent cache, replicated on
 *             / (GPU memory bandwidth x memoryEfficiency)        every TP rank, so read in full by each
 *   compute = n x 2 x active parameters (+ prefill attention)   n = tokens in the step
 *             / (TP x peak BF16 FLOP/s x mfu)
 *   touched(n) = 1 - (1 - topK / experts)^n                     share of a layer's 128 experts that
 *                                                                n tokens routing to 4 each touch
 *
 * Consequences: decode is memory-bandwidth bound and its step time grows with the batch
 * mostly because a bigger batch touches more experts (at B = 64 about 87 % of them); prefill
 * is compute bound (an 8192-token chunk takes ~0.4 s on 2x A100). A100s run the FP8
 * checkpoint as W8A16 (Marlin), so compute uses the BF16 tensor-core peak.
 */
import type { GpuType } from "../catalog/gpus.ts";
import { GPU_CATALOG } from "../catalog/gpus.ts";
import { MODEL, MODEL_VARIANTS, kvBytesPerToken } from "../catalog/model.ts";
import type { Plan } from "../planner/plan.ts";

/** Architecture facts the model needs beyond src/catalog/model.ts (research notes, section 1). */
export const MOE = {
  routedExperts: 128,
  expertsPerToken: 4,
  expertWidth: 2048,
  vocab: 131072,
  /** MLA query/key head dim (nope 64 + rope 64) plus value head dim 128. */
  attentionDimsPerHead: 64 + 64 + 128,
} as const;

/** Dense BF16 tensor-core peak per GPU (FLOP/s), the compute roof for W8A16 and BF16 alike. */
export const PEAK_BF16_FLOPS: Readonly<Record<GpuType, number>> = {
  "a100-40gb": 312e12,
  "a100-80gb": 312e12,
  "h100-80gb": 989e12,
  "h200-141gb": 989e12,
  "l40s-48gb": 362e12,
};

/** Every constant of the model that is an assumption, not a fact of the plan. */
export interface PerfAssumptions {
  /** Share of the nominal memory bandwidth a decode step achieves. */
  readonly memoryEfficiency: number;
  /** Model FLOP utilisation of prefill (MoE grouped GEMMs through Marlin). */
  readonly mfu: number;
  /** Fixed cost of a step: scheduling, sampling, launches (seconds). */
  readonly stepOverheadSeconds: number;
  /** Latency of one all-reduce (seconds); two per layer when TP > 1. */
  readonly allReduceLatencySeconds: number;
  /** All-reduce bus bandwidth between the GPUs of a replica (bytes/s); NVLink or PCIe. */
  readonly interconnectBytesPerSecond: number;
}

export function defaultAssumptions(gpuType: GpuType): PerfAssumptions {
  const gpu = GPU_CATALOG[gpuType];
  return {
    memoryEfficiency: 0.75,
    mfu: 0.4,
    stepOverheadSeconds: 0.005,
    allReduceLatencySeconds: 15e-6,
    interconnectBytesPerSecond: gpu.nvlink ? 250e9 : 25e9,
  };
}

/** Everything a step-time computation needs, resolved once per plan. */
export interface ReplicaPerf {
  readonly gpuType: GpuType;
  readonly tensorParallelSize: number;
  readonly gpusPerReplica: number;
  readonly maxNumSeqs: number;
  readonly maxNumBatchedTokens: number;
  readonly kvCacheTokens: number;
  readonly kvBytesPerToken: number;
  /** Weights read by every step on each GPU: attention, shared expert, router, lm_head. */
  readonly denseBytesPerGpu: number;
  /** Routed-expert weights on each GPU (read in the share `touched(n)`). */
  readonly expertBytesPerGpu: number;
  readonly effectiveBandwidth: number;
  readonly effectiveFlops: number;
  readonly flopsPerToken: number;
  /** Extra prefill FLOPs per token per token of context already in the prompt (attention). */
  readonly attentionFlopsPerTokenPerContext: number;
  readonly assumptions: PerfAssumptions;
}

export function replicaPerf(plan: Plan, overrides: Partial<PerfAssumptions> = {}): ReplicaPerf {
  const a = { ...defaultAssumptions(plan.gpuType), ...overrides };
  const gpu = GPU_CATALOG[plan.gpuType];
  const tp = plan.tensorParallelSize;
  const bpw = MODEL_VARIANTS[plan.quantization].bytesPerWeight;
  const expertParams = MODEL.layers * MOE.routedExperts * 3 * MODEL.hiddenSize * MOE.expertWidth;
  const denseQuantizedParams = MODEL.quantizedParams - expertParams;
  // lm_head stays BF16 and is read every step; embeddings are a lookup; vision is idle in decode.
  const lmHeadBytes = MOE.vocab * MODEL.hiddenSize * 2;
  return {
    gpuType: plan.gpuType,
    tensorParallelSize: tp,
    gpusPerReplica: plan.gpusPerReplica,
    maxNumSeqs: plan.maxNumSeqs,
    maxNumBatchedTokens: plan.maxNumBatchedTokens,
    kvCacheTokens: plan.kvCacheTokensPerReplica,
    kvBytesPerToken: plan.kvCacheBytesPerToken || kvBytesPerToken(),
    denseBytesPerGpu: (denseQuantizedParams * bpw + lmHeadBytes) / tp,
    expertBytesPerGpu: (expertParams * bpw) / tp,
    effectiveBandwidth: gpu.memoryBandwidthGBps * 1e9 * a.memoryEfficiency,
    effectiveFlops: tp * PEAK_BF16_FLOPS[plan.gpuType] * a.mfu,
    flopsPerToken: 2 * MODEL.activeParams,
    attentionFlopsPerTokenPerContext:
      2 * MODEL.layers * MODEL.attentionHeads * MOE.attentionDimsPerHead,
    assumptions: a,
  };
}

/** Share of a layer's routed experts that `tokens` tokens touch. */
export function expertsTouched(tokens: number): number {
  if (tokens <= 0) return 0;
  return 1 - Math.pow(1 - MOE.expertsPerToken / MOE.routedExperts, tokens);
}

/**
 * Seconds of one engine step with `decodeSeqs` decoding sequences (holding `contextTokens`
 * tokens of KV in total) and `prefillTokens` prompt tokens (compute-equivalent, see
 * `prefillWork`).
 */
export function stepSeconds(
  p: ReplicaPerf,
  decodeSeqs: number,
  prefillTokens: number,
  contextTokens: number,
): number {
  const n = decodeSeqs + prefillTokens;
  if (n <= 0) return 0;
  const memory =
    (p.denseBytesPerGpu +
      p.expertBytesPerGpu * expertsTouched(n) +
      contextTokens * p.kvBytesPerToken) /
    p.effectiveBandwidth;
  const compute = (n * p.flopsPerToken) / p.effectiveFlops;
  const a = p.assumptions;
  const tp = p.tensorParallelSize;
  const comm =
    tp > 1
      ? 2 *
        MODEL.layers *
        (a.allReduceLatencySeconds +
          (n * MODEL.hiddenSize * 2 * 2 * (tp - 1)) / tp / a.interconnectBytesPerSecond)
      : 0;
  return a.stepOverheadSeconds + Math.max(memory, compute) + comm;
}

/**
 * Compute-equivalent prefill tokens of a prompt: its tokens plus causal attention over the
 * prompt itself (sum over positions of the context before each), in units of a token's
 * linear-layer FLOPs.
 */
export function prefillWork(p: ReplicaPerf, promptTokens: number): number {
  const attention = (p.attentionFlopsPerTokenPerContext * promptTokens * promptTokens) / 2;
  return promptTokens + attention / p.flopsPerToken;
}

/** Decode-only throughput (tokens/s) and inter-token latency at a batch. */
export function decodePoint(
  p: ReplicaPerf,
  batch: number,
  contextPerSeq: number,
): { readonly tokensPerSecond: number; readonly itlSeconds: number } {
  const itl = stepSeconds(p, batch, 0, batch * contextPerSeq);
  return { tokensPerSecond: batch / itl, itlSeconds: itl };
}

/** Prompt tokens/s one replica prefills when it does nothing else (full chunks). */
export function prefillTokensPerSecond(p: ReplicaPerf, promptTokens = 2048): number {
  const chunk = p.maxNumBatchedTokens;
  const perToken = prefillWork(p, promptTokens) / promptTokens;
  return chunk / perToken / stepSeconds(p, 0, chunk, 0);
}
