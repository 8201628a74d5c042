/**
 * Every kind the operator owns, as one table. The renderer, the reconciler (caches, the
 * missing-CRD guard, pruning), the manager (informers) and the RBAC rules are all derived
 * from it: adding a kind is one render file plus one entry here.
 */
import type { MistralSmallDeployment } from "../api/schema.ts";
import { RESOURCES, type ResourceType } from "../kube/resources.ts";
import type { Plan } from "../planner/plan.ts";
import { renderHpa } from "./hpa.ts";
import { renderScaledObject } from "./scaledobject.ts";
import { renderDeployment } from "./deployment.ts";
import type { Manifest } from "./manifest.ts";
import { renderNetworkPolicy } from "./networkpolicy.ts";
import { renderNodePool } from "./nodepool.ts";
import { renderPodMonitor } from "./podmonitor.ts";
import { renderPdb } from "./pdb.ts";
import { renderCacheClaim } from "./pvc.ts";
import { renderLoaderJob } from "./loader.ts";
import { renderService } from "./service.ts";

export interface OwnedKind {
  readonly resource: ResourceType;
  /** The desired object for a spec and its plan, or undefined when the spec wants none. */
  readonly render: (msd: MistralSmallDeployment, plan: Plan) => object | undefined;
  /**
   * Set when the kind comes from a CRD that may not be installed: the informer starts only
   * when it is, and a spec that needs it gets this message in status.
   */
  readonly optionalCrd?: { readonly neededFor: string; readonly missing: string };
  /** Deleted when the spec no longer wants it (the rest live as long as the resource). */
  readonly prune: boolean;
  /**
   * One object for every resource that loads the same checkpoint (the model cache and its
   * loader): each applies it with its own field manager and its own non-controller owner
   * reference, so none removes another's, and the garbage collector deletes it after the last.
   */
  readonly shared?: boolean;
  /** Verbs the operator needs on it (its RBAC rule). */
  readonly verbs: readonly string[];
}

export const OWNED_VERBS = ["get", "list", "watch", "create", "update", "patch", "delete"] as const;

/** In apply order: the node pool first, the workload after what it mounts and sits behind. */
export const OWNED_KINDS: readonly OwnedKind[] = [
  {
    resource: RESOURCES.nodePool,
    render: renderNodePool,
    optionalCrd: {
      neededFor: "nodePool.provider karpenter",
      missing: "the Karpenter karpenter.sh/v1 NodePool CRD is not installed in this cluster",
    },
    prune: true,
    verbs: OWNED_VERBS,
  },
  {
    resource: RESOURCES.pvc,
    render: renderCacheClaim,
    // Shared by every resource loading the same checkpoint: released, not pruned (model-cache.ts).
    prune: false,
    shared: true,
    verbs: OWNED_VERBS,
  },
  {
    resource: RESOURCES.job,
    render: renderLoaderJob,
    prune: false,
    shared: true,
    verbs: OWNED_VERBS,
  },
  {
    resource: RESOURCES.service,
    render: (msd) => renderService(msd),
    prune: false,
    verbs: OWNED_VERBS,
  },
  {
    resource: RESOURCES.networkPolicy,
    render: renderNetworkPolicy,
    prune: true,
    verbs: OWNED_VERBS,
  },
  { resource: RESOURCES.pdb, render: (msd) => renderPdb(msd), prune: false, verbs: OWNED_VERBS },
  {
    resource: RESOURCES.deployment,
    render: (msd, plan) => renderDeployment(msd, plan, msd.spec.replicas),
    prune: false,
    verbs: OWNED_VERBS,
  },
  { resource: RESOURCES.hpa, render: renderHpa, prune: true, verbs: OWNED_VERBS },
  {
    resource: RESOURCES.scaledObject,
    render: renderScaledObject,
    optionalCrd: {
      neededFor: "autoscaling.mode keda",
      missing:
        "autoscaling.mode keda needs KEDA: the keda.sh/v1alpha1 ScaledObject CRD is not installed in this cluster",
    },
    prune: true,
    verbs: OWNED_VERBS,
  },
  {
    resource: RESOURCES.podMonitor,
    render: renderPodMonitor,
    optionalCrd: {
      neededFor: "monitoring.podMonitor",
      missing:
        "monitoring.podMonitor needs the Prometheus operator: the monitoring.coreos.com/v1 PodMonitor CRD is not installed in this cluster",
    },
    prune: true,
    verbs: OWNED_VERBS,
  },
];

export function ownedKind(kind: string): OwnedKind | undefined {
  return OWNED_KINDS.find((k) => k.resource.kind === kind);
}

export type { Manifest };
