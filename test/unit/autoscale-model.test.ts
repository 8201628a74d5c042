import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { parseSpec } from "../../src/api/validate.ts";
import { plan } from "../../src/planner/plan.ts";
import { decodePoint, replicaPerf } from "../../src/autoscale/perf.ts";
import { scalingModel, targetModel, wakeUp } from "../../src/autoscale/model.ts";

const SPEC = parseSpec({ gpu: { type: "a100-80gb" } });
const p = plan(SPEC);

describe("the per-replica target", () => {
  test("target = floor(0.7 x B* / ITL(B*)) with B* the largest batch under the ITL SLO", () => {
    const m = targetModel(p);
    const perf = replicaPerf(p);
    assert.equal(m.batch, 64); // ITL at 64 is ~42 ms < 50 ms on 2x A100-80GB
    const point = decodePoint(perf, 64, 2048);
    assert.equal(m.tokensPerSecond, Math.floor(0.7 * point.tokensPerSecond));
    assert.ok(m.tokensPerSecond > 900 && m.tokensPerSecond < 1300, String(m.tokensPerSecond));
    assert.ok(m.promptTokenWeight > 0.05 && m.promptTokenWeight < 0.15);
    // A tighter ITL SLO picks a smaller batch and a lower target.
    const tight = targetModel(p, { itlSloSeconds: 0.03 });
    assert.ok(tight.batch < 64 && tight.itlSeconds <= 0.03);
    assert.ok(tight.tokensPerSecond < m.tokensPerSecond);
  });

  test("a faster GPU gets a higher target", () => {
    const h100 = plan(parseSpec({ gpu: { type: "h100-80gb" } }));
    assert.ok(targetModel(h100).tokensPerSecond > targetModel(p).tokensPerSecond);
  });
});

describe("wake-up", () => {
  test("a download at start (today's pods) = node + weights / 0.4 GB/s + engine start", () => {
    const w = wakeUp(p);
    assert.equal(w.weights, "download");
    // 240 + 120.9 GB / 0.4 GB/s + 60
    assert.equal(w.seconds, Math.ceil(240 + p.weightBytesTotal / 0.4e9 + 60));
    assert.equal(w.seconds, 603);
    assert.equal(wakeUp(p, "download", { nodeProvisioningSeconds: 0 }).seconds, 363);
  });

  test("from a complete cache only the weights' read differs", () => {
    const download = wakeUp(p, "download");
    const cached = wakeUp(p, "cached");
    assert.equal(cached.nodeProvisioningSeconds, download.nodeProvisioningSeconds);
    assert.equal(cached.engineStartSeconds, download.engineStartSeconds);
    assert.equal(cached.weightLoadSeconds, p.weightBytesTotal / 2e9);
    assert.equal(cached.seconds, Math.ceil(240 + p.weightBytesTotal / 2e9 + 60));
    assert.ok(cached.seconds < download.seconds);
  });
});

describe("scalingModel", () => {
  test("without a target in the spec: the plan's default, capacity = decode throughput", () => {
    const m = scalingModel(SPEC, p);
    const t = targetModel(p);
    assert.equal(m.targetTokensPerSecond, t.tokensPerSecond);
    assert.equal(m.capacityTokensPerSecond, t.decodeTokensPerSecond);
    assert.equal(m.promptTokenWeight, t.promptTokenWeight);
  });

  test("a target set in the spec keeps the default's ratio to capacity", () => {
    const spec = parseSpec({
      gpu: { type: "a100-80gb" },
      autoscaling: { enabled: true, targetGenerationTokensPerSecond: 500 },
    });
    const m = scalingModel(spec, p);
    const t = targetModel(p);
    assert.equal(m.targetTokensPerSecond, 500);
    const ratio = m.capacityTokensPerSecond / m.targetTokensPerSecond;
    assert.ok(Math.abs(ratio - t.decodeTokensPerSecond / t.tokensPerSecond) < 1e-12);
  });

  test("the forecast horizon is the wake-up, whichever weight source", () => {
    for (const weights of ["download", "cached"] as const) {
      const m = scalingModel(SPEC, p, { weights });
      assert.equal(m.forecastSeconds, m.wakeUp.seconds);
      assert.equal(m.wakeUp.seconds, wakeUp(p, weights).seconds);
    }
    // What the operator passes (nothing): today's download numbers.
    assert.equal(scalingModel(SPEC, p).wakeUp.seconds, 603);
  });
});
