/**
 * Status that explains itself, computed purely from what the operator observed:
 * the parsed spec (or why it could not be parsed), the plan, the Deployment and its pods.
 */
import type { MistralSmallDeployment, Status } from "../api/schema.ts";
import type { Plan } from "../planner/plan.ts";
import {
  MODEL_CACHED,
  modelCachedVerdict,
  workloadAllowed,
  type CachePhase,
} from "./model-cache.ts";

/** Every reason a condition can carry: one list, so docs and alerts can rely on it. */
export const REASONS = {
  Available: "Available",
  InvalidSpec: "InvalidSpec",
  Infeasible: "Infeasible",
  InfeasibleKeepsServing: "InfeasibleKeepsServing",
  /** The spec needs a kind whose CRD is not installed (Karpenter NodePool, KEDA ScaledObject). */
  CrdMissing: "CrdMissing",
  ApplyFailed: "ApplyFailed",
  ObjectRejected: "ObjectRejected",
  Unschedulable: "Unschedulable",
  /** Pods wait for nodes Karpenter is launching for them. */
  ProvisioningNodes: "ProvisioningNodes",
  /** Karpenter cannot launch a node for a pod (limits, no instance type, no capacity). */
  CapacityUnavailable: "CapacityUnavailable",
  /** Being deleted: waiting for Karpenter to give the pool's nodes back. */
  ReleasingNodes: "ReleasingNodes",
  ImagePullError: "ImagePullError",
  InvalidImageName: "InvalidImageName",
  TokenSecretMissing: "TokenSecretMissing",
  ContainerConfigError: "ContainerConfigError",
  ContainerCreateFailed: "ContainerCreateFailed",
  ContainerStartFailed: "ContainerStartFailed",
  PodSandboxFailed: "PodSandboxFailed",
  ContainerWaiting: "ContainerWaiting",
  PodCreateFailed: "PodCreateFailed",
  DeploymentPaused: "DeploymentPaused",
  ProgressDeadlineExceeded: "ProgressDeadlineExceeded",
  CacheClaimTerminating: "CacheClaimTerminating",
  CacheClaimLost: "CacheClaimLost",
  CrashLoopBackOff: "CrashLoopBackOff",
  OOMKilled: "OOMKilled",
  StartupProbeFailed: "StartupProbeFailed",
  ModelLoading: "ModelLoading",
  RollingOut: "RollingOut",
  ScaledToZero: "ScaledToZero",
  Converged: "Converged",
  AsExpected: "AsExpected",
  /** The image's vLLM release has its own engine contract. */
  EngineVerified: "EngineVerified",
  /** The image's release cannot be read from its tag, or has no contract of its own. */
  EngineVersionUnverified: "EngineVersionUnverified",
  /** TemplateUpdateAvailable: a newer operator renders another pod template; the old one is kept. */
  OperatorDefaultsChanged: "OperatorDefaultsChanged",
  /** Ready and Progressing while the loader fills the model cache and no Deployment exists yet. */
  ModelCaching: "ModelCaching",
  // ModelCached (model-cache.ts), and Ready while no Deployment exists because of it.
  SourceInPlace: "SourceInPlace",
  Complete: "Complete",
  Downloading: "Downloading",
  Pending: "Pending",
  LoaderUnauthorized: "LoaderUnauthorized",
  LoaderForbidden: "LoaderForbidden",
  LoaderNotFound: "LoaderNotFound",
  LoaderNoSpace: "LoaderNoSpace",
  LoaderVerifyFailed: "LoaderVerifyFailed",
  LoaderDownloadFailed: "LoaderDownloadFailed",
  LoaderFailed: "LoaderFailed",
} as const;
export type Reason = (typeof REASONS)[keyof typeof REASONS];

export type ConditionType =
  | "Ready"
  | "Progressing"
  | "Degraded"
  | "EngineVerified"
  | typeof MODEL_CACHED
  | "TemplateUpdateAvailable";

export interface Condition {
  type: ConditionType;
  status: "True" | "False" | "Unknown";
  reason: Reason;
  message: string;
  observedGeneration?: number;
  lastTransitionTime: string;
}

export interface PodView {
  metadata: { name: string; deletionTimestamp?: string; annotations?: Record<string, string> };
  status?: {
    phase?: string;
    conditions?: { type: string; status: string; reason?: string; message?: string }[];
    containerStatuses?: {
      name: string;
      ready: boolean;
      restartCount: number;
      state?: {
        waiting?: { reason?: string; message?: string };
        terminated?: { reason?: string; exitCode?: number; message?: string };
      };
      lastState?: { terminated?: { reason?: string; exitCode?: number; message?: string } };
    }[];
  };
}

export interface DeploymentView {
  metadata: { generation?: number; annotations?: Record<string, string> };
  spec?: { replicas?: number; paused?: boolean };
  status?: {
    observedGeneration?: number;
    replicas?: number;
    readyReplicas?: number;
    updatedReplicas?: number;
    availableReplicas?: number;
    conditions?: { type: string; status: string; reason?: string; message?: string }[];
  };
}

/** The model-cache claim the pods mount (only ours is watched; an existingClaim is the user's). */
export interface ClaimView {
  metadata: { name: string; deletionTimestamp?: string };
  status?: { phase?: string };
}

export interface PodProblem {
  readonly reason: Reason;
  readonly message: string;
}

/**
 * Waiting reasons the kubelet reports while a container starts normally: not problems.
 * Everything else a container waits on is one (kubelet: pkg/kubelet/kuberuntime/kuberuntime_container.go).
 */
const NORMAL_WAITING = new Set(["ContainerCreating", "PodInitializing"]);

/** Kubelet image-manager reasons (pkg/kubelet/images/types.go) that a pull secret or tag fixes. */
const IMAGE_PULL_WAITING = new Set([
  "ErrImagePull",
  "ImagePullBackOff",
  "ImageInspectError",
  "ErrImageNeverPull",
  "RegistryUnavailable",
  "SignatureValidationFailed",
]);

/** Kubelet reason -> our reason and what to do, for the reasons that are not image pulls. */
const WAITING: Record<string, { reason: Reason; hint: string }> = {
  InvalidImageName: {
    reason: REASONS.InvalidImageName,
    hint: "spec.engine.image is not a valid image reference",
  },
  CreateContainerConfigError: {
    reason: REASONS.ContainerConfigError,
    hint: "a referenced Secret, ConfigMap or key is missing",
  },
  CreateContainerError: {
    reason: REASONS.ContainerCreateFailed,
    hint: "the container runtime could not create the container",
  },
  PreCreateHookError: {
    reason: REASONS.ContainerCreateFailed,
    hint: "the container runtime could not create the container",
  },
  RunContainerError: {
    reason: REASONS.ContainerStartFailed,
    hint: "the container runtime could not start the container",
  },
  PreStartHookError: {
    reason: REASONS.ContainerStartFailed,
    hint: "the container runtime could not start the container",
  },
  PostStartHookError: {
    reason: REASONS.ContainerStartFailed,
    hint: "a post-start hook failed",
  },
  CreatePodSandboxError: {
    reason: REASONS.PodSandboxFailed,
    hint: "the node could not create the pod sandbox (network or runtime)",
  },
  ConfigPodSandboxError: {
    reason: REASONS.PodSandboxFailed,
    hint: "the node could not configure the pod sandbox",
  },
};

/** The kubelet's words for a missing Secret or key (envFrom/valueFrom secretKeyRef). */
function namesMissingSecret(message: string): boolean {
  return /secret "[^"]*" not found|couldn't find key .* in secret/i.test(message);
}

/** A container stuck waiting for anything but a normal start, with the kubelet's own words. */
function waitingProblem(
  pod: string,
  container: string,
  kubelet: string,
  message: string | undefined,
): PodProblem | undefined {
  if (NORMAL_WAITING.has(kubelet) || kubelet === "CrashLoopBackOff") return undefined;
  const quoted = message === undefined || message === "" ? "" : `: ${message}`;
  if (IMAGE_PULL_WAITING.has(kubelet)) {
    return {
      reason: REASONS.ImagePullError,
      message: `pod ${pod}: ${kubelet}${quoted === "" ? ": image cannot be pulled" : quoted}`,
    };
  }
  if (kubelet === "CreateContainerConfigError" && namesMissingSecret(message ?? "")) {
    return {
      reason: REASONS.TokenSecretMissing,
      message: `pod ${pod}: container ${container} cannot start, ${kubelet}${quoted}; create the Secret (and key) it names in this namespace (spec.model.tokenSecretRef or spec.access.apiKeySecretRef)`,
    };
  }
  const known = WAITING[kubelet];
  if (known !== undefined) {
    return {
      reason: known.reason,
      message: `pod ${pod}: container ${container} cannot start, ${kubelet}${quoted} (${known.hint})`,
    };
  }
  return {
    reason: REASONS.ContainerWaiting,
    message: `pod ${pod}: container ${container} is waiting, ${kubelet}${quoted}`,
  };
}

/** The most telling problem among the pods, with the real cause quoted. */
export function podProblem(pods: readonly PodView[]): PodProblem | undefined {
  const found: PodProblem[] = [];
  for (const pod of pods) {
    if (pod.metadata.deletionTimestamp !== undefined) continue;
    const sched = pod.status?.conditions?.find((c) => c.type === "PodScheduled");
    if (sched?.status === "False" && sched.reason === "Unschedulable") {
      found.push({
        reason: REASONS.Unschedulable,
        message: `pod ${pod.metadata.name} cannot be scheduled: ${sched.message ?? "no node fits"}`,
      });
    }
    for (const cs of pod.status?.containerStatuses ?? []) {
      const waiting = cs.state?.waiting;
      const last = cs.lastState?.terminated;
      const stuck =
        waiting?.reason === undefined
          ? undefined
          : waitingProblem(pod.metadata.name, cs.name, waiting.reason, waiting.message);
      if (stuck !== undefined) {
        found.push(stuck);
      } else if (last?.reason === "OOMKilled" || cs.state?.terminated?.reason === "OOMKilled") {
        found.push({
          reason: REASONS.OOMKilled,
          message: `pod ${pod.metadata.name}: container ${cs.name} was OOMKilled (restarts: ${cs.restartCount}); raise spec.engine.resources.memory`,
        });
      } else if (waiting?.reason === "CrashLoopBackOff") {
        const exit = last?.exitCode === undefined ? "" : ` (last exit code ${last.exitCode})`;
        const startup = (last?.message ?? "").toLowerCase().includes("startup probe");
        found.push({
          reason: startup ? REASONS.StartupProbeFailed : REASONS.CrashLoopBackOff,
          message: startup
            ? `pod ${pod.metadata.name}: the startup probe ran out before vLLM served /health (restarts: ${cs.restartCount})`
            : `pod ${pod.metadata.name}: container ${cs.name} is crash-looping${exit}, restarts: ${cs.restartCount}`,
        });
      }
    }
  }
  // Configuration the user can fix first; then crashes; scheduling last (it may be capacity on the way).
  const rank: Reason[] = [
    REASONS.TokenSecretMissing,
    REASONS.ContainerConfigError,
    REASONS.InvalidImageName,
    REASONS.ImagePullError,
    REASONS.ContainerCreateFailed,
    REASONS.ContainerStartFailed,
    REASONS.PodSandboxFailed,
    REASONS.ContainerWaiting,
    REASONS.OOMKilled,
    REASONS.StartupProbeFailed,
    REASONS.CrashLoopBackOff,
    REASONS.Unschedulable,
  ];
  found.sort(
    (a, b) => rank.indexOf(a.reason) - rank.indexOf(b.reason) || a.message.localeCompare(b.message),
  );
  return found[0];
}

/** A Karpenter NodeClaim of the resource's pool, as status needs it. */
export interface NodeClaimView {
  readonly name: string;
  readonly instanceType?: string;
  readonly capacityType?: string;
  readonly zone?: string;
  readonly nodeName?: string;
  /** Karpenter's Initialized condition: the node is up and its GPUs are allocatable. */
  readonly initialized: boolean;
  readonly deleting: boolean;
}

/** A core/v1 Event Karpenter wrote about one of the pods. */
export interface KarpenterPodEvent {
  readonly pod: string;
  readonly reason: string;
  readonly message: string;
  /** ISO time of the latest occurrence. */
  readonly time: string;
}

/** What Karpenter is doing for a pool the resource owns. */
export interface CapacityView {
  readonly nodePool: string;
  readonly nodeClaims: readonly NodeClaimView[];
  readonly events: readonly KarpenterPodEvent[];
}

function isPending(pod: PodView): boolean {
  const sched = pod.status?.conditions?.find((c) => c.type === "PodScheduled");
  return (
    pod.metadata.deletionTimestamp === undefined &&
    sched?.status === "False" &&
    sched.reason === "Unschedulable"
  );
}

export function describeClaim(c: NodeClaimView): string {
  const where = [c.instanceType, c.capacityType, c.zone].filter((x) => x !== undefined);
  return `${c.name} (${where.length === 0 ? "instance type not chosen yet" : where.join(", ")})`;
}

/**
 * Why pods of a Karpenter pool pend, in Karpenter's words: its latest event per pending pod
 * (FailedScheduling quotes the limit, requirement or capacity that stopped it), else the
 * NodeClaims it is launching. Undefined when Karpenter has not acted yet.
 */
export function capacityProblem(
  pods: readonly PodView[],
  capacity: CapacityView,
): PodProblem | undefined {
  const pending = pods
    .filter(isPending)
    .map((p) => p.metadata.name)
    .sort();
  if (pending.length === 0) return undefined;
  const latest = (pod: string) =>
    capacity.events
      .filter((e) => e.pod === pod && (e.reason === "FailedScheduling" || e.reason === "Nominated"))
      .sort((a, b) => b.time.localeCompare(a.time))[0];
  const failed = pending.flatMap((pod) => {
    const e = latest(pod);
    return e?.reason === "FailedScheduling" ? [{ pod, message: e.message }] : [];
  });
  if (failed.length > 0) {
    const first = failed[0]!;
    const others = failed.length > 1 ? ` (and ${failed.length - 1} more pending pods)` : "";
    return {
      reason: REASONS.CapacityUnavailable,
      message: `Karpenter cannot provision a node for pod ${first.pod} in NodePool ${capacity.nodePool}${others}: ${first.message}`,
    };
  }
  const launching = capacity.nodeClaims.filter((c) => !c.initialized && !c.deleting);
  const nominated = pending.some((pod) => latest(pod)?.reason === "Nominated");
  if (launching.length === 0 && !nominated) return undefined;
  const claims =
    launching.length === 0
      ? "nodes it has nominated"
      : `NodeClaim ${launching.map(describeClaim).join(", ")}`;
  return {
    reason: REASONS.ProvisioningNodes,
    message: `${pending.length} pod(s) (${pending.join(", ")}) wait for nodes: Karpenter is launching ${claims} in NodePool ${capacity.nodePool}`,
  };
}

export interface Observation {
  readonly generation: number;
  readonly desiredReplicas: number;
  /** Why the spec could not be parsed, when it could not. */
  readonly invalid?: string;
  readonly plan?: Plan;
  readonly deployment?: DeploymentView;
  /** The Deployment's name, for messages and the commands they suggest. */
  readonly deploymentName?: string;
  /** The Deployment's pod-template hash we want, to tell a finished rollout. */
  readonly desiredTemplateHash?: string;
  readonly pods: readonly PodView[];
  /** The model-cache claim the pods mount, when it exists. */
  readonly cacheClaim?: ClaimView;
  readonly applyError?: string;
  /** The CRD an owned kind needs is not installed: which, and for what. */
  readonly crdMissing?: string;
  /** A rendered object the API server refused on a dry run: which object, which field. */
  readonly rejected?: string;
  readonly selector: string;
  readonly endpoint: string;
  /** How clients call the endpoint (model name, key), from clientAccess. */
  readonly access?: ClientAccess;
  /** Present for a Karpenter pool: its NodeClaims and Karpenter's events on the pods. */
  readonly capacity?: CapacityView;
  /** Where the model cache stands, for a spec that has one (model-cache.ts). */
  readonly cache?: CachePhase;
}

export type ClientAccess = NonNullable<Status["access"]>;

/** What a client needs besides the URL: the model id to send and where the API key is kept. */
export function clientAccess(msd: MistralSmallDeployment): ClientAccess {
  const ref = msd.spec.access.apiKeySecretRef;
  return {
    servedModelName: msd.spec.model.servedModelName,
    authentication: ref === undefined ? "none" : "bearer",
    ...(ref === undefined ? {} : { apiKeySecretRef: { name: ref.name, key: ref.key } }),
  };
}

/** Karpenter's account replaces the scheduler's when a pod waits for a node of the pool. */
function refinedProblem(o: Observation): PodProblem | undefined {
  const problem = podProblem(o.pods);
  if (problem?.reason !== REASONS.Unschedulable || o.capacity === undefined) return problem;
  return capacityProblem(o.pods, o.capacity) ?? problem;
}

/** Problems of the Deployment itself: pods never change while it is paused or failing to create them. */
export function deploymentProblem(
  dep: DeploymentView | undefined,
  name: string,
): PodProblem | undefined {
  if (dep === undefined) return undefined;
  if (dep.spec?.paused === true) {
    return {
      reason: REASONS.DeploymentPaused,
      message: `Deployment ${name} is paused (spec.paused: true), so no change rolls out; run \`kubectl rollout resume deployment/${name}\``,
    };
  }
  const failure = dep.status?.conditions?.find(
    (c) => c.type === "ReplicaFailure" && c.status === "True",
  );
  if (failure !== undefined) {
    return {
      reason: REASONS.PodCreateFailed,
      message:
        `Deployment ${name} cannot create pods: ${failure.reason ?? "ReplicaFailure"}: ${failure.message ?? ""}`.trimEnd(),
    };
  }
  return undefined;
}

/** The Deployment controller gave up waiting: reported after pod problems, which say why. */
function deadlineProblem(dep: DeploymentView | undefined, name: string): PodProblem | undefined {
  const progressing = dep?.status?.conditions?.find((c) => c.type === "Progressing");
  if (progressing?.status !== "False" || progressing.reason !== "ProgressDeadlineExceeded") {
    return undefined;
  }
  return {
    reason: REASONS.ProgressDeadlineExceeded,
    message: `Deployment ${name}: ${progressing.message ?? "the rollout exceeded its progress deadline"}`,
  };
}

/** A claim being deleted (held only by the pods using it) or lost: the cache is going away. */
export function claimProblem(claim: ClaimView | undefined): PodProblem | undefined {
  if (claim === undefined) return undefined;
  if (claim.metadata.deletionTimestamp !== undefined) {
    return {
      reason: REASONS.CacheClaimTerminating,
      message: `model-cache PersistentVolumeClaim ${claim.metadata.name} is being deleted (since ${claim.metadata.deletionTimestamp}); it goes once no pod mounts it, and replicas restarted after that find no cache`,
    };
  }
  if (claim.status?.phase === "Lost") {
    return {
      reason: REASONS.CacheClaimLost,
      message: `model-cache PersistentVolumeClaim ${claim.metadata.name} is Lost: its PersistentVolume is gone`,
    };
  }
  return undefined;
}

const STALLED: ReadonlySet<Reason> = new Set([
  REASONS.DeploymentPaused,
  REASONS.ProgressDeadlineExceeded,
]);

interface Verdict {
  ready: [Condition["status"], Reason, string];
  progressing: [Condition["status"], Reason, string];
  degraded: [Condition["status"], Reason, string];
}

/**
 * A pass that changed nothing, for `why`: Degraded, not Progressing, and Ready only while
 * replicas of what was applied before still serve (said so, before `why`, with servingNote).
 */
function held(
  serving: boolean,
  reason: Reason,
  why: string,
  say: { readonly servingNote?: string; readonly progressing?: string } = {},
): Verdict {
  const servingWhy = say.servingNote === undefined ? why : `${say.servingNote}; ${why}`;
  return {
    ready: serving ? ["True", reason, servingWhy] : ["False", reason, why],
    progressing: ["False", reason, say.progressing ?? why],
    degraded: ["True", reason, why],
  };
}

function verdict(o: Observation): Verdict {
  const dep = o.deployment;
  const ready = dep?.status?.readyReplicas ?? 0;
  const serving = ready > 0;
  if (o.invalid !== undefined) {
    return held(serving, REASONS.InvalidSpec, o.invalid, {
      servingNote: "serving the last valid spec",
      progressing: "nothing is changed until the spec is valid",
    });
  }
  if (o.plan !== undefined && !o.plan.feasible) {
    const why = o.plan.reasons.join("; ");
    return dep !== undefined && serving
      ? {
          ...held(true, REASONS.Infeasible, why),
          ready: [
            "True",
            REASONS.InfeasibleKeepsServing,
            `the previous plan keeps serving; the new spec is infeasible: ${why}`,
          ],
          degraded: ["True", REASONS.InfeasibleKeepsServing, why],
        }
      : held(false, REASONS.Infeasible, why);
  }
  if (o.rejected !== undefined) {
    return held(serving, REASONS.ObjectRejected, o.rejected, {
      servingNote: "serving the last applied objects",
      progressing: "nothing is applied until the spec changes",
    });
  }
  if (o.crdMissing !== undefined) {
    return held(serving, REASONS.CrdMissing, o.crdMissing, {
      servingNote: "serving the last applied objects",
      progressing: "nothing is applied until the CRD is installed",
    });
  }
  if (o.applyError !== undefined) return held(serving, REASONS.ApplyFailed, o.applyError);
  return waitingForCache(o, workloadVerdict(o));
}

/**
 * While no vLLM Deployment exists yet because the cache is not complete, Ready and Progressing
 * say so instead of waiting on pods that cannot come. A held pass (above) says what to fix first.
 */
function waitingForCache(o: Observation, v: Verdict): Verdict {
  if (o.cache === undefined || workloadAllowed(o.cache) || o.deployment !== undefined) return v;
  const [, reason, message] = modelCachedVerdict(o.cache);
  const failed = o.cache.phase === "Failed";
  const why = failed ? reason : REASONS.ModelCaching;
  return {
    ...v,
    ready: ["False", why, message],
    progressing: [failed ? "False" : "True", why, message],
  };
}

/** What the Deployment and its pods say, once nothing holds the pass. */
function workloadVerdict(o: Observation): Verdict {
  const dep = o.deployment;
  const ready = dep?.status?.readyReplicas ?? 0;
  const serving = ready > 0;
  if (o.desiredReplicas === 0) {
    return {
      ready: ["False", REASONS.ScaledToZero, "scaled to zero replicas"],
      progressing: ["False", REASONS.Converged, "no replicas requested"],
      degraded: ["False", REASONS.AsExpected, "scaled to zero as requested"],
    };
  }
  const rolledOut =
    dep !== undefined &&
    (dep.status?.observedGeneration ?? -1) >= (dep.metadata.generation ?? 0) &&
    (dep.status?.updatedReplicas ?? 0) === o.desiredReplicas &&
    (dep.status?.replicas ?? 0) === o.desiredReplicas &&
    ready === o.desiredReplicas &&
    dep.metadata.annotations?.["serving.mistralsmall.dev/template-hash"] === o.desiredTemplateHash;
  const depName = o.deploymentName ?? "";
  // Workload-level problems first: they hold even when every replica serves.
  const blocking = deploymentProblem(dep, depName) ?? claimProblem(o.cacheClaim);
  if (rolledOut && blocking === undefined) {
    return {
      ready: ["True", REASONS.Available, `${ready}/${o.desiredReplicas} replicas serving`],
      progressing: ["False", REASONS.Converged, "every replica runs the current plan"],
      degraded: ["False", REASONS.AsExpected, "no problem observed"],
    };
  }
  const found = blocking ?? refinedProblem(o) ?? deadlineProblem(dep, depName);
  const problem = found === undefined ? undefined : withEngineHint(found, o.plan);
  if (problem?.reason === REASONS.ProvisioningNodes) {
    // Waiting for nodes Karpenter is launching is progress, not a fault.
    return {
      ready: serving
        ? ["True", problem.reason, `${ready}/${o.desiredReplicas} ready; ${problem.message}`]
        : ["False", problem.reason, problem.message],
      progressing: ["True", problem.reason, problem.message],
      degraded: ["False", REASONS.AsExpected, "no problem observed"],
    };
  }
  if (problem !== undefined) {
    return {
      ready: serving
        ? ["True", problem.reason, `${ready}/${o.desiredReplicas} ready; ${problem.message}`]
        : ["False", problem.reason, problem.message],
      // A paused or timed-out rollout does not move until someone acts.
      progressing: [
        STALLED.has(problem.reason) ? "False" : "True",
        problem.reason,
        problem.message,
      ],
      degraded: ["True", problem.reason, problem.message],
    };
  }
  const loading = `${ready}/${o.desiredReplicas} replicas ready; vLLM replicas load ~120 GB of weights before serving`;
  return {
    ready: serving
      ? ["True", REASONS.RollingOut, loading]
      : ["False", REASONS.ModelLoading, loading],
    progressing: ["True", serving ? REASONS.RollingOut : REASONS.ModelLoading, loading],
    degraded: ["False", REASONS.AsExpected, "no problem observed"],
  };
}

/**
 * A crash of the default CUDA 13 image on an older driver looks like any crash: say what to
 * try. (The driver branch is NVIDIA's rule, not read from a source here.)
 */
function withEngineHint(problem: PodProblem, plan: Plan | undefined): PodProblem {
  if (problem.reason !== REASONS.CrashLoopBackOff || plan === undefined) return problem;
  const hint =
    plan.engine.cudaVersion === "13.0"
      ? `; ${plan.engine.image} is a CUDA 13.0 build: if the log shows a CUDA driver error, the nodes need an R580+ driver, or set spec.engine.cudaVersion: "12.9"`
      : `; ${plan.engine.image} is a CUDA 12.9 build: it needs an R575+ driver on the nodes`;
  return { ...problem, message: problem.message + hint };
}

/** Whether the command line was checked against the image's own vLLM release. */
function engineVerdict(plan: Plan): [Condition["status"], Reason, string] {
  const e = plan.engine;
  return e.verified
    ? [
        "True",
        REASONS.EngineVerified,
        `vLLM ${e.release} (${e.image}): every flag checked against its contract`,
      ]
    : ["False", REASONS.EngineVersionUnverified, e.unverifiedReason];
}

/** Keep lastTransitionTime unless the status value flips. */
/** A condition with its transition time kept while its status stays. */
export function condition(
  type: ConditionType,
  [status, reason, message]: [Condition["status"], Reason, string],
  generation: number,
  previous: readonly Condition[],
  now: string,
): Condition {
  const prev = previous.find((c) => c.type === type);
  return {
    type,
    status,
    reason,
    message,
    observedGeneration: generation,
    lastTransitionTime:
      prev !== undefined && prev.status === status ? prev.lastTransitionTime : now,
  };
}

export function computeStatus(o: Observation, previous: Status | undefined, now: string): Status {
  const prev = (previous?.conditions ?? []) as Condition[];
  const v = verdict(o);
  const status: Status = {
    observedGeneration: o.generation,
    conditions: [
      condition("Ready", v.ready, o.generation, prev, now),
      condition("Progressing", v.progressing, o.generation, prev, now),
      condition("Degraded", v.degraded, o.generation, prev, now),
      ...(o.plan === undefined
        ? []
        : [condition("EngineVerified", engineVerdict(o.plan), o.generation, prev, now)]),
      ...(o.cache === undefined
        ? []
        : [condition(MODEL_CACHED, modelCachedVerdict(o.cache), o.generation, prev, now)]),
    ],
    replicas: o.deployment?.status?.replicas ?? 0,
    readyReplicas: o.deployment?.status?.readyReplicas ?? 0,
    selector: o.selector,
    endpoint: o.endpoint,
    ...(o.access === undefined ? {} : { access: o.access }),
  };
  const p = o.plan?.feasible === true ? o.plan : undefined;
  if (p !== undefined) {
    status.plan = {
      gpuType: p.gpuType,
      quantization: p.quantization,
      tensorParallelSize: p.tensorParallelSize,
      gpusPerReplica: p.gpusPerReplica,
      maxModelLen: p.maxModelLen,
      kvCacheTokensPerReplica: p.kvCacheTokensPerReplica,
      fullContextSequences: p.fullContextSequences,
      vllmRelease: p.engine.release,
      image: p.engine.image,
      attentionBackend: p.engine.attentionBackend ?? "",
      moeBackend: p.engine.moeBackend ?? "",
    };
  } else if (previous?.plan !== undefined) {
    status.plan = previous.plan;
  }
  return status;
}

/** Deep equality on JSON values, so an unchanged status is never written. */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== typeof b || a === null || b === null || typeof a !== "object") return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const bb = b as unknown[];
    return a.length === bb.length && a.every((x, i) => jsonEqual(x, bb[i]));
  }
  const ao = a as Record<string, unknown>;
  const bo = b as Record<string, unknown>;
  const ak = Object.keys(ao).filter((k) => ao[k] !== undefined);
  const bk = Object.keys(bo).filter((k) => bo[k] !== undefined);
  return ak.length === bk.length && ak.every((k) => jsonEqual(ao[k], bo[k]));
}

/** True when every field set in `want` has the same value in `have` (server defaults ignored). */
export function isSubset(want: unknown, have: unknown): boolean {
  if (want === undefined) return true;
  // The API server drops empty maps and lists: `{}` or `[]` wanted equals absent.
  if (
    have === undefined &&
    typeof want === "object" &&
    want !== null &&
    Object.keys(want).length === 0
  ) {
    return true;
  }
  if (want === null || typeof want !== "object") {
    return (
      want === have ||
      (typeof want === "number" && typeof have === "string" && String(want) === have)
    );
  }
  if (have === null || typeof have !== "object") return false;
  if (Array.isArray(want)) {
    if (!Array.isArray(have) || have.length !== want.length) return false;
    return want.every((w, i) => isSubset(w, have[i]));
  }
  const h = have as Record<string, unknown>;
  return Object.entries(want as Record<string, unknown>).every(([k, v]) => isSubset(v, h[k]));
}
