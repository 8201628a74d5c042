/**
 * The vLLM releases this operator knows, as data read from vLLM's source at each release
 * (the commit is named in every fixture and in `evidence`). The planner and the renderer
 * read vLLM facts from here only. To add a release: regenerate its flag fixture with
 * scripts/gen-vllm-flags.py from a vLLM checkout at the tag, and add an entry below.
 */
import type { KnownBug, MlaBackend, MoeRule, Release } from "./types.ts";
import flags020 from "./fixtures/vllm-0.20.json" with { type: "json" };
import flags024 from "./fixtures/vllm-0.24.0.json" with { type: "json" };

/** The oldest release that serves Mistral Small 4 (recipe `min_vllm_version`). */
export const MIN_VERSION = "0.20.0";

/**
 * What each CUDA build asks of the node's driver. Not read from a source here: NVIDIA's
 * CUDA release notes (13.0 needs the R580 driver branch, 12.9 the R575 branch).
 */
export const DRIVER_REQUIREMENT = {
  "13.0":
    'needs an NVIDIA driver of the R580 branch or newer on the nodes (CUDA 13.0); set engine.cudaVersion: "12.9" for older drivers',
  "12.9": "needs an NVIDIA driver of the R575 branch or newer on the nodes (CUDA 12.9)",
} as const;

/** Where V24 facts were read: the v0.24.0 tag (its tree, via the neuralmagic/vllm mirror). */
const V24 = "vllm-project/vllm@ee0da84ab9e0 (v0.24.0)";
/** Where V20 facts were read: upstream main standing in for the v0.20 tags (see the audit). */
const V20 = "vllm-project/vllm main@12a3f6454b97 (for v0.20.x)";

/**
 * MLA backends below Blackwell. vLLM tries them in `mlaOrder` and takes the first whose
 * validation passes (compute capability, KV dtype, head sizes [320, 576]); kernel limits
 * narrower than that validation are `kernelHeadSizes`.
 */
function mlaBackends(
  at: string,
  lines: Readonly<Record<MlaBackend, string>>,
): Release["mlaBackends"] {
  return {
    FLASH_ATTN_MLA: {
      ccMajors: [9],
      fp8Kv: false,
      kernelHeadSizes: null,
      evidence: `${at} flashattn_mla.py ${lines.FLASH_ATTN_MLA}: capability major 9 only, KV auto/float16/bfloat16`,
    },
    FLASHMLA: {
      ccMajors: [9, 10],
      fp8Kv: true,
      kernelHeadSizes: [576],
      evidence: `${at} flashmla.py ${lines.FLASHMLA}; its dense decode kernels check head_size_k == 576 (deepseek-ai/FlashMLA 9241ae3e csrc/api/dense_decode.h L60-61; vllm-project/FlashMLA 46d64a8e; the FlashMLA commit the release pins was not read)`,
    },
    FLASHINFER_MLA: {
      ccMajors: [10],
      fp8Kv: true,
      kernelHeadSizes: null,
      evidence: `${at} flashinfer_mla.py ${lines.FLASHINFER_MLA}: capability major 10 only`,
    },
    CUTLASS_MLA: {
      ccMajors: [10],
      fp8Kv: true,
      kernelHeadSizes: null,
      evidence: `${at} cutlass_mla.py ${lines.CUTLASS_MLA}: capability major 10 only`,
    },
    TRITON_MLA: {
      ccMajors: [7, 8, 9, 10, 11, 12],
      fp8Kv: true,
      kernelHeadSizes: null,
      evidence: `${at} triton_mla.py ${lines.TRITON_MLA}: any compute capability and head size; KV auto/float16/bfloat16/fp8`,
    },
  };
}

/** vllm/platforms/cuda.py's MLA priority on compute capability 8.x and 9.x. */
const MLA_ORDER_SM8_SM9: readonly MlaBackend[] = [
  "FLASH_ATTN_MLA",
  "FLASHMLA",
  "FLASHINFER_MLA",
  "TRITON_MLA",
];

/** The backend fused-MoE layers run, per quantization and GPU. We pass no --moe-backend. */
function moeRules(at: string, oracle: { fp8: string; nvfp4: string; wna16: string }): MoeRule[] {
  const rule = (
    quantizations: MoeRule["quantizations"],
    minCc: number,
    maxCc: number,
    runs: string,
    why: string,
    evidence: string,
  ): MoeRule => ({
    quantizations,
    minCc,
    maxCc,
    runs,
    flag: null,
    why,
    evidence: `${at} ${evidence}`,
  });
  return [
    rule(
      ["fp8"],
      8.0,
      8.8,
      "MARLIN",
      "Triton FP8 MoE needs SM 8.9 and FlashInfer CUTLASS SM 9.0, so vLLM runs FP8 weights as W8A16 Marlin",
      oracle.fp8,
    ),
    rule(
      ["fp8"],
      8.9,
      8.9,
      "TRITON",
      "FlashInfer CUTLASS excludes SM 8.9; Triton takes FP8 from SM 8.9",
      oracle.fp8,
    ),
    rule(
      ["fp8"],
      9.0,
      9.9,
      "FLASHINFER_CUTLASS",
      "the first backend taking static per-tensor FP8 on SM 9.0; it JIT-compiles with nvcc, which the official image carries",
      oracle.fp8,
    ),
    rule(
      ["nvfp4"],
      8.0,
      9.9,
      "MARLIN",
      "no FP4 tensor cores below Blackwell: Marlin FP4 (W4A16), not measured for this model",
      oracle.nvfp4,
    ),
    rule(
      ["awq", "gptq"],
      8.0,
      9.9,
      "MARLIN",
      "WNA16 MoE ignores --moe-backend and always runs Marlin",
      oracle.wna16,
    ),
  ];
}

/** The official images of a release: CUDA 13.0 by default, and the -cu129 build. */
function officialImages(version: string): Release["images"] {
  return { "13.0": `vllm/vllm-openai:v${version}`, "12.9": `vllm/vllm-openai:v${version}-cu129` };
}

/**
 * What the releases below share: torch 2.11 (requirements/cuda.txt), the MLA priority, and an
 * FP8 KV cache below SM 8.9 accepted by vLLM but failing at run time (the explicit refusal,
 * PR #47060, landed after the v0.24 branch).
 */
const SHARED = {
  torch: "2.11.0",
  mlaOrder: { "8": MLA_ORDER_SM8_SM9, "9": MLA_ORDER_SM8_SM9 },
  fp8KvMinCc: 8.9,
  fp8KvBelowMin: "fails-at-run-time",
} as const;

export const V0_20: Release = {
  ...SHARED,
  versions: ["0.20.0", "0.20.1"],
  version: "0.20.1",
  flags: flags020,
  images: officialImages("0.20.1"),
  mlaBackends: mlaBackends(V20, {
    FLASH_ATTN_MLA: "L44-49, L72",
    FLASHMLA: "L48-96",
    FLASHINFER_MLA: "",
    CUTLASS_MLA: "",
    TRITON_MLA: "L32-38, L66-67",
  }),
  moe: moeRules(V20, {
    fp8: "fused_moe/fused_moe.py L1915-1936, oracle/fp8.py L212-420 (FlashInfer on SM 9.0 not derived: audit row 28)",
    nvfp4: "fused_moe/oracle/nvfp4.py L132-146",
    wna16: "fused_moe/oracle/int_wna16.py L73-140",
  }).filter((r) => r.runs !== "FLASHINFER_CUTLASS" && r.runs !== "TRITON"),
  imageHasNvcc: false,
  speculative: {
    eagle: false,
    evidence:
      "EAGLE for this model was not checked at v0.20 (the audit does not cover it): refused rather than guessed",
  },
  evidence: `${V20} through local-inference-lab/vllm (../shared/research/vllm-audit.md)`,
};

export const V0_24: Release = {
  ...SHARED,
  versions: ["0.24.0"],
  version: "0.24.0",
  flags: flags024,
  images: officialImages("0.24.0"),
  mlaBackends: mlaBackends(V24, {
    FLASH_ATTN_MLA: "L45-49, L80-81",
    FLASHMLA: "L49-55, L82-83",
    FLASHINFER_MLA: "L40-46, L73-74",
    CUTLASS_MLA: "L40-46, L73-74",
    TRITON_MLA: "L38-48, L85-86",
  }),
  moe: moeRules(V24, {
    fp8: "fused_moe/oracle/fp8.py L75-88, L223-240; experts/flashinfer_cutlass_moe.py L132-175; experts/triton_moe.py L99-120",
    nvfp4: "fused_moe/oracle/nvfp4.py L132-148",
    wna16: "fused_moe/oracle/int_wna16.py L90-140",
  }),
  imageHasNvcc: true,
  speculative: {
    eagle: true,
    evidence: `${V24} vllm/config/speculative.py L511-512 maps MistralLarge3ForCausalLM to EagleMistralLarge3ForCausalLM`,
  },
  evidence: `${V24}; docker/Dockerfile L684-706 installs cuda-nvcc in the runtime stage`,
};

/** Oldest first. */
export const RELEASES: readonly Release[] = [V0_20, V0_24];
/** The release the default image runs. */
export const NEWEST: Release = V0_24;

export const KNOWN_BUGS: readonly KnownBug[] = [
  {
    id: "vllm#45031",
    link: "https://github.com/vllm-project/vllm/issues/45031",
    summary: "crashes decoding Mistral Small 4",
    detail:
      "TRITON_MLA's grouped decode kernel pads the 320-wide head to 512 against a 256-wide value: 'Cannot make_shape_compatible: 256 and 512' kills the engine on the first decode; fixed on main by PR #41119",
    // Introduced by PR #33529 (2026-04-02), before the 0.20 branch; older releases are
    // refused anyway (MIN_VERSION).
    introducedIn: "0.20.0",
    fixedIn: "0.22.0",
    mlaBackends: ["TRITON_MLA"],
  },
];
