/**
 * reconcile(key): re-read the world for one MistralSmallDeployment and converge it.
 * Level-triggered: nothing here depends on which event caused the call.
 * Reads come from the informer caches; the only requests are writes, and a
 * write happens only when the live object differs from the desired one.
 */
import type { Logger } from "pino";
import { API_VERSION, KIND, type MistralSmallDeployment, type Status } from "../api/schema.ts";
import { parseResource, ValidationError } from "../api/validate.ts";
import { plan as planFor, type Plan } from "../planner/plan.ts";
import { VLLM_PORT } from "../engine/command.ts";
import { renderDesired, type Manifest } from "../render/index.ts";
import { OWNED_KINDS, ownedKind } from "../render/owned.ts";
import { asStored, securityDrift } from "../render/security.ts";
import { foreignEntries } from "./foreign.ts";
import { OWNER_UID_LABEL, labelSelectorString, serviceUrl, shortHash } from "../render/names.ts";
import {
  ApiError,
  RESOURCES,
  resourceFor,
  type KubeClient,
  type KubeObject,
  type ResourceType,
} from "../kube/client.ts";
import {
  REASONS,
  computeStatus,
  describeClaim,
  isSubset,
  clientAccess,
  jsonEqual,
  type CapacityView,
  type ClaimView,
  type Condition,
  type DeploymentView,
  type KarpenterPodEvent,
  type NodeClaimView,
  type PodView,
} from "./status.ts";
import type { EventInput, EventRecorder } from "./events.ts";
import * as modelCache from "./model-cache.ts";

export const FINALIZER = "serving.mistralsmall.dev/cleanup";
/** While replicas load, look again even if no event arrives. */
const LOADING_RECHECK_MS = 30_000;

export interface Cache<T extends KubeObject> {
  get(key: string): T | undefined;
  list(): T[];
}

export interface ReconcilerDeps {
  readonly client: KubeClient;
  readonly log: Logger;
  readonly events: EventRecorder;
  readonly now: () => Date;
  /** Our last status write per key, newer than the cache until its watch event arrives. */
  readonly statusMemo?: Map<string, StatusMemo>;
  /** Digest and resulting resourceVersion of our last apply per object. */
  readonly appliedMemo?: Map<string, { digest: string; resourceVersion: string }>;
  readonly caches: {
    readonly msd: Cache<KubeObject>;
    readonly pods: Cache<KubeObject>;
    /** One cache per owned kind (OWNED_KINDS), by kind; absent when its optional CRD is not installed. */
    readonly owned: ReadonlyMap<string, Cache<KubeObject>>;
    /** Karpenter NodeClaims of our pools (absent without the CRDs). */
    readonly nodeClaims?: Cache<KubeObject> | undefined;
    /** core/v1 Events written by Karpenter (source=karpenter). */
    readonly karpenterEvents?: Cache<KubeObject> | undefined;
  };
}

export interface ReconcileResult {
  requeueAfterMs?: number;
}

export class ReconcileError extends Error {
  override name = "ReconcileError";
}

/** The spec needs a kind whose CRD is not installed (Karpenter, KEDA): nothing is applied. */
export class CrdMissingError extends Error {
  override name = "CrdMissingError";
  readonly kind: string;
  constructor(kind: string, message: string) {
    super(message);
    this.kind = kind;
  }
}

/**
 * A server-side dry run refused a rendered object: it would be refused for real, so nothing of
 * the set is applied (no Deployment waiting on a claim that can never exist).
 */
export class RenderRejectedError extends ApiError {
  override name = "RenderRejectedError";
}

type RawMsd = KubeObject & { spec?: unknown; status?: Status };

function cacheKey(obj: { metadata: { name: string; namespace?: string } }): string {
  return obj.metadata.namespace === undefined
    ? obj.metadata.name
    : `${obj.metadata.namespace}/${obj.metadata.name}`;
}

function cacheFor(deps: ReconcilerDeps, kind: string): Cache<KubeObject> | undefined {
  return deps.caches.owned.get(kind);
}

/** The API type of a rendered object: from the owned-kinds table. */
function resourceOf(obj: Manifest): ResourceType {
  return ownedKind(obj.kind)?.resource ?? resourceFor(obj.apiVersion, obj.kind);
}

function ownedNodePools(deps: ReconcilerDeps, uid: string): KubeObject[] {
  return (cacheFor(deps, "NodePool")?.list() ?? []).filter(
    (np) => np.metadata.labels?.[OWNER_UID_LABEL] === uid,
  );
}

function podsOf(deps: ReconcilerDeps, msd: RawMsd): PodView[] {
  return deps.caches.pods
    .list()
    .filter(
      (p) =>
        p.metadata.namespace === msd.metadata.namespace &&
        p.metadata.labels?.["app.kubernetes.io/instance"] === msd.metadata.name &&
        p.metadata.labels?.["app.kubernetes.io/name"] === "mistral-small",
    ) as unknown as PodView[];
}

const INSTANCE_TYPE_LABEL = "node.kubernetes.io/instance-type";

type RawNodeClaim = KubeObject & {
  status?: { nodeName?: string; conditions?: { type: string; status: string }[] };
};

/** NodeClaims carry the pool template's owner-uid label, so they are found after the pool is gone. */
function claimsOf(deps: ReconcilerDeps, uid: string): NodeClaimView[] {
  return (deps.caches.nodeClaims?.list() ?? [])
    .filter((c) => c.metadata.labels?.[OWNER_UID_LABEL] === uid)
    .map((raw) => {
      const c = raw as RawNodeClaim;
      const labels = c.metadata.labels ?? {};
      const opt = (k: string, v: string | undefined) => (v === undefined ? {} : { [k]: v });
      return {
        name: c.metadata.name,
        ...opt("instanceType", labels[INSTANCE_TYPE_LABEL]),
        ...opt("capacityType", labels["karpenter.sh/capacity-type"]),
        ...opt("zone", labels["topology.kubernetes.io/zone"]),
        ...opt("nodeName", c.status?.nodeName),
        initialized:
          c.status?.conditions?.some((x) => x.type === "Initialized" && x.status === "True") ??
          false,
        deleting: c.metadata.deletionTimestamp !== undefined,
      };
    })
    .sort((a, b) => a.name.localeCompare(b.name));
}

type RawEvent = KubeObject & {
  involvedObject?: { kind?: string; name?: string; namespace?: string };
  reason?: string;
  message?: string;
  lastTimestamp?: string;
  eventTime?: string;
  firstTimestamp?: string;
};

function karpenterPodEvents(deps: ReconcilerDeps, msd: RawMsd, pods: readonly PodView[]) {
  const names = new Set(pods.map((p) => p.metadata.name));
  return (deps.caches.karpenterEvents?.list() ?? []).flatMap((raw): KarpenterPodEvent[] => {
    const e = raw as RawEvent;
    const o = e.involvedObject;
    if (o?.kind !== "Pod" || o.namespace !== msd.metadata.namespace || !names.has(o.name ?? ""))
      return [];
    const time = e.lastTimestamp ?? e.eventTime ?? e.firstTimestamp ?? "";
    return [{ pod: o.name!, reason: e.reason ?? "", message: e.message ?? "", time }];
  });
}

function capacityOf(
  deps: ReconcilerDeps,
  msd: MistralSmallDeployment | undefined,
  raw: RawMsd,
  pods: readonly PodView[],
): CapacityView | undefined {
  if (msd?.spec.nodePool.provider !== "karpenter") return undefined;
  const pool = ownedNodePools(deps, raw.metadata.uid!)[0];
  if (pool === undefined) return undefined;
  return {
    nodePool: pool.metadata.name,
    nodeClaims: claimsOf(deps, raw.metadata.uid!),
    events: karpenterPodEvents(deps, raw, pods),
  };
}

function ownedBy(obj: KubeObject, uid: string): boolean {
  return (obj.metadata.ownerReferences ?? []).some((o) => o.uid === uid && o.controller === true);
}

export async function reconcile(key: string, deps: ReconcilerDeps): Promise<ReconcileResult> {
  const raw = deps.caches.msd.get(key) as RawMsd | undefined;
  if (raw === undefined) return {}; // gone: owner references let the garbage collector finish
  const log = deps.log.child({ msd: key, generation: raw.metadata.generation });
  const uid = raw.metadata.uid!;

  if (raw.metadata.deletionTimestamp !== undefined) return finalize(raw, deps, log);

  let msd: MistralSmallDeployment | undefined;
  let invalid: string | undefined;
  try {
    msd = parseResource(raw);
  } catch (err) {
    if (!(err instanceof ValidationError)) throw err;
    invalid = err.problems.map((p) => `${p.path}: ${p.message}`).join("; ");
    log.warn({ problems: err.problems }, "spec is invalid");
  }

  const needsFinalizer =
    msd?.spec.nodePool.provider === "karpenter" || ownedNodePools(deps, uid).length > 0;
  if (needsFinalizer && !(raw.metadata.finalizers ?? []).includes(FINALIZER)) {
    await deps.client.mergePatch(RESOURCES.msd, raw.metadata.name, raw.metadata.namespace, {
      metadata: {
        finalizers: [...(raw.metadata.finalizers ?? []), FINALIZER],
        resourceVersion: raw.metadata.resourceVersion,
      },
    });
    log.info("added finalizer");
    // The patch produces a new event; the next pass continues from the updated object.
    return {};
  }

  const plan = msd === undefined ? undefined : planFor(msd.spec);
  let applyError: string | undefined;
  let crdMissing: string | undefined;
  let rejected: string | undefined;
  let retry: ApiError | undefined;
  let desiredTemplateHash: string | undefined;
  // Model cache (model-cache.ts): no vLLM Deployment is applied until the cache is complete.
  const cache =
    msd === undefined || plan === undefined || !plan.feasible
      ? undefined
      : modelCache.cachePhaseOf(msd, plan, cacheFor(deps, "Job"), deps.caches.pods.list());
  if (msd !== undefined && plan !== undefined && plan.feasible) {
    const desired = renderDesired({ ...msd, metadata: { ...msd.metadata, uid } }, plan);
    desiredTemplateHash = desired.templateHash;
    const objects = modelCache.gateWorkload(desired.objects, cache!);
    try {
      await applyDesired(objects, deps, log, raw);
      await pruneUndesired(objects, deps, log, raw, msd);
      // The old revision's cache goes only once the new one is complete (the old pods serve on).
      const released = !modelCache.workloadAllowed(cache!)
        ? []
        : await modelCache.releaseUnusedCaches(
            objects,
            uid,
            msd.metadata.namespace,
            deps.caches.owned,
            deps.client,
          );
      if (released.length > 0) log.info({ released }, "released model caches no longer used");
    } catch (err) {
      if (err instanceof CrdMissingError) {
        crdMissing = err.message;
        log.warn({ kind: err.kind }, err.message);
      } else if (err instanceof RenderRejectedError) {
        rejected = err.message;
        log.warn({ err }, "a rendered object is refused by the API server; nothing applied");
      } else if (err instanceof ApiError) {
        applyError = err.message;
        log.error({ err }, "apply failed");
        // Say so in status first; transient failures then go back to the queue with backoff.
        if (err.status === 0 || err.status >= 500 || err.status === 409 || err.status === 429) {
          retry = err;
        }
      } else {
        throw err;
      }
    }
  } else if (plan !== undefined && !plan.feasible) {
    log.info({ reasons: plan.reasons }, "plan is infeasible; no new workload");
  }

  const deployment = cacheFor(deps, "Deployment")?.get(key) as
    | (KubeObject & DeploymentView)
    | undefined;
  const owned = deployment !== undefined && ownedBy(deployment, uid) ? deployment : undefined;
  const pods = podsOf(deps, raw);
  const capacity = capacityOf(deps, msd, raw, pods);
  const claimName =
    msd === undefined || plan === undefined ? undefined : modelCache.weightsClaimName(msd, plan);
  const cacheClaim =
    claimName === undefined
      ? undefined
      : (cacheFor(deps, "PersistentVolumeClaim")?.get(`${raw.metadata.namespace}/${claimName}`) as
          | (KubeObject & ClaimView)
          | undefined);
  const computed = computeStatus(
    {
      generation: raw.metadata.generation ?? 0,
      desiredReplicas: msd?.spec.replicas ?? owned?.spec?.replicas ?? 0,
      ...(invalid === undefined ? {} : { invalid }),
      ...(plan === undefined ? {} : { plan }),
      ...(owned === undefined ? {} : { deployment: owned, deploymentName: owned.metadata.name }),
      ...(cacheClaim === undefined ? {} : { cacheClaim }),
      ...(desiredTemplateHash === undefined ? {} : { desiredTemplateHash }),
      pods,
      ...(applyError === undefined ? {} : { applyError }),
      ...(crdMissing === undefined ? {} : { crdMissing }),
      ...(capacity === undefined ? {} : { capacity }),
      ...(rejected === undefined ? {} : { rejected }),
      selector: msd === undefined ? "" : labelSelectorString(msd),
      endpoint: msd === undefined ? "" : serviceUrl(msd, VLLM_PORT),
      ...(msd === undefined ? {} : { access: clientAccess(msd) }),
    },
    raw.status,
    deps
      .now()
      .toISOString()
      .replace(/\.\d+Z$/, "Z"),
  );
  const status =
    cache === undefined
      ? computed
      : modelCache.withCacheConditions(computed, cache, {
          generation: raw.metadata.generation ?? 0,
          previous: raw.status,
          now: deps
            .now()
            .toISOString()
            .replace(/\.\d+Z$/, "Z"),
          deploymentExists: owned !== undefined,
        });
  await writeStatus(raw, status, deps, log, plan);
  if (retry !== undefined)
    throw new ReconcileError(`applying ${key} failed; retrying`, { cause: retry });
  const ready = status.conditions?.find((c) => c.type === "Ready");
  const progressing = status.conditions?.find((c) => c.type === "Progressing");
  return progressing?.status === "True" || ready?.status !== "True"
    ? { requeueAfterMs: LOADING_RECHECK_MS }
    : {};
}

async function applyDesired(
  desired: readonly Manifest[],
  deps: ReconcilerDeps,
  log: Logger,
  owner: RawMsd,
): Promise<void> {
  const changed = desired.filter((obj) => needsApply(obj, deps));
  for (const obj of changed) {
    const crd = ownedKind(obj.kind)?.optionalCrd;
    if (crd !== undefined && cacheFor(deps, obj.kind) === undefined) {
      throw new CrdMissingError(obj.kind, crd.missing);
    }
  }
  await removeForeignEntries(changed, deps, log, owner);
  await dryRunAll(changed, deps);
  reportSecurityDrift(changed, deps, log, owner);
  // Independent objects: apply them together.
  const results = await Promise.allSettled(
    changed.map(async (obj) => {
      const applied = await deps.client.apply(
        resourceOf(obj),
        obj as unknown as KubeObject,
        modelCache.fieldManagerFor(obj),
      );
      deps.appliedMemo?.set(memoKeyOf(obj), {
        digest: digestOf(obj),
        resourceVersion: applied.metadata.resourceVersion ?? "",
      });
      return obj;
    }),
  );
  const done = results.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
  if (done.length > 0) {
    const created = done.filter((o) => cacheFor(deps, o.kind)?.get(cacheKey(o)) === undefined);
    const updated = done.filter((o) => !created.includes(o));
    log.info(
      { created: created.map((o) => o.kind), updated: updated.map((o) => o.kind) },
      "applied",
    );
    // One event per apply pass, not one per object: events are writes too.
    deps.events.emit(owner, {
      type: "Normal",
      reason: updated.length === 0 ? "Created" : "Updated",
      action: "Apply",
      note: [
        created.length > 0
          ? `created ${created.map((o) => `${o.kind} ${o.metadata.name}`).join(", ")}`
          : "",
        updated.length > 0
          ? `updated ${updated.map((o) => `${o.kind} ${o.metadata.name}`).join(", ")}`
          : "",
      ]
        .filter((x) => x !== "")
        .join("; "),
    });
  }
  const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failed !== undefined) throw failed.reason;
}

/**
 * Keyed-list entries added by hand to our Service or Deployment go first (see foreign.ts): the
 * apply cannot remove them, and they may make the object invalid or the pods unsafe.
 */
async function removeForeignEntries(
  changed: readonly Manifest[],
  deps: ReconcilerDeps,
  log: Logger,
  owner: RawMsd,
): Promise<void> {
  for (const obj of changed) {
    const live = cacheFor(deps, obj.kind)?.get(cacheKey(obj));
    const foreign = live === undefined ? undefined : foreignEntries(obj.kind, obj, live);
    if (live === undefined || foreign === undefined) continue;
    // Guarded by resourceVersion: a newer live object is looked at again on the next pass.
    await deps.client.mergePatch(resourceOf(obj), obj.metadata.name, obj.metadata.namespace, {
      ...foreign.patch,
      metadata: { resourceVersion: live.metadata.resourceVersion },
    });
    log.warn(
      { kind: obj.kind, name: obj.metadata.name, removed: foreign.removed },
      "removed list entries added by hand",
    );
    deps.events.emit(owner, {
      type: "Warning",
      reason: "ForeignEntriesRemoved",
      action: "Patch",
      note: `removed from ${obj.kind} ${obj.metadata.name} what the operator did not render: ${foreign.removed.join(", ")}`,
    });
  }
}

/** Refusals of Kubernetes validation: the spec must change, retrying cannot help. */
function isRefusal(err: unknown): err is ApiError {
  return err instanceof ApiError && (err.status === 422 || err.status === 400);
}

/** "PersistentVolumeClaim ml/x-model-cache: spec.resources.requests[storage]: ..." */
function refusalText(obj: Manifest, err: ApiError): string {
  const ns = obj.metadata.namespace === undefined ? "" : `${obj.metadata.namespace}/`;
  const st = err.body as
    | { message?: string; details?: { causes?: { field?: string; message?: string }[] } }
    | undefined;
  const causes = (st?.details?.causes ?? [])
    .map((c) => `${c.field === undefined ? "" : `${c.field}: `}${c.message ?? ""}`)
    .filter((c) => c !== "");
  const why = causes.length > 0 ? causes.join("; ") : (st?.message ?? err.message);
  return `${obj.kind} ${ns}${obj.metadata.name}: ${why}`;
}

/**
 * Every changed object through the API server's own validation and admission (dryRun=All)
 * before the first real write; one refusal and none is applied.
 */
async function dryRunAll(changed: readonly Manifest[], deps: ReconcilerDeps): Promise<void> {
  const results = await Promise.allSettled(
    changed.map((obj) =>
      deps.client.apply(
        resourceOf(obj),
        obj as unknown as KubeObject,
        modelCache.fieldManagerFor(obj),
        {
          dryRun: true,
        },
      ),
    ),
  );
  const refused: string[] = [];
  let firstRefusal: ApiError | undefined;
  results.forEach((r, i) => {
    if (r.status === "fulfilled") return;
    if (!isRefusal(r.reason)) throw r.reason; // transient: the caller retries with backoff
    firstRefusal ??= r.reason;
    refused.push(refusalText(changed[i]!, r.reason));
  });
  if (firstRefusal !== undefined) {
    throw new RenderRejectedError(
      firstRefusal.status,
      firstRefusal.reason,
      `the API server refuses ${refused.join("; ")}; nothing was applied`,
      firstRefusal.body,
      { cause: firstRefusal },
    );
  }
}

/**
 * Hand edits of security fields in our pod template (hostNetwork, privileged, capabilities ...)
 * are applied back in this pass; say so, since someone made the workload less safe.
 */
function reportSecurityDrift(
  changed: readonly Manifest[],
  deps: ReconcilerDeps,
  log: Logger,
  owner: RawMsd,
): void {
  for (const obj of changed) {
    if (obj.kind !== "Deployment") continue;
    const live = cacheFor(deps, "Deployment")?.get(cacheKey(obj));
    if (live === undefined) continue;
    const drift = securityDrift(obj, live);
    if (drift.length === 0) continue;
    log.warn({ deployment: obj.metadata.name, drift }, "reverting security drift");
    deps.events.emit(owner, {
      type: "Warning",
      reason: "SecurityDriftReverted",
      action: "Apply",
      note: `reverted hand edits of Deployment ${obj.metadata.name}: ${drift.join("; ")}`,
    });
  }
}

export function memoKeyOf(obj: {
  kind?: string;
  metadata: { name: string; namespace?: string };
}): string {
  return `${obj.kind}/${cacheKey(obj)}`;
}

function digestOf(obj: Manifest): string {
  return shortHash(JSON.stringify(obj), 16);
}

/** Differs from the cache, and not merely because the cache lags behind our own last apply. */
function needsApply(obj: Manifest, deps: ReconcilerDeps): boolean {
  const live = cacheFor(deps, obj.kind)?.get(cacheKey(obj));
  const want = modelCache.comparableForApply(obj, live);
  if (live !== undefined && isSubset(obj.kind === "Deployment" ? asStored(want) : want, live)) {
    return false;
  }
  const memo = deps.appliedMemo?.get(memoKeyOf(obj));
  if (memo === undefined || memo.digest !== digestOf(obj)) return true;
  // The memo is dropped when the informer sees the object deleted (see the manager).
  return live !== undefined && !isNewer(memo.resourceVersion, live.metadata.resourceVersion);
}

async function pruneUndesired(
  desired: readonly Manifest[],
  deps: ReconcilerDeps,
  log: Logger,
  raw: RawMsd,
  msd: MistralSmallDeployment,
): Promise<void> {
  const uid = raw.metadata.uid!;
  const want = new Set(desired.map((o) => `${o.kind}/${o.metadata.name}`));
  // Cluster-scoped kinds cannot carry an owner reference to us: they carry our uid label.
  const ours = (o: KubeObject, namespaced: boolean) =>
    namespaced
      ? o.metadata.namespace === msd.metadata.namespace && ownedBy(o, uid)
      : o.metadata.labels?.[OWNER_UID_LABEL] === uid;
  const candidates = OWNED_KINDS.filter((k) => k.prune).flatMap((k) =>
    (cacheFor(deps, k.resource.kind)?.list() ?? [])
      .filter((o) => ours(o, k.resource.namespaced))
      .map((o) => [k.resource.kind, o] as [string, KubeObject]),
  );
  for (const [kind, obj] of candidates) {
    if (want.has(`${kind}/${obj.metadata.name}`) || obj.metadata.deletionTimestamp !== undefined)
      continue;
    const r = ownedKind(kind)!.resource;
    await deps.client.delete(r, obj.metadata.name, obj.metadata.namespace, {
      uid: obj.metadata.uid!,
    });
    log.info({ kind, name: obj.metadata.name }, "deleted object no longer desired");
    deps.events.emit(raw, {
      type: "Normal",
      reason: "Deleted",
      action: "Prune",
      note: `deleted ${kind} ${obj.metadata.name}: no longer desired`,
    });
  }
}

/**
 * Deletion with a Karpenter pool: the replicas go first (their pods carry
 * karpenter.sh/do-not-disrupt, which Karpenter's drain waits on, so nodes holding them never
 * terminate), then the NodePool (Karpenter's NodeClaims hang off it by owner reference).
 * The finalizer is released only once the pool and its NodeClaims are gone; until then the
 * status says what is still draining.
 */
async function finalize(raw: RawMsd, deps: ReconcilerDeps, log: Logger): Promise<ReconcileResult> {
  if (!(raw.metadata.finalizers ?? []).includes(FINALIZER)) return {};
  const uid = raw.metadata.uid!;
  const pools = ownedNodePools(deps, uid);
  const deployment = cacheFor(deps, "Deployment")?.get(cacheKey(raw));
  if (
    pools.length > 0 &&
    deployment !== undefined &&
    ownedBy(deployment, uid) &&
    deployment.metadata.deletionTimestamp === undefined
  ) {
    await deps.client.delete(
      RESOURCES.deployment,
      deployment.metadata.name,
      raw.metadata.namespace,
      {
        uid: deployment.metadata.uid!,
      },
    );
    log.info("deleting the Deployment first: do-not-disrupt pods would block Karpenter's drain");
  }
  for (const np of pools) {
    if (np.metadata.deletionTimestamp === undefined) {
      await deps.client.delete(RESOURCES.nodePool, np.metadata.name, undefined, {
        uid: np.metadata.uid!,
      });
      log.info({ nodePool: np.metadata.name }, "deleting NodePool before the resource goes away");
    }
  }
  const poolNames = pools.map((p) => p.metadata.name);
  const claims = claimsOf(deps, uid);
  if (pools.length > 0 || claims.length > 0) {
    await writeReleasingStatus(raw, deps, poolNames, claims);
    return { requeueAfterMs: 2000 };
  }
  await deps.client.mergePatch(RESOURCES.msd, raw.metadata.name, raw.metadata.namespace, {
    metadata: {
      finalizers: (raw.metadata.finalizers ?? []).filter((f) => f !== FINALIZER),
      resourceVersion: raw.metadata.resourceVersion,
    },
  });
  log.info("cleanup done; finalizer removed");
  return {};
}

async function writeReleasingStatus(
  raw: RawMsd,
  deps: ReconcilerDeps,
  pools: readonly string[],
  claims: readonly NodeClaimView[],
): Promise<void> {
  const message =
    claims.length === 0
      ? `waiting for NodePool ${pools.join(", ")} to be deleted`
      : `waiting for Karpenter to terminate NodeClaim ${claims.map(describeClaim).join(", ")}`;
  const prev = (raw.status?.conditions ?? []).find((x) => x.type === "Ready");
  if (prev?.reason === REASONS.ReleasingNodes && prev.message === message) return;
  const now = deps
    .now()
    .toISOString()
    .replace(/\.\d+Z$/, "Z");
  const conditions = [
    {
      type: "Ready",
      status: "False",
      reason: REASONS.ReleasingNodes,
      message,
      observedGeneration: raw.metadata.generation ?? 0,
      lastTransitionTime: prev?.status === "False" ? prev.lastTransitionTime : now,
    },
    ...(raw.status?.conditions ?? []).filter((x) => x.type !== "Ready"),
  ];
  await deps.client.mergePatch(
    RESOURCES.msd,
    raw.metadata.name,
    raw.metadata.namespace,
    { status: { conditions } },
    "status",
  );
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

function isNewer(a: string, b: string | undefined): boolean {
  try {
    return b === undefined || BigInt(a) > BigInt(b);
  } catch {
    return false; // resource versions are opaque; when not numeric, trust the cache
  }
}

function lastKnownStatus(raw: RawMsd, deps: ReconcilerDeps): Status | undefined {
  const memo = deps.statusMemo?.get(cacheKey(raw));
  if (
    memo !== undefined &&
    memo.uid === raw.metadata.uid &&
    isNewer(memo.resourceVersion, raw.metadata.resourceVersion)
  ) {
    return memo.status;
  }
  return raw.status;
}

async function writeStatus(
  raw: RawMsd,
  status: Status,
  deps: ReconcilerDeps,
  log: Logger,
  plan: Plan | undefined,
): Promise<void> {
  const previous = lastKnownStatus(raw, deps);
  // status.scaling belongs to the autoscaler: neither compared nor written here.
  if (jsonEqual(status, { ...previous, scaling: undefined })) return;
  const written = await deps.client.mergePatch<RawMsd>(
    RESOURCES.msd,
    raw.metadata.name,
    raw.metadata.namespace,
    { status },
    "status",
  );
  deps.statusMemo?.set(cacheKey(raw), {
    uid: raw.metadata.uid!,
    resourceVersion: written.metadata.resourceVersion ?? "",
    status: written.status,
  });
  for (const e of conditionEvents(
    (previous?.conditions ?? []) as Condition[],
    (status.conditions ?? []) as Condition[],
  )) {
    deps.events.emit(raw, e);
  }
  log.info(
    {
      conditions: Object.fromEntries(
        (status.conditions ?? []).map((c) => [c.type, `${c.status}/${c.reason}`]),
      ),
      tp: plan?.tensorParallelSize,
    },
    "status updated",
  );
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

export { API_VERSION, KIND };
