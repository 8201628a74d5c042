/**
 * planReconcile is pure: each case is an observed value in, a plan out, compared with plain
 * equality (on a summary that names every write, and in full where the content matters).
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { API_VERSION, KIND } from "../../src/api/schema.ts";
import type { KubeObject } from "../../src/kube/client.ts";
import type { CustomObject, MistralSmallDeploymentObject } from "../../src/kube/objects.ts";
import { renderDesired, type Manifest } from "../../src/render/index.ts";
import { OWNER_UID_LABEL } from "../../src/render/names.ts";
import { pinTemplate } from "../../src/controller/template-pin.ts";
import { asStored } from "../../src/render/security.ts";
import { parseResource, ValidationError } from "../../src/api/validate.ts";
import { plan as planFor } from "../../src/planner/plan.ts";
import {
  CONVERGE_STEPS,
  FINALIZER,
  LOADING_RECHECK_MS,
  RELEASING_RECHECK_MS,
  memoKeyOf,
  planReconcile,
  type Observed,
  type PlanStep,
  type ReconcilePlan,
} from "../../src/controller/reconcile-plan.ts";
import type { NodeClaimView } from "../../src/controller/status.ts";

const UID = "0b6c1f0e-0000-4000-8000-0000000000aa";
const NOW = "2026-12-01T10:00:00Z";
const EARLIER = "2026-12-01T09:00:00Z";
const NODEPOOL_MISSING =
  "the Karpenter karpenter.sh/v1 NodePool CRD is not installed in this cluster";

type Spec = Record<string, unknown>;

const STATIC: Spec = {
  gpu: { type: "h100-80gb", tensorParallelSize: 4 },
  model: { cache: { existingClaim: "shared-weights" } },
  replicas: 2,
  nodePool: { provider: "static", static: { nodeSelector: { pool: "h100" } } },
};

const KARPENTER: Spec = {
  gpu: { type: "a100-80gb" },
  model: { cache: { existingClaim: "shared-weights" } },
  replicas: 1,
  nodePool: { provider: "karpenter", karpenter: { nodeClassRef: { name: "gpu-nodes" } } },
};

function msd(
  spec: Spec,
  metadata: Partial<KubeObject["metadata"]> = {},
): MistralSmallDeploymentObject {
  return {
    apiVersion: API_VERSION,
    kind: KIND,
    metadata: {
      name: "small",
      namespace: "ml",
      uid: UID,
      generation: 3,
      resourceVersion: "100",
      ...metadata,
    },
    spec,
  } as MistralSmallDeploymentObject;
}

/** The objects the spec renders to, as the planner applies them (with the template record). */
function rendered(raw: MistralSmallDeploymentObject): readonly Manifest[] {
  const parsed = parseResource(raw);
  const sizing = planFor(parsed.spec);
  assert.ok(sizing.feasible);
  const desired = renderDesired({ ...parsed, metadata: { ...parsed.metadata, uid: UID } }, sizing);
  return pinTemplate(desired, parsed, undefined).objects;
}

/** What the API server would store for an applied object (a newer resourceVersion, server uid). */
function stored(obj: Manifest, resourceVersion = "50"): CustomObject {
  const base = obj.kind === "Deployment" ? asStored(obj) : obj;
  const copy = structuredClone(base) as unknown as CustomObject;
  copy.metadata.uid = `uid-${obj.kind}`;
  copy.metadata.resourceVersion = resourceVersion;
  return copy;
}

const CORE_KINDS = [
  "PersistentVolumeClaim",
  "Service",
  "NetworkPolicy",
  "PodDisruptionBudget",
  "Deployment",
  "HorizontalPodAutoscaler",
  "Job",
];

/**
 * The loader Job of the resource's model cache, as the Job controller leaves it once the
 * download completed: the vLLM Deployment is applied only then (model-cache.ts).
 */
function completed(job: CustomObject): CustomObject {
  return {
    ...job,
    status: { succeeded: 1, conditions: [{ type: "Complete", status: "True" }] },
  } as CustomObject;
}

/** The live objects with the loader Job completed (added when absent; none for an invalid spec). */
function withCompleteCache(
  raw: MistralSmallDeploymentObject,
  live: readonly CustomObject[],
): CustomObject[] {
  if (live.some((o) => o.kind === "Job")) {
    return live.map((o) => (o.kind === "Job" && o.status === undefined ? completed(o) : o));
  }
  let job: Manifest | undefined;
  try {
    job = rendered(raw).find((o) => o.kind === "Job");
  } catch (err) {
    if (err instanceof ValidationError) return [...live];
    throw err;
  }
  return job === undefined ? [...live] : [...live, completed(stored(job))];
}

function observed(
  raw: MistralSmallDeploymentObject,
  over: Partial<Observed> & { live?: CustomObject[]; cacheComplete?: boolean } = {},
): Observed {
  const { live: given = [], cacheComplete = true, ...rest } = over;
  const live = cacheComplete ? withCompleteCache(raw, given) : given;
  const karpenter = rest.missingCrds?.has("NodePool") !== true;
  const kinds = karpenter ? [...CORE_KINDS, "NodePool"] : CORE_KINDS;
  const key = (o: CustomObject) =>
    [o.metadata.namespace, o.metadata.name].filter(Boolean).join("/");
  const owned = new Map(
    kinds.map((k) => [k, new Map(live.filter((o) => o.kind === k).map((o) => [key(o), o]))]),
  );
  return {
    now: NOW,
    msd: raw,
    owned,
    missingCrds: new Set(["ScaledObject", "PodMonitor"]),
    pods: [],
    nodeClaims: [],
    karpenterEvents: [],
    appliedMemo: new Map(),
    managedPods: [],
    ...rest,
  };
}

interface Summary {
  finalizer: ReconcilePlan["finalizer"];
  patch: string[];
  apply: string[];
  delete: string[];
  /** type=status/reason per condition, or "unchanged" when no status write is planned. */
  status: string[] | "unchanged";
  events: string[];
  requeueAfter: number | undefined;
}

/** A plan that writes nothing and asks for no requeue. */
const NOTHING: Summary = {
  finalizer: "keep",
  patch: [],
  apply: [],
  delete: [],
  status: "unchanged",
  events: [],
  requeueAfter: undefined,
};

function summary(p: ReconcilePlan): Summary {
  return {
    finalizer: p.finalizer,
    patch: p.patch.map((s) => `${s.resource.kind}/${s.name}`),
    apply: p.apply.map((s) => `${s.object.kind}/${s.object.metadata.name}`),
    delete: p.delete.map((s) => `${s.resource.kind}/${s.name}`),
    status:
      p.status === undefined
        ? "unchanged"
        : (p.status.conditions ?? []).map((c) => `${c.type}=${c.status}/${c.reason}`),
    events: [...p.apply.flatMap((s) => s.events), ...p.events].map((e) => `${e.type}/${e.reason}`),
    requeueAfter: p.requeueAfter,
  };
}

function ready(p: ReconcilePlan) {
  return p.status?.conditions?.find((c) => c.type === "Ready");
}

const LOADING = [
  "Ready=False/ModelLoading",
  "Progressing=True/ModelLoading",
  "Degraded=False/AsExpected",
  "EngineVerified=True/EngineVerified",
  "ModelCached=True/Complete",
];

describe("planReconcile: converging", () => {
  const raw = msd(STATIC);
  const objects = rendered(raw);
  const names = objects.map((o) => `${o.kind}/${o.metadata.name}`);
  const deployment = objects.find((o) => o.kind === "Deployment")!;

  test("model cache: the loader Job first and alone; the Deployment once it completed", () => {
    const waiting = summary(planReconcile(observed(raw, { cacheComplete: false })));
    assert.ok(
      waiting.apply.some((n) => n.startsWith("Job/model-loader-")),
      waiting.apply.join(),
    );
    assert.ok(!waiting.apply.includes("Deployment/small"), waiting.apply.join());
    assert.ok(waiting.status?.includes("ModelCached=False/Pending"), String(waiting.status));
    const done = summary(planReconcile(observed(raw)));
    assert.ok(done.apply.includes("Deployment/small"));
  });

  test("creation: every rendered object is applied, in the table's order; status says loading", () => {
    const p = planReconcile(observed(raw));
    assert.deepEqual(summary(p), {
      finalizer: "keep",
      patch: [],
      apply: [
        "Service/small",
        "NetworkPolicy/small",
        "PodDisruptionBudget/small",
        "Deployment/small",
      ],
      delete: [],
      status: LOADING,
      events: [],
      requeueAfter: LOADING_RECHECK_MS,
    });
    assert.equal(
      p.apply.every((s) => s.creates),
      true,
    );
    assert.equal(p.phase, "converge");
  });

  test("no-op: the cache holds what we render, so nothing is applied or pruned", () => {
    const p = planReconcile(observed(raw, { live: objects.map((o) => stored(o)) }));
    assert.deepEqual(p.apply, []);
    assert.deepEqual(p.delete, []);
    assert.deepEqual(p.patch, []);
  });

  test("no-op: the cache lags behind our own last apply (memo digest matches, newer version)", () => {
    const stale = stored(deployment, "50") as KubeObject & { spec: { replicas: number } };
    stale.spec.replicas = 7; // what the cache shows before our apply's watch event arrives
    const live = [...objects.filter((o) => o !== deployment).map((o) => stored(o)), stale];
    const first = planReconcile(observed(raw, { live }));
    const step = first.apply.find((s) => s.object.kind === "Deployment")!;
    assert.equal(first.apply.length, 1, "the stale Deployment alone differs");
    const memo = new Map([[step.memoKey, { digest: step.digest, resourceVersion: "60" }]]);
    assert.deepEqual(planReconcile(observed(raw, { live, appliedMemo: memo })).apply, []);
    // A live object newer than our apply was changed by someone else: apply again.
    const older = new Map([[step.memoKey, { digest: step.digest, resourceVersion: "40" }]]);
    assert.deepEqual(summary(planReconcile(observed(raw, { live, appliedMemo: older }))).apply, [
      "Deployment/small",
    ]);
    // A memo of another rendering (a spec change since) does not hold the apply back.
    const other = new Map([[step.memoKey, { digest: "something-else", resourceVersion: "60" }]]);
    assert.equal(planReconcile(observed(raw, { live, appliedMemo: other })).apply.length, 1);
    assert.equal(memoKeyOf(deployment), "Deployment/ml/small");
  });

  test("prune: an owned object of a prunable kind the spec no longer wants is deleted", () => {
    const hpa = (name: string, extra: Partial<KubeObject["metadata"]> = {}): KubeObject => ({
      apiVersion: "autoscaling/v2",
      kind: "HorizontalPodAutoscaler",
      metadata: {
        name,
        namespace: "ml",
        uid: `uid-${name}`,
        ownerReferences: [
          { apiVersion: API_VERSION, kind: KIND, name: "small", uid: UID, controller: true },
        ],
        ...extra,
      },
    });
    const live = [
      ...objects.map((o) => stored(o)),
      hpa("small"),
      hpa("someone-elses", { ownerReferences: [] }),
      hpa("going", { deletionTimestamp: EARLIER }),
      hpa("elsewhere", { namespace: "other" }),
    ];
    const p = planReconcile(observed(raw, { live }));
    assert.deepEqual(summary(p).delete, ["HorizontalPodAutoscaler/small"]);
    assert.deepEqual(p.delete[0], {
      resource: p.delete[0]!.resource,
      name: "small",
      namespace: "ml",
      uid: "uid-small",
      log: {
        level: "info",
        msg: "deleted object no longer desired",
        fields: { kind: "HorizontalPodAutoscaler", name: "small" },
      },
      event: {
        type: "Normal",
        reason: "Deleted",
        action: "Prune",
        note: "deleted HorizontalPodAutoscaler small: no longer desired",
      },
    });
    // Desired kinds of the same name are kept; the Service is never pruned.
    assert.ok(names.every((n) => !summary(p).delete.includes(n)));
  });

  test("hand-added Deployment entries are patched away before the apply, with an event", () => {
    const live = objects.map((o) => stored(o));
    const dep = live.find((o) => o.kind === "Deployment") as KubeObject & {
      spec: { template: { spec: { containers: { name: string; image: string }[] } } };
    };
    dep.spec.template.spec.containers.push({ name: "sidecar", image: "busybox" });
    const s = summary(planReconcile(observed(raw, { live })));
    assert.deepEqual(s.patch, ["Deployment/small"]);
    assert.deepEqual(s.apply, ["Deployment/small"]);
  });

  /** Nothing serves yet: Ready False, not progressing, degraded, all with one reason. */
  const heldBy = (reason: string): Summary => ({
    ...NOTHING,
    status: [
      `Ready=False/${reason}`,
      `Progressing=False/${reason}`,
      `Degraded=True/${reason}`,
      "EngineVerified=True/EngineVerified",
      "ModelCached=True/Complete",
    ],
    events: [`Warning/${reason}`],
    requeueAfter: LOADING_RECHECK_MS,
  });
  const refusal = "the API server refuses Service ml/small: spec.ports[0].port: Invalid value";
  const timeout = "etcdserver: request timed out";
  const held: [string, Observed, string, string][] = [
    [
      "an optional CRD the spec needs is missing",
      observed(msd(KARPENTER, { finalizers: [FINALIZER] }), {
        missingCrds: new Set(["NodePool", "ScaledObject", "PodMonitor"]),
      }),
      "CrdMissing",
      NODEPOOL_MISSING,
    ],
    [
      "the dry run refused a rendered object (planned again with the refusal)",
      observed(raw, { writeFailure: { kind: "rejected", message: refusal } }),
      "ObjectRejected",
      refusal,
    ],
    [
      "a write failed (planned again with the API server's words)",
      observed(raw, { writeFailure: { kind: "failed", message: timeout } }),
      "ApplyFailed",
      timeout,
    ],
  ];
  for (const [name, o, reason, message] of held) {
    test(`${name}: no write but status, reason ${reason}`, () => {
      const p = planReconcile(o);
      assert.deepEqual(summary(p), heldBy(reason));
      assert.equal(ready(p)?.message, message);
    });
  }

  test("an invalid spec: nothing rendered, status InvalidSpec, a warning logged", () => {
    const p = planReconcile(observed(msd({ ...STATIC, replicas: -1 })));
    assert.deepEqual(summary(p), {
      ...NOTHING,
      status: [
        "Ready=False/InvalidSpec",
        "Progressing=False/InvalidSpec",
        "Degraded=True/InvalidSpec",
      ],
      events: ["Warning/InvalidSpec"],
      requeueAfter: LOADING_RECHECK_MS,
    });
    assert.deepEqual(
      p.log.map((l) => `${l.level}: ${l.msg}`),
      ["warn: spec is invalid"],
    );
  });

  test("a Karpenter spec without our finalizer: add it and end the pass", () => {
    const p = planReconcile(observed(msd(KARPENTER)));
    assert.deepEqual(summary(p), {
      ...NOTHING,
      finalizer: "add",
    });
  });

  test("requeueAfter: none once every replica serves and status already says so", () => {
    const live = objects.map((o) => {
      const s = stored(o);
      if (o.kind !== "Deployment") return s;
      return {
        ...s,
        metadata: { ...s.metadata, generation: 4 },
        status: {
          observedGeneration: 4,
          replicas: 2,
          updatedReplicas: 2,
          readyReplicas: 2,
          availableReplicas: 2,
        },
      };
    });
    const first = planReconcile(observed(raw, { live }));
    assert.deepEqual(summary(first), {
      ...NOTHING,
      status: [
        "Ready=True/Available",
        "Progressing=False/Converged",
        "Degraded=False/AsExpected",
        "EngineVerified=True/EngineVerified",
        "ModelCached=True/Complete",
      ],
      events: ["Normal/Available"],
      requeueAfter: undefined,
    });
    // Converged: the same observation with that status written plans no write at all.
    const again = planReconcile(observed({ ...raw, status: first.status }, { live }));
    assert.deepEqual(summary(again), {
      ...summary(first),
      status: "unchanged",
      events: [],
    });
    // Our write is newer than the cache: compared against the memo, not written twice.
    const memo = { uid: UID, resourceVersion: "101", status: first.status };
    assert.equal(planReconcile(observed(raw, { live, statusMemo: memo })).status, undefined);
    // A memo older than the cache (or of another uid) is ignored.
    const old = { ...memo, resourceVersion: "99" };
    assert.notEqual(planReconcile(observed(raw, { live, statusMemo: old })).status, undefined);
  });

  test("the converge steps are named, in order: a gate is one more entry", () => {
    assert.deepEqual(
      CONVERGE_STEPS.map((s) => s.name),
      [
        "parse",
        "finalizer",
        "render",
        "model-cache",
        "template-pin",
        "crds",
        "apply",
        "prune",
        "status",
      ],
    );
  });

  test("a gate step holds an object back: it is neither applied nor pruned", () => {
    // The shape of a "loader Job must complete first" gate: one pure step after render.
    const holdBack = (kind: string): PlanStep => ({
      name: `hold-${kind}`,
      run: (_o, d) => ({ ...d, toApply: d.toApply.filter((x) => x.kind !== kind) }),
    });
    const at = CONVERGE_STEPS.findIndex((s) => s.name === "render") + 1;
    const gated = (kind: string) => [
      ...CONVERGE_STEPS.slice(0, at),
      holdBack(kind),
      ...CONVERGE_STEPS.slice(at),
    ];
    assert.deepEqual(summary(planReconcile(observed(raw), gated("Deployment"))).apply, [
      "Service/small",
      "NetworkPolicy/small",
      "PodDisruptionBudget/small",
    ]);
    // A held-back object of a prunable kind that exists stays: pruning keeps what is desired.
    const running = objects.map((o) => stored(o));
    const held = planReconcile(observed(raw, { live: running }), gated("NetworkPolicy"));
    assert.deepEqual(summary(held).delete, []);
    assert.deepEqual(summary(held).apply, []);
  });
});

describe("planReconcile: deletion with our finalizer", () => {
  const raw = msd(KARPENTER, { finalizers: [FINALIZER], deletionTimestamp: NOW });
  const objects = rendered(msd(KARPENTER));
  const pool = stored(objects.find((o) => o.kind === "NodePool")!);
  const deployment = stored(objects.find((o) => o.kind === "Deployment")!);
  const poolName = pool.metadata.name;
  const claim: NodeClaimView = {
    name: "gpu-abc12",
    instanceType: "p4de.24xlarge",
    capacityType: "on-demand",
    initialized: true,
    deleting: true,
  };
  const releasing = (message: string) => [
    {
      type: "Ready",
      status: "False",
      reason: "ReleasingNodes",
      message,
      observedGeneration: 3,
      lastTransitionTime: NOW,
    },
  ];

  test("the pool's nodes hold: Deployment first, then the NodePool; finalizer kept", () => {
    assert.equal(pool.metadata.labels?.[OWNER_UID_LABEL], UID);
    const p = planReconcile(observed(raw, { live: [pool, deployment] }));
    assert.deepEqual(summary(p), {
      finalizer: "keep",
      patch: [],
      apply: [],
      delete: ["Deployment/small", `NodePool/${poolName}`],
      status: ["Ready=False/ReleasingNodes"],
      events: [],
      requeueAfter: RELEASING_RECHECK_MS,
    });
    assert.equal(p.phase, "finalize");
    assert.deepEqual(p.status, {
      conditions: releasing(`waiting for NodePool ${poolName} to be deleted`),
    });
    assert.deepEqual(
      p.delete.map((d) => [d.namespace, d.uid]),
      [
        ["ml", "uid-Deployment"],
        [undefined, "uid-NodePool"],
      ],
    );
  });

  test("pool and Deployment already going: no second delete; status names the NodeClaims", () => {
    const going = (o: KubeObject) => ({
      ...o,
      metadata: { ...o.metadata, deletionTimestamp: NOW },
    });
    const p = planReconcile(
      observed(raw, { live: [going(pool), going(deployment)], nodeClaims: [claim] }),
    );
    assert.deepEqual(summary(p).delete, []);
    assert.deepEqual(p.status, {
      conditions: releasing(
        "waiting for Karpenter to terminate NodeClaim gpu-abc12 (p4de.24xlarge, on-demand)",
      ),
    });
    assert.equal(p.finalizer, "keep");
    assert.equal(p.requeueAfter, RELEASING_RECHECK_MS);
  });

  test("the pool is gone but a NodeClaim remains: the finalizer is still kept", () => {
    const p = planReconcile(observed(raw, { nodeClaims: [claim] }));
    assert.equal(p.finalizer, "keep");
    assert.deepEqual(p.delete, []);
    assert.equal(p.requeueAfter, RELEASING_RECHECK_MS);
  });

  test("status already says what drains: no status write, still requeued", () => {
    const message = `waiting for NodePool ${poolName} to be deleted`;
    const said = {
      ...raw,
      status: { conditions: releasing(message) },
    } as MistralSmallDeploymentObject;
    const p = planReconcile(observed(said, { live: [pool] }));
    assert.equal(p.status, undefined);
    assert.deepEqual(summary(p).delete, [`NodePool/${poolName}`]);
    assert.equal(p.requeueAfter, RELEASING_RECHECK_MS);
  });

  test("pool and NodeClaims gone: the finalizer is released, nothing else", () => {
    const p = planReconcile(observed(raw, { live: [deployment] }));
    assert.deepEqual(summary(p), {
      ...NOTHING,
      finalizer: "remove",
    });
  });

  test("without a pool the Deployment is left to the garbage collector", () => {
    const p = planReconcile(observed(raw, { live: [deployment] }));
    assert.deepEqual(p.delete, []);
  });

  test("not our finalizer (or none): nothing to do", () => {
    const other = msd(KARPENTER, { finalizers: ["someone/else"], deletionTimestamp: NOW });
    assert.deepEqual(summary(planReconcile(observed(other, { live: [pool] }))), {
      ...NOTHING,
    });
  });

  test("a failed write during deletion is retried, not planned again", () => {
    const p = planReconcile(
      observed(raw, { live: [pool], writeFailure: { kind: "failed", message: "timeout" } }),
    );
    assert.deepEqual(summary(p).delete, []);
    assert.equal(p.status, undefined);
    assert.equal(p.finalizer, "keep");
  });
});
