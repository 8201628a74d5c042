/**
 * Several operator processes (`msd run`) against one control plane: leader election,
 * failover, a kill in the middle of reconciling, and a clean SIGTERM.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { RESOURCES, type KubeObject } from "../../src/kube/client.ts";
import { eventually, type TestCluster } from "./cluster.ts";
import {
  condition,
  httpStatus,
  msdYaml,
  startChild,
  startPreparedCluster,
  type ChildOperator,
  type Msd,
} from "./operator-harness.ts";

type Lease = KubeObject & { spec: { holderIdentity?: string; leaseDurationSeconds?: number } };
const LEASE_SECONDS = 4;

describe("leader election and restarts", () => {
  let c: TestCluster;
  const children: ChildOperator[] = [];
  const launch = async (id: string) => {
    const child = await startChild(c, id, LEASE_SECONDS);
    children.push(child);
    return child;
  };
  const holder = async () =>
    (await c.client.getOrUndefined<Lease>(RESOURCES.lease, "mistral-small-operator", "default"))
      ?.spec.holderIdentity;
  const allReady = (names: string[]) =>
    eventually(
      `${names.length} ready`,
      async () => {
        const list = await c.client.list<Msd>(RESOURCES.msd, { namespace: "default" });
        const ready = list.items.filter(
          (m) =>
            names.includes(m.metadata.name) &&
            condition(m, "Ready")?.reason === "Available" &&
            m.status?.observedGeneration === m.metadata.generation,
        );
        return ready.length === names.length;
      },
      90_000,
    );

  before(async () => {
    // 10 replicas of TP=2 need 20 A100-80GB: four 8-GPU nodes.
    c = await startPreparedCluster({
      volumes: 32,
      fleet: [{ gpuType: "a100-80gb", count: 4, gpusPerNode: 8 }],
    });
  });
  after(async () => {
    for (const ch of children) ch.child.kill("SIGKILL");
    await c?.stop();
  });

  test("two operators: exactly one leads and reconciles; the other takes over when the leader dies", async () => {
    const a = await launch("op-a");
    const b = await launch("op-b");
    const first = await eventually("a leader", async () => {
      const h = await holder();
      return h === "op-a" || h === "op-b" ? h : undefined;
    });
    const [leader, standby] = first === "op-a" ? [a, b] : [b, a];
    await eventually(
      "standby healthy",
      async () => (await httpStatus(standby.port, "/healthz")) === 200,
    );
    const apply = await c.kubectl(
      ["apply", "-f", "-"],
      msdYaml("led", { gpu: { type: "a100-80gb" } }),
    );
    assert.equal(apply.code, 0, apply.stderr);
    await allReady(["led"]);
    assert.match(leader.log(), /"msg":"became leader"/);
    assert.doesNotMatch(standby.log(), /"msg":"became leader"/);
    assert.doesNotMatch(
      standby.log(),
      /"msg":"(applied|status updated)"/,
      "the standby must not reconcile",
    );
    const metrics = await (await fetch(`http://127.0.0.1:${standby.port}/metrics`)).text();
    assert.match(metrics, /^msd_leader 0$/m);

    const killedAt = Date.now();
    leader.child.kill("SIGKILL");
    await eventually(
      "standby takes over",
      async () => ((await holder()) === standby.identity ? true : undefined),
      30_000,
      100,
    );
    const takeoverMs = Date.now() - killedAt;
    assert.ok(
      takeoverMs <= (LEASE_SECONDS + 3) * 1000,
      `took over after ${takeoverMs} ms, lease is ${LEASE_SECONDS} s`,
    );
    const apply2 = await c.kubectl(
      ["apply", "-f", "-"],
      msdYaml("after-failover", { gpu: { type: "a100-80gb" } }),
    );
    assert.equal(apply2.code, 0, apply2.stderr);
    await allReady(["led", "after-failover"]);
    assert.match(standby.log(), /"msg":"became leader"/);
  });

  test("an operator killed mid-reconcile converges after restart with no duplicates", async () => {
    const names = Array.from({ length: 8 }, (_, i) => `burst-${i}`);
    const current = children.find(
      (ch) => ch.child.exitCode === null && ch.child.signalCode === null,
    )!;
    const yaml = names.map((n) => `---\n${msdYaml(n, { gpu: { type: "a100-80gb" } })}`).join("");
    const r = await c.kubectl(["apply", "-f", "-"], yaml);
    assert.equal(r.code, 0, r.stderr);
    // Kill as soon as it has started applying this burst.
    await eventually(
      "reconciling started",
      async () => /"msd":"default\/burst-/.test(current.log()),
      30_000,
      20,
    );
    current.child.kill("SIGKILL");
    await current.exited;
    await launch("op-c");
    await allReady([...names, "led", "after-failover"]);
    for (const n of names) {
      const label = `app.kubernetes.io/instance=${n}`;
      const [deps, pvcs, pods] = await Promise.all([
        c.client.list(RESOURCES.deployment, { namespace: "default", labelSelector: label }),
        // The model cache is shared by every resource loading the same checkpoint: by owner.
        c.client.list(RESOURCES.pvc, {
          namespace: "default",
          labelSelector: "serving.mistralsmall.dev/model-cache",
        }),
        c.client.list(RESOURCES.pod, { namespace: "default", labelSelector: label }),
      ]);
      assert.equal(deps.items.length, 1, `${n}: one Deployment`);
      const claims = pvcs.items.filter((p) =>
        (p.metadata.ownerReferences ?? []).some((o) => o.name === n),
      );
      assert.equal(claims.length, 1, `${n}: one cache claim`);
      assert.equal(
        pods.items.filter((p) => p.metadata.deletionTimestamp === undefined).length,
        1,
        `${n}: one pod`,
      );
    }
  });

  test("SIGTERM: the leader finishes, releases the lease and exits 0; a successor takes over at once", async () => {
    const leaderId = await holder();
    const leader = children.find((ch) => ch.identity === leaderId)!;
    const successor = await launch("op-d");
    await eventually(
      "successor up",
      async () => (await httpStatus(successor.port, "/healthz")) === 200,
    );
    const t0 = Date.now();
    leader.child.kill("SIGTERM");
    assert.equal(await leader.exited, 0);
    assert.match(leader.log(), /"msg":"stopped"/);
    await eventually(
      "successor leads",
      async () => ((await holder()) === "op-d" ? true : undefined),
      20_000,
      100,
    );
    // Released, not expired: faster than a full lease duration plus a retry.
    assert.ok(Date.now() - t0 < (LEASE_SECONDS + 2) * 1000);
  });
});
