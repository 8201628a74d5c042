/**
 * The vocabulary of the engine contract: what the operator knows about one vLLM release,
 * as data. Every fact names where it was read (`evidence`), so a reviewer can check it.
 */
import type { Quantization } from "../catalog/model.ts";
import type { FlagFixture } from "./fixture.ts";

export const CUDA_VERSIONS = ["13.0", "12.9"] as const;
export type CudaVersion = (typeof CUDA_VERSIONS)[number];

export const MLA_BACKENDS = [
  "FLASH_ATTN_MLA",
  "FLASHMLA",
  "FLASHINFER_MLA",
  "CUTLASS_MLA",
  "TRITON_MLA",
] as const;
export type MlaBackend = (typeof MLA_BACKENDS)[number];

/** vLLM's `--kv-cache-dtype` values this operator plans for. */
export type KvDtype = "auto" | "fp8";

export interface AttentionBackendFacts {
  /** Compute-capability majors the backend's `supports_compute_capability` accepts. */
  readonly ccMajors: readonly number[];
  /** Whether its validation accepts an FP8 KV cache. */
  readonly fp8Kv: boolean;
  /**
   * Head sizes (latent + rope) its kernels really run; null when every size vLLM
   * validates for MLA runs. vLLM's own validation may be wider than this.
   */
  readonly kernelHeadSizes: readonly number[] | null;
  readonly evidence: string;
}

/** Which fused-MoE backend runs a quantization on a range of GPUs, and what we pass for it. */
export interface MoeRule {
  readonly quantizations: readonly Quantization[];
  /** Inclusive compute-capability range. */
  readonly minCc: number;
  readonly maxCc: number;
  /** The backend vLLM ends up running. */
  readonly runs: string;
  /** `--moe-backend` value the operator passes; null when vLLM's own choice is right. */
  readonly flag: string | null;
  readonly why: string;
  readonly evidence: string;
}

export interface Release {
  /** Every version this contract describes (patch releases cut from one branch). */
  readonly versions: readonly string[];
  /** The release whose tag the default image uses. */
  readonly version: string;
  readonly flags: FlagFixture;
  /** Image tags per CUDA build; the default image is the CUDA 13.0 one. */
  readonly images: Readonly<Record<CudaVersion, string>>;
  readonly torch: string;
  /** Order in which vLLM's CUDA platform tries MLA backends, per compute-capability major. */
  readonly mlaOrder: Readonly<Record<string, readonly MlaBackend[]>>;
  readonly mlaBackends: Readonly<Record<MlaBackend, AttentionBackendFacts>>;
  /** Below this compute capability an FP8 KV cache cannot run (Triton fp8e4nv). */
  readonly fp8KvMinCc: number;
  /** How vLLM treats an FP8 KV cache below that: refused at start, or accepted and failing later. */
  readonly fp8KvBelowMin: "refused" | "fails-at-run-time";
  readonly moe: readonly MoeRule[];
  /** Whether the official image carries nvcc (JIT-compiled kernels need it). */
  readonly imageHasNvcc: boolean;
  readonly speculative: {
    /** EAGLE drafting for this model, and the flag that carries it. */
    readonly eagle: boolean;
    readonly evidence: string;
  };
  readonly evidence: string;
}

/** A combination that a release cannot run, found in vLLM's source or bug tracker. */
export interface KnownBug {
  readonly id: string;
  readonly link: string;
  /** What happens, short: "crashes decoding Mistral Small 4". */
  readonly summary: string;
  /** The mechanism and the fix, for the curious. */
  readonly detail: string;
  /** First and first-fixed versions; the bug applies to versions in [introducedIn, fixedIn). */
  readonly introducedIn: string;
  readonly fixedIn: string;
  /** The bug bites when the chosen MLA backend is one of these. */
  readonly mlaBackends?: readonly MlaBackend[];
  readonly quantizations?: readonly Quantization[];
}
