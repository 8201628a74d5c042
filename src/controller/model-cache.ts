/**
 * The model cache as the reconciler sees it. Pure functions: the observed loader Job and its
 * pods -> the cache phase; the phase -> whether the vLLM Deployment may be applied and the
 * ModelCached condition. Plus the one write of its own: releasing a shared cache object this
 * resource no longer uses (its revision changed).
 */
import type { MistralSmallDeployment } from "../api/schema.ts";
import type { Plan } from "../planner/plan.ts";
import type { Manifest } from "../render/manifest.ts";
import {
  CACHE_KEY_LABEL,
  cacheIdentity,
  weightSource,
  type WeightSource,
} from "../render/model-cache.ts";
import type { InPlaceSource } from "../api/schema.ts";
import { FIELD_MANAGER } from "../render/names.ts";
import { OWNED_KINDS, ownedKind } from "../render/owned.ts";
import { apiVersionOf, type KubeClient, type KubeObject } from "../kube/client.ts";
import { objectKey } from "../kube/informer.ts";
import type { Job } from "../kube/objects.ts";
import type { SlimPod } from "./cached.ts";
import type { Reason } from "./status.ts";

export const MODEL_CACHED = "ModelCached";

export interface JobView {
  metadata: { name: string; uid?: string; deletionTimestamp?: string };
  status?: {
    startTime?: string;
    completionTime?: string;
    active?: number;
    failed?: number;
    succeeded?: number;
    conditions?: { type: string; status: string; reason?: string; message?: string }[];
  };
}

export interface LoaderPodView {
  metadata: { name: string; creationTimestamp?: string; labels?: Record<string, string> };
  status?: {
    phase?: string;
    startTime?: string;
    containerStatuses?: {
      name: string;
      state?: {
        running?: { startedAt?: string };
        waiting?: { reason?: string; message?: string };
        terminated?: { exitCode?: number; reason?: string; message?: string };
      };
    }[];
  };
}

export type FailureReason =
  | "Unauthorized"
  | "Forbidden"
  | "NotFound"
  | "NoSpace"
  | "VerifyFailed"
  | "DownloadFailed"
  | "LoaderFailed";

export type CachePhase =
  | { readonly phase: "InPlace"; readonly source: InPlaceSource }
  | { readonly phase: "Pending"; readonly message: string }
  | { readonly phase: "Downloading"; readonly since?: string; readonly expectedBytes: number }
  | {
      readonly phase: "Complete";
      readonly revision: string;
      readonly bytes?: number;
      readonly commit?: string;
    }
  | { readonly phase: "Failed"; readonly reason: FailureReason; readonly message: string };

/** The loader's last line, written to its termination message (src/render/loader-script.ts). */
interface LoaderVerdict {
  phase?: string;
  reason?: string;
  message?: string;
  bytes?: number;
  commit?: string;
}

function parseVerdict(text: string | undefined): LoaderVerdict | undefined {
  if (text === undefined || text.trim() === "") return undefined;
  const last = text.trim().split("\n").pop()!;
  try {
    const v = JSON.parse(last) as unknown;
    return typeof v === "object" && v !== null ? (v as LoaderVerdict) : undefined;
  } catch {
    return undefined; // FallbackToLogsOnError: a log tail, not our JSON; quoted as it is
  }
}

function terminated(pod: LoaderPodView) {
  return pod.status?.containerStatuses?.find((c) => c.name === "loader")?.state?.terminated;
}

const FAILURE_REASONS: readonly FailureReason[] = [
  "Unauthorized",
  "Forbidden",
  "NotFound",
  "NoSpace",
  "VerifyFailed",
  "DownloadFailed",
];

function newestFirst(pods: readonly LoaderPodView[]): LoaderPodView[] {
  return [...pods].sort((a, b) =>
    (b.metadata.creationTimestamp ?? "").localeCompare(a.metadata.creationTimestamp ?? ""),
  );
}

function jobCondition(job: JobView, type: string) {
  return job.status?.conditions?.find((c) => c.type === type && c.status === "True");
}

/** What the loader Job and its pods say about the cache. */
export function observeCache(input: {
  readonly source: WeightSource;
  readonly job: JobView | undefined;
  readonly pods: readonly LoaderPodView[];
  readonly revision: string;
  readonly expectedBytes: number;
}): CachePhase {
  if (input.source !== "hub") return { phase: "InPlace", source: input.source };
  const job = input.job;
  if (job === undefined) return { phase: "Pending", message: "the loader Job is being created" };
  const pods = newestFirst(input.pods);
  if (jobCondition(job, "Complete") !== undefined) {
    const v = pods.map((p) => parseVerdict(terminated(p)?.message)).find((x) => x !== undefined);
    return {
      phase: "Complete",
      revision: input.revision,
      ...(typeof v?.bytes === "number" ? { bytes: v.bytes } : {}),
      ...(typeof v?.commit === "string" ? { commit: v.commit } : {}),
    };
  }
  const failed = jobCondition(job, "Failed") ?? jobCondition(job, "FailureTarget");
  if (failed !== undefined) {
    const t = pods.map(terminated).find((x) => x !== undefined);
    const v = parseVerdict(t?.message);
    const reason = FAILURE_REASONS.find((r) => r === v?.reason) ?? "LoaderFailed";
    const detail =
      v?.message ??
      (t?.message !== undefined && t.message !== ""
        ? t.message.slice(-600)
        : `${failed.reason ?? "Failed"}: ${failed.message ?? ""}`);
    return { phase: "Failed", reason, message: `loader Job ${job.metadata.name}: ${detail}` };
  }
  const running = pods.find((p) => p.status?.phase === "Running");
  if (running !== undefined) {
    const started =
      running.status?.containerStatuses?.find((c) => c.name === "loader")?.state?.running
        ?.startedAt ?? running.status?.startTime;
    return {
      phase: "Downloading",
      expectedBytes: input.expectedBytes,
      ...(started === undefined ? {} : { since: started }),
    };
  }
  const waiting = pods[0]?.status?.containerStatuses?.[0]?.state?.waiting;
  const why =
    pods.length === 0
      ? "waiting for the Job controller to create the loader pod"
      : waiting?.reason !== undefined
        ? `loader pod ${pods[0]!.metadata.name}: ${waiting.reason}${waiting.message === undefined ? "" : `: ${waiting.message}`}`
        : `loader pod ${pods[0]!.metadata.name} is ${pods[0]!.status?.phase ?? "Pending"}`;
  const retries = job.status?.failed ?? 0;
  return {
    phase: "Pending",
    message: retries > 0 ? `${why} (after ${retries} failed attempts)` : why,
  };
}

/** vLLM pods are created only from a complete cache (or a source read in place). */
export function workloadAllowed(phase: CachePhase): boolean {
  return phase.phase === "Complete" || phase.phase === "InPlace";
}

/** The Deployment leaves the set to apply until the cache is complete; a live one is kept. */
export function gateWorkload(objects: readonly Manifest[], phase: CachePhase): Manifest[] {
  return workloadAllowed(phase) ? [...objects] : objects.filter((o) => o.kind !== "Deployment");
}

const GB = 1e9;
const gb = (bytes: number) => `${(bytes / GB).toFixed(1)} GB`;

const IN_PLACE: Record<string, string> = {
  pvc: "weights are read from the claim in spec.model.source.pvc (no download)",
  objectStorage: "weights are streamed from object storage by vLLM's runai_streamer (no cache)",
  image: "weights are read from the image volume in spec.model.source.image (no download)",
};

function hintFor(reason: FailureReason): string {
  switch (reason) {
    case "NotFound":
      return " Check spec.model.name and spec.model.revision.";
    case "NoSpace":
      return " Raise spec.model.cache.size (a new claim is created) or free the existing claim.";
    default:
      return "";
  }
}

/** The condition reason of each loader failure. */
const LOADER_REASONS: Readonly<Record<FailureReason, Reason>> = {
  Unauthorized: "LoaderUnauthorized",
  Forbidden: "LoaderForbidden",
  NotFound: "LoaderNotFound",
  NoSpace: "LoaderNoSpace",
  VerifyFailed: "LoaderVerifyFailed",
  DownloadFailed: "LoaderDownloadFailed",
  LoaderFailed: "LoaderFailed",
};

/** [status, reason, message] of the ModelCached condition. */
export function modelCachedVerdict(phase: CachePhase): ["True" | "False", Reason, string] {
  switch (phase.phase) {
    case "InPlace":
      return ["True", "SourceInPlace", IN_PLACE[phase.source]!];
    case "Complete":
      return [
        "True",
        "Complete",
        `revision ${phase.revision}${phase.commit === undefined ? "" : ` (commit ${phase.commit})`} is in the cache${phase.bytes === undefined ? "" : `: ${gb(phase.bytes)}`}`,
      ];
    case "Downloading":
      return [
        "False",
        "Downloading",
        `downloading${phase.since === undefined ? "" : ` since ${phase.since}`}, about ${gb(phase.expectedBytes)} expected; no vLLM pod until it is complete`,
      ];
    case "Pending":
      return ["False", "Pending", `${phase.message}; no vLLM pod until the cache is complete`];
    case "Failed":
      return [
        "False",
        LOADER_REASONS[phase.reason],
        `${phase.message}${hintFor(phase.reason)} Delete the failed Job to retry once fixed.`,
      ];
  }
}

/** Everything the reconciler needs to know about the cache of one resource; `job` is its rendered loader Job. */
export function cachePhaseOf(
  msd: MistralSmallDeployment,
  plan: Plan,
  job: Manifest | undefined,
  jobs: ReadonlyMap<string, Job>,
  pods: readonly SlimPod[],
): CachePhase {
  const live = job === undefined ? undefined : jobs.get(objectKey(job));
  const mine = pods.filter(
    (p) =>
      p.metadata.namespace === msd.metadata.namespace &&
      p.metadata.labels?.["batch.kubernetes.io/job-name"] === job?.metadata.name,
  );
  return observeCache({
    source: weightSource(msd),
    job: live,
    pods: job === undefined ? [] : mine,
    revision: cacheIdentity(msd, plan).revision,
    expectedBytes: plan.weightBytesTotal,
  });
}

/** The model-cache claim the vLLM pods mount (undefined for a source without one). */
export function weightsClaimName(msd: MistralSmallDeployment, plan: Plan): string | undefined {
  const s = msd.spec.model.source;
  if (s.pvc !== undefined) return s.pvc.claimName;
  if (weightSource(msd) !== "hub") return undefined;
  return cacheIdentity(msd, plan).claimName;
}

/** The field manager one resource applies shared objects with: releasing them must use the same. */
function sharedFieldManager(uid: string): string {
  return `${FIELD_MANAGER}/${uid}`;
}

/**
 * Shared objects are applied with a field manager of their own per resource: server-side apply
 * then merges each resource's owner reference (ownerReferences is a list map keyed by uid)
 * instead of replacing the one another resource set.
 */
export function fieldManagerFor(obj: Manifest): string {
  if (ownedKind(obj.kind)?.shared !== true) return FIELD_MANAGER;
  const uid = obj.metadata.ownerReferences?.[0]?.uid;
  return uid === undefined ? FIELD_MANAGER : sharedFieldManager(uid);
}

/**
 * What to compare a rendered shared object with: its owner references are ours alone, the live
 * object's are everyone's; ours being among them is all that matters.
 */
export function comparableForApply(obj: Manifest, live: KubeObject | undefined): Manifest {
  if (ownedKind(obj.kind)?.shared !== true || live === undefined) return obj;
  const mine = obj.metadata.ownerReferences ?? [];
  const theirs = live.metadata.ownerReferences ?? [];
  if (!mine.every((m) => theirs.some((t) => t.uid === m.uid))) return obj;
  return { ...obj, metadata: { ...obj.metadata, ownerReferences: theirs } };
}

/**
 * Shared cache objects this resource holds a reference to but no longer renders (its revision
 * or checkpoint changed): deleted when it is their only owner (a claim then goes once no pod
 * mounts it, by Kubernetes' in-use protection), otherwise released by applying an empty object
 * with this resource's field manager, which drops its owner reference and nothing else.
 */
export async function releaseUnusedCaches(
  desired: readonly Manifest[],
  uid: string,
  namespace: string,
  caches: ReadonlyMap<string, { list(): KubeObject[] }>,
  client: KubeClient,
): Promise<string[]> {
  const want = new Set(desired.map((o) => `${o.kind}/${o.metadata.name}`));
  const released: string[] = [];
  for (const k of OWNED_KINDS.filter((x) => x.shared === true)) {
    for (const o of caches.get(k.resource.kind)?.list() ?? []) {
      const refs = o.metadata.ownerReferences ?? [];
      if (
        o.metadata.namespace !== namespace ||
        o.metadata.labels?.[CACHE_KEY_LABEL] === undefined ||
        o.metadata.deletionTimestamp !== undefined ||
        !refs.some((r) => r.uid === uid) ||
        want.has(`${k.resource.kind}/${o.metadata.name}`)
      ) {
        continue;
      }
      if (refs.every((r) => r.uid === uid)) {
        await client.delete(k.resource, o.metadata.name, namespace, {
          uid: o.metadata.uid!,
          propagationPolicy: "Background",
        });
      } else {
        await client.apply(
          k.resource,
          {
            apiVersion: apiVersionOf(k.resource),
            kind: k.resource.kind,
            metadata: { name: o.metadata.name, namespace },
          },
          sharedFieldManager(uid),
        );
      }
      released.push(`${k.resource.kind} ${o.metadata.name}`);
    }
  }
  return released;
}
