import { RESOURCES } from "../kube/resources.ts";
import { OWNED_KINDS } from "../render/owned.ts";

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

/** One rule per API group for the owned kinds, with their verbs (from the owned-kinds table). */
function ownedRules(): PolicyRule[] {
  const rules: PolicyRule[] = [];
  for (const k of OWNED_KINDS) {
    const verbs = [...k.verbs];
    const same = rules.find(
      (r) => r.apiGroups[0] === k.resource.group && r.verbs.join() === verbs.join(),
    );
    if (same !== undefined) same.resources.push(k.resource.plural);
    else rules.push({ apiGroups: [k.resource.group], resources: [k.resource.plural], verbs });
  }
  return rules;
}

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
  ...ownedRules(),
  // Pods are only read, to surface their real failure causes on the resource.
  { apiGroups: [""], resources: ["pods"], verbs: ["get", "list", "watch"] },
  { apiGroups: ["events.k8s.io"], resources: ["events"], verbs: ["create", "patch"] },
  // Read only: status names the NodeClaims a pool is launching, and deletion waits for them.
  { apiGroups: ["karpenter.sh"], resources: ["nodeclaims"], verbs: ["get", "list", "watch"] },
  // Karpenter's own events on pending pods (core/v1, source=karpenter), quoted in status.
  { apiGroups: [""], resources: ["events"], verbs: ["list", "watch"] },
];

/** Kinds without a namespace: only a ClusterRole can grant them (Karpenter NodePools, NodeClaims). */
const CLUSTER_SCOPED_RESOURCES = new Set([
  ...OWNED_KINDS.filter((k) => !k.resource.namespaced).map((k) => k.resource.plural),
  RESOURCES.nodeClaim.plural,
]);

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
