import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  capacityProblem,
  computeStatus,
  isSubset,
  jsonEqual,
  podProblem,
  type CapacityView,
  type Condition,
  type NodeClaimView,
  type Observation,
  type PodView,
} from "../../src/controller/status.ts";
import { conditionEvents } from "../../src/controller/reconcile.ts";
import { parseSpec } from "../../src/api/validate.ts";
import { plan } from "../../src/planner/plan.ts";

const NOW = "2026-11-29T03:00:00Z";
const LATER = "2026-11-29T03:05:00Z";

function pod(name: string, status: PodView["status"]): PodView {
  return { metadata: { name }, status };
}

const unschedulable = pod("p-a", {
  phase: "Pending",
  conditions: [
    {
      type: "PodScheduled",
      status: "False",
      reason: "Unschedulable",
      message: "0/3 nodes are available: 3 Insufficient nvidia.com/gpu.",
    },
  ],
});
/**
 * A pod whose one vllm container is not ready: waiting for `waiting.reason`, after
 * `restartCount` restarts, the last one ended as `lastTerminated`.
 */
function vllmPod(
  name: string,
  c: {
    phase?: string;
    restartCount?: number;
    waiting: { reason: string; message?: string };
    lastTerminated?: { reason: string; exitCode: number };
  },
): PodView {
  return pod(name, {
    ...(c.phase === undefined ? {} : { phase: c.phase }),
    containerStatuses: [
      {
        name: "vllm",
        ready: false,
        restartCount: c.restartCount ?? 0,
        state: { waiting: c.waiting },
        ...(c.lastTerminated === undefined ? {} : { lastState: { terminated: c.lastTerminated } }),
      },
    ],
  });
}
const crashing = vllmPod("p-b", {
  restartCount: 4,
  waiting: { reason: "CrashLoopBackOff" },
  lastTerminated: { reason: "Error", exitCode: 1 },
});
const oom = vllmPod("p-c", {
  restartCount: 2,
  waiting: { reason: "CrashLoopBackOff" },
  lastTerminated: { reason: "OOMKilled", exitCode: 137 },
});
const pullError = vllmPod("p-d", {
  waiting: { reason: "ImagePullBackOff", message: "manifest unknown" },
});

describe("podProblem", () => {
  test("quotes the scheduler's message for an unschedulable pod", () => {
    const p = podProblem([unschedulable]);
    assert.equal(p?.reason, "Unschedulable");
    assert.match(
      p!.message,
      /p-a cannot be scheduled: 0\/3 nodes are available: 3 Insufficient nvidia\.com\/gpu/,
    );
  });
  test("names the exit code of a crash loop", () => {
    const p = podProblem([crashing]);
    assert.equal(p?.reason, "CrashLoopBackOff");
    assert.match(p!.message, /last exit code 1/);
    assert.match(p!.message, /restarts: 4/);
  });
  test("tells OOMKilled apart from a plain crash loop", () => {
    assert.equal(podProblem([oom])?.reason, "OOMKilled");
  });
  test("the most actionable problem wins: image pull, then OOM, then crash, then scheduling", () => {
    assert.equal(podProblem([unschedulable, crashing, oom, pullError])?.reason, "ImagePullError");
    assert.equal(podProblem([unschedulable, crashing, oom])?.reason, "OOMKilled");
    assert.equal(podProblem([unschedulable, crashing])?.reason, "CrashLoopBackOff");
  });
  test("terminating pods and healthy pods are not problems", () => {
    assert.equal(
      podProblem([{ ...crashing, metadata: { name: "x", deletionTimestamp: NOW } }]),
      undefined,
    );
    assert.equal(podProblem([pod("ok", { phase: "Running" })]), undefined);
  });
});

const feasible = plan(parseSpec({ gpu: { type: "a100-80gb" } }));
const infeasible = plan(parseSpec({ gpu: { type: "a100-40gb", tensorParallelSize: 2 } }));

function obs(o: Partial<Observation>): Observation {
  return {
    generation: 3,
    desiredReplicas: 2,
    pods: [],
    selector: "a=b",
    endpoint: "http://x.default.svc:8000/v1",
    plan: feasible,
    desiredTemplateHash: "h1",
    ...o,
  };
}

const rolledOut = {
  metadata: { generation: 5, annotations: { "serving.mistralsmall.dev/template-hash": "h1" } },
  spec: { replicas: 2 },
  status: { observedGeneration: 5, replicas: 2, readyReplicas: 2, updatedReplicas: 2 },
};

function cond(status: ReturnType<typeof computeStatus>, type: string): Condition {
  return status.conditions!.find((c) => c.type === type) as Condition;
}

describe("computeStatus", () => {
  test("a finished rollout is Ready/Available at the observed generation", () => {
    const s = computeStatus(obs({ deployment: rolledOut }), undefined, NOW);
    assert.equal(s.observedGeneration, 3);
    assert.deepEqual(
      s.conditions!.map((c) => [c.type, c.status, c.reason, c.observedGeneration]),
      [
        ["Ready", "True", "Available", 3],
        ["Progressing", "False", "Converged", 3],
        ["Degraded", "False", "AsExpected", 3],
        ["EngineVerified", "True", "EngineVerified", 3],
      ],
    );
    assert.equal(s.readyReplicas, 2);
    assert.equal(s.plan?.tensorParallelSize, 2);
    assert.equal(s.plan?.vllmRelease, "0.24.0");
    assert.equal(s.plan?.attentionBackend, "TRITON_MLA");
  });

  test("an image whose release cannot be read: EngineVerified False, saying why", () => {
    const digest = plan(
      parseSpec({
        gpu: { type: "h100-80gb" },
        engine: { image: "registry.example/vllm@sha256:abc" },
      }),
    );
    const s = computeStatus(obs({ plan: digest, deployment: rolledOut }), undefined, NOW);
    assert.equal(cond(s, "EngineVerified").status, "False");
    assert.equal(cond(s, "EngineVerified").reason, "EngineVersionUnverified");
    assert.match(cond(s, "EngineVerified").message, /cannot be read from its tag.*0\.24\.0/);
    assert.equal(cond(s, "Ready").reason, "Available", "serving is not blocked by it");
  });

  test("a crash loop on the CUDA 13 image names the driver it needs and the 12.9 build", () => {
    const s = computeStatus(obs({ plan: feasible, pods: [crashing] }), undefined, NOW);
    assert.equal(cond(s, "Ready").reason, "CrashLoopBackOff");
    assert.match(cond(s, "Ready").message, /CUDA 13\.0 build.*R580.*cudaVersion: "12\.9"/);
  });

  test("an old template hash means still rolling out, not Available", () => {
    const s = computeStatus(
      obs({ deployment: rolledOut, desiredTemplateHash: "h2" }),
      undefined,
      NOW,
    );
    assert.equal(cond(s, "Ready").reason, "RollingOut");
    assert.equal(cond(s, "Progressing").status, "True");
  });

  test("no ready pod yet: ModelLoading", () => {
    const dep = { ...rolledOut, status: { ...rolledOut.status, readyReplicas: 0 } };
    const s = computeStatus(obs({ deployment: dep }), undefined, NOW);
    assert.equal(cond(s, "Ready").status, "False");
    assert.equal(cond(s, "Ready").reason, "ModelLoading");
  });

  test("infeasible without a workload: Ready False with the planner's numbers", () => {
    const s = computeStatus(obs({ plan: infeasible }), undefined, NOW);
    assert.equal(cond(s, "Ready").reason, "Infeasible");
    assert.match(cond(s, "Ready").message, /56\.3 GiB per GPU at TP=2/);
    assert.equal(s.plan, undefined);
  });

  test("infeasible with a serving workload: keeps serving, Degraded, previous plan kept", () => {
    const previous = computeStatus(obs({ deployment: rolledOut }), undefined, NOW);
    const s = computeStatus(obs({ plan: infeasible, deployment: rolledOut }), previous, LATER);
    assert.equal(cond(s, "Ready").status, "True");
    assert.equal(cond(s, "Ready").reason, "InfeasibleKeepsServing");
    assert.equal(cond(s, "Degraded").status, "True");
    assert.deepEqual(s.plan, previous.plan);
  });

  test("invalid spec: InvalidSpec with the problems", () => {
    const s = computeStatus(
      obs({ plan: undefined, invalid: "spec.gpu.type: must be one of ..." }),
      undefined,
      NOW,
    );
    assert.equal(cond(s, "Ready").reason, "InvalidSpec");
    assert.match(cond(s, "Degraded").message, /spec\.gpu\.type/);
  });

  test("lastTransitionTime changes only when a status flips", () => {
    const first = computeStatus(obs({ deployment: rolledOut }), undefined, NOW);
    const same = computeStatus(obs({ deployment: rolledOut }), first, LATER);
    assert.ok(jsonEqual(first, same), "nothing changed: identical status, so no write");
    const loading = computeStatus(
      obs({ deployment: { ...rolledOut, status: { ...rolledOut.status, readyReplicas: 0 } } }),
      first,
      LATER,
    );
    assert.equal(cond(loading, "Ready").lastTransitionTime, LATER);
    assert.equal(cond(loading, "Degraded").lastTransitionTime, NOW, "Degraded stayed False");
  });

  test("pod problems surface with their cause while nothing serves", () => {
    const dep = { ...rolledOut, status: { ...rolledOut.status, readyReplicas: 0 } };
    const s = computeStatus(obs({ deployment: dep, pods: [unschedulable] }), undefined, NOW);
    assert.equal(cond(s, "Ready").reason, "Unschedulable");
    assert.equal(cond(s, "Degraded").status, "True");
  });
});

describe("isSubset and jsonEqual", () => {
  test("server defaults in the live object do not count as drift", () => {
    assert.ok(isSubset({ a: 1, b: { c: "x" } }, { a: 1, b: { c: "x", d: 2 }, e: 3 }));
    assert.ok(!isSubset({ a: 1, b: { c: "x" } }, { a: 1, b: { c: "y" } }));
  });
  test("lists must match element for element", () => {
    assert.ok(isSubset([{ a: 1 }], [{ a: 1, b: 2 }]));
    assert.ok(!isSubset([{ a: 1 }], [{ a: 1 }, { a: 2 }]));
  });
  test("an empty map wanted equals an absent one (the API server drops it)", () => {
    assert.ok(isSubset({ nodeSelector: {} }, {}));
    assert.ok(!isSubset({ nodeSelector: { a: "b" } }, {}));
  });
  test("jsonEqual ignores undefined fields and key order", () => {
    assert.ok(jsonEqual({ a: 1, b: undefined, c: [1, { d: 2 }] }, { c: [1, { d: 2 }], a: 1 }));
    assert.ok(!jsonEqual({ a: [1, 2] }, { a: [2, 1] }));
  });
});

describe("conditionEvents", () => {
  const c = (type: string, status: string, reason: string): Condition =>
    ({ type, status, reason, message: `${type} ${reason}`, lastTransitionTime: NOW }) as Condition;
  test("nothing changed: no event", () => {
    const conds = [c("Ready", "True", "Available"), c("Degraded", "False", "AsExpected")];
    assert.deepEqual(conditionEvents(conds, conds), []);
  });
  test("a new Ready verdict is one event; Degraded with the same reason adds none", () => {
    const e = conditionEvents(
      [c("Ready", "False", "ModelLoading")],
      [c("Ready", "False", "Unschedulable"), c("Degraded", "True", "Unschedulable")],
    );
    assert.deepEqual(
      e.map((x) => [x.type, x.reason]),
      [["Warning", "Unschedulable"]],
    );
  });
  test("Degraded with its own reason while Ready stays True is reported", () => {
    const e = conditionEvents(
      [c("Ready", "True", "Available"), c("Degraded", "False", "AsExpected")],
      [c("Ready", "True", "Available"), c("Degraded", "True", "CrashLoopBackOff")],
    );
    assert.deepEqual(
      e.map((x) => [x.type, x.reason]),
      [["Warning", "CrashLoopBackOff"]],
    );
  });
});

describe("status on a Karpenter pool", () => {
  const claim = (name: string, more: Partial<NodeClaimView> = {}): NodeClaimView => ({
    name,
    initialized: false,
    deleting: false,
    ...more,
  });
  const event = (reason: string, message: string, time: string) => ({
    pod: "p-a",
    reason,
    message,
    time,
  });
  const limitMessage =
    'Failed to schedule pod, incompatible with nodepool "msd-default-small", daemonset overhead={"cpu":"0"}, all available instance types exceed limits for nodepool';

  test("names the NodeClaims Karpenter is launching, as progress rather than a fault", () => {
    const capacity: CapacityView = {
      nodePool: "msd-default-small",
      nodeClaims: [
        claim("msd-default-small-abc", {
          instanceType: "a2-ultragpu-2g",
          capacityType: "on-demand",
          zone: "fake-zone-a",
        }),
        claim("msd-default-small-old", { initialized: true }),
      ],
      events: [event("Nominated", "Pod should schedule on: nodeclaim/msd-default-small-abc", NOW)],
    };
    const s = computeStatus(
      obs({ plan: feasible, pods: [unschedulable], capacity }),
      undefined,
      NOW,
    );
    const ready = s.conditions!.find((c) => c.type === "Ready")!;
    assert.equal(ready.reason, "ProvisioningNodes");
    assert.match(
      ready.message,
      /p-a.*Karpenter is launching NodeClaim msd-default-small-abc \(a2-ultragpu-2g, on-demand, fake-zone-a\)/,
    );
    assert.doesNotMatch(ready.message, /-old/);
    assert.equal(s.conditions!.find((c) => c.type === "Degraded")!.status, "False");
  });

  test("quotes Karpenter's FailedScheduling message when it is the pod's latest word", () => {
    const capacity: CapacityView = {
      nodePool: "msd-default-small",
      nodeClaims: [],
      events: [
        event("Nominated", "Pod should schedule on: nodeclaim/x", NOW),
        event("FailedScheduling", limitMessage, LATER),
      ],
    };
    const p = capacityProblem([unschedulable], capacity);
    assert.equal(p?.reason, "CapacityUnavailable");
    assert.match(p!.message, /all available instance types exceed limits for nodepool/);
    const s = computeStatus(
      obs({ plan: feasible, pods: [unschedulable], capacity }),
      undefined,
      NOW,
    );
    assert.equal(s.conditions!.find((c) => c.type === "Degraded")!.reason, "CapacityUnavailable");
  });

  test("a newer nomination supersedes an older failure", () => {
    const capacity: CapacityView = {
      nodePool: "np",
      nodeClaims: [claim("np-1")],
      events: [
        event("FailedScheduling", limitMessage, NOW),
        event("Nominated", "Pod should schedule on: nodeclaim/np-1", LATER),
      ],
    };
    assert.equal(capacityProblem([unschedulable], capacity)?.reason, "ProvisioningNodes");
  });

  test("before Karpenter acts, the scheduler's own message stays", () => {
    const capacity: CapacityView = { nodePool: "np", nodeClaims: [], events: [] };
    const s = computeStatus(
      obs({ plan: feasible, pods: [unschedulable], capacity }),
      undefined,
      NOW,
    );
    assert.equal(s.conditions!.find((c) => c.type === "Ready")!.reason, "Unschedulable");
  });
});

/** One vllm container waiting with the kubelet's reason and message. */
function waitingPod(name: string, reason: string, message?: string): PodView {
  return vllmPod(name, {
    phase: "Pending",
    waiting: { reason, ...(message === undefined ? {} : { message }) },
  });
}

describe("podProblem: every kubelet waiting reason names its cause", () => {
  // Reason strings and message shapes as the kubelet writes them
  // (pkg/kubelet/kuberuntime/kuberuntime_container.go, pkg/kubelet/images/types.go,
  // pkg/kubelet/container/sync_result.go).
  const cases: [kubelet: string, message: string, reason: string][] = [
    ["CreateContainerConfigError", 'secret "hf-token" not found', "TokenSecretMissing"],
    [
      "CreateContainerConfigError",
      "couldn't find key token in Secret ml/hf-token",
      "TokenSecretMissing",
    ],
    ["CreateContainerConfigError", 'configmap "x" not found', "ContainerConfigError"],
    ["CreateContainerError", "context deadline exceeded", "ContainerCreateFailed"],
    [
      "InvalidImageName",
      'Failed to apply default image tag "Vllm/X:": invalid',
      "InvalidImageName",
    ],
    ["RunContainerError", "exec: vllm: not found", "ContainerStartFailed"],
    ["PostStartHookError", "hook failed", "ContainerStartFailed"],
    ["ErrImagePull", "manifest unknown", "ImagePullError"],
    ["ImagePullBackOff", 'Back-off pulling image "vllm/x"', "ImagePullError"],
    ["ErrImageNeverPull", "image not present with pull policy of Never", "ImagePullError"],
    ["CreatePodSandboxError", "failed to set up network", "PodSandboxFailed"],
    ["SomethingNewInKubelet", "a reason this operator does not know", "ContainerWaiting"],
  ];
  for (const [kubelet, message, reason] of cases) {
    test(`${kubelet} (${message}) -> ${reason}, quoting the kubelet`, () => {
      const p = podProblem([waitingPod("p-w", kubelet, message)]);
      assert.equal(p?.reason, reason);
      assert.ok(p!.message.includes(message), p!.message);
      assert.ok(p!.message.includes("p-w"), p!.message);
    });
  }
  test("a missing token Secret says where to create it", () => {
    const p = podProblem([waitingPod("p", "CreateContainerConfigError", 'secret "x" not found')]);
    assert.match(p!.message, /spec\.model\.tokenSecretRef/);
  });
  test("ContainerCreating and PodInitializing are a normal start, not a problem", () => {
    assert.equal(podProblem([waitingPod("p", "ContainerCreating")]), undefined);
    assert.equal(podProblem([waitingPod("p", "PodInitializing")]), undefined);
  });
  test("a missing Secret outranks a crash loop and an unschedulable pod", () => {
    const secret = waitingPod("p-s", "CreateContainerConfigError", 'secret "x" not found');
    assert.equal(podProblem([unschedulable, crashing, secret])?.reason, "TokenSecretMissing");
  });
});

describe("computeStatus: workload-level problems", () => {
  const loadingDep = { ...rolledOut, status: { ...rolledOut.status, readyReplicas: 0 } };

  test("a missing token Secret is not reported as ModelLoading", () => {
    const s = computeStatus(
      obs({
        deployment: loadingDep,
        pods: [waitingPod("p", "CreateContainerConfigError", 'secret "hf" not found')],
      }),
      undefined,
      NOW,
    );
    assert.equal(cond(s, "Ready").reason, "TokenSecretMissing");
    assert.equal(cond(s, "Degraded").status, "True");
    assert.doesNotMatch(cond(s, "Ready").message, /weights/);
  });

  test("a paused Deployment with a pending template is DeploymentPaused, not RollingOut", () => {
    const paused = { ...rolledOut, spec: { replicas: 2, paused: true } };
    const s = computeStatus(
      obs({ deployment: paused, deploymentName: "small", desiredTemplateHash: "h2" }),
      undefined,
      NOW,
    );
    assert.equal(cond(s, "Ready").status, "True", "the old template still serves");
    assert.equal(cond(s, "Ready").reason, "DeploymentPaused");
    assert.equal(cond(s, "Progressing").status, "False");
    assert.equal(cond(s, "Degraded").status, "True");
    assert.match(cond(s, "Degraded").message, /kubectl rollout resume deployment\/small/);
  });

  test("a paused Deployment is reported even when it has nothing pending", () => {
    const paused = { ...rolledOut, spec: { replicas: 2, paused: true } };
    const s = computeStatus(obs({ deployment: paused, deploymentName: "small" }), undefined, NOW);
    assert.equal(cond(s, "Degraded").reason, "DeploymentPaused");
  });

  /** Status of a rolled-out Deployment whose model-cache claim is `cacheClaim`. */
  const withClaim = (cacheClaim: Observation["cacheClaim"]) =>
    computeStatus(obs({ deployment: rolledOut, cacheClaim }), undefined, NOW);

  test("a terminating model-cache claim shows while every replica serves", () => {
    const s = withClaim({ metadata: { name: "small-model-cache", deletionTimestamp: NOW } });
    assert.equal(cond(s, "Ready").status, "True");
    assert.equal(cond(s, "Ready").reason, "CacheClaimTerminating");
    assert.equal(cond(s, "Degraded").status, "True");
    assert.match(cond(s, "Degraded").message, /small-model-cache is being deleted/);
  });

  test("a bound, live claim changes nothing", () => {
    const s = withClaim({ metadata: { name: "c" }, status: { phase: "Bound" } });
    assert.equal(cond(s, "Ready").reason, "Available");
  });

  test("a lost claim is CacheClaimLost", () => {
    const s = withClaim({ metadata: { name: "c" }, status: { phase: "Lost" } });
    assert.equal(cond(s, "Degraded").reason, "CacheClaimLost");
  });

  /** The loading Deployment with one condition the Deployment controller set. */
  const loadingWith = (type: string, status: string, reason: string, message: string) => ({
    ...loadingDep,
    status: { ...loadingDep.status, conditions: [{ type, status, reason, message }] },
  });

  test("pods the ReplicaSet cannot create (quota, admission) are PodCreateFailed", () => {
    const dep = loadingWith(
      "ReplicaFailure",
      "True",
      "FailedCreate",
      'pods "small-x" is forbidden: exceeded quota: gpu',
    );
    const s = computeStatus(obs({ deployment: dep, deploymentName: "small" }), undefined, NOW);
    assert.equal(cond(s, "Ready").reason, "PodCreateFailed");
    assert.match(cond(s, "Ready").message, /exceeded quota: gpu/);
  });

  test("a progress deadline exceeded without a pod problem is reported as such", () => {
    const dep = loadingWith(
      "Progressing",
      "False",
      "ProgressDeadlineExceeded",
      'ReplicaSet "small-x" has timed out progressing.',
    );
    const s = computeStatus(obs({ deployment: dep, deploymentName: "small" }), undefined, NOW);
    assert.equal(cond(s, "Ready").reason, "ProgressDeadlineExceeded");
    assert.equal(cond(s, "Progressing").status, "False");
    const withPod = computeStatus(obs({ deployment: dep, pods: [crashing] }), undefined, NOW);
    assert.equal(cond(withPod, "Ready").reason, "CrashLoopBackOff", "the pod says why");
  });
});

describe("computeStatus: a rendered object the API server refuses", () => {
  const rejected =
    'the API server refuses PersistentVolumeClaim ml/x-model-cache: spec.resources.requests[storage]: Invalid value: "0": must be greater than zero; nothing was applied';
  test("nothing serves: Ready False, ObjectRejected with the object and field", () => {
    const s = computeStatus(obs({ rejected }), undefined, NOW);
    assert.equal(cond(s, "Ready").status, "False");
    assert.equal(cond(s, "Ready").reason, "ObjectRejected");
    assert.match(
      cond(s, "Ready").message,
      /PersistentVolumeClaim ml\/x-model-cache: spec\.resources/,
    );
    assert.equal(cond(s, "Progressing").status, "False");
  });
  test("a serving workload keeps serving the objects applied before", () => {
    const s = computeStatus(obs({ rejected, deployment: rolledOut }), undefined, NOW);
    assert.equal(cond(s, "Ready").status, "True");
    assert.equal(cond(s, "Degraded").reason, "ObjectRejected");
  });
});
