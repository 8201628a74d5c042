import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { parseSpec } from "../../src/api/validate.ts";
import {
  ScalingPipeline,
  type Observation,
  type ScalingContext,
} from "../../src/autoscale/pipeline.ts";
import type { VllmSample } from "../../src/autoscale/prometheus.ts";

const AUTOSCALING = parseSpec({
  gpu: { type: "a100-80gb" },
  autoscaling: { enabled: true, minReplicas: 1, maxReplicas: 10 },
}).autoscaling;

const ctx = (currentReplicas: number): ScalingContext => ({
  autoscaling: AUTOSCALING,
  model: {
    targetTokensPerSecond: 1000,
    capacityTokensPerSecond: 1400,
    promptTokenWeight: 0,
    forecastSeconds: 600,
  },
  currentReplicas,
});

/** A pod whose engine started at t = 85 and has generated 5000 tokens/s since. */
function busy(now: number): VllmSample {
  return {
    generationTokensTotal: (now - 85) * 5000,
    promptTokensTotal: 0,
    running: 50,
    waiting: 0,
    kvCacheUsage: 0.5,
    requestsFinishedTotal: (now - 85) * 20,
    countersCreatedSeconds: 85,
    engines: 1,
  };
}

const observation = (now: number): Observation => ({
  now,
  pods: [{ name: "r0", ready: true, ageSeconds: 600, scrape: { ok: true, sample: busy(now) } }],
});

describe("the observe -> rates -> decide pipeline", () => {
  test("pods are sorted: starting, unknown (failed scrape, no rate yet), ready with rates", () => {
    const p = new ScalingPipeline();
    const load = p.observe({
      now: 100,
      pods: [
        { name: "new", ready: false, ageSeconds: 30 },
        { name: "down", ready: true, ageSeconds: 900, scrape: { ok: false, error: "timeout" } },
        {
          name: "old",
          ready: true,
          ageSeconds: 900,
          // Counters from long ago: a lifetime average is no rate.
          scrape: { ok: true, sample: { ...busy(100), countersCreatedSeconds: -10_000 } },
        },
        { name: "r0", ready: true, ageSeconds: 600, scrape: { ok: true, sample: busy(100) } },
      ],
    });
    assert.deepEqual(load.starting, [{ name: "new", ageSeconds: 30 }]);
    assert.equal(load.unknownPods, 2);
    assert.equal(load.ready.length, 1);
    assert.equal(load.ready[0]!.name, "r0");
    assert.ok(Math.abs(load.ready[0]!.generationTokensPerSecond - 5000) < 1e-9);
    assert.ok(Math.abs(load.ready[0]!.requestsPerSecond! - 20) < 1e-9);
  });

  test("evaluate leaves the history alone until record", () => {
    const p = new ScalingPipeline();
    const out = p.evaluate(observation(100), ctx(1));
    assert.equal(out.desiredReplicas, 3); // 5 asked for, +2 per 60 s
    assert.deepEqual(p.policyHistory.recommendations, []);
    p.record(out, ctx(1), true);
    assert.equal(p.policyHistory.decisions.length, 1);
  });

  test("a failed scale write spends no step budget: the next evaluation may add the full step", () => {
    const failed = new ScalingPipeline();
    const first = failed.evaluate(observation(100), ctx(1));
    assert.equal(first.desiredReplicas, 3);
    failed.record(first, ctx(1), false); // the write failed: still 1 replica
    assert.equal(failed.policyHistory.decisions.length, 0);
    assert.equal(failed.policyHistory.recommendations.at(-1)?.time, 100);
    const retry = failed.evaluate(observation(115), ctx(1));
    assert.equal(retry.desiredReplicas, 3, retry.reason);

    // The same evaluations with the write recorded as done: the period's budget is spent.
    const applied = new ScalingPipeline();
    applied.record(applied.evaluate(observation(100), ctx(1)), ctx(1), true);
    const next = applied.evaluate(observation(115), ctx(1));
    assert.equal(next.desiredReplicas, 1);
    assert.match(next.reason, /limited to \+2 per 60 s/);
  });
});
