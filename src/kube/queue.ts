/**
 * A rate-limited work queue of object keys ("namespace/name"), modelled on the
 * client-go / controller-runtime workqueue the reconcilers' semantics are written for:
 *
 * - a key waits in the queue at most once, however often it is added;
 * - a key is never processed concurrently with itself: adding it while it is being
 *   processed marks it dirty, and it is queued again once that run finishes;
 * - each key has at most one pending "due" time, and the earliest one wins: an
 *   immediate add() beats a delayed addAfter(), a shorter delay beats a longer one.
 */

/** Time source and timers; injectable so tests can step time instead of sleeping. */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const realClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

export interface BackoffOptions {
  /** Delay after the first failure. */
  readonly baseDelayMs: number;
  /** Growth per further consecutive failure. */
  readonly factor: number;
  /** Upper bound for any delay. */
  readonly maxDelayMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { baseDelayMs: 100, factor: 2, maxDelayMs: 60_000 };

/** The delay after `failures` earlier consecutive failures: base·factor^failures, capped. */
export function backoffDelay(failures: number, opts: BackoffOptions = DEFAULT_BACKOFF): number {
  const delay = opts.baseDelayMs * Math.pow(opts.factor, failures);
  // factor^n overflows to Infinity after ~1000 failures; the cap still applies then.
  return Number.isFinite(delay) ? Math.min(delay, opts.maxDelayMs) : opts.maxDelayMs;
}

/**
 * `ms` spread uniformly over [ms·(1−fraction), ms·(1+fraction)], so that many clients
 * that failed together do not all retry in the same instant.
 */
export function jitter(ms: number, fraction: number, random: () => number = Math.random): number {
  return ms * (1 - fraction + 2 * fraction * random());
}

function checkBackoff(opts: BackoffOptions): BackoffOptions {
  const { baseDelayMs, factor, maxDelayMs } = opts;
  if (!(baseDelayMs > 0) || !(factor >= 1) || !(maxDelayMs >= baseDelayMs)) {
    throw new RangeError(
      `invalid backoff: need baseDelayMs > 0, factor >= 1, maxDelayMs >= baseDelayMs; got ${JSON.stringify(opts)}`,
    );
  }
  return opts;
}

/** Per-key exponential backoff: each call to when() is one more consecutive failure. */
export class ExponentialRateLimiter {
  private readonly counts = new Map<string, number>();
  readonly options: BackoffOptions;

  constructor(options: Partial<BackoffOptions> = {}) {
    this.options = checkBackoff({ ...DEFAULT_BACKOFF, ...options });
  }

  /** Records a failure of `key` and returns how long to wait before retrying it. */
  when(key: string): number {
    const failures = this.counts.get(key) ?? 0;
    this.counts.set(key, failures + 1);
    return backoffDelay(failures, this.options);
  }

  failures(key: string): number {
    return this.counts.get(key) ?? 0;
  }

  forget(key: string): void {
    this.counts.delete(key);
  }
}

export interface ReconcileResult {
  /** Process the key again after this long, even if nothing changes (polling). */
  requeueAfterMs?: number;
}

export type Worker = (key: string) => Promise<ReconcileResult | void>;

/** Told about every failed run; `attempt` counts consecutive failures of the key (1 = first). */
export type ErrorHook = (key: string, err: unknown, attempt: number, retryInMs: number) => void;

export interface WorkQueueOptions {
  backoff?: Partial<BackoffOptions>;
  onError?: ErrorHook;
  clock?: Clock;
}

const defaultOnError: ErrorHook = (key, err, attempt, retryInMs) => {
  console.error(
    `work queue: ${key} failed (attempt ${attempt}), retrying in ${retryInMs} ms:`,
    err,
  );
};

interface Delayed {
  readonly dueAt: number;
  handle: unknown;
}

export class WorkQueue {
  /** Keys ready to run, oldest first; every key here is also in `dirty`. */
  private readonly ready: string[] = [];
  /** Keys wanting a run: waiting in `ready`, or running and added again meanwhile. */
  private readonly dirty = new Set<string>();
  private readonly processing = new Set<string>();
  private readonly delayed = new Map<string, Delayed>();
  private readonly limiter: ExponentialRateLimiter;
  private readonly onError: ErrorHook;
  private readonly clock: Clock;
  private worker: Worker | undefined;
  private concurrency = 0;
  private stopping = false;
  private drained: Promise<void> | undefined;
  private resolveDrained: (() => void) | undefined;

  constructor(options: WorkQueueOptions = {}) {
    this.limiter = new ExponentialRateLimiter(options.backoff);
    this.onError = options.onError ?? defaultOnError;
    this.clock = options.clock ?? realClock;
  }

  add(key: string): void {
    if (this.stopping) return;
    this.cancelDelay(key);
    if (this.dirty.has(key)) return;
    this.dirty.add(key);
    // A running key is queued again by finish(), so it never runs twice at once.
    if (this.processing.has(key)) return;
    this.ready.push(key);
    this.pump();
  }

  addAfter(key: string, ms: number): void {
    if (this.stopping) return;
    if (!(ms > 0)) return this.add(key);
    // Already due now: an immediate run is earlier than any delay.
    if (this.dirty.has(key)) return;
    const dueAt = this.clock.now() + ms;
    const pending = this.delayed.get(key);
    if (pending !== undefined && pending.dueAt <= dueAt) return;
    this.cancelDelay(key);
    const entry: Delayed = { dueAt, handle: undefined };
    entry.handle = this.clock.setTimeout(() => {
      if (this.delayed.get(key) !== entry) return;
      this.delayed.delete(key);
      this.add(key);
    }, ms);
    this.delayed.set(key, entry);
  }

  addRateLimited(key: string): void {
    this.addAfter(key, this.limiter.when(key));
  }

  /** Ends the key's backoff: its next failure waits the base delay again. */
  forget(key: string): void {
    this.limiter.forget(key);
  }

  /** Consecutive failures of `key` since it last succeeded or was forgotten. */
  failures(key: string): number {
    return this.limiter.failures(key);
  }

  /** Keys ready to run now (not counting delayed or running ones). */
  len(): number {
    return this.ready.length;
  }

  inFlight(): number {
    return this.processing.size;
  }

  /** Runs `worker` on queued keys, at most `concurrency` at a time, until shutDown(). */
  start(worker: Worker, concurrency: number): void {
    if (!Number.isInteger(concurrency) || concurrency < 1) {
      throw new RangeError(`concurrency must be a positive integer, got ${concurrency}`);
    }
    if (this.worker !== undefined) throw new WorkQueueError("work queue already started");
    if (this.stopping) throw new WorkQueueError("work queue is shut down");
    this.worker = worker;
    this.concurrency = concurrency;
    this.pump();
  }

  /**
   * Stops taking work and drops delayed keys; resolves once the runs in flight have
   * finished, so a SIGTERM handler can let the current reconcile complete.
   */
  shutDown(): Promise<void> {
    if (this.drained !== undefined) return this.drained;
    this.stopping = true;
    for (const entry of this.delayed.values()) this.clock.clearTimeout(entry.handle);
    this.delayed.clear();
    this.drained =
      this.processing.size === 0
        ? Promise.resolve()
        : new Promise<void>((resolve) => (this.resolveDrained = resolve));
    return this.drained;
  }

  private cancelDelay(key: string): void {
    const pending = this.delayed.get(key);
    if (pending === undefined) return;
    this.clock.clearTimeout(pending.handle);
    this.delayed.delete(key);
  }

  private pump(): void {
    const worker = this.worker;
    if (worker === undefined || this.stopping) return;
    while (this.processing.size < this.concurrency && this.ready.length > 0) {
      const key = this.ready.shift()!;
      this.dirty.delete(key);
      this.processing.add(key);
      void this.process(key, worker);
    }
  }

  private async process(key: string, worker: Worker): Promise<void> {
    try {
      const result = await worker(key);
      this.forget(key);
      if (result?.requeueAfterMs !== undefined) this.addAfter(key, result.requeueAfterMs);
    } catch (err) {
      this.failed(key, err);
    } finally {
      this.finish(key);
    }
  }

  private failed(key: string, err: unknown): void {
    const retryInMs = this.limiter.when(key);
    this.addAfter(key, retryInMs);
    try {
      this.onError(key, err, this.limiter.failures(key), retryInMs);
    } catch (hookErr) {
      // A broken hook must not stop the queue, nor hide the error it was given.
      console.error(`work queue: onError hook threw for ${key}:`, hookErr, "original error:", err);
    }
  }

  private finish(key: string): void {
    this.processing.delete(key);
    if (this.dirty.has(key)) this.ready.push(key);
    if (this.stopping && this.processing.size === 0) this.resolveDrained?.();
    this.pump();
  }
}

export class WorkQueueError extends Error {
  override name = "WorkQueueError";
}
