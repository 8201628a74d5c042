/**
 * The builtin autoscaler's state against a real API server: what it writes to the scale
 * subresource and to status.scaling, and what it keeps between ticks when writes fail. The
 * pods are given through the cache and their /metrics through the injected scrape (no vLLM
 * needed), the clock is injected; the writes are real.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { pino } from "pino";
import type { Status } from "../../src/api/schema.ts";
import { KubeClient, RESOURCES, type KubeObject } from "../../src/kube/client.ts";
import { ApiEventRecorder } from "../../src/controller/events.ts";
import {
  AutoscalerTickError,
  BuiltinAutoscaler,
  LAST_DECISIONS_KEPT,
} from "../../src/controller/scale-loop.ts";
import { parseResource } from "../../src/api/validate.ts";
import { wakeUp } from "../../src/autoscale/model.ts";
import { plan as planFor } from "../../src/planner/plan.ts";
import type { TestCluster } from "./cluster.ts";
import { msdManifest, startPreparedCluster } from "./operator-harness.ts";

type Msd = KubeObject & { spec: { replicas: number }; status?: Status };

/** The informer caches as the autoscaler reads them: whatever the test put there. */
class ListCache<T extends KubeObject> {
  items: T[] = [];
  get(key: string): T | undefined {
    return this.items.find((o) => `${o.metadata.namespace}/${o.metadata.name}` === key);
  }
  list(): T[] {
    return [...this.items];
  }
}

const T0 = 1_800_000_000; // seconds: the injected clock's start

/** A vLLM /metrics page of an engine started at T0 - 15 s serving 5000 generation tokens/s. */
function metricsAt(now: number): string {
  const started = T0 - 15;
  const labels = 'engine="0",model_name="mistral-small-4"';
  return [
    `vllm:num_requests_running{${labels}} 50.0`,
    `vllm:num_requests_waiting{${labels}} 0.0`,
    `vllm:generation_tokens_total{${labels}} ${(now - started) * 5000}`,
    `vllm:generation_tokens_created{${labels}} ${started}`,
    `vllm:prompt_tokens_total{${labels}} 0.0`,
    "",
  ].join("\n");
}

/** A resource with one replica that the builtin autoscaler may take to ten. */
function msdObject(name: string): Msd {
  return msdManifest(name, {
    gpu: { type: "a100-80gb" },
    replicas: 1,
    autoscaling: { enabled: true, minReplicas: 1, maxReplicas: 10 },
  }) as Msd;
}

function readyPod(msd: string, name: string): KubeObject {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name,
      namespace: "default",
      creationTimestamp: new Date((T0 - 600) * 1000).toISOString(),
      labels: { "app.kubernetes.io/instance": msd, "app.kubernetes.io/name": "mistral-small" },
    },
    status: { podIP: "10.0.0.1", conditions: [{ type: "Ready", status: "True" }] },
  } as KubeObject;
}

describe("builtin autoscaler state", () => {
  let c: TestCluster;
  let client: KubeClient;
  before(async () => {
    c = await startPreparedCluster();
    // The operator's own identity: the generated RBAC must allow every request it makes.
    client =
      c.operatorKubeconfig === undefined ? c.client : await KubeClient.load(c.operatorKubeconfig);
  });
  after(async () => {
    if (client !== c?.client) client?.close();
    await c?.stop();
  });

  function autoscaler(
    msds: ListCache<KubeObject>,
    pods: ListCache<KubeObject>,
    clock: { now: number },
  ) {
    const log = pino({ level: "silent" });
    return new BuiltinAutoscaler({
      client,
      log,
      events: new ApiEventRecorder(client, "test", log),
      caches: { msd: msds, pods },
      intervalMs: 15_000,
      scrapeTimeoutMs: 1000,
      scrape: async () => metricsAt(clock.now),
      now: () => clock.now * 1000,
    });
  }

  const get = (name: string) => c.client.get<Msd>(RESOURCES.msd, name, "default");

  test("status.scaling.wakeUpSeconds is stated without any decision", async () => {
    const created = await c.client.create<Msd>(RESOURCES.msd, msdObject("quiet"), "default");
    const msds = new ListCache<KubeObject>();
    msds.items = [created];
    const clock = { now: T0 };
    // No pods: nothing to measure, the count holds, no decision.
    await autoscaler(msds, new ListCache(), clock).tick();
    const after = await get("quiet");
    assert.equal(after.spec.replicas, 1);
    assert.equal(after.status?.scaling?.lastDecisions, undefined);
    assert.equal(after.status?.scaling?.wakeUpSeconds, 603);
  });

  test("a complete model cache shortens the wake-up: weights read, not downloaded", async () => {
    await c.client.create<Msd>(RESOURCES.msd, msdObject("cached"), "default");
    const condition = {
      type: "ModelCached",
      status: "True",
      reason: "Complete",
      message: "test",
      lastTransitionTime: "2026-01-01T00:00:00Z",
    };
    const withCache = await c.client.mergePatch<Msd>(
      RESOURCES.msd,
      "cached",
      "default",
      { status: { conditions: [condition] } },
      "status",
    );
    const msds = new ListCache<KubeObject>();
    msds.items = [withCache];
    await autoscaler(msds, new ListCache(), { now: T0 }).tick();
    const after = await get("cached");
    const p = planFor(parseResource(after).spec);
    assert.ok(p.feasible);
    assert.equal(after.status?.scaling?.wakeUpSeconds, wakeUp(p, "cached").seconds);
    assert.ok(wakeUp(p, "cached").seconds < 603);
  });

  test("lastDecisions are appended to what the API server has, not to a stale cache", async () => {
    const created = await c.client.create<Msd>(RESOURCES.msd, msdObject("stale"), "default");
    const earlier = [1, 2].map((i) => ({
      time: new Date((T0 - 1000 + i) * 1000).toISOString().replace(/\.\d+Z$/, "Z"),
      from: i,
      to: i + 1,
      reason: `earlier ${i}`,
    }));
    await c.client.mergePatch(
      RESOURCES.msd,
      "stale",
      "default",
      { status: { scaling: { lastDecisions: earlier } } },
      "status",
    );
    const msds = new ListCache<KubeObject>();
    msds.items = [created]; // the cache has not seen the status write
    const pods = new ListCache<KubeObject>();
    pods.items = [readyPod("stale", "stale-0")];
    const clock = { now: T0 };
    await autoscaler(msds, pods, clock).tick();
    const after = await get("stale");
    assert.equal(after.spec.replicas, 3); // 5 asked for, +2 per 60 s
    const decisions = after.status?.scaling?.lastDecisions ?? [];
    assert.deepEqual(
      decisions.map((d) => (d.reason.startsWith("earlier") ? d.reason : `${d.from}->${d.to}`)),
      ["earlier 1", "earlier 2", "1->3"],
    );
    assert.ok(decisions.length <= LAST_DECISIONS_KEPT);
    // What the status write relies on: a merge patch carrying an old resourceVersion is refused
    // with 409 Conflict, not applied over the newer status.
    await assert.rejects(
      c.client.mergePatch(
        RESOURCES.msd,
        "stale",
        "default",
        {
          metadata: { resourceVersion: created.metadata.resourceVersion },
          status: { scaling: { lastDecisions: [] } },
        },
        "status",
      ),
      (err: unknown) => (err as { status?: number }).status === 409,
    );
  });

  test("one failing resource does not stop the others nor the clean-up of those gone", async () => {
    const live = await c.client.create<Msd>(RESOURCES.msd, msdObject("steady"), "default");
    const msds = new ListCache<KubeObject>();
    // "lost" is in the cache but not in the API server: its scale write fails with 404.
    msds.items = [live, msdObject("lost")];
    const pods = new ListCache<KubeObject>();
    pods.items = [readyPod("lost", "lost-0")];
    const clock = { now: T0 };
    const a = autoscaler(msds, pods, clock);
    await assert.rejects(a.tick(), (err: unknown) => {
      assert.ok(err instanceof AutoscalerTickError, String(err));
      assert.deepEqual(
        err.failures.map((f) => f.resource),
        ["default/lost"],
      );
      assert.equal((err.failures[0]!.cause as { status?: number }).status, 404);
      return true;
    });
    // steady was evaluated although lost failed, and both are kept.
    assert.equal((await get("steady")).status?.scaling?.wakeUpSeconds, 603);
    assert.deepEqual(a.tracked().sort(), ["default/lost", "default/steady"]);
    // steady is gone from the cache, and lost fails again: steady's state is still dropped.
    msds.items = [msdObject("lost")];
    clock.now = T0 + 5;
    await assert.rejects(a.tick());
    assert.deepEqual(a.tracked(), ["default/lost"]);
  });

  test("a failed scale write leaves no phantom decision to spend the step budget", async () => {
    const msds = new ListCache<KubeObject>();
    // "ghost" is in the cache but not (yet) in the API server: its scale writes fail (404).
    msds.items = [msdObject("ghost")];
    const pods = new ListCache<KubeObject>();
    pods.items = [readyPod("ghost", "ghost-0")];
    const clock = { now: T0 };
    const a = autoscaler(msds, pods, clock);
    await assert.rejects(a.tick()); // 1 -> 3 asked for, not written
    clock.now = T0 + 5;
    await assert.rejects(a.tick()); // again
    // ghost now exists. Neither 1 -> 3 was written, so within the same 60 s period the
    // full step of +2 is still allowed.
    const ghost = await c.client.create<Msd>(RESOURCES.msd, msdObject("ghost"), "default");
    msds.items = [ghost];
    clock.now = T0 + 15;
    await a.tick();
    assert.equal((await get("ghost")).spec.replicas, 3);
  });

  test("an unexpected error reading a resource is reported, an invalid spec is skipped", async () => {
    const invalid = msdObject("invalid");
    (invalid.spec as unknown as Record<string, unknown>)["gpu"] = { type: "no-such-gpu" };
    const broken = msdObject("broken");
    Object.defineProperty(broken, "spec", {
      enumerable: true,
      get() {
        throw new RangeError("boom");
      },
    });
    const msds = new ListCache<KubeObject>();
    msds.items = [invalid];
    const clock = { now: T0 };
    const a = autoscaler(msds, new ListCache(), clock);
    await a.tick(); // the reconciler reports InvalidSpec; nothing for the autoscaler to do
    assert.deepEqual(a.tracked(), []);
    msds.items = [invalid, broken];
    await assert.rejects(a.tick(), (err: unknown) => {
      assert.ok(err instanceof AutoscalerTickError);
      assert.equal(err.failures.length, 1);
      assert.equal(err.failures[0]!.resource, "default/broken");
      assert.ok(err.failures[0]!.cause instanceof RangeError);
      return true;
    });
  });
});
