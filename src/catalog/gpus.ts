/**
 * GPU types the planner knows, as data. Memory is the device total vLLM's
 * `--gpu-memory-utilization` is applied to, as nvidia-smi reports it (MiB), not the
 * marketing size. Labels are what the usual node
 * sources put on a node carrying this GPU, so pods can be steered to it.
 */

export const GPU_TYPES = [
  "a100-40gb",
  "a100-80gb",
  "h100-80gb",
  "h200-141gb",
  "l40s-48gb",
] as const;
export type GpuType = (typeof GPU_TYPES)[number];

/** GPUs one replica may span: tensor parallelism within one node of at most 8 GPUs. */
export const TP_CHOICES = [1, 2, 4, 8] as const;
export type TensorParallelSize = (typeof TP_CHOICES)[number];

export interface GpuSpec {
  readonly type: GpuType;
  readonly displayName: string;
  /** Device total in MiB as nvidia-smi (and torch.cuda.mem_get_info) report it. */
  readonly memoryMiB: number;
  /** CUDA compute capability as a number: 8.0, 8.9, 9.0. */
  readonly computeCapability: number;
  readonly fp8TensorCores: boolean;
  readonly fp4TensorCores: boolean;
  readonly memoryBandwidthGBps: number;
  readonly nvlink: boolean;
  /** Values of `nvidia.com/gpu.product` set by GPU feature discovery (old and new spellings). */
  readonly productLabels: readonly string[];
  /** Values of `cloud.google.com/gke-accelerator` on GKE. */
  readonly gkeAccelerators: readonly string[];
  /** Karpenter on AWS: `karpenter.k8s.aws/instance-gpu-name` and `instance-gpu-memory` (MiB). */
  readonly karpenterAws: { readonly gpuName: string; readonly gpuMemoryMiB: number };
  /** Instance types that carry this GPU, for documentation and defaults. */
  readonly instanceTypes: readonly string[];
  /** Engine defaults where the research gives a per-architecture answer. */
  readonly defaults: { readonly maxNumSeqs: number; readonly maxNumBatchedTokens: number };
}

const A100_DEFAULTS = { maxNumSeqs: 64, maxNumBatchedTokens: 8192 } as const;
const HOPPER_DEFAULTS = { maxNumSeqs: 128, maxNumBatchedTokens: 16384 } as const;

/** What every GPU of one architecture (as this catalog sells it) has in common. */
type Architecture = Pick<
  GpuSpec,
  "computeCapability" | "fp8TensorCores" | "fp4TensorCores" | "nvlink" | "defaults"
>;
const AMPERE_SXM: Architecture = {
  computeCapability: 8.0,
  fp8TensorCores: false,
  fp4TensorCores: false,
  nvlink: true,
  defaults: A100_DEFAULTS,
};
const HOPPER_SXM: Architecture = {
  computeCapability: 9.0,
  fp8TensorCores: true,
  fp4TensorCores: false,
  nvlink: true,
  defaults: HOPPER_DEFAULTS,
};
/** Ada Lovelace PCIe cards: FP8 tensor cores, no NVLink, A100-like engine defaults. */
const ADA_PCIE: Architecture = {
  computeCapability: 8.9,
  fp8TensorCores: true,
  fp4TensorCores: false,
  nvlink: false,
  defaults: A100_DEFAULTS,
};

/** One catalog entry: its architecture's facts and its own, in GpuSpec's field order. */
function gpu(
  type: GpuType,
  arch: Architecture,
  own: Omit<GpuSpec, "type" | keyof Architecture>,
): GpuSpec {
  return {
    type,
    displayName: own.displayName,
    memoryMiB: own.memoryMiB,
    computeCapability: arch.computeCapability,
    fp8TensorCores: arch.fp8TensorCores,
    fp4TensorCores: arch.fp4TensorCores,
    memoryBandwidthGBps: own.memoryBandwidthGBps,
    nvlink: arch.nvlink,
    productLabels: own.productLabels,
    gkeAccelerators: own.gkeAccelerators,
    karpenterAws: own.karpenterAws,
    instanceTypes: own.instanceTypes,
    defaults: arch.defaults,
  };
}

export const GPU_CATALOG: Readonly<Record<GpuType, GpuSpec>> = {
  "a100-40gb": gpu("a100-40gb", AMPERE_SXM, {
    displayName: "A100-40GB",
    // nvidia-smi shows 40536 MiB (40960 on some drivers): plan with the lower.
    memoryMiB: 40536,
    memoryBandwidthGBps: 1555,
    productLabels: [
      "NVIDIA-A100-SXM4-40GB",
      "NVIDIA-A100-PCIE-40GB",
      "A100-SXM4-40GB",
      "A100-PCIE-40GB",
    ],
    gkeAccelerators: ["nvidia-tesla-a100"],
    karpenterAws: { gpuName: "a100", gpuMemoryMiB: 40960 },
    instanceTypes: ["p4d.24xlarge", "a2-highgpu-8g", "Standard_ND96asr_v4"],
  }),
  "a100-80gb": gpu("a100-80gb", AMPERE_SXM, {
    displayName: "A100-80GB",
    // nvidia-smi on A100-SXM4-80GB and A100 80GB PCIe: 81920 MiB.
    memoryMiB: 81920,
    memoryBandwidthGBps: 2039,
    productLabels: [
      "NVIDIA-A100-SXM4-80GB",
      "NVIDIA-A100-80GB-PCIe",
      "A100-SXM4-80GB",
      "A100-80GB-PCIe",
    ],
    gkeAccelerators: ["nvidia-a100-80gb"],
    karpenterAws: { gpuName: "a100", gpuMemoryMiB: 81920 },
    instanceTypes: ["p4de.24xlarge", "a2-ultragpu-8g", "Standard_ND96amsr_A100_v4"],
  }),
  "h100-80gb": gpu("h100-80gb", HOPPER_SXM, {
    displayName: "H100-80GB",
    // nvidia-smi on H100 SXM (700 W): 81559 MiB (audit row 75).
    memoryMiB: 81559,
    memoryBandwidthGBps: 3350,
    productLabels: ["NVIDIA-H100-80GB-HBM3", "H100-80GB-HBM3"],
    gkeAccelerators: ["nvidia-h100-80gb"],
    karpenterAws: { gpuName: "h100", gpuMemoryMiB: 81920 },
    instanceTypes: ["p5.48xlarge", "a3-highgpu-8g"],
  }),
  "h200-141gb": gpu("h200-141gb", HOPPER_SXM, {
    displayName: "H200-141GB",
    // nvidia-smi on H200: 143771 MiB (audit row 74).
    memoryMiB: 143771,
    memoryBandwidthGBps: 4800,
    productLabels: ["NVIDIA-H200", "NVIDIA-H200-141GB-HBM3e"],
    gkeAccelerators: ["nvidia-h200-141gb"],
    karpenterAws: { gpuName: "h200", gpuMemoryMiB: 144384 },
    instanceTypes: ["p5e.48xlarge", "p5en.48xlarge", "a3-ultragpu-8g"],
  }),
  "l40s-48gb": gpu("l40s-48gb", ADA_PCIE, {
    displayName: "L40S-48GB",
    // nvidia-smi on L40S: 46068 MiB (audit row 73).
    memoryMiB: 46068,
    memoryBandwidthGBps: 864,
    productLabels: ["NVIDIA-L40S", "L40S"],
    gkeAccelerators: ["nvidia-l40s"],
    karpenterAws: { gpuName: "l40s", gpuMemoryMiB: 46068 },
    instanceTypes: ["g6e.48xlarge"],
  }),
};
