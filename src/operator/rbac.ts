/**
 * The exact permissions the operator needs, in one place. The Helm chart, the
 * Pulumi component and the integration tests (which run the operator with only
 * these rules) all use this list, so a missing or excess verb shows up.
 */
export interface PolicyRule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
}

const OWNED = ["get", "list", "watch", "create", "update", "patch", "delete"];

export const CLUSTER_RULES: readonly PolicyRule[] = [
  {
    apiGroups: ["serving.mistralsmall.dev"],
    resources: ["mistralsmalldeployments"],
    // update/patch: the finalizer and autoscaling decisions through spec.replicas.
    verbs: ["get", "list", "watch", "update", "patch"],
  },
  {
    apiGroups: ["serving.mistralsmall.dev"],
    resources: ["mistralsmalldeployments/status"],
    verbs: ["get", "update", "patch"],
  },
  {
    apiGroups: ["serving.mistralsmall.dev"],
    resources: ["mistralsmalldeployments/scale"],
    // The builtin autoscaler writes its decisions through the scale subresource.
    verbs: ["get", "update", "patch"],
  },
  {
    apiGroups: ["serving.mistralsmall.dev"],
    resources: ["mistralsmalldeployments/finalizers"],
    // Needed to set blockOwnerDeletion on owned objects.
    verbs: ["update"],
  },
  { apiGroups: ["apps"], resources: ["deployments"], verbs: OWNED },
  { apiGroups: [""], resources: ["services", "persistentvolumeclaims"], verbs: OWNED },
  { apiGroups: ["policy"], resources: ["poddisruptionbudgets"], verbs: OWNED },
  // Pods are only read, to surface their real failure causes on the resource.
  { apiGroups: [""], resources: ["pods"], verbs: ["get", "list", "watch"] },
  { apiGroups: ["events.k8s.io"], resources: ["events"], verbs: ["create", "patch"] },
  { apiGroups: ["karpenter.sh"], resources: ["nodepools"], verbs: OWNED },
  // Read only: status names the NodeClaims a pool is launching, and deletion waits for them.
  { apiGroups: ["karpenter.sh"], resources: ["nodeclaims"], verbs: ["get", "list", "watch"] },
  // Karpenter's own events on pending pods (core/v1, source=karpenter), quoted in status.
  { apiGroups: [""], resources: ["events"], verbs: ["list", "watch"] },
  // autoscaling.mode hpa / keda.
  { apiGroups: ["autoscaling"], resources: ["horizontalpodautoscalers"], verbs: OWNED },
  { apiGroups: ["keda.sh"], resources: ["scaledobjects"], verbs: OWNED },
];

/** Kinds without a namespace: only a ClusterRole can grant them (Karpenter NodePools). */
const CLUSTER_SCOPED_RESOURCES = new Set(["nodepools"]);

/**
 * The namespaced install mode: these rules go into a Role in every watched namespace, and
 * only CLUSTER_SCOPED_RULES stay in a ClusterRole. The operator creates pods that can mount any
 * Secret of a namespace it manages, so limiting the namespaces limits what it can reach.
 */
export const NAMESPACED_RULES: readonly PolicyRule[] = CLUSTER_RULES.filter(
  (r) => !r.resources.some((x) => CLUSTER_SCOPED_RESOURCES.has(x)),
);
export const CLUSTER_SCOPED_RULES: readonly PolicyRule[] = CLUSTER_RULES.filter((r) =>
  r.resources.some((x) => CLUSTER_SCOPED_RESOURCES.has(x)),
);

/** Leader election, in the operator's own namespace only. */
export const NAMESPACE_RULES: readonly PolicyRule[] = [
  { apiGroups: ["coordination.k8s.io"], resources: ["leases"], verbs: ["get", "create", "update"] },
];

export function clusterRole(name: string): Record<string, unknown> {
  return {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "ClusterRole",
    metadata: { name },
    rules: CLUSTER_RULES.map((r) => ({ ...r })),
  };
}

export function leaderElectionRole(name: string, namespace: string): Record<string, unknown> {
  return {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "Role",
    metadata: { name, namespace },
    rules: NAMESPACE_RULES.map((r) => ({ ...r })),
  };
}

export type Subject = { kind: "User" | "ServiceAccount"; name: string; namespace?: string };

export function rbacManifests(
  name: string,
  namespace: string,
  subject: Subject,
): Record<string, unknown>[] {
  const subjects = [
    subject.kind === "User"
      ? { kind: "User", apiGroup: "rbac.authorization.k8s.io", name: subject.name }
      : { ...subject },
  ];
  return [
    clusterRole(name),
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "ClusterRoleBinding",
      metadata: { name },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name },
      subjects,
    },
    leaderElectionRole(name, namespace),
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "RoleBinding",
      metadata: { name, namespace },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name },
      subjects,
    },
  ];
}
