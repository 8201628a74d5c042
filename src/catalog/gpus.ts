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

export const GPU_CATALOG: Readonly<Record<GpuType, GpuSpec>> = {
  "a100-40gb": {
    type: "a100-40gb",
    displayName: "A100-40GB",
    // nvidia-smi shows 40536 MiB (40960 on some drivers): plan with the lower.
    memoryMiB: 40536,
    computeCapability: 8.0,
    fp8TensorCores: false,
    fp4TensorCores: false,
    memoryBandwidthGBps: 1555,
    nvlink: true,
    productLabels: [
      "NVIDIA-A100-SXM4-40GB",
      "NVIDIA-A100-PCIE-40GB",
      "A100-SXM4-40GB",
      "A100-PCIE-40GB",
    ],
    gkeAccelerators: ["nvidia-tesla-a100"],
    karpenterAws: { gpuName: "a100", gpuMemoryMiB: 40960 },
    instanceTypes: ["p4d.24xlarge", "a2-highgpu-8g", "Standard_ND96asr_v4"],
    defaults: A100_DEFAULTS,
  },
  "a100-80gb": {
    type: "a100-80gb",
    displayName: "A100-80GB",
    // nvidia-smi on A100-SXM4-80GB and A100 80GB PCIe: 81920 MiB.
    memoryMiB: 81920,
    computeCapability: 8.0,
    fp8TensorCores: false,
    fp4TensorCores: false,
    memoryBandwidthGBps: 2039,
    nvlink: true,
    productLabels: [
      "NVIDIA-A100-SXM4-80GB",
      "NVIDIA-A100-80GB-PCIe",
      "A100-SXM4-80GB",
      "A100-80GB-PCIe",
    ],
    gkeAccelerators: ["nvidia-a100-80gb"],
    karpenterAws: { gpuName: "a100", gpuMemoryMiB: 81920 },
    instanceTypes: ["p4de.24xlarge", "a2-ultragpu-8g", "Standard_ND96amsr_A100_v4"],
    defaults: A100_DEFAULTS,
  },
  "h100-80gb": {
    type: "h100-80gb",
    displayName: "H100-80GB",
    // nvidia-smi on H100 SXM (700 W): 81559 MiB (audit row 75).
    memoryMiB: 81559,
    computeCapability: 9.0,
    fp8TensorCores: true,
    fp4TensorCores: false,
    memoryBandwidthGBps: 3350,
    nvlink: true,
    productLabels: ["NVIDIA-H100-80GB-HBM3", "H100-80GB-HBM3"],
    gkeAccelerators: ["nvidia-h100-80gb"],
    karpenterAws: { gpuName: "h100", gpuMemoryMiB: 81920 },
    instanceTypes: ["p5.48xlarge", "a3-highgpu-8g"],
    defaults: HOPPER_DEFAULTS,
  },
  "h200-141gb": {
    type: "h200-141gb",
    displayName: "H200-141GB",
    // nvidia-smi on H200: 143771 MiB (audit row 74).
    memoryMiB: 143771,
    computeCapability: 9.0,
    fp8TensorCores: true,
    fp4TensorCores: false,
    memoryBandwidthGBps: 4800,
    nvlink: true,
    productLabels: ["NVIDIA-H200", "NVIDIA-H200-141GB-HBM3e"],
    gkeAccelerators: ["nvidia-h200-141gb"],
    karpenterAws: { gpuName: "h200", gpuMemoryMiB: 144384 },
    instanceTypes: ["p5e.48xlarge", "p5en.48xlarge", "a3-ultragpu-8g"],
    defaults: HOPPER_DEFAULTS,
  },
  "l40s-48gb": {
    type: "l40s-48gb",
    displayName: "L40S-48GB",
    // nvidia-smi on L40S: 46068 MiB (audit row 73).
    memoryMiB: 46068,
    computeCapability: 8.9,
    fp8TensorCores: true,
    fp4TensorCores: false,
    memoryBandwidthGBps: 864,
    nvlink: false,
    productLabels: ["NVIDIA-L40S", "L40S"],
    gkeAccelerators: ["nvidia-l40s"],
    karpenterAws: { gpuName: "l40s", gpuMemoryMiB: 46068 },
    instanceTypes: ["g6e.48xlarge"],
    defaults: A100_DEFAULTS,
  },
};
