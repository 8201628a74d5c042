/** The API types the operator reads and writes, as data (no client code: the Pulumi package vendors it). */

export interface ResourceType {
  readonly group: string; // "" for core
  readonly version: string;
  readonly plural: string;
  readonly kind: string;
  readonly namespaced: boolean;
}

/** "v1" for core, "group/version" otherwise: an object's apiVersion. */
export type ApiVersionOf<R extends ResourceType> = R["group"] extends ""
  ? R["version"]
  : `${R["group"]}/${R["version"]}`;

export function apiVersionOf<R extends ResourceType>(r: R): ApiVersionOf<R> {
  // The template literal type above, computed: TypeScript cannot narrow R["group"] by value.
  return (r.group === "" ? r.version : `${r.group}/${r.version}`) as ApiVersionOf<R>;
}

export const RESOURCES = {
  msd: {
    group: "serving.mistralsmall.dev",
    version: "v1alpha1",
    plural: "mistralsmalldeployments",
    kind: "MistralSmallDeployment",
    namespaced: true,
  },
  deployment: {
    group: "apps",
    version: "v1",
    plural: "deployments",
    kind: "Deployment",
    namespaced: true,
  },
  service: { group: "", version: "v1", plural: "services", kind: "Service", namespaced: true },
  pvc: {
    group: "",
    version: "v1",
    plural: "persistentvolumeclaims",
    kind: "PersistentVolumeClaim",
    namespaced: true,
  },
  pdb: {
    group: "policy",
    version: "v1",
    plural: "poddisruptionbudgets",
    kind: "PodDisruptionBudget",
    namespaced: true,
  },
  nodePool: {
    group: "karpenter.sh",
    version: "v1",
    plural: "nodepools",
    kind: "NodePool",
    namespaced: false,
  },
  nodeClaim: {
    group: "karpenter.sh",
    version: "v1",
    plural: "nodeclaims",
    kind: "NodeClaim",
    namespaced: false,
  },
  pod: { group: "", version: "v1", plural: "pods", kind: "Pod", namespaced: true },
  job: { group: "batch", version: "v1", plural: "jobs", kind: "Job", namespaced: true },
  /** core/v1 Events: what Karpenter (client-go's record package) writes; read only. */
  coreEvent: { group: "", version: "v1", plural: "events", kind: "Event", namespaced: true },
  event: {
    group: "events.k8s.io",
    version: "v1",
    plural: "events",
    kind: "Event",
    namespaced: true,
  },
  lease: {
    group: "coordination.k8s.io",
    version: "v1",
    plural: "leases",
    kind: "Lease",
    namespaced: true,
  },
  hpa: {
    group: "autoscaling",
    version: "v2",
    plural: "horizontalpodautoscalers",
    kind: "HorizontalPodAutoscaler",
    namespaced: true,
  },
  scaledObject: {
    group: "keda.sh",
    version: "v1alpha1",
    plural: "scaledobjects",
    kind: "ScaledObject",
    namespaced: true,
  },
  node: { group: "", version: "v1", plural: "nodes", kind: "Node", namespaced: false },
  persistentVolume: {
    group: "",
    version: "v1",
    plural: "persistentvolumes",
    kind: "PersistentVolume",
    namespaced: false,
  },
  namespace: {
    group: "",
    version: "v1",
    plural: "namespaces",
    kind: "Namespace",
    namespaced: false,
  },
  networkPolicy: {
    group: "networking.k8s.io",
    version: "v1",
    plural: "networkpolicies",
    kind: "NetworkPolicy",
    namespaced: true,
  },
  podMonitor: {
    group: "monitoring.coreos.com",
    version: "v1",
    plural: "podmonitors",
    kind: "PodMonitor",
    namespaced: true,
  },
} as const satisfies Record<string, ResourceType>;
