import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { parseSpec } from "../../src/api/validate.ts";
import { plan } from "../../src/planner/plan.ts";
import { prefillWork, replicaPerf, stepSeconds } from "../../src/autoscale/perf.ts";
import { targetModel, wakeUp } from "../../src/autoscale/model.ts";
import { compareColdStarts, formatColdStarts } from "../../bench/autoscale/cold-start.ts";
import { plotSeries } from "../../bench/autoscale/plot-series.ts";
import {
  benchContext,
  chatUnitRate,
  defaultBenchConfig,
  makePolicy,
  ORACLE_UTILISATIONS,
  runBench,
  runOracle,
  toJson,
} from "../../bench/autoscale/harness.ts";
import {
  simulate,
  type RunResult,
  type FleetView,
  type PodScrape,
  type PodView,
  type SimPolicy,
} from "../../bench/autoscale/fleet.ts";
import {
  HpaPolicy,
  KubeAiPolicy,
  OraclePolicy,
  PRODUCTION_STACK_HPA,
} from "../../bench/autoscale/policies.ts";
import { Outcomes, SimReplica } from "../../bench/autoscale/replica.ts";
import {
  multiplyTrace,
  parseTimestamp,
  parseTraceCsv,
  poissonTrace,
  syntheticTraces,
  type Trace,
  type TraceRequest,
} from "../../bench/autoscale/traces.ts";

const PLAN = plan(parseSpec({ gpu: { type: "a100-80gb" } }));
const PERF = replicaPerf(PLAN);
const TARGET = targetModel(PLAN);

describe("one replica", () => {
  test("a lone request: prefill in one step, then one decode step per token", () => {
    const reqs: TraceRequest[] = [{ t: 0, prompt: 1000, gen: 11 }];
    const out = new Outcomes(1);
    const r = new SimReplica(0, 0, 0, PERF, reqs, out);
    r.enqueue(0, 0);
    r.advanceTo(100);
    const ttft = stepSeconds(PERF, 0, prefillWork(PERF, 1000), 0);
    const decodeStep = stepSeconds(PERF, 1, 0, 1000 + 11 / 2);
    assert.equal(out.admitted[0], 0);
    assert.ok(Math.abs(out.firstToken[0]! - ttft) < 1e-9);
    assert.ok(Math.abs(out.finished[0]! - (ttft + 10 * decodeStep)) < 1e-9);
    assert.ok(Math.abs(r.generationTokens - 11) < 1e-6);
    assert.ok(Math.abs(r.promptTokens - 1000) < 1e-6);
    assert.equal(r.requestsFinished, 1);
    assert.equal(r.outstanding, 0);
  });

  test("beyond max-num-seqs, requests wait in the queue for a slot", () => {
    const n = PERF.maxNumSeqs + 1;
    const reqs: TraceRequest[] = Array.from({ length: n }, () => ({ t: 0, prompt: 100, gen: 50 }));
    const out = new Outcomes(n);
    const r = new SimReplica(0, 0, 0, PERF, reqs, out);
    for (let i = 0; i < n; i++) r.enqueue(i, 0);
    assert.equal(r.running, PERF.maxNumSeqs);
    assert.equal(r.queued, 1);
    r.advanceTo(1000);
    const firstDone = Math.min(...Array.from(out.finished.subarray(0, n - 1)));
    assert.equal(out.admitted[n - 1], firstDone);
    assert.ok(out.admitted[n - 1]! > 0);
  });
});

describe("traces", () => {
  test("the Azure CSV: timestamps with 7 decimals, sorted, from t = 0", () => {
    assert.equal(
      parseTimestamp("2023-11-16 18:17:03.9799600"),
      Date.UTC(2023, 10, 16, 18, 17, 3) / 1000 + 0.97996,
    );
    const base = parseTraceCsv(
      readFileSync(
        new URL("../fixtures/azure-llm-inference-2023-code.csv", import.meta.url),
        "utf8",
      ),
    );
    assert.equal(base.length, 8819);
    assert.deepEqual(base[0], { t: 0, prompt: 4808, gen: 10 });
    assert.ok(base.every((r, i) => i === 0 || r.t >= base[i - 1]!.t));
    const x3 = multiplyTrace("x", "", base, 3, 1);
    assert.equal(x3.requests.length, 3 * 8819);
    const x25 = multiplyTrace("x", "", base, 2.5, 1);
    assert.ok(Math.abs(x25.requests.length - 2.5 * 8819) < 300);
    assert.deepEqual(multiplyTrace("x", "", base, 2.5, 1), x25);
  });

  test("synthetic traces are seeded", () => {
    const a = syntheticTraces(0.1, 7);
    const b = syntheticTraces(0.1, 7);
    const c = syntheticTraces(0.1, 8);
    assert.deepEqual(
      a.map((t) => t.name),
      ["step", "ramp", "spike", "diurnal"],
    );
    assert.deepEqual(a[0]!.requests.slice(0, 50), b[0]!.requests.slice(0, 50));
    assert.notDeepEqual(a[0]!.requests.slice(0, 50), c[0]!.requests.slice(0, 50));
    assert.equal(a[3]!.durationSeconds, 24 * 3600);
  });
});

describe("simulation", () => {
  const cfg = defaultBenchConfig();
  const unit = chatUnitRate(TARGET);
  const short = (name: string, load: number, seed: number): Trace =>
    poissonTrace(name, "", 1800, () => load * unit, load * unit, seed);

  test("same seed, same results", () => {
    const traces = [short("a", 3, 1)];
    const one = toJson(runBench(traces, cfg, benchContext(cfg)));
    const two = toJson(runBench(traces, cfg, benchContext(cfg)));
    assert.deepEqual(one, two);
    assert.deepEqual(Object.keys(one.traces["a"]!), ["ours", "hpa", "kubeai", "oracle"]);
    for (const r of Object.values(one.traces["a"]!)) {
      assert.ok(r.gpuHours > 0 && r.sloAttainment >= 0 && r.sloAttainment <= 1);
    }
  });

  test("more load costs more GPU-hours", () => {
    const ctx = benchContext(cfg);
    const light = short("light", 1.5, 3);
    const heavy = short("heavy", 5, 3);
    for (const p of ["ours", "oracle"] as const) {
      const l = simulate(light, makePolicy(p, light, cfg, ctx), ctx.fleet(light));
      const h = simulate(heavy, makePolicy(p, heavy, cfg, ctx), ctx.fleet(heavy));
      assert.ok(h.gpuHours > 1.5 * l.gpuHours, `${p}: ${h.gpuHours} vs ${l.gpuHours}`);
    }
  });

  test("a replica costs GPU-hours from its request, and serves only after the cold start", () => {
    const ctx = benchContext(cfg);
    const trace = short("t", 0.5, 4);
    const fleet = { ...ctx.fleet(trace), initialReplicas: 1 };
    // Asks for a second replica at the first decision and keeps it.
    const two: SimPolicy = { name: "two", intervalSeconds: 15, decide: () => 2 };
    const r = simulate(trace, two, fleet);
    const gpus = PLAN.gpusPerReplica;
    assert.ok(Math.abs(r.gpuHours - (gpus * 1800 + gpus * (1800 - 15)) / 3600) < 1e-9);
    assert.equal(r.scaleActions, 1);
    assert.deepEqual(r.timeline, [
      [0, 1],
      [15, 2],
    ]);
  });

  test("the cold start is the operator's wake-up model, pending for the node first", () => {
    for (const weights of ["download", "cached"] as const) {
      const c = defaultBenchConfig({ weights });
      const ctx = benchContext(c);
      const w = wakeUp(PLAN, weights);
      assert.deepEqual(ctx.fleet(short("t", 0.5, 4)).coldStart, ctx.model.wakeUp);
      assert.equal(ctx.model.wakeUp.seconds, w.seconds);
      assert.equal(ctx.model.forecastSeconds, w.seconds); // ours looks one wake-up ahead
      const phases: string[] = [];
      let ready = Number.NaN;
      const probe: SimPolicy = {
        name: "probe",
        intervalSeconds: 15,
        decide: (view) => {
          const added = view.pods().find((p) => p.requestedAt === 15);
          if (added !== undefined) {
            phases.push(added.phase);
            if (added.phase === "ready" && Number.isNaN(ready)) ready = view.now;
          }
          return 2;
        },
      };
      simulate(short("t", 0.5, 4), probe, { ...ctx.fleet(short("t", 0.5, 4)), initialReplicas: 1 });
      // Pending until the node is up, loading until the wake-up has passed (decisions every 15 s).
      assert.equal(phases[0], "pending");
      assert.ok(phases.includes("loading"));
      assert.equal(ready, 15 + Math.ceil(w.seconds / 15) * 15);
    }
  });

  test("the plotted series: offered load, replica steps and SLO misses per policy", () => {
    const ctx = benchContext(cfg);
    const trace = short("t", 0.5, 6);
    const fleet = { ...ctx.fleet(trace), initialReplicas: 1 };
    const runs = [
      simulate(trace, { name: "two", intervalSeconds: 15, decide: () => 2 }, fleet),
      simulate(trace, { name: "zero", intervalSeconds: 15, decide: () => 0 }, fleet),
    ];
    const s = plotSeries(trace, runs);
    assert.equal(s.offeredRequestsPerSecond.length, Math.ceil(1800 / s.binSeconds));
    const arrived = s.offeredRequestsPerSecond.reduce((n, r) => n + r * s.binSeconds, 0);
    assert.ok(Math.abs(arrived - trace.requests.length) < 1e-6);
    const [two, zero] = s.policies;
    assert.deepEqual(two!.replicas[0], [0, 1]);
    assert.equal(two!.replicas.at(-1)![1], 2);
    assert.equal(zero!.replicas.at(-1)![1], 0);
    const missed = (p: (typeof s.policies)[number]) => p.missesPerBin.reduce((a, b) => a + b, 0);
    const misses = (r: RunResult) => Math.round((1 - r.sloAttainment) * r.requests);
    assert.equal(missed(zero!), misses(runs[1]!));
    assert.equal(missed(two!), misses(runs[0]!));
    assert.ok(missed(zero!) > missed(two!));
    assert.equal(two!.gpuHours, runs[0]!.gpuHours);
  });

  test("GPU-hours with both cold-start models, every policy but the oracle", () => {
    const traces = [short("a", 2, 7)];
    const c = defaultBenchConfig({ policies: ["ours", "hpa", "oracle"] });
    const ctx = benchContext(c);
    const results = runBench(traces, c, ctx);
    const cmp = compareColdStarts(traces, c, ctx.model, results);
    assert.deepEqual(
      cmp.rows.map((r) => `${r.trace}/${r.policy}`),
      ["a/ours", "a/hpa"],
    );
    assert.equal(cmp.rows[0]!.download, results.traces["a"]!["ours"]);
    assert.ok(cmp.wakeUp.cached.seconds < cmp.wakeUp.download.seconds);
    assert.match(formatColdStarts(cmp), /download GPU-h/);
  });

  test("no ready replica: requests are rejected, not held", () => {
    const ctx = benchContext(cfg);
    const trace = short("t", 0.5, 5);
    const zero: SimPolicy = { name: "zero", intervalSeconds: 15, decide: () => 0 };
    const r = simulate(trace, zero, { ...ctx.fleet(trace), initialReplicas: 1 });
    assert.ok(r.failed > trace.requests.length * 0.9);
    assert.ok(r.sloAttainment < 0.1);
  });
});

/** A hand-driven FleetView for the baseline policies. */
function fakeView(
  now: number,
  spec: number,
  pods: { name: string; phase: PodView["phase"]; gen?: number; inFlight?: number }[],
): FleetView {
  return {
    now,
    specReplicas: spec,
    minReplicas: 1,
    maxReplicas: 20,
    pods: () => pods.map((p) => ({ name: p.name, phase: p.phase, requestedAt: 0, readyAt: 0 })),
    scrape: (name): PodScrape | undefined => {
      const p = pods.find((x) => x.name === name);
      if (p === undefined || p.phase !== "ready") return undefined;
      return {
        time: now,
        generationTokensTotal: p.gen ?? 0,
        promptTokensTotal: 0,
        requestsFinishedTotal: 0,
        running: 0,
        waiting: 0,
        kvCacheUsage: 0,
      };
    },
    inFlight: () => pods.reduce((s, p) => s + (p.inFlight ?? 0), 0),
  };
}

describe("HPA", () => {
  test("ceil(ready x ratio) with 10 % tolerance, +1 pod per 60 s, 300 s down window", () => {
    const hpa = new HpaPolicy(1000, PRODUCTION_STACK_HPA);
    // Two pods at 2000 tok/s each: ratio 2 -> 4 wanted, +1 per 60 s allowed.
    let gen = 0;
    let last = 0;
    const at = (now: number, spec: number, rate: number, extra: PodView["phase"][] = []) => {
      gen += rate * (now - last);
      last = now;
      return fakeView(now, spec, [
        { name: "a", phase: "ready", gen },
        { name: "b", phase: "ready", gen },
        ...extra.map((phase, i) => ({ name: `n${i}`, phase })),
      ]);
    };
    assert.equal(hpa.decide(at(0, 2, 2000)), 2); // one sample: no rate yet, no change
    assert.equal(hpa.decide(at(15, 2, 2000)), 3);
    // A pending pod counts as 0 on scale-up: 4000 / 3 pods = 1.33 -> ceil(4000/1000) = 4, but
    // the 60 s period allows no second pod yet.
    assert.equal(hpa.decide(at(30, 3, 2000, ["pending"])), 3);
    assert.equal(hpa.decide(at(76, 3, 2000, ["pending"])), 4);
    // Within tolerance (ratio 1.05): hold.
    const calm = new HpaPolicy(1000, PRODUCTION_STACK_HPA);
    let g = 0;
    for (const t of [0, 15, 30]) {
      g += 1050 * 15;
      const v = fakeView(t, 2, [
        { name: "a", phase: "ready", gen: g },
        { name: "b", phase: "ready", gen: g },
      ]);
      assert.equal(calm.decide(v), 2);
    }
    // Load falls to a quarter: no scale-down before 300 s, then 1 pod per 60 s.
    let down = g;
    const decisions: number[] = [];
    let spec = 2;
    for (let t = 45; t <= 420; t += 15) {
      down += 250 * 15;
      spec = calm.decide(
        fakeView(t, spec, [
          { name: "a", phase: "ready", gen: down },
          { name: "b", phase: "ready", gen: down },
        ]),
      );
      decisions.push(spec);
    }
    const firstDown = decisions.findIndex((d) => d < 2);
    assert.ok(45 + 15 * firstDown > 300, `scaled down at ${45 + 15 * firstDown}`);
    assert.equal(Math.min(...decisions), 1);
  });
});

describe("KubeAI", () => {
  test("ceil(10-min average / targetRequests); down only after 3 consecutive lower decisions", () => {
    const k = new KubeAiPolicy({
      intervalSeconds: 10,
      timeWindowSeconds: 600,
      scaleDownDelaySeconds: 30,
      targetRequests: 10,
    });
    const v = (now: number, spec: number, inFlight: number) =>
      fakeView(now, spec, [{ name: "a", phase: "ready", inFlight }]);
    // Warm window at max(35 in flight, 4 replicas x 10) = 40: ceil(4.0) = 4.
    assert.equal(k.decide(v(10, 4, 35)), 4);
    // One sample of 335 moves the 60-sample average to (59 x 40 + 335) / 60 = 44.9 -> 5.
    assert.equal(k.decide(v(20, 4, 335)), 5);
    // A lower value is held for three consecutive decisions, applied at the fourth.
    const k2 = new KubeAiPolicy({
      intervalSeconds: 10,
      timeWindowSeconds: 600,
      scaleDownDelaySeconds: 30,
      targetRequests: 10,
    });
    // Warm at max(35, 2 x 10) = 35: up to 4 at once.
    assert.equal(k2.decide(v(10, 2, 35)), 4);
    assert.equal(k2.decide(v(20, 6, 35)), 6);
    assert.equal(k2.decide(v(30, 6, 35)), 6);
    assert.equal(k2.decide(v(40, 6, 35)), 6);
    assert.equal(k2.decide(v(50, 6, 35)), 4);
  });
});

describe("the oracle row", () => {
  const cfg = defaultBenchConfig();
  const unit = chatUnitRate(TARGET);

  test("is the cheapest utilisation that reaches the goal, tried from 1.0 down", () => {
    const ctx = benchContext(cfg);
    const trace = poissonTrace("o", "", 1800, (t) => (t < 900 ? 2 : 5) * unit, 5 * unit, 11);
    const fleet = ctx.fleet(trace);
    const goal = 0.99;
    const o = runOracle(trace, cfg, ctx, fleet, goal);
    assert.ok(o.result.sloAttainment >= goal, `SLO ${o.result.sloAttainment}`);
    const i = ORACLE_UTILISATIONS.indexOf(o.utilisation as (typeof ORACLE_UTILISATIONS)[number]);
    assert.ok(i >= 0);
    // Every higher utilisation (cheaper schedule) missed the goal.
    for (const u of ORACLE_UTILISATIONS.slice(0, i)) {
      const r = simulate(trace, makePolicy("oracle", trace, cfg, ctx, u), fleet);
      assert.ok(r.sloAttainment < goal, `u ${u} reached ${r.sloAttainment}`);
    }
    // An unreachable goal returns the best attainment seen.
    const best = runOracle(trace, cfg, ctx, fleet, 1.01);
    assert.ok(best.result.sloAttainment >= o.result.sloAttainment);
  });
});

describe("baseline targets", () => {
  const cfg = defaultBenchConfig();
  const unit = chatUnitRate(TARGET);

  test("chat load keeps the HPA at the shared target; prompt-heavy load lowers it", () => {
    const ctx = benchContext(cfg);
    const chat = poissonTrace("chat", "", 600, () => 2 * unit, 2 * unit, 3);
    const b = ctx.baselineTargets(chat);
    assert.equal(b.generationShare, 1);
    assert.equal(b.hpaGenerationTokensPerSecond, TARGET.tokensPerSecond);
    const code: Trace = {
      name: "code",
      description: "",
      durationSeconds: 600,
      requests: Array.from({ length: 600 }, (_, i) => ({ t: i, prompt: 2000, gen: 28 })),
    };
    const c = ctx.baselineTargets(code);
    const share = 28 / (2028 * TARGET.promptTokenWeight);
    assert.ok(Math.abs(c.generationShare - share) < 1e-12);
    assert.ok(Math.abs(c.hpaGenerationTokensPerSecond - TARGET.tokensPerSecond * share) < 1e-9);
  });

  test("KubeAI's target is the in-flight count measured at the target, deterministic", () => {
    const chat = poissonTrace("chat", "", 600, () => 2 * unit, 2 * unit, 3);
    const a = benchContext(cfg).baselineTargets(chat).kubeAiTargetRequests;
    const b = benchContext(cfg).baselineTargets(chat).kubeAiTargetRequests;
    assert.equal(a, b);
    // At 70 % of capacity a replica neither idles nor queues without bound: some batch, and
    // no more than a full batch plus a short queue.
    assert.ok(a > 10 && a <= PLAN.maxNumSeqs + 16, `in flight ${a}`);
    // Twice the tokens per request at the same token rate: about the same in flight
    // (half the requests, each twice as long), not twice as many.
    const long: Trace = {
      ...chat,
      name: "long",
      requests: chat.requests.map((r) => ({ ...r, gen: r.gen * 2, prompt: r.prompt * 2 })),
    };
    const l = benchContext(cfg).baselineTargets(long).kubeAiTargetRequests;
    assert.ok(l < 1.6 * a, `long ${l} vs ${a}`);
  });
});

describe("oracle", () => {
  const minutes = (needs: (m: number) => number, prompt = 1): TraceRequest[] => {
    const reqs: TraceRequest[] = [];
    for (let m = 0; m < 40; m++) {
      reqs.push({
        t: m * 60 + 1,
        prompt,
        gen: Math.floor(needs(m) * TARGET.decodeTokensPerSecond * 60 * 0.99),
      });
    }
    return reqs;
  };

  test("holds the most any minute needs until a replica asked for now could serve", () => {
    // Minute 20: 8 replicas' capacity of generation; otherwise 1.
    const reqs = minutes((m) => (m === 20 ? 8 : 1));
    const trace: Trace = { name: "o", description: "", durationSeconds: 2400, requests: reqs };
    const o = new OraclePolicy(trace, TARGET, 600);
    assert.equal(o.needBetween(0, 60), 1);
    assert.equal(o.needBetween(1200, 1260), 8);
    const view = (now: number) => fakeView(now, 1, []);
    assert.equal(o.decide(view(540)), 1); // minute 20 starts 660 s later
    assert.equal(o.decide(view(600)), 8); // exactly one cold start (+ one interval) ahead
    assert.equal(o.decide(view(1260)), 1); // minute 20 is over
  });

  test("a lower utilisation asks for proportionally more replicas", () => {
    const trace: Trace = {
      name: "o",
      description: "",
      durationSeconds: 2400,
      requests: minutes(() => 3),
    };
    assert.equal(new OraclePolicy(trace, TARGET, 600, 1).needBetween(0, 60), 3);
    assert.equal(new OraclePolicy(trace, TARGET, 600, 0.5).needBetween(0, 60), 6);
  });

  test("prompt-heavy minutes are sized by the compute roof, not by generated tokens", () => {
    // 1 generated token a minute but 3 replicas' worth of prefill compute.
    const prompt = Math.floor(
      (3 * 0.99 * TARGET.decodeTokensPerSecond * 60) / TARGET.promptTokenWeight,
    );
    const reqs: TraceRequest[] = [{ t: 1, prompt, gen: 1 }];
    const trace: Trace = { name: "p", description: "", durationSeconds: 60, requests: reqs };
    assert.equal(new OraclePolicy(trace, TARGET, 600).needBetween(0, 59), 3);
  });
});
