import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { RateTracker, counterIncrease, type PodRate } from "../../src/autoscale/rates.ts";

type K = "gen" | "prompt";

function ok(r: PodRate<K>): Extract<PodRate<K>, { status: "ok" }> {
  assert.equal(r.status, "ok", JSON.stringify(r));
  return r as Extract<PodRate<K>, { status: "ok" }>;
}

describe("counterIncrease", () => {
  test("difference when the counter grew, the new value after a reset", () => {
    assert.equal(counterIncrease(100, 160), 60);
    assert.equal(counterIncrease(100, 100), 0);
    assert.equal(counterIncrease(5000, 40), 40);
  });
});

describe("RateTracker", () => {
  test("rate between two scrapes", () => {
    const t = new RateTracker<K>();
    t.observe("a", { time: 0, counters: { gen: 1000, prompt: 5000 } });
    t.observe("a", { time: 15, counters: { gen: 1300, prompt: 5600 } });
    const r = ok(t.rate("a", 15));
    assert.deepEqual(r.rates, { gen: 20, prompt: 40 });
    assert.equal(r.elapsedSeconds, 15);
    assert.deepEqual(r.resets, []);
    assert.equal(r.missedScrapes, 0);
  });

  test("a counter reset counts the new value as the increase since the reset", () => {
    const t = new RateTracker<K>();
    t.observe("a", { time: 0, counters: { gen: 90000, prompt: 100 } });
    t.observe("a", { time: 15, counters: { gen: 300, prompt: 400 } });
    const r = ok(t.rate("a", 15));
    assert.equal(r.rates.gen, 20); // 300 / 15, not (300 - 90000) / 15
    assert.equal(r.rates.prompt, 20);
    assert.deepEqual(r.resets, ["gen"]);
  });

  test("a missed scrape: unknown meanwhile, then a rate over the real elapsed time", () => {
    const t = new RateTracker<K>();
    t.observe("a", { time: 0, counters: { gen: 0, prompt: 0 } });
    t.observe("a", { time: 15, counters: { gen: 150, prompt: 0 } });
    t.miss("a", 30, "timeout");
    const during = t.rate("a", 30);
    assert.equal(during.status, "unknown");
    assert.match((during as { reason: string }).reason, /timeout/);
    t.observe("a", { time: 45, counters: { gen: 750, prompt: 300 } });
    const r = ok(t.rate("a", 45));
    assert.equal(r.elapsedSeconds, 30);
    assert.equal(r.rates.gen, 20); // (750 - 150) / 30, not / 15
    assert.equal(r.rates.prompt, 10);
    assert.equal(r.missedScrapes, 1);
  });

  test("never scraped, one scrape, or a stale scrape is unknown, never zero", () => {
    const t = new RateTracker<K>({ maxAgeSeconds: 60 });
    assert.equal(t.rate("x", 0).status, "unknown");
    t.miss("y", 0, "connection refused");
    assert.match((t.rate("y", 0) as { reason: string }).reason, /connection refused/);
    t.observe("a", { time: 0, counters: { gen: 10, prompt: 0 } });
    assert.equal(t.rate("a", 0).status, "unknown");
    t.observe("a", { time: 15, counters: { gen: 20, prompt: 0 } });
    assert.equal(t.rate("a", 75).status, "ok");
    assert.equal(t.rate("a", 76).status, "unknown");
  });

  test("the first scrape of a new pod gives a rate from the counters' start", () => {
    const t = new RateTracker<K>();
    t.observe("a", { time: 130, countersStart: 100, counters: { gen: 600, prompt: 1500 } });
    const r = ok(t.rate("a", 130));
    assert.deepEqual(r.rates, { gen: 20, prompt: 50 });
    assert.equal(r.sinceStart, true);
    // A long-running pod's lifetime average is not used: wait for a second scrape.
    const u = new RateTracker<K>({ maxSinceStartSeconds: 120 });
    u.observe("b", { time: 1000, countersStart: 100, counters: { gen: 600, prompt: 0 } });
    assert.equal(u.rate("b", 1000).status, "unknown");
  });

  test("a restart between scrapes, known from the counters' start, counts from the restart", () => {
    const t = new RateTracker<K>();
    t.observe("a", { time: 0, countersStart: -500, counters: { gen: 9000, prompt: 0 } });
    t.observe("a", { time: 15, countersStart: 10, counters: { gen: 100, prompt: 0 } });
    const r = ok(t.rate("a", 15));
    assert.equal(r.rates.gen, 20); // 100 tokens in the 5 s since the restart
    assert.equal(r.sinceStart, true);
    assert.deepEqual(r.resets, ["gen"]);
  });

  test("scrapes must move forward; retain forgets gone pods", () => {
    const t = new RateTracker<K>();
    t.observe("a", { time: 10, counters: { gen: 0, prompt: 0 } });
    assert.throws(() => t.observe("a", { time: 10, counters: { gen: 1, prompt: 0 } }), RangeError);
    t.observe("b", { time: 10, counters: { gen: 0, prompt: 0 } });
    t.retain(["b"]);
    assert.deepEqual(t.tracked(), ["b"]);
    assert.equal(t.rate("a", 10).status, "unknown");
  });
});
