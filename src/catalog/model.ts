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
  /**
   * Size of the official checkpoint's weights as published (bytes), which vLLM loads onto
   * the GPUs; null where only the format arithmetic is known.
   */
  readonly publishedWeightBytes: number | null;
  readonly note: string;
}

export const MODEL_VARIANTS: Readonly<Record<Quantization, ModelVariant>> = {
  fp8: {
    quantization: "fp8",
    bytesPerWeight: 1,
    officialCheckpoint: "mistralai/Mistral-Small-4-119B-2603",
    // 112.63Gi in KAITO's Mistral Small 4 preset (kaito-project/kaito, TotalModelWeightSize);
    // the format arithmetic gives 112.6 GiB too.
    publishedWeightBytes: Math.round(112.63 * 1024 ** 3),
    note: "official FP8 (E4M3) checkpoint; weight-only W8A16 through Marlin on GPUs without FP8 tensor cores",
  },
  nvfp4: {
    quantization: "nvfp4",
    // 4-bit values plus one FP8 scale per 16 weights.
    bytesPerWeight: 0.5625,
    officialCheckpoint: "mistralai/Mistral-Small-4-119B-2603-NVFP4",
    // "~72 GB raw" (vllm-project/recipes 8959cf64, variants.nvfp4); the arithmetic (64.6 GiB)
    // misses what llm-compressor leaves unquantized (audit row 67). Approximate.
    publishedWeightBytes: 72e9,
    note: "official NVFP4 checkpoint; Marlin FP4 (W4A16) fallback below Blackwell; weaker on long context",
  },
  bf16: {
    quantization: "bf16",
    bytesPerWeight: 2,
    officialCheckpoint: null,
    publishedWeightBytes: null,
    note: "no official BF16 checkpoint: spec.model.name must name one (e.g. a descaled FP8)",
  },
  awq: {
    quantization: "awq",
    // INT4 with a 16-bit scale per group of 128.
    bytesPerWeight: 0.515625,
    officialCheckpoint: null,
    publishedWeightBytes: null,
    note: "no official AWQ checkpoint: spec.model.name must name one",
  },
  gptq: {
    quantization: "gptq",
    bytesPerWeight: 0.515625,
    officialCheckpoint: null,
    publishedWeightBytes: null,
    note: "no official GPTQ checkpoint: spec.model.name must name one",
  },
};

/** Quantizations with no official checkpoint: model.name must name a repository. */
export const QUANTIZATIONS_WITHOUT_CHECKPOINT: readonly Quantization[] = QUANTIZATIONS.filter(
  (q) => MODEL_VARIANTS[q].officialCheckpoint === null,
);

/** Weights vLLM loads: the published size of an official checkpoint, else the format arithmetic. */
export function weightBytesTotal(q: Quantization): number {
  const v = MODEL_VARIANTS[q];
  return (
    v.publishedWeightBytes ??
    Math.round(MODEL.quantizedParams * v.bytesPerWeight + MODEL.bf16Params * 2)
  );
}

/** The official EAGLE draft (mistralai/Mistral-Small-4-119B-2603-eagle). */
export const EAGLE_DRAFT_MODEL = {
  repo: "mistralai/Mistral-Small-4-119B-2603-eagle",
  /** "a 2-layer Mistral-style draft" (vllm-project/recipes 223c6c08); MLA, like the target. */
  layers: 2,
  /**
   * UNVERIFIED estimate: the published size was not read. Two decoder layers of the
   * target's shape at one byte per weight (117.9e9 / 36 x 2), embeddings shared.
   */
  weightBytes: Math.round((117.9e9 / 36) * 2),
} as const;

export function draftWeightBytes(): number {
  return EAGLE_DRAFT_MODEL.weightBytes;
}

/**
 * KV bytes per token of context as vLLM stores MLA (latent + rope key per layer), replicated
 * on every TP rank; with an EAGLE draft its layers keep a cache of the same shape.
 */
export function kvBytesPerToken(withDraft = false): number {
  const layers = MODEL.layers + (withDraft ? EAGLE_DRAFT_MODEL.layers : 0);
  return layers * (MODEL.kvLoraRank + MODEL.qkRopeHeadDim) * MODEL.kvDtypeBytes;
}
