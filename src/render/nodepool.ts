/**
 * The Karpenter karpenter.sh/v1 NodePool: nodes with the right GPU, tainted so
 * only GPU pods land there, capped at what the deployment can ever use.
 */
import type { MistralSmallDeployment } from "../api/schema.ts";
import { GPU_CATALOG } from "../catalog/gpus.ts";
import type { Plan } from "../planner/plan.ts";
import {
  OPERATOR_NAME,
  OWNER_NAMESPACE_LABEL,
  OWNER_NAME_LABEL,
  OWNER_UID_LABEL,
  nodePoolName,
} from "./names.ts";
import { GPU_RESOURCE, GPU_TAINT_KEY, karpenterAwsGpuRequirements } from "./scheduling.ts";

export interface NodePool {
  apiVersion: "karpenter.sh/v1";
  kind: "NodePool";
  metadata: { name: string; labels: Record<string, string> };
  spec: Record<string, unknown>;
}

/** Most replicas this resource can ask for, hence the GPU cap of its node pool. */
export function maxReplicasOf(msd: MistralSmallDeployment): number {
  const a = msd.spec.autoscaling;
  return a.enabled ? a.maxReplicas : msd.spec.replicas;
}

export function nodePoolOwnerLabels(msd: MistralSmallDeployment): Record<string, string> {
  return {
    "app.kubernetes.io/managed-by": OPERATOR_NAME,
    [OWNER_NAME_LABEL]: msd.metadata.name,
    [OWNER_NAMESPACE_LABEL]: msd.metadata.namespace,
    ...(msd.metadata.uid === undefined ? {} : { [OWNER_UID_LABEL]: msd.metadata.uid }),
  };
}

/**
 * GPU machines come with up to 8 GPUs (p4d/p4de/p5/g6e.48xlarge, a2/a3-*-8g, ND96...), and a
 * replica's GPU count divides 8.
 */
export const GPUS_PER_MACHINE = 8;

/**
 * The pool's GPU limit: max replicas x GPUs per replica, rounded up to whole 8-GPU machines.
 * Karpenter checks a limit against the capacity of the node it would launch, not against the
 * pods' requests, so an exact limit below 8 would forbid every 8-GPU shape (p4de for one TP 2
 * replica). Karpenter only launches for pending pods: the rounding never buys extra replicas.
 */
export function gpuLimit(msd: MistralSmallDeployment, plan: Plan): number {
  const gpus = maxReplicasOf(msd) * plan.gpusPerReplica;
  return Math.ceil(gpus / GPUS_PER_MACHINE) * GPUS_PER_MACHINE;
}

export function renderNodePool(msd: MistralSmallDeployment, plan: Plan): NodePool | undefined {
  const k = msd.spec.nodePool.karpenter;
  if (msd.spec.nodePool.provider !== "karpenter" || k === undefined) return undefined;
  const gpu = GPU_CATALOG[msd.spec.gpu.type];
  const requirements: Record<string, unknown>[] = [
    { key: "karpenter.sh/capacity-type", operator: "In", values: [...k.capacityTypes] },
    ...karpenterAwsGpuRequirements(gpu),
    // A node must hold a whole replica: at least TP GPUs.
    {
      key: "karpenter.k8s.aws/instance-gpu-count",
      operator: "Gt",
      values: [String(plan.gpusPerReplica - 1)],
    },
  ];
  if (k.instanceTypes !== undefined) {
    requirements.push({
      key: "node.kubernetes.io/instance-type",
      operator: "In",
      values: [...k.instanceTypes],
    });
  }
  return {
    apiVersion: "karpenter.sh/v1",
    kind: "NodePool",
    metadata: { name: nodePoolName(msd), labels: nodePoolOwnerLabels(msd) },
    spec: {
      template: {
        // Karpenter copies these onto its NodeClaims and nodes: the owner uid lets the
        // operator find the pool's NodeClaims, even after the NodePool itself is gone.
        metadata: {
          labels: {
            "serving.mistralsmall.dev/gpu-type": gpu.type,
            ...(msd.metadata.uid === undefined ? {} : { [OWNER_UID_LABEL]: msd.metadata.uid }),
          },
        },
        spec: {
          nodeClassRef: { ...k.nodeClassRef },
          requirements,
          taints: [{ key: GPU_TAINT_KEY, value: "true", effect: "NoSchedule" }],
          expireAfter: k.expireAfter,
        },
      },
      // Only empty nodes are consolidated: a loaded model is never moved to save a node.
      disruption: {
        consolidationPolicy: "WhenEmpty",
        consolidateAfter: k.consolidateAfter,
        budgets: [{ nodes: "1" }],
      },
      limits: { [GPU_RESOURCE]: String(gpuLimit(msd, plan)) },
    },
  };
}
