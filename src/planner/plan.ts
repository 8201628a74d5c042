/**
 * The sizing planner: spec -> memory plan, pure and deterministic. It proves a
 * plan fits in GPU memory or refuses it with the numbers that make it impossible.
 */
import type { Spec } from "../api/schema.ts";
import { GPU_CATALOG, TP_CHOICES, type GpuSpec, type TensorParallelSize } from "../catalog/gpus.ts";
import {
  MODEL_VARIANTS,
  draftWeightBytes,
  kvBytesPerToken,
  weightBytesTotal,
} from "../catalog/model.ts";
import { commandProblems, extraArgsProblems, operatorArgs } from "../engine/command.ts";
import { chooseEngine, type EngineChoice } from "../engine/contract.ts";
import { engineNotes } from "../engine/notes.ts";

export const GIB = 1024 ** 3;
const MIB = 1024 ** 2;
export { TP_CHOICES, type TensorParallelSize };

/**
 * Automatic TP asks for room for this many full-context sequences, so one
 * max-length request never fills the whole cache and stalls every other one.
 * An explicit TP only needs one (vLLM's own start-up rule).
 */
export const AUTO_TP_FULL_SEQUENCES = 2;

/** Per-GPU memory vLLM uses besides weights and KV cache. Not exactly known: kept conservative. */
export interface OverheadEstimate {
  readonly cudaContextAndNonTorchBytes: number;
  readonly activationBytes: number;
  readonly cudaGraphBytes: number;
  readonly ncclBytes: number;
  readonly visionEncoderBytes: number;
  readonly totalBytes: number;
}

export const OVERHEAD_MODEL = {
  cudaContextAndNonTorchGiB: 1.0,
  /** Peak activations per 1024 tokens of max-num-batched-tokens (MoE hidden 4096). */
  activationGiBPer1kBatchedTokens: 0.25,
  cudaGraphGiB: 0.75,
  /** NCCL buffers when TP > 1. */
  ncclGiB: 0.5,
  /** Vision encoder profiling run when images are enabled. */
  visionEncoderGiB: 0.5,
} as const;

export function estimateOverhead(
  tp: number,
  maxNumBatchedTokens: number,
  vision: boolean,
): OverheadEstimate {
  const m = OVERHEAD_MODEL;
  const cudaContextAndNonTorchBytes = m.cudaContextAndNonTorchGiB * GIB;
  const activationBytes = (maxNumBatchedTokens / 1024) * m.activationGiBPer1kBatchedTokens * GIB;
  const cudaGraphBytes = m.cudaGraphGiB * GIB;
  const ncclBytes = tp > 1 ? m.ncclGiB * GIB : 0;
  const visionEncoderBytes = vision ? m.visionEncoderGiB * GIB : 0;
  return {
    cudaContextAndNonTorchBytes,
    activationBytes,
    cudaGraphBytes,
    ncclBytes,
    visionEncoderBytes,
    totalBytes: Math.round(
      cudaContextAndNonTorchBytes +
        activationBytes +
        cudaGraphBytes +
        ncclBytes +
        visionEncoderBytes,
    ),
  };
}

export interface Plan {
  readonly feasible: boolean;
  readonly gpuType: Spec["gpu"]["type"];
  readonly quantization: Spec["model"]["quantization"];
  readonly checkpoint: string;
  readonly maxModelLen: number;
  readonly tensorParallelSize: TensorParallelSize;
  readonly tensorParallelSource: "spec" | "auto";
  readonly gpusPerReplica: number;
  readonly gpuMemoryBytes: number;
  readonly gpuMemoryUtilization: number;
  readonly usableBytesPerGpu: number;
  readonly weightBytesTotal: number;
  readonly weightBytesPerGpu: number;
  readonly overheadBytesPerGpu: number;
  readonly overhead: OverheadEstimate;
  readonly kvCacheDtype: "auto" | "fp8";
  readonly kvCacheBytesPerToken: number;
  readonly kvCacheBytesPerGpu: number;
  readonly kvCacheTokensPerReplica: number;
  readonly fullContextSequences: number;
  readonly maxNumSeqs: number;
  readonly maxNumBatchedTokens: number;
  /** Why the plan is infeasible (empty when feasible), numbers quoted. */
  readonly reasons: readonly string[];
  /** Facts worth knowing about a feasible plan (fallback kernels, thin headroom). */
  readonly notes: readonly string[];
  readonly vllmArgs: readonly string[];
  /** The vLLM release, image and backends the command line was checked against. */
  readonly engine: EnginePlan;
}

export interface EnginePlan {
  readonly release: string;
  readonly image: string;
  readonly cudaVersion: EngineChoice["cuda"];
  /** False when the image's release has no contract of its own (then `unverifiedReason`). */
  readonly verified: boolean;
  readonly unverifiedReason: string;
  readonly format: EngineChoice["format"];
  readonly attentionBackend: string | null;
  readonly moeBackend: string | null;
  readonly speculative: boolean;
}

export function gib(bytes: number): string {
  return (bytes / GIB).toFixed(1);
}

const QUANT_LABEL: Record<Spec["model"]["quantization"], string> = {
  fp8: "FP8",
  nvfp4: "NVFP4",
  bf16: "BF16",
  awq: "AWQ",
  gptq: "GPTQ",
};

interface Fit {
  readonly tp: TensorParallelSize;
  readonly weightBytesPerGpu: number;
  readonly overhead: OverheadEstimate;
  readonly usableBytesPerGpu: number;
  readonly kvCacheBytesPerGpu: number;
  readonly kvCacheTokens: number;
  readonly fullContextSequences: number;
  readonly weightsFit: boolean;
}

function fitAt(
  spec: Spec,
  gpu: GpuSpec,
  tp: TensorParallelSize,
  batched: number,
  kvPerToken: number,
): Fit {
  const usableBytesPerGpu = Math.round(gpu.memoryMiB * MIB * spec.engine.gpuMemoryUtilization);
  const weightBytesPerGpu = Math.round(weightsOf(spec) / tp);
  const overhead = estimateOverhead(tp, batched, spec.capabilities.vision.enabled);
  const free = usableBytesPerGpu - weightBytesPerGpu - overhead.totalBytes;
  const kvCacheBytesPerGpu = Math.max(0, free);
  // The MLA cache is replicated on every TP rank: one GPU's free memory bounds the replica.
  const kvCacheTokens = Math.floor(kvCacheBytesPerGpu / kvPerToken);
  return {
    tp,
    weightBytesPerGpu,
    overhead,
    usableBytesPerGpu,
    kvCacheBytesPerGpu,
    kvCacheTokens,
    fullContextSequences: Math.floor(kvCacheTokens / spec.maxModelLen),
    weightsFit: weightBytesPerGpu + overhead.totalBytes < usableBytesPerGpu,
  };
}

function whyNot(spec: Spec, gpu: GpuSpec, f: Fit): string {
  const util = spec.engine.gpuMemoryUtilization.toFixed(2);
  const label = QUANT_LABEL[spec.model.quantization];
  if (!f.weightsFit) {
    return (
      `${label} weights need ${gib(f.weightBytesPerGpu)} GiB per GPU at TP=${f.tp} ` +
      `plus ${gib(f.overhead.totalBytes)} GiB overhead; an ${gpu.displayName} offers ` +
      `${gib(f.usableBytesPerGpu)} GiB at ${util} utilisation`
    );
  }
  return (
    `at TP=${f.tp} the KV cache gets ${gib(f.kvCacheBytesPerGpu)} GiB per GPU ` +
    `(${gib(f.usableBytesPerGpu)} GiB usable on an ${gpu.displayName} at ${util} - ` +
    `${gib(f.weightBytesPerGpu)} GiB ${label} weights - ${gib(f.overhead.totalBytes)} GiB overhead) = ` +
    `${f.kvCacheTokens} tokens, fewer than one ${spec.maxModelLen}-token sequence ` +
    `(which needs ${gib(spec.maxModelLen * kvBytesFor(spec))} GiB on every GPU)`
  );
}

/** The checkpoint's weights, plus the EAGLE draft's when speculative decoding is on. */
function weightsOf(spec: Spec): number {
  return (
    weightBytesTotal(spec.model.quantization) +
    (spec.engine.speculative.enabled ? draftWeightBytes() : 0)
  );
}

function kvBytesFor(spec: Spec): number {
  const perToken = kvBytesPerToken(spec.engine.speculative.enabled);
  return spec.engine.kvCacheDtype === "fp8" ? perToken / 2 : perToken;
}

function notesFor(spec: Spec, fit: Fit, source: "spec" | "auto"): string[] {
  const notes: string[] = [];
  if (fit.fullContextSequences < AUTO_TP_FULL_SEQUENCES) {
    notes.push(
      `only ${fit.fullContextSequences} full ${spec.maxModelLen}-token sequence fits per replica` +
        (source === "auto"
          ? ": no TP size gives the 2-sequence headroom automatic sizing aims for"
          : ""),
    );
  }
  return notes;
}

export function plan(spec: Spec): Plan {
  const gpu = GPU_CATALOG[spec.gpu.type];
  const variant = MODEL_VARIANTS[spec.model.quantization];
  const batched = spec.engine.maxNumBatchedTokens ?? gpu.defaults.maxNumBatchedTokens;
  const maxNumSeqs = spec.engine.maxNumSeqs ?? gpu.defaults.maxNumSeqs;
  const kvPerToken = kvBytesFor(spec);
  const checkpoint = spec.model.name ?? variant.officialCheckpoint ?? "";

  const source: "spec" | "auto" = spec.gpu.tensorParallelSize === undefined ? "auto" : "spec";
  const candidates: readonly TensorParallelSize[] =
    spec.gpu.tensorParallelSize === undefined ? TP_CHOICES : [spec.gpu.tensorParallelSize];
  const fits = candidates.map((tp) => fitAt(spec, gpu, tp, batched, kvPerToken));
  const serves = (f: Fit) => f.weightsFit && f.fullContextSequences >= 1;
  const chosen =
    source === "auto"
      ? (fits.find((f) => serves(f) && f.fullContextSequences >= AUTO_TP_FULL_SEQUENCES) ??
        fits.find(serves) ??
        fits[fits.length - 1]!)
      : fits[0]!;

  const engine = chooseEngine(spec, gpu);
  const reasons = [...engine.problems, ...extraArgsProblems(spec, engine)];
  if (!serves(chosen)) {
    if (source === "auto") {
      reasons.push(
        `no tensor-parallel size of ${TP_CHOICES.join(", ")} fits on ${gpu.displayName}: ` +
          fits.map((f) => whyNot(spec, gpu, f)).join("; "),
      );
    } else {
      reasons.push(whyNot(spec, gpu, chosen));
    }
  }
  const feasible = reasons.length === 0;
  const base = {
    feasible,
    gpuType: spec.gpu.type,
    quantization: spec.model.quantization,
    checkpoint,
    maxModelLen: spec.maxModelLen,
    tensorParallelSize: chosen.tp,
    tensorParallelSource: source,
    gpusPerReplica: chosen.tp,
    gpuMemoryBytes: gpu.memoryMiB * MIB,
    gpuMemoryUtilization: spec.engine.gpuMemoryUtilization,
    usableBytesPerGpu: chosen.usableBytesPerGpu,
    weightBytesTotal: weightsOf(spec),
    weightBytesPerGpu: chosen.weightBytesPerGpu,
    overheadBytesPerGpu: chosen.overhead.totalBytes,
    overhead: chosen.overhead,
    kvCacheDtype: spec.engine.kvCacheDtype,
    kvCacheBytesPerToken: kvPerToken,
    kvCacheBytesPerGpu: chosen.kvCacheBytesPerGpu,
    kvCacheTokensPerReplica: chosen.kvCacheTokens,
    fullContextSequences: chosen.fullContextSequences,
    maxNumSeqs,
    maxNumBatchedTokens: batched,
    reasons,
    notes: feasible ? [...engineNotes(engine, gpu), ...notesFor(spec, chosen, source)] : [],
  };
  const vllmArgs = [...operatorArgs(spec, base, engine), ...spec.engine.extraArgs];
  // Our own flags must parse at the release; a failure here is refused, never rendered.
  const ownProblems = reasons.length > 0 ? [] : commandProblems(vllmArgs, engine.release);
  const all = [
    ...reasons,
    ...ownProblems.map(
      (p) => `vLLM ${engine.release.version} would not parse the command line: ${p}`,
    ),
  ];
  return {
    ...base,
    feasible: all.length === 0,
    reasons: all,
    notes: all.length === 0 ? base.notes : [],
    vllmArgs,
    engine: {
      release: engine.imageVersion ?? engine.release.version,
      image: engine.image,
      cudaVersion: engine.cuda,
      verified: engine.verified,
      unverifiedReason: engine.unverifiedReason,
      format: engine.format,
      attentionBackend: engine.mlaBackend,
      moeBackend: engine.moe?.runs ?? null,
      speculative: spec.engine.speculative.enabled,
    },
  };
}
