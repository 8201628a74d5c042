/** Where vLLM pods may run: GPU taint tolerations and affinity on GPU product labels. */
import type { V1Affinity, V1Toleration } from "@kubernetes/client-node";
import type { MistralSmallDeployment } from "../api/schema.ts";
import { GPU_CATALOG, type GpuSpec } from "../catalog/gpus.ts";
import { nodePoolName } from "./names.ts";

export const GPU_RESOURCE = "nvidia.com/gpu";
export const GPU_TAINT_KEY = "nvidia.com/gpu";

export function gpuTolerations(msd: MistralSmallDeployment): V1Toleration[] {
  const base: V1Toleration[] = [{ key: GPU_TAINT_KEY, operator: "Exists", effect: "NoSchedule" }];
  const extra = [
    ...(msd.spec.nodePool.static?.tolerations ?? []),
    ...(msd.spec.pod.tolerations ?? []),
  ];
  return [...base, ...extra.map((t) => ({ ...t }))];
}

/**
 * Nodes carrying the GPU type, whichever source labelled them: GPU feature
 * discovery, GKE, or Karpenter on AWS. Terms are ORed by the scheduler.
 */
export function gpuAffinity(msd: MistralSmallDeployment): V1Affinity {
  const gpu = GPU_CATALOG[msd.spec.gpu.type];
  return {
    nodeAffinity: {
      requiredDuringSchedulingIgnoredDuringExecution: {
        nodeSelectorTerms: [
          {
            matchExpressions: [
              { key: "nvidia.com/gpu.product", operator: "In", values: [...gpu.productLabels] },
            ],
          },
          {
            matchExpressions: [
              {
                key: "cloud.google.com/gke-accelerator",
                operator: "In",
                values: [...gpu.gkeAccelerators],
              },
            ],
          },
          {
            matchExpressions: karpenterAwsGpuRequirements(gpu),
          },
        ],
      },
    },
  };
}

/** Karpenter's AWS instance labels for a GPU type: the same in pod affinity and NodePool. */
export function karpenterAwsGpuRequirements(gpu: GpuSpec) {
  return [
    {
      key: "karpenter.k8s.aws/instance-gpu-name",
      operator: "In",
      values: [gpu.karpenterAws.gpuName],
    },
    {
      key: "karpenter.k8s.aws/instance-gpu-memory",
      operator: "In",
      values: [String(gpu.karpenterAws.gpuMemoryMiB)],
    },
  ];
}

export function nodeSelector(msd: MistralSmallDeployment): Record<string, string> {
  const extra = msd.spec.pod.nodeSelector ?? {};
  if (msd.spec.nodePool.provider === "karpenter") {
    return { ...extra, "karpenter.sh/nodepool": nodePoolName(msd) };
  }
  return { ...(msd.spec.nodePool.static?.nodeSelector ?? {}), ...extra };
}
