/**
 * Mistral Small 4 as data: the architecture facts the memory arithmetic needs and
 * the checkpoints per quantization. Sources: ../shared/research/mistral-small-4.md.
 */

export const QUANTIZATIONS = ["fp8", "nvfp4", "bf16", "awq", "gptq"] as const;
export type Quantization = (typeof QUANTIZATIONS)[number];

export const MODEL = {
  family: "Mistral Small 4",
  totalParams: 119.4e9,
  activeParams: 6.5e9,
  /** Decoder linear weights that get quantized. */
  quantizedParams: 117.9e9,
  /** Embeddings, lm_head and the vision tower stay BF16 in every variant. */
  bf16Params: 1.5e9,
  layers: 36,
  hiddenSize: 4096,
  attentionHeads: 32,
  visionHeads: 16,
  /** MLA: vLLM stores one compressed latent plus the rope key per token per layer. */
  kvLoraRank: 256,
  qkRopeHeadDim: 64,
  /** BF16 KV cache: the only choice for MLA below SM 8.9. */
  kvDtypeBytes: 2,
  maxContext: 262144,
  defaultServedModelName: "mistral-small-4",
} as const;

export interface ModelVariant {
  readonly quantization: Quantization;
  /** Bytes per quantized decoder weight, scales included. */
  readonly bytesPerWeight: number;
  /** The official checkpoint, or null when the user must bring one. */
  readonly officialCheckpoint: string | null;
  readonly note: string;
}

export const MODEL_VARIANTS: Readonly<Record<Quantization, ModelVariant>> = {
  fp8: {
    quantization: "fp8",
    bytesPerWeight: 1,
    officialCheckpoint: "mistralai/Mistral-Small-4-119B-2603",
    note: "official FP8 (E4M3) checkpoint; weight-only W8A16 through Marlin on GPUs without FP8 tensor cores",
  },
  nvfp4: {
    quantization: "nvfp4",
    // 4-bit values plus one FP8 scale per 16 weights.
    bytesPerWeight: 0.5625,
    officialCheckpoint: "mistralai/Mistral-Small-4-119B-2603-NVFP4",
    note: "official NVFP4 checkpoint; Marlin FP4 (W4A16) fallback below Blackwell; weaker on long context",
  },
  bf16: {
    quantization: "bf16",
    bytesPerWeight: 2,
    officialCheckpoint: null,
    note: "no official BF16 checkpoint: spec.model.name must name one (e.g. a descaled FP8)",
  },
  awq: {
    quantization: "awq",
    // INT4 with a 16-bit scale per group of 128.
    bytesPerWeight: 0.515625,
    officialCheckpoint: null,
    note: "no official AWQ checkpoint: spec.model.name must name one",
  },
  gptq: {
    quantization: "gptq",
    bytesPerWeight: 0.515625,
    officialCheckpoint: null,
    note: "no official GPTQ checkpoint: spec.model.name must name one",
  },
};

export function weightBytesTotal(q: Quantization): number {
  return Math.round(
    MODEL.quantizedParams * MODEL_VARIANTS[q].bytesPerWeight + MODEL.bf16Params * 2,
  );
}

/** KV bytes per token of context as vLLM stores MLA; replicated on every TP rank. */
export function kvBytesPerToken(): number {
  return MODEL.layers * (MODEL.kvLoraRank + MODEL.qkRopeHeadDim) * MODEL.kvDtypeBytes;
}
