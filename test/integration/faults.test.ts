/**
 * Faults injected by hand into a converged resource, against a real control plane with the
 * operator's generated RBAC: each owned kind deleted or edited, the Deployment paused, the
 * model-cache claim deleted while pods use it. Each case must converge (or say why it cannot),
 * with nothing duplicated and nothing left behind. Operator SIGKILL mid-reconcile is in
 * leader.test.ts; a security-field hand patch and missing permissions are in operator.test.ts.
 * An API server restart forces the operator's watches to expire (410) and relist.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { RESOURCES, type KubeObject, type ResourceType } from "../../src/kube/client.ts";
import { eventually, type TestCluster } from "./cluster.ts";
import {
  cacheClaimOf,
  condition,
  msdYaml,
  startOperatorBed,
  type Msd,
  type OperatorBed,
} from "./operator-harness.ts";

const NAME = "faulty";
const NS = "default";
const SELECTOR = `app.kubernetes.io/instance=${NAME}`;
const OWNED: readonly [ResourceType, string][] = [
  [RESOURCES.deployment, NAME],
  [RESOURCES.service, NAME],
  [RESOURCES.pdb, NAME],
];

describe("fault injection: hand edits and deletions converge, nothing duplicated or left", () => {
  let bed: OperatorBed | undefined;
  let c: TestCluster;
  const msd = () => c.client.getOrUndefined<Msd>(RESOURCES.msd, NAME, NS);
  const available = () =>
    eventually(`${NAME} Available`, async () => {
      const m = await msd();
      return condition(m, "Ready")?.reason === "Available" &&
        m?.status?.observedGeneration === m?.metadata.generation
        ? m
        : undefined;
    });

  /** Exactly one of each owned kind, each controlled by the resource, none terminating. */
  async function assertOwnedOnce(): Promise<void> {
    const uid = (await msd())!.metadata.uid;
    for (const [r, name] of OWNED) {
      const items = (await c.client.list<KubeObject>(r, { namespace: NS, labelSelector: SELECTOR }))
        .items;
      assert.deepEqual(
        items.map((i) => i.metadata.name),
        [name],
        `${r.kind}: exactly one, named ${name}`,
      );
      const o = items[0]!;
      assert.equal(o.metadata.deletionTimestamp, undefined, `${r.kind} is not terminating`);
      assert.ok(
        o.metadata.ownerReferences?.some((ref) => ref.uid === uid && ref.controller === true),
        `${r.kind} is controlled by the resource`,
      );
    }
  }

  /** `kubectl patch` of `object` (kind/name) in NS, as a person would edit it. */
  const patchByHand = async (object: string, type: "merge" | "strategic", patch: object) => {
    const r = await c.kubectl([
      "patch",
      object,
      "-n",
      NS,
      `--type=${type}`,
      "-p",
      JSON.stringify(patch),
    ]);
    assert.equal(r.code, 0, r.stderr);
  };

  before(async () => {
    bed = await startOperatorBed({ operator: { resyncMs: 3000, name: "faults" } });
    c = bed.c;
    const r = await c.kubectl(["apply", "-f", "-"], msdYaml(NAME, { gpu: { type: "a100-80gb" } }));
    assert.equal(r.code, 0, r.stderr);
    await available();
  });
  after(() => bed?.stop());

  for (const [r, name] of OWNED) {
    test(`a ${r.kind} deleted by hand is recreated once`, async () => {
      const before = await c.client.get<KubeObject>(r, name, NS);
      await c.client.delete(r, name, NS);
      await eventually(`${r.kind} recreated`, async () => {
        const now = await c.client.getOrUndefined<KubeObject>(r, name, NS);
        return now !== undefined &&
          now.metadata.uid !== before.metadata.uid &&
          now.metadata.deletionTimestamp === undefined
          ? now
          : undefined;
      });
      await available();
      await assertOwnedOnce();
    });
  }

  test("hand edits of the Service port and the PDB budget are reverted", async () => {
    const svcPatch = { spec: { ports: [{ name: "http", port: 9999 }] } };
    const pdbPatch = { spec: { maxUnavailable: 3 } };
    for (const [kind, patch] of [
      ["service", svcPatch],
      ["pdb", pdbPatch],
    ] as const) {
      await patchByHand(`${kind}/${NAME}`, "merge", patch);
    }
    await eventually("Service and PDB reverted", async () => {
      const svc = await c.client.get<KubeObject & { spec: { ports: { port: number }[] } }>(
        RESOURCES.service,
        NAME,
        NS,
      );
      const pdb = await c.client.get<KubeObject & { spec: { maxUnavailable: number } }>(
        RESOURCES.pdb,
        NAME,
        NS,
      );
      return svc.spec.ports.every((p) => p.port === 8000) && pdb.spec.maxUnavailable === 1;
    });
    await assertOwnedOnce();
  });

  test("a privileged sidecar added to the pod template by hand is removed, with an event", async () => {
    const sidecar = {
      spec: {
        template: {
          spec: {
            containers: [
              { name: "sidecar", image: "busybox", securityContext: { privileged: true } },
            ],
          },
        },
      },
    };
    await patchByHand(`deployment/${NAME}`, "strategic", sidecar);
    await eventually("sidecar removed", async () => {
      const d = await c.client.get<
        KubeObject & { spec: { template: { spec: { containers: { name: string }[] } } } }
      >(RESOURCES.deployment, NAME, NS);
      const names = d.spec.template.spec.containers.map((x) => x.name);
      return names.length === 1 && names[0] === "vllm";
    });
    // Events are written after the patch, best effort: wait for it.
    const note = await eventually("ForeignEntriesRemoved event", async () => {
      const events = await c.client.list<KubeObject & { reason?: string; note?: string }>(
        RESOURCES.event,
        { namespace: NS },
      );
      const text = events.items
        .filter((e) => e.reason === "ForeignEntriesRemoved")
        .map((e) => e.note)
        .join("\n");
      return text.includes("containers[sidecar]") ? text : undefined;
    });
    assert.match(note, /spec\.template\.spec\.containers\[sidecar\]/);
    await available();
    await assertOwnedOnce();
  });

  test("a paused Deployment shows as DeploymentPaused, and Available again once resumed", async () => {
    const pause = await c.kubectl(["rollout", "pause", `deployment/${NAME}`, "-n", NS]);
    assert.equal(pause.code, 0, pause.stderr);
    const m = await eventually("DeploymentPaused", async () => {
      const x = await msd();
      return condition(x, "Degraded")?.reason === "DeploymentPaused" ? x : undefined;
    });
    assert.match(condition(m, "Degraded")!.message, /kubectl rollout resume deployment\/faulty/);
    assert.equal(condition(m, "Ready")?.status, "True", "the replica still serves");
    const resume = await c.kubectl(["rollout", "resume", `deployment/${NAME}`, "-n", NS]);
    assert.equal(resume.code, 0, resume.stderr);
    await available();
    await assertOwnedOnce();
  });

  test("an admission webhook that cannot be reached (500): ApplyFailed in status, retried until it goes", async () => {
    // failurePolicy Fail turns a failed webhook call into an InternalError (500) for the
    // dry run and the apply alike; sideEffects None lets dry runs call it at all.
    const webhook = `apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata: {name: faults-unreachable}
webhooks:
  - name: unreachable.faults.test
    admissionReviewVersions: [v1]
    sideEffects: None
    failurePolicy: Fail
    clientConfig: {url: "https://127.0.0.1:1/validate"}
    namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: ${NS}}}
    objectSelector: {matchLabels: {app.kubernetes.io/instance: ${NAME}}}
    rules:
      - {apiGroups: [policy], apiVersions: [v1], operations: [CREATE], resources: [poddisruptionbudgets]}
`;
    const log = () => readFileSync(bed!.op.logFile, "utf8");
    const logBefore = log().length;
    const add = await c.kubectl(["apply", "-f", "-"], webhook);
    assert.equal(add.code, 0, add.stderr);
    try {
      await c.client.delete(RESOURCES.pdb, NAME, NS);
      const m = await eventually("ApplyFailed", async () => {
        const x = await msd();
        return condition(x, "Degraded")?.reason === "ApplyFailed" ? x : undefined;
      });
      assert.match(condition(m, "Degraded")!.message, /failed calling webhook/);
      // Replicas still serve: Ready stays True and says why nothing converges.
      assert.equal(condition(m, "Ready")?.status, "True");
      await eventually("the queue retried the transient failure with backoff", async () =>
        /"type":"TransientApiError"[^\n]*reconcile failed; retrying with backoff/.test(
          log().slice(logBefore),
        )
          ? true
          : undefined,
      );
      assert.equal(await c.client.getOrUndefined(RESOURCES.pdb, NAME, NS), undefined);
    } finally {
      const del = await c.kubectl([
        "delete",
        "validatingwebhookconfiguration",
        "faults-unreachable",
      ]);
      assert.equal(del.code, 0, del.stderr);
    }
    await available();
    await assertOwnedOnce();
  });

  test("an API server restart: resumed watches expire (410) and relist; later hand edits still converge", async () => {
    assert.ok(c.local !== undefined, "needs the local control plane");
    // A write just before the restart moves the resourceVersion past what the operator's
    // informers last saw, so their resumed watches are older than the new watch cache: 410.
    const marker = await c.kubectl(["create", "configmap", "restart-marker", "-n", NS]);
    assert.equal(marker.code, 0, marker.stderr);
    const log = () => readFileSync(bed!.op.logFile, "utf8");
    const logBefore = log().length;
    await c.local.restartApiServer();
    await eventually("the operator relisted after a 410", async () =>
      /resourceVersion expired; relisting/.test(log().slice(logBefore)) ? true : undefined,
    );
    const svc = await c.client.get<KubeObject>(RESOURCES.service, NAME, NS);
    await c.client.delete(RESOURCES.service, NAME, NS);
    await eventually("the Service recreated after the restart", async () => {
      const now = await c.client.getOrUndefined<KubeObject>(RESOURCES.service, NAME, NS);
      return now !== undefined && now.metadata.uid !== svc.metadata.uid ? now : undefined;
    });
    await available();
    await assertOwnedOnce();
    await c.kubectl(["delete", "configmap", "restart-marker", "-n", NS]);
  });

  test("the model-cache claim deleted while pods use it shows as CacheClaimTerminating", async () => {
    // pvc-protection keeps the claim while a pod mounts it: it sits Terminating.
    // Shared by every resource loading the same checkpoint: found by its owner reference.
    const claim = (await cacheClaimOf(c, NAME, NS))!.metadata.name;
    const del = await c.kubectl(["delete", "pvc", claim, "-n", NS, "--wait=false"]);
    assert.equal(del.code, 0, del.stderr);
    const m = await eventually("CacheClaimTerminating", async () => {
      const x = await msd();
      return condition(x, "Degraded")?.reason === "CacheClaimTerminating" ? x : undefined;
    });
    assert.ok(condition(m, "Degraded")!.message.includes(`${claim} is being deleted`));
    // Deleting the resource removes everything it owns, the terminating claim included.
    await c.client.delete(RESOURCES.msd, NAME, NS);
    await eventually("nothing left behind", async () => {
      const left = await Promise.all(
        OWNED.map(([r]) =>
          c.client.list<KubeObject>(r, { namespace: NS, labelSelector: SELECTOR }),
        ),
      );
      const pods = await c.client.list<KubeObject>(RESOURCES.pod, {
        namespace: NS,
        labelSelector: SELECTOR,
      });
      const claimLeft = await cacheClaimOf(c, NAME, NS);
      return left.every((l) => l.items.length === 0) && pods.items.length === 0 && !claimLeft;
    });
  });
});
