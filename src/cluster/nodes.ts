/** Fake GPU nodes for KWOK, labelled and tainted as real GPU nodes are. */
import type { V1Node } from "@kubernetes/client-node";
import { GPU_CATALOG, type GpuType } from "../catalog/gpus.ts";

export interface GpuNodeGroup {
  readonly gpuType: GpuType;
  readonly count: number;
  readonly gpusPerNode: number;
  /** `nvidia.com/gpu.product` value; defaults to the SXM4 spelling of the type. */
  readonly product?: string;
  readonly namePrefix?: string;
}

/** Two 8x A100-80GB nodes and one 8x A100-40GB node: the default test fleet. */
export const DEFAULT_FLEET: readonly GpuNodeGroup[] = [
  { gpuType: "a100-80gb", count: 2, gpusPerNode: 8 },
  { gpuType: "a100-40gb", count: 1, gpusPerNode: 8 },
];

/** A node KWOK manages (its annotation), Running, with the os/arch/hostname labels a kubelet sets. */
function kwokNode(
  name: string,
  extra: { labels?: Record<string, string>; capacity: Record<string, string>; memory?: string },
  taints?: NonNullable<V1Node["spec"]>["taints"],
): V1Node {
  return {
    apiVersion: "v1",
    kind: "Node",
    metadata: {
      name,
      annotations: { "kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0" },
      labels: {
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        type: "kwok",
        ...extra.labels,
      },
    },
    ...(taints === undefined ? {} : { spec: { taints } }),
    status: {
      capacity: extra.capacity,
      allocatable: {
        ...extra.capacity,
        ...(extra.memory === undefined ? {} : { memory: extra.memory }),
      },
      nodeInfo: {
        architecture: "amd64",
        bootID: "",
        containerRuntimeVersion: "kwok",
        kernelVersion: "",
        kubeProxyVersion: "",
        kubeletVersion: "fake",
        machineID: "",
        operatingSystem: "linux",
        osImage: "",
        systemUUID: "",
      },
      phase: "Running",
    },
  };
}

export function gpuNodes(groups: readonly GpuNodeGroup[]): V1Node[] {
  const nodes: V1Node[] = [];
  for (const g of groups) {
    const gpu = GPU_CATALOG[g.gpuType];
    const product = g.product ?? gpu.productLabels[0]!;
    for (let i = 0; i < g.count; i++) {
      const capacity = {
        cpu: "96",
        memory: "1152Gi",
        pods: "110",
        "ephemeral-storage": "4Ti",
        "nvidia.com/gpu": String(g.gpusPerNode),
      };
      const labels = {
        "nvidia.com/gpu.present": "true",
        "nvidia.com/gpu.product": product,
        "nvidia.com/gpu.count": String(g.gpusPerNode),
        "nvidia.com/gpu.memory": String(gpu.karpenterAws.gpuMemoryMiB),
      };
      nodes.push(
        kwokNode(`${g.namePrefix ?? g.gpuType}-${i}`, { labels, capacity, memory: "1100Gi" }, [
          { key: "nvidia.com/gpu", value: "present", effect: "NoSchedule" },
        ]),
      );
    }
  }
  return nodes;
}

/**
 * A CPU node (no GPU, no taint): for the model-cache loader Jobs, which request no GPU and
 * tolerate no GPU taint (without one, a Hub checkpoint is never downloaded), and for the
 * operator's own pods.
 */
export function cpuNode(name = "cpu-0"): V1Node {
  return kwokNode(name, {
    capacity: { cpu: "32", memory: "128Gi", pods: "110", "ephemeral-storage": "1Ti" },
  });
}

/**
 * Pre-created volumes for model-cache claims: the local control plane has no
 * storage provisioner, and a pod with an unbound claim is never scheduled.
 */
export function cacheVolumes(count: number, prefix = "model-cache-pv"): Record<string, unknown>[] {
  return Array.from({ length: count }, (_, i) => ({
    apiVersion: "v1",
    kind: "PersistentVolume",
    metadata: {
      name: `${prefix}-${i}`,
      labels: { "serving.mistralsmall.dev/test-volume": "true" },
    },
    spec: {
      capacity: { storage: "1Ti" },
      accessModes: ["ReadWriteOnce", "ReadWriteMany"],
      persistentVolumeReclaimPolicy: "Retain",
      storageClassName: "",
      hostPath: { path: `/tmp/${prefix}-${i}` },
    },
  }));
}
