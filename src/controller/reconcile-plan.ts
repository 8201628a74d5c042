/**
 * planReconcile(observed): everything one reconcile pass decides, as a pure function of a plain
 * value (the resource, what the caches hold, our memos, what the last writes answered). The
 * executor (reconcile.ts) gathers `Observed`, performs the plan and records the memos; nothing
 * here reads a cache, writes, or looks at the clock.
 *
 * A converging pass is a list of named steps over a draft (CONVERGE_STEPS): a gate, such as
 * "the loader Job must complete before the Deployment is applied", is one more step that takes
 * objects out of `draft.toApply`.
 */
import type { MistralSmallDeployment, Status } from "../api/schema.ts";
import { parseResource, ValidationError } from "../api/validate.ts";
import { VLLM_PORT } from "../engine/command.ts";
import { objectKey } from "../kube/informer.ts";
import { RESOURCES, resourceFor, type KubeObject, type ResourceType } from "../kube/client.ts";
import type { SlimPod } from "./cached.ts";
import type {
  Addressed,
  Deployment,
  MistralSmallDeploymentObject,
  NodePool,
  ObjectOf,
} from "../kube/objects.ts";
import { plan as planFor, type Plan } from "../planner/plan.ts";
import { renderDesired, type Manifest } from "../render/index.ts";
import {
  cachePhaseOf,
  comparableForApply,
  gateWorkload,
  weightsClaimName,
  workloadAllowed,
  type CachePhase,
} from "./model-cache.ts";
import {
  pinTemplate,
  templateOfferEvents,
  withTemplateOffer,
  type TemplateOffer,
} from "./template-pin.ts";
import { OWNER_UID_LABEL, labelSelectorString, serviceUrl, shortHash } from "../render/names.ts";
import { OWNED_KINDS, ownedKind } from "../render/owned.ts";
import { asStored, securityDrift } from "../render/security.ts";
import type { EventInput } from "./events.ts";
import { foreignEntries } from "./foreign.ts";
import {
  REASONS,
  clientAccess,
  computeStatus,
  describeClaim,
  isSubset,
  jsonEqual,
  type CapacityView,
  type Condition,
  type KarpenterPodEvent,
  type NodeClaimView,
  type Observation,
  type PodView,
} from "./status.ts";

export const FINALIZER = "serving.mistralsmall.dev/cleanup";
/** While replicas load, look again even if no event arrives. */
export const LOADING_RECHECK_MS = 30_000;
/** While Karpenter gives a deleted resource's nodes back. */
export const RELEASING_RECHECK_MS = 2_000;

/** Digest and resulting resourceVersion of our last apply of one object. */
export interface AppliedMemo {
  readonly digest: string;
  readonly resourceVersion: string;
}

/**
 * The informer may not have delivered our own last status write yet; a reconcile
 * in between must compare against what we wrote, or it writes (and reports) twice.
 */
export interface StatusMemo {
  readonly uid: string;
  readonly resourceVersion: string;
  readonly status: Status | undefined;
}

/** What the API server answered when this pass's writes failed; the executor plans again with it. */
export type WriteFailure =
  /** A server-side dry run refused a rendered object: nothing of the set was applied. */
  | { readonly kind: "rejected"; readonly message: string }
  /** A write failed (the objects before it may be applied). */
  | { readonly kind: "failed"; readonly message: string };

export interface Observed {
  /** RFC 3339, seconds precision: lastTransitionTime of conditions that change now. */
  readonly now: string;
  readonly msd: MistralSmallDeploymentObject;
  /**
   * What the cache of each owned kind holds (namespaced kinds: in the resource's namespace), by
   * kind, then by `namespace/name` (`name` when cluster-scoped), as the caches key them. A kind
   * whose optional CRD is not installed has no entry.
   */
  readonly owned: ReadonlyMap<string, ReadonlyMap<string, KubeObject>>;
  /** Owned kinds whose optional CRD is not installed (no informer runs for them). */
  readonly missingCrds: ReadonlySet<string>;
  /** The resource's pods. */
  readonly pods: readonly PodView[];
  /** Karpenter NodeClaims carrying the resource's owner-uid label. */
  readonly nodeClaims: readonly NodeClaimView[];
  /** Karpenter's events about the resource's pods. */
  readonly karpenterEvents: readonly KarpenterPodEvent[];
  /** Our last apply per object (memoKeyOf); dropped when the informer sees the object deleted. */
  readonly appliedMemo: ReadonlyMap<string, AppliedMemo>;
  readonly statusMemo?: StatusMemo | undefined;
  readonly writeFailure?: WriteFailure | undefined;
  /** The renderer (default renderDesired); tests stand in a later release's defaults. */
  readonly render?: typeof renderDesired | undefined;
  /** Every pod in the resource's namespace the operator manages (the loader's among them). */
  readonly managedPods: readonly SlimPod[];
}

export interface LogLine {
  readonly level: "info" | "warn";
  readonly msg: string;
  readonly fields?: Readonly<Record<string, unknown>>;
}

/** A JSON merge patch putting hand-edited keyed lists back whole, before the apply (foreign.ts). */
export interface PatchStep {
  readonly resource: ResourceType;
  readonly name: string;
  readonly namespace?: string | undefined;
  /** Includes metadata.resourceVersion: a newer live object is looked at again next pass. */
  readonly patch: Record<string, unknown>;
  readonly removed: readonly string[];
  readonly event: EventInput;
}

export interface ApplyStep {
  readonly object: Manifest;
  readonly resource: ResourceType;
  readonly memoKey: string;
  readonly digest: string;
  /** The cache holds no such object: the apply creates it. */
  readonly creates: boolean;
  /** Said once the dry run accepted the set, before the apply (the drift it reverts). */
  readonly events: readonly EventInput[];
}

export interface DeleteStep {
  readonly resource: ResourceType;
  readonly name: string;
  readonly namespace?: string | undefined;
  /** Precondition: only the object we looked at. */
  readonly uid: string;
  readonly log: LogLine;
  readonly event?: EventInput | undefined;
}

export interface ReconcilePlan {
  /**
   * Whether write failures are reported in status (a converging pass plans again with them) or
   * only retried (a deletion: status already says what is draining).
   */
  readonly phase: "converge" | "finalize";
  /** "add" ends the pass: the patch's own event starts the next one. */
  readonly finalizer: "add" | "remove" | "keep";
  readonly patch: readonly PatchStep[];
  /** Dry-run together first; one refusal and none is applied. */
  readonly apply: readonly ApplyStep[];
  /** In order, after the applies. */
  readonly delete: readonly DeleteStep[];
  /** Merge-patched into status when defined; undefined when nothing changed. */
  readonly status: Status | undefined;
  /** Emitted after the status write. */
  readonly events: readonly EventInput[];
  readonly requeueAfter: number | undefined;
  readonly log: readonly LogLine[];
  /**
   * Set once this pass's model cache is complete: every desired object, so the executor releases
   * the caches of earlier revisions that nothing desires any more (model-cache.ts).
   */
  readonly releaseCachesBut?: readonly Manifest[];
}

const EMPTY: ReconcilePlan = {
  phase: "converge",
  finalizer: "keep",
  patch: [],
  apply: [],
  delete: [],
  status: undefined,
  events: [],
  requeueAfter: undefined,
  log: [],
};

/** `steps` is CONVERGE_STEPS but for tests that show how a gate fits in. */
export function planReconcile(
  o: Observed,
  steps: readonly PlanStep[] = CONVERGE_STEPS,
): ReconcilePlan {
  if (o.msd.metadata.deletionTimestamp !== undefined) return planFinalize(o);
  let d: Draft = { plan: EMPTY, desired: [], toApply: [], done: false };
  for (const step of steps) {
    if (d.done) break;
    d = step.run(o, d);
  }
  return d.plan;
}

// ---- Lookups over the observed value ----------------------------------------------------------

/** The key of our apply memo: kind, then the caches' key (the informers' objectKey). */
export function memoKeyOf(obj: Addressed): string {
  return `${obj.kind}/${objectKey(obj)}`;
}

/**
 * An owned kind's cached objects, typed by its resource. Sound because observe() files each
 * kind's cache under that kind, and the informer behind it was made for the same resource.
 */
export function ownedOf<R extends ResourceType>(
  o: Pick<Observed, "owned">,
  r: R,
): ReadonlyMap<string, ObjectOf<R>> {
  return (o.owned.get(r.kind) ?? new Map()) as ReadonlyMap<string, ObjectOf<R>>;
}

function live<R extends ResourceType>(o: Observed, r: R, ref: Addressed): ObjectOf<R> | undefined {
  return ownedOf(o, r).get(objectKey(ref));
}

/** The cached object a rendered one becomes, whatever its kind. */
function liveOf(o: Observed, obj: Manifest): KubeObject | undefined {
  return o.owned.get(obj.kind)?.get(objectKey(obj));
}

function uidOf(o: Observed): string {
  return o.msd.metadata.uid!;
}

function ownedBy(obj: KubeObject, uid: string): boolean {
  return (obj.metadata.ownerReferences ?? []).some((r) => r.uid === uid && r.controller === true);
}

/** Cluster-scoped, so no owner reference to us: found by our uid label. */
function ownedNodePools(o: Observed): readonly NodePool[] {
  return [...ownedOf(o, RESOURCES.nodePool).values()].filter(
    (np) => np.metadata.labels?.[OWNER_UID_LABEL] === uidOf(o),
  );
}

function ownedDeployment(o: Observed): Deployment | undefined {
  const dep = live(o, RESOURCES.deployment, o.msd);
  return dep !== undefined && ownedBy(dep, uidOf(o)) ? dep : undefined;
}

/** The API type of a rendered object: from the owned-kinds table. */
function resourceOf(obj: Manifest): ResourceType {
  return ownedKind(obj.kind)?.resource ?? resourceFor(obj.apiVersion, obj.kind);
}

function hasFinalizer(o: Observed): boolean {
  return (o.msd.metadata.finalizers ?? []).includes(FINALIZER);
}

// ---- Deletion ---------------------------------------------------------------------------------

/**
 * Deletion with a Karpenter pool: the replicas go first (their pods carry
 * karpenter.sh/do-not-disrupt, which Karpenter's drain waits on, so nodes holding them never
 * terminate), then the NodePool (Karpenter's NodeClaims hang off it by owner reference).
 * The finalizer is released only once the pool and its NodeClaims are gone; until then the
 * status says what is still draining. A failed write is retried, not reported.
 */
function planFinalize(o: Observed): ReconcilePlan {
  const base: ReconcilePlan = { ...EMPTY, phase: "finalize" };
  if (!hasFinalizer(o) || o.writeFailure !== undefined) return base;
  const pools = ownedNodePools(o);
  const deletes = [...deploymentFirst(o, pools), ...poolDeletes(pools)];
  if (pools.length === 0 && o.nodeClaims.length === 0) return { ...base, finalizer: "remove" };
  return {
    ...base,
    delete: deletes,
    status: releasingStatus(o, pools, o.nodeClaims),
    requeueAfter: RELEASING_RECHECK_MS,
  };
}

function deploymentFirst(o: Observed, pools: readonly KubeObject[]): DeleteStep[] {
  const dep = ownedDeployment(o);
  if (pools.length === 0 || dep === undefined || dep.metadata.deletionTimestamp !== undefined) {
    return [];
  }
  return [
    {
      resource: RESOURCES.deployment,
      name: dep.metadata.name,
      namespace: o.msd.metadata.namespace,
      uid: dep.metadata.uid!,
      log: {
        level: "info",
        msg: "deleting the Deployment first: do-not-disrupt pods would block Karpenter's drain",
      },
    },
  ];
}

function poolDeletes(pools: readonly KubeObject[]): DeleteStep[] {
  return pools
    .filter((np) => np.metadata.deletionTimestamp === undefined)
    .map((np) => ({
      resource: RESOURCES.nodePool,
      name: np.metadata.name,
      uid: np.metadata.uid!,
      log: {
        level: "info",
        msg: "deleting NodePool before the resource goes away",
        fields: { nodePool: np.metadata.name },
      },
    }));
}

/** Ready=False ReleasingNodes, the other conditions kept; undefined when status says so already. */
function releasingStatus(
  o: Observed,
  pools: readonly KubeObject[],
  claims: readonly NodeClaimView[],
): Status | undefined {
  const message =
    claims.length === 0
      ? `waiting for NodePool ${pools.map((p) => p.metadata.name).join(", ")} to be deleted`
      : `waiting for Karpenter to terminate NodeClaim ${claims.map(describeClaim).join(", ")}`;
  const previous = o.msd.status?.conditions ?? [];
  const prev = previous.find((x) => x.type === "Ready");
  if (prev?.reason === REASONS.ReleasingNodes && prev.message === message) return undefined;
  const ready = {
    type: "Ready",
    status: "False",
    reason: REASONS.ReleasingNodes,
    message,
    observedGeneration: o.msd.metadata.generation ?? 0,
    lastTransitionTime: prev?.status === "False" ? prev.lastTransitionTime : o.now,
  };
  return { conditions: [ready, ...previous.filter((x) => x.type !== "Ready")] } as Status;
}

// ---- Converging: named steps over a draft -----------------------------------------------------

export interface Draft {
  readonly plan: ReconcilePlan;
  readonly spec?: MistralSmallDeployment;
  /** Why the spec could not be parsed. */
  readonly invalid?: string;
  readonly sizing?: Plan;
  /** Everything the spec wants: what pruning keeps. */
  readonly desired: readonly Manifest[];
  /** What this pass may apply: `desired`, less what a gate holds back. */
  readonly toApply: readonly Manifest[];
  readonly templateHash?: string;
  /** Where the weights stand (model-cache.ts): the Deployment waits for a complete cache. */
  readonly cache?: CachePhase;
  /** A pod template only a newer operator wants, held until the owner opts in. */
  readonly templateOffer?: TemplateOffer;
  /** The spec needs a kind whose CRD is not installed: nothing is applied. */
  readonly crdMissing?: string;
  /** The pass ends after this step. */
  readonly done: boolean;
}

export interface PlanStep {
  readonly name: string;
  readonly run: (o: Observed, d: Draft) => Draft;
}

function withPlan(d: Draft, plan: Partial<ReconcilePlan>): Draft {
  return { ...d, plan: { ...d.plan, ...plan } };
}

function logged(d: Draft, line: LogLine): Draft {
  return withPlan(d, { log: [...d.plan.log, line] });
}

/** The spec through the schema; an invalid one is reported, and nothing is rendered from it. */
function parseStep(o: Observed, d: Draft): Draft {
  try {
    return { ...d, spec: parseResource(o.msd) };
  } catch (err) {
    if (!(err instanceof ValidationError)) throw err;
    const invalid = err.problems.map((p) => `${p.path}: ${p.message}`).join("; ");
    return logged(
      { ...d, invalid },
      { level: "warn", msg: "spec is invalid", fields: { problems: err.problems } },
    );
  }
}

/** A Karpenter pool must be cleaned up before the resource goes: hold it with our finalizer. */
function finalizerStep(o: Observed, d: Draft): Draft {
  const needs = d.spec?.spec.nodePool.provider === "karpenter" || ownedNodePools(o).length > 0;
  if (!needs || hasFinalizer(o)) return d;
  // The patch produces a new event; the next pass continues from the updated object.
  return { ...withPlan(d, { finalizer: "add" }), done: true };
}

function renderStep(o: Observed, d: Draft): Draft {
  if (d.spec === undefined) return d;
  const sizing = planFor(d.spec.spec);
  if (!sizing.feasible) {
    return logged(
      { ...d, sizing },
      {
        level: "info",
        msg: "plan is infeasible; no new workload",
        fields: { reasons: sizing.reasons },
      },
    );
  }
  const msd = { ...d.spec, metadata: { ...d.spec.metadata, uid: uidOf(o) } };
  const desired = (o.render ?? renderDesired)(msd, sizing);
  return {
    ...d,
    sizing,
    desired: desired.objects,
    toApply: desired.objects,
    templateHash: desired.templateHash,
  };
}

/** No vLLM Deployment is applied until the model cache is complete (model-cache.ts). */
function modelCacheStep(o: Observed, d: Draft): Draft {
  if (d.spec === undefined || d.sizing?.feasible !== true) return d;
  const loader = d.desired.find((x) => x.kind === RESOURCES.job.kind);
  const cache = cachePhaseOf(d.spec, d.sizing, loader, ownedOf(o, RESOURCES.job), o.managedPods);
  // A held-back Deployment stays desired: a live one (an earlier revision) keeps serving.
  return { ...d, cache, toApply: gateWorkload(d.toApply, cache) };
}

/**
 * A pod template that changed only because the operator did is held until the owner opts in
 * (template-pin.ts): the live template stays in the Deployment, and status offers the new one.
 */
function templatePinStep(o: Observed, d: Draft): Draft {
  if (d.spec === undefined || d.templateHash === undefined) return d;
  const pinned = pinTemplate(
    { objects: d.desired, templateHash: d.templateHash },
    d.spec,
    ownedDeployment(o),
  );
  // Swap in the pinned objects one for one: a gate before this step keeps what it held back.
  const pinnedOf = (x: Manifest) => pinned.objects[d.desired.indexOf(x)] ?? x;
  return {
    ...d,
    desired: pinned.objects,
    toApply: d.toApply.map(pinnedOf),
    templateHash: pinned.templateHash,
    ...(pinned.offer === undefined ? {} : { templateOffer: pinned.offer }),
  };
}

/**
 * Only objects that differ from the cache are written, and not merely because the cache lags
 * behind our own last apply.
 */
function needsApply(o: Observed, obj: Manifest): boolean {
  const have = liveOf(o, obj);
  // A shared cache object lists every resource using it: compare with all their references.
  const want = comparableForApply(obj, have);
  if (have !== undefined && isSubset(obj.kind === "Deployment" ? asStored(want) : want, have)) {
    return false;
  }
  const memo = o.appliedMemo.get(memoKeyOf(obj));
  if (memo === undefined || memo.digest !== digestOf(obj)) return true;
  return have !== undefined && !isNewer(memo.resourceVersion, have.metadata.resourceVersion);
}

function digestOf(obj: Manifest): string {
  return shortHash(JSON.stringify(obj), 16);
}

function isNewer(a: string, b: string | undefined): boolean {
  if (b === undefined) return true;
  // Resource versions are opaque; when either is not numeric, trust the cache.
  if (!/^\d+$/.test(a) || !/^\d+$/.test(b)) return false;
  return BigInt(a) > BigInt(b);
}

/** A changed object whose optional CRD is not installed holds back the whole set. */
function missingCrdStep(o: Observed, d: Draft): Draft {
  if (o.writeFailure !== undefined) return d;
  const blocked = d.toApply.find(
    (obj) => o.missingCrds.has(obj.kind) && ownedKind(obj.kind)?.optionalCrd !== undefined,
  );
  const crd = blocked === undefined ? undefined : ownedKind(blocked.kind)?.optionalCrd;
  if (blocked === undefined || crd === undefined || !needsApply(o, blocked)) return d;
  return logged(
    { ...d, crdMissing: crd.missing },
    {
      level: "warn",
      msg: crd.missing,
      fields: { kind: blocked.kind },
    },
  );
}

function applyStep(o: Observed, d: Draft): Draft {
  if (o.writeFailure !== undefined || d.crdMissing !== undefined) return d;
  const changed = d.toApply.filter((obj) => needsApply(o, obj));
  return withPlan(d, {
    patch: changed.flatMap((obj) => foreignPatch(o, obj)),
    apply: changed.map((obj) => applyOf(o, obj)),
  });
}

function applyOf(o: Observed, obj: Manifest): ApplyStep {
  return {
    object: obj,
    resource: resourceOf(obj),
    memoKey: memoKeyOf(obj),
    digest: digestOf(obj),
    creates: liveOf(o, obj) === undefined,
    events: driftEvents(o, obj),
  };
}

/**
 * Keyed-list entries added by hand to our Service or Deployment go first (see foreign.ts): the
 * apply cannot remove them, and they may make the object invalid or the pods unsafe.
 */
function foreignPatch(o: Observed, obj: Manifest): PatchStep[] {
  const have = liveOf(o, obj);
  const foreign = have === undefined ? undefined : foreignEntries(obj.kind, obj, have);
  if (have === undefined || foreign === undefined) return [];
  return [
    {
      resource: resourceOf(obj),
      name: obj.metadata.name,
      namespace: obj.metadata.namespace,
      patch: { ...foreign.patch, metadata: { resourceVersion: have.metadata.resourceVersion } },
      removed: foreign.removed,
      event: {
        type: "Warning",
        reason: "ForeignEntriesRemoved",
        action: "Patch",
        note: `removed from ${obj.kind} ${obj.metadata.name} what the operator did not render: ${foreign.removed.join(", ")}`,
      },
    },
  ];
}

/**
 * Hand edits of security fields in our pod template (hostNetwork, privileged, capabilities ...)
 * are applied back in this pass; say so, since someone made the workload less safe.
 */
function driftEvents(o: Observed, obj: Manifest): EventInput[] {
  if (obj.kind !== RESOURCES.deployment.kind) return [];
  const have = live(o, RESOURCES.deployment, obj);
  const drift = have === undefined ? [] : securityDrift(obj, have);
  if (drift.length === 0) return [];
  return [
    {
      type: "Warning",
      reason: "SecurityDriftReverted",
      action: "Apply",
      note: `reverted hand edits of Deployment ${obj.metadata.name}: ${drift.join("; ")}`,
    },
  ];
}

/** Owned objects of a prunable kind that the spec no longer wants. */
function pruneStep(o: Observed, d: Draft): Draft {
  if (o.writeFailure !== undefined || d.crdMissing !== undefined) return d;
  if (d.spec === undefined || d.sizing?.feasible !== true) return d;
  const want = new Set(d.desired.map((x) => `${x.kind}/${x.metadata.name}`));
  const uid = uidOf(o);
  const ours = (x: KubeObject, namespaced: boolean) =>
    namespaced
      ? x.metadata.namespace === o.msd.metadata.namespace && ownedBy(x, uid)
      : x.metadata.labels?.[OWNER_UID_LABEL] === uid;
  const deletes = OWNED_KINDS.filter((k) => k.prune).flatMap((k) =>
    [...ownedOf(o, k.resource).values()]
      .filter((x) => ours(x, k.resource.namespaced))
      .filter((x) => !want.has(`${k.resource.kind}/${x.metadata.name}`))
      .filter((x) => x.metadata.deletionTimestamp === undefined)
      .map((x) => pruneOf(k.resource, x)),
  );
  const release = d.cache !== undefined && workloadAllowed(d.cache);
  return withPlan(d, { delete: deletes, ...(release ? { releaseCachesBut: d.desired } : {}) });
}

function pruneOf(resource: ResourceType, x: KubeObject): DeleteStep {
  const kind = resource.kind;
  return {
    resource,
    name: x.metadata.name,
    namespace: x.metadata.namespace,
    uid: x.metadata.uid!,
    log: {
      level: "info",
      msg: "deleted object no longer desired",
      fields: { kind, name: x.metadata.name },
    },
    event: {
      type: "Normal",
      reason: "Deleted",
      action: "Prune",
      note: `deleted ${kind} ${x.metadata.name}: no longer desired`,
    },
  };
}

/** What status is computed from: the observed value, this draft and what the writes answered. */
function observationOf(o: Observed, d: Draft): Observation {
  const spec = d.spec;
  const deployment = ownedDeployment(o);
  const claimName =
    spec === undefined || d.sizing === undefined ? undefined : weightsClaimName(spec, d.sizing);
  const claim =
    spec === undefined || claimName === undefined
      ? undefined
      : live(o, RESOURCES.pvc, {
          metadata: { name: claimName, namespace: o.msd.metadata.namespace },
        });
  const capacity = capacityOf(o, spec);
  const failure = o.writeFailure;
  return {
    generation: o.msd.metadata.generation ?? 0,
    desiredReplicas: spec?.spec.replicas ?? deployment?.spec?.replicas ?? 0,
    ...(d.invalid === undefined ? {} : { invalid: d.invalid }),
    ...(d.sizing === undefined ? {} : { plan: d.sizing }),
    ...(deployment === undefined ? {} : { deployment, deploymentName: deployment.metadata.name }),
    ...(claim === undefined ? {} : { cacheClaim: claim }),
    ...(d.cache === undefined ? {} : { cache: d.cache }),
    ...(d.templateHash === undefined ? {} : { desiredTemplateHash: d.templateHash }),
    pods: o.pods,
    ...(failure?.kind === "failed" ? { applyError: failure.message } : {}),
    ...(d.crdMissing === undefined ? {} : { crdMissing: d.crdMissing }),
    ...(capacity === undefined ? {} : { capacity }),
    ...(failure?.kind === "rejected" ? { rejected: failure.message } : {}),
    selector: spec === undefined ? "" : labelSelectorString(spec),
    endpoint: spec === undefined ? "" : serviceUrl(spec, VLLM_PORT),
    ...(spec === undefined ? {} : { access: clientAccess(spec) }),
  };
}

function capacityOf(
  o: Observed,
  spec: MistralSmallDeployment | undefined,
): CapacityView | undefined {
  if (spec?.spec.nodePool.provider !== "karpenter") return undefined;
  const pool = ownedNodePools(o)[0];
  if (pool === undefined) return undefined;
  return { nodePool: pool.metadata.name, nodeClaims: o.nodeClaims, events: o.karpenterEvents };
}

/** Our last status write, when the cache has not caught up with it yet. */
function lastKnownStatus(o: Observed): Status | undefined {
  const memo = o.statusMemo;
  if (
    memo !== undefined &&
    memo.uid === o.msd.metadata.uid &&
    isNewer(memo.resourceVersion, o.msd.metadata.resourceVersion)
  ) {
    return memo.status;
  }
  return o.msd.status;
}

/** Status from the observation; written (with its condition events) only when it changed. */
function statusStep(o: Observed, d: Draft): Draft {
  const computed = computeStatus(observationOf(o, d), o.msd.status, o.now);
  const status = withTemplateOffer(computed, d.templateOffer, o.msd.status, o.now);
  const previous = lastKnownStatus(o);
  const ready = status.conditions?.find((c) => c.type === "Ready");
  const progressing = status.conditions?.find((c) => c.type === "Progressing");
  const requeueAfter =
    progressing?.status === "True" || ready?.status !== "True" ? LOADING_RECHECK_MS : undefined;
  // status.scaling belongs to the autoscaler: neither compared nor written here.
  if (jsonEqual(status, { ...previous, scaling: undefined })) {
    return withPlan(d, { requeueAfter });
  }
  const events = [
    ...conditionEvents(
      (previous?.conditions ?? []) as Condition[],
      (status.conditions ?? []) as Condition[],
    ),
    ...templateOfferEvents(previous?.conditions, status.conditions),
  ];
  return withPlan(d, { status, events, requeueAfter });
}

/**
 * The steps of a converging pass, in order. A step returns the draft it was given, changed;
 * one that sets `done` ends the pass. A gate goes between "render" and "crds": it removes from
 * `toApply` what must wait (they stay in `desired`, so they are not pruned).
 */
export const CONVERGE_STEPS: readonly PlanStep[] = [
  { name: "parse", run: parseStep },
  { name: "finalizer", run: finalizerStep },
  { name: "render", run: renderStep },
  { name: "model-cache", run: modelCacheStep },
  { name: "template-pin", run: templatePinStep },
  { name: "crds", run: missingCrdStep },
  { name: "apply", run: applyStep },
  { name: "prune", run: pruneStep },
  { name: "status", run: statusStep },
];

// ---- Events -----------------------------------------------------------------------------------

/** One event per apply pass, not one per object: events are writes too. */
export function appliedEvent(done: readonly ApplyStep[]): EventInput | undefined {
  if (done.length === 0) return undefined;
  const list = (steps: readonly ApplyStep[]) =>
    steps.map((s) => `${s.object.kind} ${s.object.metadata.name}`).join(", ");
  const created = done.filter((s) => s.creates);
  const updated = done.filter((s) => !s.creates);
  return {
    type: "Normal",
    reason: updated.length === 0 ? "Created" : "Updated",
    action: "Apply",
    note: [
      created.length > 0 ? `created ${list(created)}` : "",
      updated.length > 0 ? `updated ${list(updated)}` : "",
    ]
      .filter((x) => x !== "")
      .join("; "),
  };
}

/**
 * One event per new verdict: Ready transitions, and Degraded ones whose reason Ready
 * does not already tell. Unchanged conditions emit nothing (no writes when converged).
 */
export function conditionEvents(
  before: readonly Condition[],
  after: readonly Condition[],
): EventInput[] {
  const out: EventInput[] = [];
  const changed = (c: Condition) => {
    const prev = before.find((b) => b.type === c.type);
    return prev === undefined || prev.reason !== c.reason || prev.status !== c.status;
  };
  const ready = after.find((c) => c.type === "Ready");
  const degraded = after.find((c) => c.type === "Degraded");
  // Loading is the normal path, not a decision or a failure: no event for it.
  if (ready !== undefined && changed(ready) && ready.reason !== "ModelLoading") {
    const bad = ready.status !== "True";
    out.push({
      type: bad || degraded?.status === "True" ? "Warning" : "Normal",
      reason: ready.reason,
      action: `Ready${ready.status}`,
      note: ready.message,
    });
  }
  if (
    degraded !== undefined &&
    degraded.status === "True" &&
    changed(degraded) &&
    degraded.reason !== ready?.reason
  ) {
    out.push({
      type: "Warning",
      reason: degraded.reason,
      action: "DegradedTrue",
      note: degraded.message,
    });
  }
  return out;
}
