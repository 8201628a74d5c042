/**
 * Per-pod rates from successive scrapes of monotonic counters.
 *
 * - A counter that went down was reset (the pod's engine restarted): the new value is the
 *   increase since the reset, as Prometheus' rate() assumes.
 * - A missed scrape does not break the rate: the next answer is compared with the last one
 *   that arrived, over the time that really elapsed between them.
 * - A pod that did not answer (or answered only once, or too long ago) is reported as
 *   `unknown`, never as a pod with zero load: the policy must not scale down on missing data.
 */

/** The increase of a counter between two readings, across a reset. */
export function counterIncrease(previous: number, current: number): number {
  return current >= previous ? current - previous : current;
}

export interface CounterScrape<K extends string> {
  /** Seconds (any epoch, the same for every call). */
  readonly time: number;
  readonly counters: Readonly<Record<K, number>>;
  /**
   * When the counters started from 0, if the target says so (vLLM's `_created` series).
   * Gives the first scrape of a new pod a rate: counters / (time - countersStart).
   */
  readonly countersStart?: number;
}

export type PodRate<K extends string> =
  | {
      readonly status: "ok";
      /** Per-second increase of each counter since the previous answered scrape. */
      readonly rates: Readonly<Record<K, number>>;
      /** Seconds between the two scrapes the rate comes from. */
      readonly elapsedSeconds: number;
      /** Counters found reset between the two scrapes. */
      readonly resets: readonly K[];
      /** Scrapes missed in between. */
      readonly missedScrapes: number;
      /** The rate is from the counters' start (first scrape of a pod), not from two scrapes. */
      readonly sinceStart: boolean;
    }
  | { readonly status: "unknown"; readonly reason: string };

interface PodState<K extends string> {
  last?: CounterScrape<K>;
  previous?: CounterScrape<K>;
  missedSinceLast: number;
  missedBeforeLast: number;
  lastError?: { readonly time: number; readonly reason: string };
}

export interface RateTrackerOptions {
  /**
   * A rate is reported only when its newest scrape is at most this old when asked, and no
   * failed scrape came after it (default 60 s).
   */
  readonly maxAgeSeconds: number;
  /**
   * The first scrape of a pod gives a rate from the counters' start only if they started at
   * most this long before it (default 120 s); older pods wait for a second scrape.
   */
  readonly maxSinceStartSeconds: number;
}

/** Keeps the last two answered scrapes of every pod; deterministic, no clock of its own. */
export class RateTracker<K extends string> {
  private readonly pods = new Map<string, PodState<K>>();
  private readonly options: RateTrackerOptions;

  constructor(options: Partial<RateTrackerOptions> = {}) {
    this.options = { maxAgeSeconds: 60, maxSinceStartSeconds: 120, ...options };
  }

  private state(pod: string): PodState<K> {
    let s = this.pods.get(pod);
    if (s === undefined) {
      s = { missedSinceLast: 0, missedBeforeLast: 0 };
      this.pods.set(pod, s);
    }
    return s;
  }

  /** Records an answered scrape. Scrapes must come in time order per pod. */
  observe(pod: string, scrape: CounterScrape<K>): void {
    const s = this.state(pod);
    if (s.last !== undefined && scrape.time <= s.last.time) {
      throw new RangeError(
        `scrape of ${pod} at ${scrape.time} is not after the previous one at ${s.last.time}`,
      );
    }
    s.previous = s.last;
    s.last = scrape;
    s.missedBeforeLast = s.missedSinceLast;
    s.missedSinceLast = 0;
    delete s.lastError;
  }

  /** Records that a pod did not answer (timeout, refused, unparsable page). */
  miss(pod: string, time: number, reason: string): void {
    const s = this.state(pod);
    s.missedSinceLast++;
    s.lastError = { time, reason };
  }

  /** The rate of a pod as of `now`. */
  rate(pod: string, now: number): PodRate<K> {
    const s = this.pods.get(pod);
    if (s === undefined || s.last === undefined) {
      return {
        status: "unknown",
        reason: s?.lastError ? `no answer yet (${s.lastError.reason})` : "never scraped",
      };
    }
    if (s.lastError !== undefined) {
      return { status: "unknown", reason: `last scrape failed: ${s.lastError.reason}` };
    }
    const age = now - s.last.time;
    if (age > this.options.maxAgeSeconds) {
      return { status: "unknown", reason: `newest scrape is ${age.toFixed(0)} s old` };
    }
    const start = s.last.countersStart;
    const fromStart =
      s.previous === undefined ||
      // The counters restarted after the previous scrape (a new process): count from the start.
      (start !== undefined && start > s.previous.time && start < s.last.time);
    if (
      fromStart &&
      (start === undefined ||
        start >= s.last.time ||
        s.last.time - start > this.options.maxSinceStartSeconds)
    ) {
      // A lifetime average of a long-running pod says little about its load now.
      return { status: "unknown", reason: "one scrape so far, no rate yet" };
    }
    const base: CounterScrape<K> = fromStart
      ? { time: start!, counters: {} as Record<K, number> }
      : s.previous!;
    const elapsed = s.last.time - base.time;
    const rates = {} as Record<K, number>;
    const resets: K[] = [];
    for (const key of Object.keys(s.last.counters) as K[]) {
      const cur = s.last.counters[key];
      const prev = fromStart ? 0 : base.counters[key];
      if (prev === undefined) continue;
      const before = s.previous?.counters[key];
      if (before !== undefined && cur < before) resets.push(key);
      rates[key] = counterIncrease(prev, cur) / elapsed;
    }
    return {
      status: "ok",
      rates,
      elapsedSeconds: elapsed,
      resets,
      missedScrapes: s.missedBeforeLast,
      sinceStart: fromStart,
    };
  }

  /** Forgets pods that are gone, so a new pod with a reused name starts fresh. */
  retain(pods: Iterable<string>): void {
    const keep = new Set(pods);
    for (const name of [...this.pods.keys()]) if (!keep.has(name)) this.pods.delete(name);
  }

  /** Pod names currently tracked. */
  tracked(): string[] {
    return [...this.pods.keys()];
  }
}
