/**
 * reconcile(key): re-read the world for one MistralSmallDeployment and converge it.
 * Level-triggered: nothing here depends on which event caused the call.
 *
 * A thin executor around the pure planReconcile (reconcile-plan.ts): observe() copies what the
 * informer caches and memos hold into a plain value, the plan says what to write, and execute()
 * writes it (server-side apply with our field manager, deletes, the finalizer, status only
 * when it changed, events) and records the memos. Reads come from the caches; the only
 * requests are writes.
 */
import type { Logger } from "pino";
import { API_VERSION, KIND } from "../api/schema.ts";
import { objectKey } from "../kube/informer.ts";
import { ApiError, RESOURCES, type KubeClient, type KubeObject } from "../kube/client.ts";
import type { Manifest } from "../render/index.ts";
import { OWNER_UID_LABEL } from "../render/names.ts";
import { OWNED_KINDS } from "../render/owned.ts";
import type { EventRecorder } from "./events.ts";
import { fieldManagerFor, releaseUnusedCaches } from "./model-cache.ts";
import {
  FINALIZER,
  appliedEvent,
  planReconcile,
  type AppliedMemo,
  type ApplyStep,
  type DeleteStep,
  type LogLine,
  type Observed,
  type PatchStep,
  type ReconcilePlan,
  type StatusMemo,
  type WriteFailure,
} from "./reconcile-plan.ts";
import type { KarpenterPodEvent, NodeClaimView, PodView } from "./status.ts";
import { podsOfResource, type SlimEvent, type SlimPod } from "./cached.ts";
import type { MistralSmallDeploymentObject, NodeClaim } from "../kube/objects.ts";

export { FINALIZER, conditionEvents, memoKeyOf, type StatusMemo } from "./reconcile-plan.ts";

export interface Cache<T extends KubeObject> {
  get(key: string): T | undefined;
  list(): T[];
}

export interface ReconcilerDeps {
  readonly client: KubeClient;
  readonly log: Logger;
  readonly events: EventRecorder;
  readonly now: () => Date;
  /** The renderer (default renderDesired); tests stand in a later release's defaults. */
  readonly render?: Observed["render"];
  /** Our last status write per key, newer than the cache until its watch event arrives. */
  readonly statusMemo?: Map<string, StatusMemo>;
  /** Digest and resulting resourceVersion of our last apply per object. */
  readonly appliedMemo?: Map<string, AppliedMemo>;
  readonly caches: {
    readonly msd: Cache<MistralSmallDeploymentObject>;
    readonly pods: Cache<SlimPod>;
    /**
     * One cache per owned kind (OWNED_KINDS), by kind; absent when its optional CRD is not
     * installed. Read generically here; the plan reads a kind typed by its resource (ownedOf).
     */
    readonly owned: ReadonlyMap<string, Cache<KubeObject>>;
    /** Karpenter NodeClaims of our pools (absent without the CRDs). */
    readonly nodeClaims?: Cache<NodeClaim> | undefined;
    /** core/v1 Events written by Karpenter (source=karpenter). */
    readonly karpenterEvents?: Cache<SlimEvent> | undefined;
  };
}

export interface ReconcileResult {
  requeueAfterMs?: number;
}

export class ReconcileError extends Error {
  override name = "ReconcileError";
}

/** A write the API server did not take; `cause` is its answer. */
export class WriteError extends ReconcileError {
  override name = "WriteError";
  override readonly cause: ApiError;
  constructor(what: string, cause: ApiError) {
    super(`${what}: ${cause.message}`, { cause });
    this.cause = cause;
  }
}

/**
 * The API server failed or was busy (no connection, 5xx, 429) or our view was stale (409):
 * the same write can succeed later, so the work queue retries the key with backoff.
 */
export class TransientApiError extends WriteError {
  override name = "TransientApiError";
}

/** Refused for good (403, 404, 422 ...): status says so; retrying cannot help until something changes. */
export class WriteRefusedError extends WriteError {
  override name = "WriteRefusedError";
}

/**
 * A server-side dry run refused a rendered object: it would be refused for real, so nothing of
 * the set is applied (no Deployment waiting on a claim that can never exist).
 */
export class RenderRejectedError extends ApiError {
  override name = "RenderRejectedError";
}

export function isTransient(err: ApiError): boolean {
  return err.status === 0 || err.status >= 500 || err.status === 409 || err.status === 429;
}

/** One API write; its failure typed by whether a retry can help. */
async function write<T>(what: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    throw isTransient(err) ? new TransientApiError(what, err) : new WriteRefusedError(what, err);
  }
}

export async function reconcile(key: string, deps: ReconcilerDeps): Promise<ReconcileResult> {
  const observed = observe(key, deps);
  if (observed === undefined) return {}; // gone: owner references let the garbage collector finish
  const log = deps.log.child({ msd: key, generation: observed.msd.metadata.generation });
  return execute(planReconcile(observed), observed, deps, log);
}

// ---- Observe: the caches and memos as a plain value ------------------------------------------

export function observe(key: string, deps: ReconcilerDeps): Observed | undefined {
  const msd = deps.caches.msd.get(key);
  if (msd === undefined) return undefined;
  const pods = podsOf(deps, msd);
  return {
    now: deps
      .now()
      .toISOString()
      .replace(/\.\d+Z$/, "Z"),
    msd,
    owned: ownedObjects(deps, msd),
    missingCrds: new Set(
      OWNED_KINDS.filter(
        (k) => k.optionalCrd !== undefined && !deps.caches.owned.has(k.resource.kind),
      ).map((k) => k.resource.kind),
    ),
    pods,
    nodeClaims: claimsOf(deps, msd.metadata.uid!),
    karpenterEvents: karpenterPodEvents(deps, msd, pods),
    appliedMemo: deps.appliedMemo ?? new Map(),
    statusMemo: deps.statusMemo?.get(key),
    render: deps.render,
    managedPods: deps.caches.pods
      .list()
      .filter((p) => p.metadata.namespace === msd.metadata.namespace),
  };
}

/** Every owned kind's cached objects in the resource's namespace (all of a cluster-scoped kind). */
function ownedObjects(
  deps: ReconcilerDeps,
  msd: MistralSmallDeploymentObject,
): Map<string, ReadonlyMap<string, KubeObject>> {
  const out = new Map<string, ReadonlyMap<string, KubeObject>>();
  for (const k of OWNED_KINDS) {
    const cache = deps.caches.owned.get(k.resource.kind);
    if (cache === undefined) continue;
    const here = cache
      .list()
      .filter((o) => !k.resource.namespaced || o.metadata.namespace === msd.metadata.namespace);
    out.set(k.resource.kind, new Map(here.map((o) => [objectKey(o), o])));
  }
  return out;
}

function podsOf(deps: ReconcilerDeps, msd: MistralSmallDeploymentObject): PodView[] {
  return podsOfResource(deps.caches.pods.list(), msd);
}

const INSTANCE_TYPE_LABEL = "node.kubernetes.io/instance-type";

/** NodeClaims carry the pool template's owner-uid label, so they are found after the pool is gone. */
function claimsOf(deps: ReconcilerDeps, uid: string): NodeClaimView[] {
  return (deps.caches.nodeClaims?.list() ?? [])
    .filter((c) => c.metadata.labels?.[OWNER_UID_LABEL] === uid)
    .map((c) => {
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

function karpenterPodEvents(
  deps: ReconcilerDeps,
  msd: MistralSmallDeploymentObject,
  pods: readonly PodView[],
): KarpenterPodEvent[] {
  const names = new Set(pods.map((p) => p.metadata.name));
  return (deps.caches.karpenterEvents?.list() ?? []).flatMap((e): KarpenterPodEvent[] => {
    const o = e.involvedObject;
    if (o?.kind !== "Pod" || o.namespace !== msd.metadata.namespace || !names.has(o.name ?? ""))
      return [];
    const time = e.lastTimestamp ?? e.eventTime ?? e.firstTimestamp ?? "";
    return [{ pod: o.name!, reason: e.reason ?? "", message: e.message ?? "", time }];
  });
}

// ---- Execute: the plan's writes, in order ------------------------------------------------------

/** One pass: who we write for, with what, logging where. */
interface Pass {
  readonly owner: MistralSmallDeploymentObject;
  readonly deps: ReconcilerDeps;
  readonly log: Logger;
}

async function execute(
  plan: ReconcilePlan,
  o: Observed,
  deps: ReconcilerDeps,
  log: Logger,
): Promise<ReconcileResult> {
  const pass: Pass = { owner: o.msd, deps, log };
  writeLog(log, plan.log);
  if (plan.finalizer === "add") {
    await patchFinalizers([...(o.msd.metadata.finalizers ?? []), FINALIZER], pass);
    log.info("added finalizer");
    return {};
  }
  const outcome = await performWrites(plan, pass);
  // A failed write changes what status says: plan again with the API server's answer.
  const final =
    outcome.failure === undefined ? plan : planReconcile({ ...o, writeFailure: outcome.failure });
  await writeStatus(final, pass);
  if (final.finalizer === "remove") {
    await patchFinalizers(
      (o.msd.metadata.finalizers ?? []).filter((f) => f !== FINALIZER),
      pass,
    );
    log.info("cleanup done; finalizer removed");
  }
  if (outcome.retry !== undefined) throw outcome.retry;
  return final.requeueAfter === undefined ? {} : { requeueAfterMs: final.requeueAfter };
}

function writeLog(log: Logger, lines: readonly LogLine[]): void {
  for (const l of lines) log[l.level](l.fields ?? {}, l.msg);
}

interface WriteOutcome {
  /** What status reports (converging passes only). */
  readonly failure?: WriteFailure;
  /** Thrown once status says so: the queue retries with backoff. */
  readonly retry?: TransientApiError;
}

/**
 * A converging pass reports a dry-run refusal or a failed write in status (and retries the
 * transient ones); a deletion only retries: its failures are thrown as they are.
 */
async function performWrites(plan: ReconcilePlan, pass: Pass): Promise<WriteOutcome> {
  if (plan.phase === "finalize") {
    await writeObjects(plan, pass);
    return {};
  }
  try {
    const refused = await writeObjects(plan, pass);
    if (refused === undefined) return {};
    pass.log.warn(
      { err: refused },
      "a rendered object is refused by the API server; nothing applied",
    );
    return { failure: { kind: "rejected", message: refused.message } };
  } catch (err) {
    if (!(err instanceof WriteError)) throw err;
    pass.log.error({ err }, "apply failed");
    return {
      failure: { kind: "failed", message: err.cause.message },
      ...(err instanceof TransientApiError ? { retry: err } : {}),
    };
  }
}

/** Patches, then the dry run, then the applies and deletes; a dry-run refusal is returned. */
async function writeObjects(
  plan: ReconcilePlan,
  pass: Pass,
): Promise<RenderRejectedError | undefined> {
  await patchForeignEntries(plan.patch, pass);
  const refused = await dryRunAll(plan.apply, pass.deps);
  if (refused !== undefined) return refused;
  for (const step of plan.apply) {
    for (const e of step.events) {
      const where = { kind: step.object.kind, name: step.object.metadata.name };
      pass.log.warn({ ...where, note: e.note }, e.reason);
      pass.deps.events.emit(pass.owner, e);
    }
  }
  await applyAll(plan.apply, pass);
  await deleteAll(plan.delete, pass);
  if (plan.releaseCachesBut !== undefined) await releaseCaches(plan.releaseCachesBut, pass);
  return undefined;
}

/** The model caches of earlier revisions, once nothing desires them (model-cache.ts). */
async function releaseCaches(desired: readonly Manifest[], pass: Pass): Promise<void> {
  const { owner, deps } = pass;
  const released = await write(`releasing the unused model caches of ${owner.metadata.name}`, () =>
    releaseUnusedCaches(
      desired,
      owner.metadata.uid!,
      owner.metadata.namespace!,
      deps.caches.owned,
      deps.client,
    ),
  );
  if (released.length > 0) pass.log.info({ released }, "released model caches no longer used");
}

async function patchFinalizers(finalizers: string[], { owner, deps }: Pass): Promise<void> {
  await write(`patching the finalizers of ${owner.metadata.name}`, () =>
    deps.client.mergePatch(RESOURCES.msd, owner.metadata.name, owner.metadata.namespace, {
      metadata: { finalizers, resourceVersion: owner.metadata.resourceVersion },
    }),
  );
}

async function patchForeignEntries(steps: readonly PatchStep[], pass: Pass): Promise<void> {
  for (const s of steps) {
    await write(`patching ${s.resource.kind} ${s.name}`, () =>
      pass.deps.client.mergePatch(s.resource, s.name, s.namespace, s.patch),
    );
    pass.log.warn(
      { kind: s.resource.kind, name: s.name, removed: s.removed },
      "removed list entries added by hand",
    );
    pass.deps.events.emit(pass.owner, s.event);
  }
}

/** Refusals of Kubernetes validation: the spec must change, retrying cannot help. */
function isRefusal(err: unknown): err is ApiError {
  return err instanceof ApiError && (err.status === 422 || err.status === 400);
}

/** "PersistentVolumeClaim ml/x-model-cache: spec.resources.requests[storage]: ..." */
function refusalText(step: ApplyStep, err: ApiError): string {
  const obj = step.object;
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

function applyObject(step: ApplyStep, deps: ReconcilerDeps, dryRun: boolean) {
  return deps.client.apply(
    step.resource,
    step.object,
    fieldManagerFor(step.object),
    dryRun ? { dryRun: true } : undefined,
  );
}

/**
 * Every changed object through the API server's own validation and admission (dryRun=All)
 * before the first real write; one refusal and none is applied. Other failures are thrown typed.
 */
async function dryRunAll(
  steps: readonly ApplyStep[],
  deps: ReconcilerDeps,
): Promise<RenderRejectedError | undefined> {
  const results = await Promise.allSettled(
    steps.map((s) =>
      write(`dry-run apply of ${s.object.kind} ${s.object.metadata.name}`, () =>
        applyObject(s, deps, true),
      ),
    ),
  );
  const refused: string[] = [];
  let firstRefusal: ApiError | undefined;
  results.forEach((r, i) => {
    if (r.status === "fulfilled") return;
    const answer: unknown = r.reason instanceof WriteError ? r.reason.cause : r.reason;
    if (!isRefusal(answer)) throw r.reason; // transient: the caller retries with backoff
    firstRefusal ??= answer;
    refused.push(refusalText(steps[i]!, answer));
  });
  if (firstRefusal === undefined) return undefined;
  return new RenderRejectedError(
    firstRefusal.status,
    firstRefusal.reason,
    `the API server refuses ${refused.join("; ")}; nothing was applied`,
    firstRefusal.body,
    { cause: firstRefusal },
  );
}

/** Independent objects: applied together; each success is memoized, the first failure thrown. */
async function applyAll(steps: readonly ApplyStep[], { owner, deps, log }: Pass): Promise<void> {
  const results = await Promise.allSettled(
    steps.map(async (s) => {
      const applied = await write(`applying ${s.object.kind} ${s.object.metadata.name}`, () =>
        applyObject(s, deps, false),
      );
      deps.appliedMemo?.set(s.memoKey, {
        digest: s.digest,
        resourceVersion: applied.metadata.resourceVersion ?? "",
      });
      return s;
    }),
  );
  const done = results.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
  const event = appliedEvent(done);
  if (event !== undefined) {
    const kinds = (creates: boolean) =>
      done.filter((s) => s.creates === creates).map((s) => s.object.kind);
    log.info({ created: kinds(true), updated: kinds(false) }, "applied");
    deps.events.emit(owner, event);
  }
  const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failed !== undefined) throw failed.reason;
}

async function deleteAll(steps: readonly DeleteStep[], { owner, deps, log }: Pass): Promise<void> {
  for (const s of steps) {
    await write(`deleting ${s.resource.kind} ${s.name}`, () =>
      deps.client.delete(s.resource, s.name, s.namespace, { uid: s.uid }),
    );
    writeLog(log, [s.log]);
    if (s.event !== undefined) deps.events.emit(owner, s.event);
  }
}

/** The planned status (only a changed one is planned), its memo and its condition events. */
async function writeStatus(plan: ReconcilePlan, { owner, deps, log }: Pass): Promise<void> {
  const status = plan.status;
  if (status === undefined) return;
  const { name, namespace } = owner.metadata;
  const written = await write(`writing the status of ${name}`, () =>
    deps.client.mergePatch<MistralSmallDeploymentObject>(
      RESOURCES.msd,
      name,
      namespace,
      { status },
      "status",
    ),
  );
  deps.statusMemo?.set(objectKey(owner), {
    uid: owner.metadata.uid!,
    resourceVersion: written.metadata.resourceVersion ?? "",
    status: written.status,
  });
  for (const e of plan.events) deps.events.emit(owner, e);
  log.info(
    {
      conditions: Object.fromEntries(
        (status.conditions ?? []).map((c) => [c.type, `${c.status}/${c.reason}`]),
      ),
      tp: status.plan?.tensorParallelSize,
    },
    "status updated",
  );
}

export { API_VERSION, KIND };
