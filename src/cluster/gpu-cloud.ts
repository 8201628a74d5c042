/**
 * The fake GPU cloud Karpenter's KWOK provider launches nodes from: its instance-types file
 * (`INSTANCE_TYPES_FILE_PATH`), generated from the GPU catalog so that the labels a node gets
 * are exactly the ones our NodePool requirements and pod affinity select on.
 *
 * Shapes are real ones (AWS, GCP and Azure names, vCPUs, memory and GPU counts as sold),
 * including the 1/2/4-GPU sizes where a cloud sells them. Every instance type the catalog names
 * must have a shape here, or generation fails: the fake cloud cannot silently fall behind it.
 * All shapes carry Karpenter-on-AWS labels (`karpenter.k8s.aws/instance-gpu-*`) because those
 * are what `renderNodePool` and `gpuAffinity` select on; `nvidia.com/gpu.product` is left out on
 * purpose, as on AWS, where GPU feature discovery adds it only once the node runs.
 * Prices are approximate on-demand list prices in USD per hour, spot at 40 %: they only have to
 * rank shapes the way a real cloud does, since Karpenter launches the cheapest that fits.
 */
import { GPU_CATALOG, GPU_TYPES, type GpuType } from "../catalog/gpus.ts";

export interface GpuShape {
  readonly name: string;
  readonly gpuType: GpuType;
  readonly gpus: 1 | 2 | 4 | 8;
  readonly vcpus: number;
  readonly memoryGiB: number;
  readonly onDemandUsdPerHour: number;
}

/** Real shapes per GPU type; the catalog's `instanceTypes` must all appear. */
export const GPU_SHAPES: readonly GpuShape[] = [
  // A100-40GB: AWS sells only 8; GCP a2-highgpu 1/2/4/8; Azure ND96asr_v4.
  shape("p4d.24xlarge", "a100-40gb", 8, 96, 1152, 32.77),
  shape("a2-highgpu-1g", "a100-40gb", 1, 12, 85, 3.67),
  shape("a2-highgpu-2g", "a100-40gb", 2, 24, 170, 7.35),
  shape("a2-highgpu-4g", "a100-40gb", 4, 48, 340, 14.69),
  shape("a2-highgpu-8g", "a100-40gb", 8, 96, 680, 29.39),
  shape("Standard_ND96asr_v4", "a100-40gb", 8, 96, 900, 27.2),
  // A100-80GB: AWS p4de (8); GCP a2-ultragpu 1/2/4/8; Azure NC A100 v4 1/2/4 and ND 8.
  shape("p4de.24xlarge", "a100-80gb", 8, 96, 1152, 40.97),
  shape("a2-ultragpu-1g", "a100-80gb", 1, 12, 170, 5.07),
  shape("a2-ultragpu-2g", "a100-80gb", 2, 24, 340, 10.14),
  shape("a2-ultragpu-4g", "a100-80gb", 4, 48, 680, 20.28),
  shape("a2-ultragpu-8g", "a100-80gb", 8, 96, 1360, 40.55),
  shape("Standard_NC24ads_A100_v4", "a100-80gb", 1, 24, 220, 3.67),
  shape("Standard_NC48ads_A100_v4", "a100-80gb", 2, 48, 440, 7.35),
  shape("Standard_NC96ads_A100_v4", "a100-80gb", 4, 96, 880, 14.69),
  shape("Standard_ND96amsr_A100_v4", "a100-80gb", 8, 96, 1900, 32.77),
  // H100: AWS p5.4xlarge (1) and p5.48xlarge (8); GCP a3-highgpu 1/2/4/8.
  shape("p5.4xlarge", "h100-80gb", 1, 16, 256, 6.88),
  shape("p5.48xlarge", "h100-80gb", 8, 192, 2048, 55.04),
  shape("a3-highgpu-1g", "h100-80gb", 1, 26, 234, 11.06),
  shape("a3-highgpu-2g", "h100-80gb", 2, 52, 468, 22.12),
  shape("a3-highgpu-4g", "h100-80gb", 4, 104, 936, 44.25),
  shape("a3-highgpu-8g", "h100-80gb", 8, 208, 1872, 88.49),
  // H200: sold as 8-GPU machines only.
  shape("p5e.48xlarge", "h200-141gb", 8, 192, 2048, 63.3),
  shape("p5en.48xlarge", "h200-141gb", 8, 192, 2048, 66.0),
  shape("a3-ultragpu-8g", "h200-141gb", 8, 224, 2952, 84.81),
  // L40S: AWS g6e 1/4/8 (no 2-GPU size).
  shape("g6e.2xlarge", "l40s-48gb", 1, 8, 64, 2.24),
  shape("g6e.12xlarge", "l40s-48gb", 4, 48, 384, 10.49),
  shape("g6e.48xlarge", "l40s-48gb", 8, 192, 1536, 30.13),
];

function shape(
  name: string,
  gpuType: GpuType,
  gpus: GpuShape["gpus"],
  vcpus: number,
  memoryGiB: number,
  onDemandUsdPerHour: number,
): GpuShape {
  return { name, gpuType, gpus, vcpus, memoryGiB, onDemandUsdPerHour };
}

export const ZONES = ["fake-zone-a", "fake-zone-b", "fake-zone-c"] as const;
/** Spot is offered in the first two zones only, so a spot-only pool has fewer places to go. */
const SPOT_ZONES = ZONES.slice(0, 2);
const SPOT_DISCOUNT = 0.4;

/** One entry of the KWOK provider's instance-types file (kwok/cloudprovider/helpers.go). */
export interface KwokInstanceType {
  name: string;
  architecture: "amd64";
  operatingSystems: ["linux"];
  resources: Record<string, string>;
  offerings: {
    Price: number;
    Available: boolean;
    Requirements: { key: string; operator: "In"; values: [string] }[];
  }[];
}

export class GpuCloudError extends Error {
  override name = "GpuCloudError";
}

/** The labels a node of this shape carries, as Karpenter on AWS sets them. */
export function shapeLabels(s: GpuShape): Record<string, string> {
  const gpu = GPU_CATALOG[s.gpuType];
  return {
    "karpenter.k8s.aws/instance-gpu-name": gpu.karpenterAws.gpuName,
    "karpenter.k8s.aws/instance-gpu-memory": String(gpu.karpenterAws.gpuMemoryMiB),
    "karpenter.k8s.aws/instance-gpu-count": String(s.gpus),
    "karpenter.k8s.aws/instance-gpu-manufacturer": "nvidia",
  };
}

/**
 * Karpenter's KWOK provider turns only offering requirements into well-known labels and node
 * labels (newInstanceType, addInstanceLabels), so the GPU labels ride on every offering.
 */
function offerings(s: GpuShape): KwokInstanceType["offerings"] {
  const labels = Object.entries(shapeLabels(s)).map(([key, v]) => req(key, v));
  const offer = (capacityType: "on-demand" | "spot", zone: string, price: number) => ({
    Price: Math.round(price * 10_000) / 10_000,
    Available: true,
    Requirements: [
      req("karpenter.sh/capacity-type", capacityType),
      req("topology.kubernetes.io/zone", zone),
      ...labels,
    ],
  });
  return [
    ...ZONES.map((z) => offer("on-demand", z, s.onDemandUsdPerHour)),
    ...SPOT_ZONES.map((z) => offer("spot", z, s.onDemandUsdPerHour * SPOT_DISCOUNT)),
  ];
}

function req(key: string, value: string) {
  return { key, operator: "In" as const, values: [value] as [string] };
}

export function kwokInstanceType(s: GpuShape): KwokInstanceType {
  return {
    name: s.name,
    architecture: "amd64",
    operatingSystems: ["linux"],
    resources: {
      cpu: String(s.vcpus),
      memory: `${s.memoryGiB}Gi`,
      pods: "110",
      "ephemeral-storage": "2Ti",
      "nvidia.com/gpu": String(s.gpus),
    },
    offerings: offerings(s),
  };
}

/** Every catalog GPU type and every instance type it names must have a shape. */
export function checkCoverage(shapes: readonly GpuShape[] = GPU_SHAPES): void {
  const names = new Set(shapes.map((s) => s.name));
  const missing = GPU_TYPES.flatMap((t) =>
    GPU_CATALOG[t].instanceTypes.filter((n) => !names.has(n)),
  );
  const uncovered = GPU_TYPES.filter((t) => !shapes.some((s) => s.gpuType === t));
  if (missing.length > 0 || uncovered.length > 0) {
    throw new GpuCloudError(
      `the fake GPU cloud (src/cluster/gpu-cloud.ts) has no shape for ${[
        ...uncovered.map((t) => `GPU type ${t}`),
        ...missing.map((n) => `instance type ${n}`),
      ].join(", ")}; add it to GPU_SHAPES`,
    );
  }
}

/** The instance-types file content, checked against the catalog. */
export function gpuCloudInstanceTypes(
  shapes: readonly GpuShape[] = GPU_SHAPES,
): KwokInstanceType[] {
  checkCoverage(shapes);
  return shapes.map(kwokInstanceType);
}

export function shapeNamed(name: string): GpuShape | undefined {
  return GPU_SHAPES.find((s) => s.name === name);
}
