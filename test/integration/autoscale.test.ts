/**
 * End to end: the operator's builtin autoscaler on the local control plane, one real vLLM
 * simulator per Ready pod, and a load generator. Replicas rise under load, the new pods
 * come up on the fake A100 nodes, and they fall back once the load stops; every decision
 * is in status and in events.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { RESOURCES, type KubeObject } from "../../src/kube/client.ts";
import { eventually, type TestCluster } from "./cluster.ts";
import { msdYaml, startOperatorBed, type Msd, type OperatorBed } from "./operator-harness.ts";
import { LoadGenerator, SimFleet, ensureSimulator } from "./sim-fleet.ts";

type Scaled = Msd & {
  status?: Msd["status"] & {
    scaling?: {
      desiredReplicas?: number;
      lastDecisions?: {
        from: number;
        to: number;
        reason: string;
        metrics?: Record<string, string>;
      }[];
    };
  };
};
type Pod = KubeObject & { spec: { nodeName?: string }; status?: { podIP?: string } };

describe("builtin autoscaling, end to end", () => {
  let c: TestCluster;
  let bed: OperatorBed | undefined;
  let fleet: SimFleet;
  let load: LoadGenerator | undefined;

  before(async () => {
    const bin = ensureSimulator();
    bed = await startOperatorBed({
      cluster: { podCidr: "127.128.0.0/16" },
      operator: { autoscaleIntervalMs: 2000 },
    });
    c = bed.c;
    fleet = new SimFleet(bin, c.client, "default", "app.kubernetes.io/instance=elastic", [
      "--model",
      "mistral-small-4",
      "--max-num-seqs",
      "16",
      "--time-to-first-token",
      "20ms",
      "--inter-token-latency",
      "5ms",
    ]);
    fleet.start();
  });
  after(async () => {
    await load?.stop();
    await fleet?.stop();
    await bed?.stop();
  });

  test("replicas rise under load, new pods run on fake A100s, and fall back when it stops", async () => {
    const spec = {
      gpu: { type: "a100-80gb" },
      replicas: 1,
      autoscaling: {
        enabled: true,
        minReplicas: 1,
        maxReplicas: 3,
        targetGenerationTokensPerSecond: 150,
        scaleUp: { periodSeconds: 2 },
        scaleDown: { stabilizationWindowSeconds: 10, periodSeconds: 2 },
      },
    };
    const r = await c.kubectl(["apply", "-f", "-"], msdYaml("elastic", spec));
    assert.equal(r.code, 0, r.stderr);
    await eventually(
      "a simulator behind the first pod",
      async () => fleet.endpoints().length === 1,
      60_000,
    );

    load = new LoadGenerator(() => fleet.endpoints(), "mistral-small-4", 12, 60, 150);
    load.start();
    // The scale subresource is written first, the decision into status right after (a
    // separate request): wait for both.
    const up = await eventually(
      "scale up, and the decision in status",
      async () => {
        const m = await c.client.get<Scaled>(RESOURCES.msd, "elastic", "default");
        const decided = m.status?.scaling?.lastDecisions?.some((d) => d.to > d.from) ?? false;
        return (m.spec.replicas ?? 0) >= 2 && decided ? m : undefined;
      },
      120_000,
      500,
    );
    const upDecision = up.status?.scaling?.lastDecisions?.find((d) => d.to > d.from);
    assert.ok(upDecision, "the scale-up decision is kept in status");
    assert.equal(upDecision.from, 1);
    assert.match(upDecision.reason, /demand .* tok\/s .* vs 150\/replica/);
    const pods = await eventually(
      "new pods ready on A100 nodes",
      async () => {
        const list = await c.client.list<Pod>(RESOURCES.pod, {
          namespace: "default",
          labelSelector: "app.kubernetes.io/instance=elastic",
        });
        return list.items.length >= 2 && fleet.endpoints().length >= 2 ? list.items : undefined;
      },
      60_000,
    );
    for (const p of pods) assert.match(p.spec.nodeName ?? "", /^a100-80gb-\d$/);
    assert.ok(load.sent > 0, "the load reached the simulators");

    await load.stop();
    const down = await eventually(
      "scale back down to 1",
      async () => {
        const m = await c.client.get<Scaled>(RESOURCES.msd, "elastic", "default");
        return m.spec.replicas === 1 && m.status?.readyReplicas === 1 ? m : undefined;
      },
      180_000,
      1000,
    );
    const decisions = down.status?.scaling?.lastDecisions ?? [];
    assert.ok(
      decisions.some((d) => d.to < d.from),
      `a scale-down decision in status: ${JSON.stringify(decisions)}`,
    );
    const events = await c.kubectl([
      "get",
      "events.events.k8s.io",
      "--field-selector",
      "regarding.name=elastic",
      "-o",
      "jsonpath={.items[*].reason}",
    ]);
    assert.match(events.stdout, /ScaledUp/);
    assert.match(events.stdout, /ScaledDown/);
  });
});
