import { test, describe } from "node:test";
import assert from "node:assert/strict";
import {
  backoffDelay,
  DEFAULT_BACKOFF,
  ExponentialRateLimiter,
  jitter,
  WorkQueue,
  WorkQueueError,
  type Clock,
  type ReconcileResult,
} from "../../src/kube/queue.ts";

/** Timers that fire only when the test advances time, so delays are asserted exactly. */
class FakeClock implements Clock {
  private t = 0;
  private nextId = 1;
  private readonly timers = new Map<number, { at: number; ms: number; fn: () => void }>();

  now(): number {
    return this.t;
  }
  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.nextId++;
    this.timers.set(id, { at: this.t + ms, ms, fn });
    return id;
  }
  clearTimeout(handle: unknown): void {
    this.timers.delete(handle as number);
  }
  /** The requested delays of the timers still pending. */
  pendingDelays(): number[] {
    return [...this.timers.values()].map((t) => t.ms);
  }
  /** Moves time forward, firing due timers in due order. */
  advance(ms: number): void {
    const until = this.t + ms;
    for (;;) {
      const due = [...this.timers.entries()]
        .filter(([, t]) => t.at <= until)
        .sort(([, a], [, b]) => a.at - b.at);
      const first = due[0];
      if (first === undefined) break;
      this.timers.delete(first[0]);
      this.t = first[1].at;
      first[1].fn();
    }
    this.t = until;
  }
}

/** Lets pending promise callbacks (worker completions) run. */
function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Moves the fake clock on by `ms` and lets the queue run what came due. */
async function advance(clock: FakeClock, ms: number): Promise<void> {
  clock.advance(ms);
  await settle();
}

interface Gate {
  promise: Promise<void>;
  open(): void;
  fail(err: unknown): void;
}
function gate(): Gate {
  let open!: () => void;
  let fail!: (err: unknown) => void;
  const promise = new Promise<void>((resolve, reject) => {
    open = resolve;
    fail = reject;
  });
  return { promise, open, fail };
}

/** A worker that records runs and tracks how many of each key run at once. */
class Recorder {
  readonly runs: string[] = [];
  readonly active = new Map<string, number>();
  maxPerKey = 0;
  maxTotal = 0;
  private total = 0;

  constructor(
    private readonly body: (
      key: string,
      run: number,
    ) => Promise<ReconcileResult | void> = async () => undefined,
  ) {}

  readonly worker = async (key: string): Promise<ReconcileResult | void> => {
    this.runs.push(key);
    const n = (this.active.get(key) ?? 0) + 1;
    this.active.set(key, n);
    this.total += 1;
    this.maxPerKey = Math.max(this.maxPerKey, n);
    this.maxTotal = Math.max(this.maxTotal, this.total);
    try {
      return await this.body(key, this.runs.length);
    } finally {
      this.active.set(key, (this.active.get(key) ?? 1) - 1);
      this.total -= 1;
    }
  };

  count(key: string): number {
    return this.runs.filter((k) => k === key).length;
  }
}

function quietQueue(clock = new FakeClock()): {
  q: WorkQueue;
  clock: FakeClock;
  errors: unknown[];
} {
  const errors: unknown[] = [];
  const q = new WorkQueue({ clock, onError: (_k, err) => errors.push(err) });
  return { q, clock, errors };
}

/** A quiet queue with one worker that records what it runs. */
function recordingQueue(
  clock = new FakeClock(),
): ReturnType<typeof quietQueue> & { rec: Recorder } {
  const queue = quietQueue(clock);
  const rec = new Recorder();
  queue.q.start(rec.worker, 1);
  return { ...queue, rec };
}

describe("backoff", () => {
  test("backoffDelay doubles from 100 ms and caps at 60 s by default", () => {
    const seq = Array.from({ length: 12 }, (_, n) => backoffDelay(n));
    assert.deepEqual(
      seq,
      [100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 51200, 60000, 60000],
    );
    assert.equal(backoffDelay(5000), DEFAULT_BACKOFF.maxDelayMs, "overflow still caps");
  });

  test("backoffDelay honours custom base, factor and cap", () => {
    const opts = { baseDelayMs: 5, factor: 3, maxDelayMs: 100 };
    assert.deepEqual(
      [0, 1, 2, 3, 4].map((n) => backoffDelay(n, opts)),
      [5, 15, 45, 100, 100],
    );
  });

  test("the rate limiter counts failures per key and forget() resets one key", () => {
    const rl = new ExponentialRateLimiter();
    assert.deepEqual(
      [rl.when("a"), rl.when("a"), rl.when("a"), rl.when("b")],
      [100, 200, 400, 100],
    );
    assert.equal(rl.failures("a"), 3);
    assert.equal(rl.failures("b"), 1);
    rl.forget("a");
    assert.equal(rl.failures("a"), 0);
    assert.equal(rl.when("a"), 100);
    assert.equal(rl.failures("b"), 1);
  });

  test("the rate limiter rejects nonsensical settings", () => {
    assert.throws(() => new ExponentialRateLimiter({ baseDelayMs: 0 }), RangeError);
    assert.throws(() => new ExponentialRateLimiter({ factor: 0.5 }), RangeError);
    assert.throws(() => new ExponentialRateLimiter({ baseDelayMs: 10, maxDelayMs: 5 }), RangeError);
  });

  test("jitter spreads over ±fraction", () => {
    assert.equal(
      jitter(1000, 0.1, () => 0),
      900,
    );
    assert.equal(
      jitter(1000, 0.1, () => 0.5),
      1000,
    );
    assert.ok(Math.abs(jitter(1000, 0.1, () => 1) - 1100) < 1e-9);
  });
});

describe("WorkQueue add", () => {
  test("duplicate keys waiting in the queue merge into one entry, in first-added order", async () => {
    const { q } = quietQueue();
    for (const k of ["ns/a", "ns/b", "ns/a", "ns/c", "ns/b", "ns/a"]) q.add(k);
    assert.equal(q.len(), 3);
    const rec = new Recorder();
    q.start(rec.worker, 1);
    await settle();
    assert.deepEqual(rec.runs, ["ns/a", "ns/b", "ns/c"]);
    assert.equal(q.len(), 0);
    await q.shutDown();
  });

  test("a key added while it runs is run once more afterwards, never concurrently", async () => {
    const { q } = quietQueue();
    const first = gate();
    const rec = new Recorder((_key, run) => (run === 1 ? first.promise : Promise.resolve()));
    q.start(rec.worker, 4);
    q.add("ns/a");
    await settle();
    assert.equal(q.inFlight(), 1);
    for (let i = 0; i < 5; i++) q.add("ns/a");
    assert.equal(q.len(), 0, "the dirty key waits for its run to finish, not in the ready queue");
    await settle();
    assert.equal(rec.count("ns/a"), 1, "not started again while running, despite free workers");
    first.open();
    await settle();
    assert.equal(rec.count("ns/a"), 2, "five adds during the run merge into one rerun");
    assert.equal(rec.maxPerKey, 1);
    assert.equal(q.inFlight(), 0);
    await q.shutDown();
  });

  test("runs at most `concurrency` keys at a time, and all of them eventually", async () => {
    const { q } = quietQueue();
    const gates = new Map<string, Gate>();
    const rec = new Recorder((key) => {
      const g = gate();
      gates.set(key, g);
      return g.promise;
    });
    const keys = ["a", "b", "c", "d", "e"].map((n) => `ns/${n}`);
    keys.forEach((k) => q.add(k));
    q.start(rec.worker, 2);
    await settle();
    assert.equal(q.inFlight(), 2);
    assert.equal(q.len(), 3);
    assert.deepEqual(rec.runs, ["ns/a", "ns/b"]);
    gates.get("ns/b")!.open();
    await settle();
    assert.deepEqual(rec.runs, ["ns/a", "ns/b", "ns/c"], "a finished slot takes the next key");
    for (const k of keys) {
      gates.get(k)?.open();
      await settle();
    }
    for (const k of keys) gates.get(k)?.open();
    await settle();
    assert.deepEqual([...rec.runs].sort(), keys);
    assert.equal(rec.maxTotal, 2);
    await q.shutDown();
  });

  test("random adds under load never run a key concurrently with itself", async () => {
    const q = new WorkQueue({ onError: () => undefined });
    let seed = 42;
    const random = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const keys = ["ns/a", "ns/b", "ns/c"];
    const pick = (): string => keys[Math.floor(random() * keys.length)]!;
    const rec = new Recorder(async () => {
      if (random() < 0.5) q.add(pick()); // re-adds while processing, including itself
      await new Promise((resolve) => setTimeout(resolve, Math.floor(random() * 3)));
      if (random() < 0.2) throw new Error("flaky");
    });
    q.start(rec.worker, 3);
    for (let i = 0; i < 200; i++) {
      q.add(pick());
      if (i % 10 === 0) await new Promise((resolve) => setTimeout(resolve, 1));
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
    await q.shutDown();
    assert.ok(rec.runs.length > 10);
    assert.equal(rec.maxPerKey, 1);
    assert.ok(rec.maxTotal <= 3);
  });

  test("a worker that throws synchronously is treated as a failure", async () => {
    const { q, errors } = quietQueue();
    const boom = new Error("sync boom");
    q.start(() => {
      throw boom;
    }, 1);
    q.add("ns/a");
    await settle();
    assert.deepEqual(errors, [boom]);
    assert.equal(q.inFlight(), 0);
    await q.shutDown();
  });
});

describe("WorkQueue delays", () => {
  test("addAfter queues the key only once its delay has passed", async () => {
    const { q, clock, rec } = recordingQueue();
    q.addAfter("ns/a", 500);
    assert.equal(q.len(), 0);
    await advance(clock, 499);
    assert.equal(rec.count("ns/a"), 0);
    await advance(clock, 1);
    assert.equal(rec.count("ns/a"), 1);
    await q.shutDown();
  });

  test("the earliest pending delay wins, and only one run results", async () => {
    const { q, clock, rec } = recordingQueue();
    q.addAfter("ns/a", 1000);
    q.addAfter("ns/a", 100); // earlier: replaces
    q.addAfter("ns/a", 5000); // later: ignored
    assert.deepEqual(clock.pendingDelays(), [100]);
    await advance(clock, 100);
    assert.equal(rec.count("ns/a"), 1);
    await advance(clock, 10_000);
    assert.equal(rec.count("ns/a"), 1, "the superseded delays do not fire later");
    await q.shutDown();
  });

  test("add() of a delayed key makes it immediate and cancels the delay", async () => {
    const { q, clock, rec } = recordingQueue();
    q.addAfter("ns/a", 1000);
    q.add("ns/a");
    await settle();
    assert.equal(rec.count("ns/a"), 1);
    assert.deepEqual(clock.pendingDelays(), []);
    await advance(clock, 2000);
    assert.equal(rec.count("ns/a"), 1);
    await q.shutDown();
  });

  test("addAfter of a key that is already queued is a no-op", async () => {
    const { q, clock } = quietQueue();
    q.add("ns/a");
    q.addAfter("ns/a", 100);
    assert.deepEqual(clock.pendingDelays(), []);
    assert.equal(q.len(), 1);
    q.addAfter("ns/b", 0);
    assert.equal(q.len(), 2, "a zero delay is an immediate add");
    await q.shutDown();
  });

  test("delays of different keys are independent", async () => {
    const { q, clock, rec } = recordingQueue();
    q.addAfter("ns/b", 200);
    q.addAfter("ns/a", 100);
    await advance(clock, 300);
    assert.deepEqual(rec.runs, ["ns/a", "ns/b"]);
    await q.shutDown();
  });
});

describe("WorkQueue worker results", () => {
  test("requeueAfterMs schedules exactly that delay, then the key runs again", async () => {
    const { q, clock } = quietQueue();
    const rec = new Recorder(async (_key, run) =>
      run === 1 ? { requeueAfterMs: 250 } : undefined,
    );
    q.start(rec.worker, 1);
    q.add("ns/a");
    await settle();
    assert.equal(rec.count("ns/a"), 1);
    assert.deepEqual(clock.pendingDelays(), [250]);
    await advance(clock, 249);
    assert.equal(rec.count("ns/a"), 1);
    await advance(clock, 1);
    assert.equal(rec.count("ns/a"), 2);
    assert.deepEqual(clock.pendingDelays(), [], "the second run asked for no requeue");
    await q.shutDown();
  });

  test("failures back off exponentially, the hook sees each error, success forgets", async () => {
    const clock = new FakeClock();
    const seen: { key: string; err: unknown; attempt: number; retryInMs: number }[] = [];
    const q = new WorkQueue({
      clock,
      onError: (key, err, attempt, retryInMs) => seen.push({ key, err, attempt, retryInMs }),
    });
    const errs = [new Error("e1"), new Error("e2"), new Error("e3")];
    const rec = new Recorder(async (_key, run) => {
      const err = errs[run - 1];
      if (err !== undefined) throw err;
    });
    q.start(rec.worker, 1);
    q.add("ns/a");
    const delays: number[] = [];
    for (let i = 0; i < 3; i++) {
      await settle();
      const pending = clock.pendingDelays();
      assert.equal(pending.length, 1);
      delays.push(pending[0]!);
      assert.equal(q.failures("ns/a"), i + 1);
      clock.advance(pending[0]!);
    }
    await settle();
    assert.deepEqual(delays, [100, 200, 400]);
    assert.deepEqual(
      seen.map((s) => [s.key, s.attempt, s.retryInMs]),
      [
        ["ns/a", 1, 100],
        ["ns/a", 2, 200],
        ["ns/a", 3, 400],
      ],
    );
    assert.deepEqual(
      seen.map((s) => s.err),
      errs,
      "the hook receives the very error thrown",
    );
    assert.equal(rec.count("ns/a"), 4);
    assert.equal(q.failures("ns/a"), 0, "the successful fourth run reset the backoff");
    assert.deepEqual(clock.pendingDelays(), []);
    await q.shutDown();
  });

  test("backoff settings are configurable per queue", async () => {
    const clock = new FakeClock();
    const attempts: number[] = [];
    const q = new WorkQueue({
      clock,
      backoff: { baseDelayMs: 10, factor: 3, maxDelayMs: 50 },
      onError: (_key, _err, attempt) => attempts.push(attempt),
    });
    q.start(async () => {
      throw new Error("always fails");
    }, 1);
    q.add("ns/a");
    const delays: number[] = [];
    for (let i = 0; i < 4; i++) {
      await settle();
      delays.push(...clock.pendingDelays());
      clock.advance(1000);
    }
    assert.deepEqual(delays, [10, 30, 50, 50]);
    assert.deepEqual(attempts, [1, 2, 3, 4]);
    assert.equal(q.failures("ns/a"), 4);
    q.forget("ns/a");
    assert.equal(q.failures("ns/a"), 0);
    await q.shutDown();
  });

  test("addRateLimited without a worker: the earliest pending retry wins", async () => {
    const { q, clock } = quietQueue();
    q.addRateLimited("ns/a"); // 100 ms
    q.addRateLimited("ns/a"); // 200 ms: later than the pending 100 ms, so ignored
    assert.deepEqual(clock.pendingDelays(), [100]);
    assert.equal(q.failures("ns/a"), 2, "both failures still count towards the backoff");
    await q.shutDown();
  });

  test("a key re-added while failing is rerun at once; the retry delay is not also kept", async () => {
    const { q, clock } = quietQueue();
    const running = gate();
    const rec = new Recorder(async (_key, run) => {
      if (run === 1) {
        await running.promise;
        throw new Error("first run fails");
      }
    });
    q.start(rec.worker, 1);
    q.add("ns/a");
    await settle();
    q.add("ns/a");
    running.open();
    await settle();
    assert.equal(rec.count("ns/a"), 2);
    assert.deepEqual(clock.pendingDelays(), []);
    assert.equal(q.failures("ns/a"), 0, "the rerun succeeded");
    await q.shutDown();
  });

  test("an onError hook that throws does not stop the queue", async (t) => {
    const quiet = t.mock.method(console, "error", () => undefined);
    const clock = new FakeClock();
    const q = new WorkQueue({
      clock,
      onError: () => {
        throw new Error("hook broke");
      },
    });
    const rec = new Recorder(async (key) => {
      if (key === "ns/bad") throw new Error("worker broke");
    });
    q.start(rec.worker, 1);
    q.add("ns/bad");
    q.add("ns/good");
    await settle();
    assert.deepEqual(rec.runs, ["ns/bad", "ns/good"]);
    assert.equal(
      quiet.mock.callCount(),
      1,
      "the hook failure is reported, with the original error",
    );
    assert.deepEqual(clock.pendingDelays(), [100]);
    await q.shutDown();
  });

  test("without a hook, failures are reported on stderr", async (t) => {
    const logged = t.mock.method(console, "error", (..._args: unknown[]) => undefined);
    const q = new WorkQueue({ clock: new FakeClock() });
    const boom = new Error("boom");
    q.start(async () => {
      throw boom;
    }, 1);
    q.add("ns/a");
    await settle();
    assert.equal(logged.mock.callCount(), 1);
    assert.ok(logged.mock.calls[0]!.arguments.includes(boom));
    await q.shutDown();
  });
});

describe("WorkQueue lifecycle", () => {
  test("start validates its arguments and may be called once", async () => {
    const { q } = quietQueue();
    const noop = async (): Promise<void> => undefined;
    assert.throws(() => q.start(noop, 0), RangeError);
    assert.throws(() => q.start(noop, 1.5), RangeError);
    q.start(noop, 1);
    assert.throws(() => q.start(noop, 1), WorkQueueError);
    await q.shutDown();
    const { q: stopped } = quietQueue();
    await stopped.shutDown();
    assert.throws(() => stopped.start(noop, 1), WorkQueueError);
  });

  test("keys added before start wait, then run", async () => {
    const { q } = quietQueue();
    q.add("ns/a");
    await settle();
    assert.equal(q.len(), 1);
    const rec = new Recorder();
    q.start(rec.worker, 1);
    await settle();
    assert.deepEqual(rec.runs, ["ns/a"]);
    await q.shutDown();
  });

  test("shutDown waits for the runs in flight and starts no new ones", async () => {
    const { q, clock } = quietQueue();
    const inFlight = gate();
    const rec = new Recorder((key) => (key === "ns/a" ? inFlight.promise : Promise.resolve()));
    q.start(rec.worker, 1);
    q.add("ns/a");
    q.add("ns/b");
    q.addAfter("ns/c", 100);
    await settle();
    assert.equal(q.inFlight(), 1);
    let drained = false;
    const done = q.shutDown().then(() => (drained = true));
    assert.strictEqual(q.shutDown(), q.shutDown(), "idempotent");
    q.add("ns/d");
    q.addAfter("ns/e", 10);
    assert.deepEqual(clock.pendingDelays(), [], "delayed keys are dropped");
    await settle();
    assert.equal(drained, false, "still waiting for ns/a");
    inFlight.open();
    await done;
    assert.equal(drained, true);
    assert.deepEqual(rec.runs, ["ns/a"], "ns/b was queued but not started after shutdown");
    assert.equal(q.inFlight(), 0);
  });

  test("shutDown resolves at once when idle", async () => {
    const { q } = quietQueue();
    q.start(async () => undefined, 2);
    await q.shutDown();
    assert.equal(q.inFlight(), 0);
  });

  test("shutDown waits for a failing run too", async () => {
    const { q, errors } = quietQueue();
    const running = gate();
    q.start(() => running.promise, 1);
    q.add("ns/a");
    await settle();
    const done = q.shutDown();
    running.fail(new Error("late failure"));
    await done;
    assert.equal(errors.length, 1);
    assert.equal(q.inFlight(), 0);
  });
});

describe("WorkQueue with real timers", () => {
  test("addAfter and requeueAfterMs fire on the real clock", async () => {
    const q = new WorkQueue({ onError: () => undefined });
    const ran = new Map<string, number>();
    let resolveSecond!: () => void;
    const second = new Promise<void>((resolve) => (resolveSecond = resolve));
    q.start(async (key) => {
      const n = (ran.get(key) ?? 0) + 1;
      ran.set(key, n);
      if (key === "ns/poll" && n === 2) resolveSecond();
      return key === "ns/poll" && n === 1 ? { requeueAfterMs: 20 } : undefined;
    }, 2);
    q.addAfter("ns/late", 20);
    q.add("ns/poll");
    await second;
    await new Promise((resolve) => setTimeout(resolve, 40));
    await q.shutDown();
    assert.equal(ran.get("ns/poll"), 2);
    assert.equal(ran.get("ns/late"), 1);
  });
});
