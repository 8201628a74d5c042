/**
 * An operator upgrade that changes a default of the pod template restarts no vLLM pod: the
 * upgraded operator (a render standing in for a later release, test/support/later-release.ts)
 * keeps the running template, says so in status and an event, still reconciles the rest, and
 * rolls the new template out only once the owner accepts it.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { RESOURCES, type KubeObject } from "../../src/kube/client.ts";
import { TEMPLATE_HASH_ANNOTATION } from "../../src/render/names.ts";
import { TERMINATION_GRACE_SECONDS } from "../../src/render/deployment.ts";
import {
  ACCEPT_TEMPLATE_ANNOTATION,
  TEMPLATE_UPDATE_CONDITION,
} from "../../src/controller/template-pin.ts";
import { eventually, type TestCluster } from "./cluster.ts";
import {
  condition,
  msdYaml,
  startInProcess,
  startPreparedCluster,
  type InProcessOperator,
  type Msd,
} from "./operator-harness.ts";
import { LATER_GRACE_SECONDS, renderLaterRelease } from "../support/later-release.ts";

type Deployment = KubeObject & {
  metadata: { generation?: number; annotations?: Record<string, string> };
  spec: {
    replicas: number;
    template: { spec: { terminationGracePeriodSeconds?: number } };
  };
};
type Pod = KubeObject & { metadata: { deletionTimestamp?: string } };
type Event = KubeObject & { reason?: string; note?: string; regarding?: { name?: string } };

const NAME = "pinned";

describe("an operator upgrade with a new pod-template default", () => {
  let c: TestCluster;
  let op: InProcessOperator | undefined;
  const getMsd = () => c.client.getOrUndefined<Msd>(RESOURCES.msd, NAME, "default");
  const getDeployment = () => c.client.get<Deployment>(RESOURCES.deployment, NAME, "default");
  const podUids = async () => {
    const pods = await c.client.list<Pod>(RESOURCES.pod, {
      namespace: "default",
      labelSelector: `app.kubernetes.io/instance=${NAME}`,
    });
    return pods.items
      .filter((p) => p.metadata.deletionTimestamp === undefined)
      .map((p) => p.metadata.uid!)
      .sort();
  };
  const available = (replicas: number) =>
    eventually(
      `${NAME} Ready with ${replicas} replicas`,
      async () => {
        const m = await getMsd();
        const ready = condition(m, "Ready");
        return ready?.status === "True" &&
          ready.reason === "Available" &&
          m?.status?.readyReplicas === replicas &&
          m.status.observedGeneration === m.metadata.generation
          ? m
          : undefined;
      },
      90_000,
    );

  let uids: string[] = [];
  let held: { hash: string; generation: number } | undefined;
  let offered = "";

  before(async () => {
    c = await startPreparedCluster();
  });
  after(async () => {
    await op?.stop();
    await c?.stop();
  });

  test("the current release creates the resource and its pods", async () => {
    op = await startInProcess(c, { name: "release-n", resyncMs: 3000 });
    const r = await c.kubectl(
      ["apply", "-f", "-"],
      msdYaml(NAME, { gpu: { type: "a100-80gb" }, maxModelLen: 32768, replicas: 2 }),
    );
    assert.equal(r.code, 0, r.stderr);
    await available(2);
    uids = await podUids();
    assert.equal(uids.length, 2);
    const d = await getDeployment();
    assert.equal(d.spec.template.spec.terminationGracePeriodSeconds, TERMINATION_GRACE_SECONDS);
    held = {
      hash: d.metadata.annotations![TEMPLATE_HASH_ANNOTATION]!,
      generation: d.metadata.generation!,
    };
  });

  test("the next release keeps the running template and says a newer one exists", async () => {
    await op!.stop();
    op = await startInProcess(c, {
      name: "release-n1",
      resyncMs: 3000,
      render: renderLaterRelease,
    });
    const offer = await eventually(`${TEMPLATE_UPDATE_CONDITION} condition`, async () => {
      const m = await getMsd();
      const cond = condition(m, TEMPLATE_UPDATE_CONDITION);
      return cond?.status === "True" ? { m: m!, cond } : undefined;
    });
    assert.equal(offer.cond.reason, "OperatorDefaultsChanged");
    assert.equal(offer.cond.observedGeneration, offer.m.metadata.generation);
    assert.match(
      offer.cond.message,
      new RegExp(
        `spec\\.terminationGracePeriodSeconds: ${TERMINATION_GRACE_SECONDS} → ${LATER_GRACE_SECONDS}`,
      ),
    );
    const m = new RegExp(`${held!.hash} → ([0-9a-f]{10})`).exec(offer.cond.message);
    assert.ok(m !== null, offer.cond.message);
    offered = m[1]!;
    // The held template counts as rolled out: the resource stays Ready/Available.
    assert.equal(condition(offer.m, "Ready")?.reason, "Available");
    const d = await getDeployment();
    assert.equal(d.metadata.annotations![TEMPLATE_HASH_ANNOTATION], held!.hash);
    assert.equal(d.metadata.generation, held!.generation, "the Deployment's spec was not changed");
    assert.equal(d.spec.template.spec.terminationGracePeriodSeconds, TERMINATION_GRACE_SECONDS);
    assert.deepEqual(await podUids(), uids, "no vLLM pod was restarted");
    const events = await eventually("a TemplateUpdateAvailable event", async () => {
      const list = await c.client.list<Event>(RESOURCES.event, { namespace: "default" });
      const mine = list.items.filter(
        (e) => e.reason === TEMPLATE_UPDATE_CONDITION && e.regarding?.name === NAME,
      );
      return mine.length > 0 ? mine : undefined;
    });
    assert.equal(events.length, 1);
    assert.equal(events[0]!.note, offer.cond.message);
  });

  test("while held, the rest still reconciles: scaling to one replica keeps a running pod", async () => {
    const r = await c.kubectl([
      "patch",
      "mistralsmalldeployment",
      NAME,
      "--type=merge",
      "-p",
      '{"spec":{"replicas":1}}',
    ]);
    assert.equal(r.code, 0, r.stderr);
    await eventually(
      "Deployment scaled to 1",
      async () => (await getDeployment()).spec.replicas === 1,
    );
    await available(1);
    const left = await podUids();
    assert.equal(left.length, 1);
    assert.ok(uids.includes(left[0]!), "the remaining pod is one of the original two");
    const d = await getDeployment();
    assert.equal(d.metadata.annotations![TEMPLATE_HASH_ANNOTATION], held!.hash);
    assert.equal(condition(await getMsd(), TEMPLATE_UPDATE_CONDITION)?.status, "True");
    uids = left;
  });

  test("accepting the offered hash rolls the new template out and clears the condition", async () => {
    const r = await c.kubectl([
      "annotate",
      "mistralsmalldeployment",
      NAME,
      `${ACCEPT_TEMPLATE_ANNOTATION}=${offered}`,
    ]);
    assert.equal(r.code, 0, r.stderr);
    await eventually("the new template applied", async () => {
      const d = await getDeployment();
      return d.metadata.annotations![TEMPLATE_HASH_ANNOTATION] === offered &&
        d.spec.template.spec.terminationGracePeriodSeconds === LATER_GRACE_SECONDS
        ? d
        : undefined;
    });
    const m = await eventually(
      "Ready on the new template, condition gone",
      async () => {
        const x = await available(1);
        return condition(x, TEMPLATE_UPDATE_CONDITION) === undefined ? x : undefined;
      },
      90_000,
    );
    assert.equal(condition(m, "Ready")?.reason, "Available");
    const now = await podUids();
    assert.equal(now.length, 1);
    assert.ok(!uids.includes(now[0]!), "the pod was replaced by one of the new template");
  });
});
