import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { parseSpec } from "../../src/api/validate.ts";
import { loadTokensPerSecond } from "../../src/autoscale/model.ts";
import {
  EMPTY_HISTORY,
  appendHistory,
  decide,
  trendSlope,
  type AutoscalingSpec,
  type PolicyHistory,
  type PolicyInput,
  type ReadyReplicaMetrics,
  type Recommendation,
} from "../../src/autoscale/policy.ts";

const T = 1000; // target tokens/s per replica in these tests
const CAPACITY = 1400;

function autoscaling(overrides: Record<string, unknown> = {}): AutoscalingSpec {
  // A 600 s scale-down window (the default is 300 s) keeps these tests' timelines apart.
  const a = {
    enabled: true,
    minReplicas: 1,
    maxReplicas: 10,
    scaleDown: { stabilizationWindowSeconds: 600 },
    ...overrides,
  };
  return parseSpec({
    gpu: { type: "a100-80gb" },
    replicas: Math.max(1, a.minReplicas),
    autoscaling: a,
  }).autoscaling;
}

function pod(name: string, gen: number, waiting = 0, running = 8): ReadyReplicaMetrics {
  return {
    name,
    generationTokensPerSecond: gen,
    promptTokensPerSecond: 0,
    requestsPerSecond: gen / 250,
    running,
    waiting,
  };
}

function rec(time: number, replicas: number, extra: Partial<Recommendation> = {}): Recommendation {
  return {
    time,
    replicas,
    arrivalTokensPerSecond: replicas * T,
    backlogTokens: 0,
    idle: false,
    partial: false,
    ...extra,
  };
}

function input(p: Partial<PolicyInput>): PolicyInput {
  return {
    now: 10_000,
    autoscaling: autoscaling(),
    targetTokensPerSecond: T,
    promptTokenWeight: 0,
    capacityTokensPerSecond: CAPACITY,
    forecastSeconds: 600,
    currentReplicas: 1,
    ready: [],
    starting: [],
    unknownPods: 0,
    history: { recommendations: [rec(0, 1)], decisions: [] },
    ...p,
  };
}

describe("decide: scale up", () => {
  test("throughput above the target asks for ceil(demand / target), limited per step", () => {
    const out = decide(
      input({
        currentReplicas: 2,
        ready: [pod("a", 2600), pod("b", 2600)],
        history: { recommendations: [rec(0, 2)], decisions: [] },
      }),
    );
    assert.equal(out.recommendation.replicas, 6); // 5200 / 1000
    assert.equal(out.desiredReplicas, 4); // +2 per 60 s (spec default)
    assert.match(out.reason, /demand 5200 tok\/s/);
    assert.match(out.reason, /limited to \+2 per 60 s/);
    assert.equal(out.metrics["generationTokensPerSecond"], "5200");
  });

  test("load is the busier roof: generation, or prompt plus generation at the prompt weight", () => {
    // Prompt-heavy: 500 + 20000 tokens/s at weight 0.1 keep the compute roof at 2050.
    const heavy = { ...pod("a", 500), promptTokensPerSecond: 20000 };
    const out = decide(input({ ready: [heavy], promptTokenWeight: 0.1 }));
    assert.equal(out.recommendation.replicas, 3); // max(500, 20500 x 0.1) = 2050
    assert.equal(
      decide(input({ ready: [heavy], promptTokenWeight: 0 })).recommendation.replicas,
      1,
    );
    // Chat-like: prompts ride in the decode steps' idle compute and add nothing.
    const chat = { ...pod("a", 900), promptTokensPerSecond: 4000 };
    const c = decide(input({ ready: [chat], promptTokenWeight: 0.1 }));
    assert.equal(c.recommendation.replicas, 1); // max(900, 490); a sum would say 1390 -> 2
    assert.equal(loadTokensPerSecond(900, 4000, 0.1), 900);
    assert.equal(loadTokensPerSecond(500, 20000, 0.1), 2050);
  });

  test("demand within the tolerance of the current count holds it", () => {
    const four = [pod("a", 1075), pod("b", 1075), pod("c", 1075), pod("d", 1075)];
    const history: PolicyHistory = { recommendations: [rec(9_990, 4)], decisions: [] };
    const held = decide(input({ currentReplicas: 4, ready: four, history }));
    assert.equal(held.recommendation.replicas, 4); // 4300 / 1000 = 4.3, within 10 % of 4
    assert.equal(held.desiredReplicas, 4);
    const strict = decide(
      input({ currentReplicas: 4, ready: four, history, options: { tolerance: 0 } }),
    );
    assert.equal(strict.desiredReplicas, 5);
  });

  test("a rising trend is projected a cold start ahead, at most +50 %", () => {
    // Arrivals rose linearly from 1000 to 2000 tokens/s over the last 600 s.
    const recommendations: Recommendation[] = [];
    for (let t = 9_400; t < 10_000; t += 15) {
      recommendations.push(
        rec(t, 2, { arrivalTokensPerSecond: 1000 + ((t - 9_400) / 600) * 1000 }),
      );
    }
    const history: PolicyHistory = { recommendations, decisions: [] };
    const ready = [pod("a", 1000), pod("b", 1000)];
    const slope = trendSlope(history, 10_000, 2000, 600);
    assert.ok(Math.abs(slope - 1000 / 600) < 0.01, `slope ${slope}`);
    const out = decide(input({ currentReplicas: 2, ready, history }));
    // 60 s mean 1963 + 1.67/s x 600 s, capped at +50 %: 2944, over 0.85 x 1400 x 2 = 2380
    assert.match(out.reason, /forecast 2944 in 600 s\) vs 1000\/replica -> 3/);
    assert.equal(out.recommendation.replicas, 3);
    assert.equal(out.metrics["forecastTokensPerSecond"], "2944");
    const flat = decide(
      input({ currentReplicas: 2, ready, history, options: { trendWindowSeconds: 0 } }),
    );
    assert.equal(flat.recommendation.replicas, 2);
    // Less than half a window of history: no trend.
    assert.equal(
      trendSlope({ recommendations: recommendations.slice(-10), decisions: [] }, 10_000, 2000, 600),
      0,
    );
  });

  test("a growing queue counts as arrivals above what is served", () => {
    const history: PolicyHistory = {
      recommendations: [rec(9_940, 2, { backlogTokens: 0 })],
      decisions: [],
    };
    // 2 saturated pods serve 2800; 240 requests x 250 tokens arrived on top in 60 s = +1000/s.
    const out = decide(
      input({
        currentReplicas: 2,
        ready: [pod("a", 1400, 120), pod("b", 1400, 120)],
        starting: [],
        history,
      }),
    );
    assert.equal(Math.round(out.recommendation.arrivalTokensPerSecond), 3800);
    assert.ok(out.recommendation.replicas >= 4);
  });

  test("replicas already starting count as capacity: the same load does not scale up twice", () => {
    // 2 ready pods saturated (1400 tok/s each) with a deep queue: 3400 requests x 250 tokens.
    // 2 more replicas are starting for this load already.
    const ready = [pod("a", 1400, 1700, 64), pod("b", 1400, 1700, 64)];
    const recommendations = [rec(9_940, 4, { backlogTokens: 850_000 })];
    const withStarting = decide(
      input({
        currentReplicas: 4,
        ready,
        starting: [
          { name: "c", ageSeconds: 120 },
          { name: "d", ageSeconds: 120 },
        ],
        history: { recommendations, decisions: [] },
      }),
    );
    assert.equal(withStarting.recommendation.replicas, 3); // 2800 tok/s served, queue not growing
    assert.equal(withStarting.desiredReplicas, 4);
    // The same queue with nothing starting is a backlog to drain on top of the 2800 tok/s:
    // (2800 + 850000 / 300) / 1400 -> 5, more than the 4 that were coming.
    const nothingStarting = decide(
      input({ currentReplicas: 2, ready, history: { recommendations, decisions: [] } }),
    );
    assert.equal(nothingStarting.recommendation.replicas, 5);
    assert.equal(nothingStarting.desiredReplicas, 4); // +2 per step
  });

  test("new load while replicas start still scales up", () => {
    const out = decide(
      input({
        currentReplicas: 4,
        ready: [pod("a", 3000), pod("b", 3000)],
        starting: [
          { name: "c", ageSeconds: 60 },
          { name: "d", ageSeconds: 60 },
        ],
        history: { recommendations: [rec(0, 4)], decisions: [] },
      }),
    );
    assert.equal(out.recommendation.replicas, 6);
    assert.equal(out.desiredReplicas, 6);
  });

  test("maxReplicasPerStep per periodSeconds counts decisions already made", () => {
    const base = input({
      currentReplicas: 4,
      ready: [pod("a", 4000), pod("b", 4000), pod("c", 1), pod("d", 1)],
      history: {
        recommendations: [rec(0, 2)],
        decisions: [{ time: 9_970, from: 2, to: 4, reason: "" }],
      },
    });
    assert.equal(decide(base).desiredReplicas, 4); // +2 already 30 s ago
    const later = {
      ...base,
      history: { ...base.history, decisions: [{ time: 9_939, from: 2, to: 4, reason: "" }] },
    };
    assert.equal(decide(later).desiredReplicas, 6); // that step was 61 s ago
  });
});

describe("decide: scale down", () => {
  const quiet = [pod("a", 300), pod("b", 300), pod("c", 300), pod("d", 300), pod("e", 300)];

  test("waits for the stabilization window (max of its recommendations)", () => {
    const out = decide(
      input({
        currentReplicas: 5,
        ready: quiet,
        history: { recommendations: [rec(9_500, 5), rec(9_700, 3)], decisions: [] },
      }),
    );
    assert.equal(out.recommendation.replicas, 2);
    assert.equal(out.desiredReplicas, 5); // a 5 within the last 600 s
    assert.match(out.reason, /stabilizing/);
  });

  test("scale-down follows the arrivals of a longer window, not one quiet minute", () => {
    const history: PolicyHistory = {
      recommendations: [
        rec(9_300, 2, { arrivalTokensPerSecond: 2000 }),
        ...[9_800, 9_850, 9_900, 9_950].map((t) => rec(t, 2, { arrivalTokensPerSecond: 4500 })),
      ],
      decisions: [],
    };
    const a = autoscaling({
      scaleDown: { stabilizationWindowSeconds: 600, maxReplicasPerStep: 10 },
    });
    const ready = [pod("a", 500), pod("b", 500), pod("c", 500)];
    const out = decide(input({ autoscaling: a, currentReplicas: 8, ready, history }));
    assert.equal(out.recommendation.replicas, 3); // the last 60 s: (1500 + 4500) / 2 = 3000
    assert.equal(out.recommendation.replicasDown, 4);
    assert.equal(out.desiredReplicas, 4); // the 300 s mean: (1500 + 4 x 4500) / 5 = 3900
    const fast = decide(
      input({
        autoscaling: a,
        currentReplicas: 8,
        ready,
        history,
        options: { scaleDownDemandWindowSeconds: 60 },
      }),
    );
    assert.equal(fast.desiredReplicas, 3);
  });

  test("after the window, steps down one replica per period", () => {
    const history: PolicyHistory = {
      recommendations: [rec(9_300, 5), rec(9_500, 2)],
      decisions: [],
    };
    const first = decide(input({ currentReplicas: 5, ready: quiet, history }));
    assert.equal(first.desiredReplicas, 4);
    const soon = decide(
      input({
        currentReplicas: 4,
        ready: quiet.slice(0, 4),
        history: { ...history, decisions: [{ time: 9_970, from: 5, to: 4, reason: "" }] },
      }),
    );
    assert.equal(soon.desiredReplicas, 4); // next step only 60 s after the last one
  });

  test("a pod whose load is unknown holds the count, and is assumed as busy as the others", () => {
    const history: PolicyHistory = { recommendations: [rec(9_000, 5)], decisions: [] };
    const out = decide(
      input({ currentReplicas: 5, ready: quiet.slice(0, 4), unknownPods: 1, history }),
    );
    assert.equal(out.desiredReplicas, 5);
    assert.match(out.reason, /did not report/);
    assert.equal(out.recommendation.partial, true);
    // 4 known pods at 2500 each plus one unknown: 5 x 2500 expected, never 4 x 2500.
    const busy = [pod("a", 2500), pod("b", 2500), pod("c", 2500), pod("d", 2500)];
    const up = decide(input({ currentReplicas: 5, ready: busy, unknownPods: 1, history }));
    assert.equal(up.recommendation.replicas, 13);
  });

  test("no metrics at all (everything starting) holds", () => {
    const out = decide(
      input({
        currentReplicas: 3,
        starting: [
          { name: "a", ageSeconds: 10 },
          { name: "b", ageSeconds: 10 },
          { name: "c", ageSeconds: 10 },
        ],
      }),
    );
    assert.equal(out.desiredReplicas, 3);
  });

  test("a policy without history does not scale down at once", () => {
    const out = decide(input({ currentReplicas: 5, ready: quiet, history: EMPTY_HISTORY }));
    assert.equal(out.desiredReplicas, 5);
    const h = appendHistory(EMPTY_HISTORY, out, 5, autoscaling());
    // The seeded recommendation of 5 keeps holding for the window.
    const next = decide(input({ now: 10_015, currentReplicas: 5, ready: quiet, history: h }));
    assert.equal(next.desiredReplicas, 5);
  });
});

describe("decide: bounds and scale to zero", () => {
  const idle = [pod("a", 0, 0, 0)];

  test("max and min always hold", () => {
    const high = decide(input({ currentReplicas: 10, ready: [pod("a", 50_000)] }));
    assert.equal(high.desiredReplicas, 10);
    const low = decide(
      input({
        autoscaling: autoscaling({ minReplicas: 3 }),
        currentReplicas: 1,
        ready: [pod("a", 10)],
      }),
    );
    assert.equal(low.desiredReplicas, 3);
    const over = decide(input({ currentReplicas: 14, ready: [pod("a", 50_000)] }));
    assert.equal(over.desiredReplicas, 10);
  });

  const idleHistory: PolicyHistory = {
    recommendations: [rec(9_000, 0, { idle: true }), rec(9_500, 0, { idle: true })],
    decisions: [],
  };

  test("idle without scaleToZero stays at one replica", () => {
    const out = decide(input({ currentReplicas: 1, ready: idle, history: idleHistory }));
    assert.equal(out.recommendation.idle, true);
    assert.equal(out.desiredReplicas, 1);
    // Even minReplicas 0 (which validation refuses without scaleToZero) does not reach zero.
    const unvalidated = { ...autoscaling(), minReplicas: 0, scaleToZero: false };
    const still = decide(
      input({ autoscaling: unvalidated, currentReplicas: 1, ready: idle, history: idleHistory }),
    );
    assert.equal(still.desiredReplicas, 1);
  });

  test("idle for a whole window with scaleToZero goes to zero, and stays there", () => {
    const a = autoscaling({ minReplicas: 0, scaleToZero: true });
    const out = decide(
      input({ autoscaling: a, currentReplicas: 1, ready: idle, history: idleHistory }),
    );
    assert.equal(out.desiredReplicas, 0);
    assert.match(out.reason, /scaling to zero/);
    const stay = decide(input({ autoscaling: a, currentReplicas: 0, history: idleHistory }));
    assert.equal(stay.desiredReplicas, 0);
  });

  test("no zero while the window is not covered or something ran in it", () => {
    const a = autoscaling({ minReplicas: 0, scaleToZero: true });
    const short: PolicyHistory = {
      recommendations: [rec(9_800, 0, { idle: true })],
      decisions: [],
    };
    assert.equal(
      decide(input({ autoscaling: a, currentReplicas: 1, ready: idle, history: short }))
        .desiredReplicas,
      1,
    );
    const busyOnce: PolicyHistory = {
      recommendations: [rec(9_000, 0, { idle: true }), rec(9_700, 1)],
      decisions: [],
    };
    assert.equal(
      decide(input({ autoscaling: a, currentReplicas: 1, ready: idle, history: busyOnce }))
        .desiredReplicas,
      1,
    );
  });
});

describe("appendHistory", () => {
  test("keeps the windows' worth plus one older entry, records decisions", () => {
    const a = autoscaling();
    const recs = [rec(1_000, 2), rec(9_000, 2), rec(9_500, 3), rec(9_900, 3)];
    const out = decide(
      input({
        currentReplicas: 3,
        ready: [pod("a", 3000), pod("b", 3000), pod("c", 3000)],
        history: { recommendations: recs, decisions: [{ time: 100, from: 1, to: 2, reason: "" }] },
      }),
    );
    const h = appendHistory(
      { recommendations: recs, decisions: [{ time: 100, from: 1, to: 2, reason: "" }] },
      out,
      3,
      a,
    );
    assert.deepEqual(
      h.recommendations.map((r) => r.time),
      [9_000, 9_500, 9_900, 10_000],
    );
    assert.equal(h.decisions.length, 1);
    assert.deepEqual(
      { time: h.decisions[0]!.time, from: h.decisions[0]!.from, to: h.decisions[0]!.to },
      { time: 10_000, from: 3, to: out.desiredReplicas },
    );
  });
});
