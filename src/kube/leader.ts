/**
 * Leader election on a coordination.k8s.io/v1 Lease, with client-go's protocol so that
 * it interoperates with other implementations:
 *
 * - a candidate takes the lease when it is absent, released (empty holder or renewTime),
 *   expired (renewTime + leaseDurationSeconds < now), or already ours;
 * - every write is a PUT carrying the resourceVersion read, so of two candidates racing
 *   for the same lease exactly one wins and the other gets 409 Conflict;
 * - the leader renews every retryPeriod and gives up leadership when it has not renewed
 *   for renewDeadline. renewDeadline < leaseDuration leaves the difference as margin for
 *   clock skew: it stops acting before anyone else may consider the lease expired.
 *
 * Expiry compares the holder's renewTime with the local clock (not client-go's "time since
 * I saw the lease change"), so node clocks must agree to within leaseDuration − renewDeadline.
 */
import { isConflict, isNotFound, RESOURCES, type KubeClient, type KubeObject } from "./client.ts";
import type { Logger } from "./informer.ts";

/**
 * coordination.k8s.io/v1 LeaseSpec as JSON carries it (client-node's V1LeaseSpec in wire form),
 * with the nulls a release writes. Fields this elector does not set are kept by the spreads.
 */
export interface LeaseSpec {
  holderIdentity?: string | null;
  leaseDurationSeconds?: number | null;
  acquireTime?: string | null;
  renewTime?: string | null;
  leaseTransitions?: number | null;
  preferredHolder?: string | null;
  strategy?: string | null;
}

export interface Lease extends KubeObject {
  spec?: LeaseSpec;
}

export interface LeaderElectorOptions {
  client: KubeClient;
  namespace: string;
  name: string;
  /** Unique per candidate process, e.g. the pod name. */
  identity: string;
  leaseDurationSeconds?: number;
  renewDeadlineSeconds?: number;
  retryPeriodSeconds?: number;
  /** Defaults to warnings and errors on stderr. */
  logger?: Logger;
  /** Milliseconds since the epoch; injectable for tests. */
  now?: () => number;
}

export interface LeaderCallbacks {
  /** Called once leadership is acquired; `signal` aborts when it ends. Not awaited. */
  onStartedLeading(signal: AbortSignal): void | Promise<void>;
  /** Called once when leadership that was acquired ends, lost or released. */
  onStoppedLeading(): void;
}

export class LeaderElectionError extends Error {
  override name = "LeaderElectionError";
}

/** Kubernetes MicroTime: RFC 3339 with exactly six fractional digits, in UTC. */
export function formatMicroTime(ms: number): string {
  // Date only carries milliseconds, so the last three digits are always zero.
  return new Date(ms).toISOString().replace(/Z$/, "000Z");
}

/** Milliseconds since the epoch, or NaN; accepts any number of fractional digits. */
export function parseMicroTime(text: string): number {
  const m = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})$/i.exec(text);
  if (m === null) return NaN;
  const millis = (m[2] ?? "").padEnd(3, "0").slice(0, 3);
  return Date.parse(`${m[1]}.${millis}${m[3]}`);
}

/** What one read-and-write of the lease achieved. */
type Outcome = "acquired" | "held" | "conflict" | "failed";

const stderrLogger: Logger = {
  info: () => undefined,
  debug: () => undefined,
  warn: (obj, msg) => console.error(`leader election: ${msg ?? ""}`, obj),
  error: (obj, msg) => console.error(`leader election: ${msg ?? ""}`, obj),
};

/** Resolves true after `ms`, or false as soon as `signal` aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(
      () => {
        signal.removeEventListener("abort", onAbort);
        resolve(true);
      },
      Math.max(0, ms),
    );
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

/** Requests have no timeout of their own; a hung one must not outlive the renew deadline. */
function withDeadline<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new LeaderElectionError(`${what} did not finish within ${Math.round(ms)} ms`)),
      Math.max(0, ms),
    );
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

export class LeaderElector {
  private readonly client: KubeClient;
  private readonly namespace: string;
  private readonly name: string;
  private readonly identity: string;
  private readonly leaseDurationSeconds: number;
  private readonly renewDeadlineMs: number;
  private readonly retryPeriodMs: number;
  private readonly logger: Logger;
  private readonly now: () => number;
  private leading = false;
  /** The renewTime of our last successful write; leadership lasts renewDeadline past it. */
  private renewedAt = 0;
  /** The lease as our last write left it, so renewals can skip the GET. */
  private observed: Lease | undefined;
  private stopController: AbortController | undefined;
  private running: Promise<void> | undefined;

  constructor(opts: LeaderElectorOptions) {
    this.client = opts.client;
    this.namespace = opts.namespace;
    this.name = opts.name;
    this.identity = opts.identity;
    this.leaseDurationSeconds = opts.leaseDurationSeconds ?? 15;
    this.renewDeadlineMs = (opts.renewDeadlineSeconds ?? 10) * 1000;
    this.retryPeriodMs = (opts.retryPeriodSeconds ?? 2) * 1000;
    this.logger = opts.logger ?? stderrLogger;
    this.now = opts.now ?? Date.now;
    this.validate();
  }

  private validate(): void {
    const leaseMs = this.leaseDurationSeconds * 1000;
    if (this.identity === "") throw new LeaderElectionError("identity must not be empty");
    if (
      !(
        this.retryPeriodMs > 0 &&
        this.renewDeadlineMs > this.retryPeriodMs &&
        leaseMs > this.renewDeadlineMs
      )
    ) {
      throw new LeaderElectionError(
        "need leaseDurationSeconds > renewDeadlineSeconds > retryPeriodSeconds > 0, got " +
          `${this.leaseDurationSeconds}s > ${this.renewDeadlineMs / 1000}s > ${this.retryPeriodMs / 1000}s`,
      );
    }
  }

  /**
   * Campaigns until the lease is acquired, then leads until leadership is lost or
   * release() is called. Resolves when that leadership ends (or when release() stops a
   * campaign that never won). Callers usually exit on loss; calling run() again re-campaigns.
   */
  run(callbacks: LeaderCallbacks): Promise<void> {
    if (this.running !== undefined) throw new LeaderElectionError("run() is already in progress");
    const stop = new AbortController();
    this.stopController = stop;
    this.running = this.campaign(callbacks, stop.signal).finally(() => {
      this.running = undefined;
      this.stopController = undefined;
    });
    return this.running;
  }

  /**
   * Stops campaigning or renewing and, if leading, hands the lease back (empty holder,
   * 1 s duration) so a successor takes over at once instead of waiting for expiry. Drain
   * the work done under leadership first. Resolves after onStoppedLeading has run.
   */
  async release(): Promise<void> {
    const running = this.running;
    if (running === undefined) return;
    this.stopController?.abort();
    await running;
  }

  private async campaign(callbacks: LeaderCallbacks, stop: AbortSignal): Promise<void> {
    if (!(await this.acquire(stop))) return;
    this.leading = true;
    this.logger.info(this.logContext(), "acquired leadership");
    const leadership = new AbortController();
    this.startLeading(callbacks, leadership.signal);
    const ending = await this.renewLoop(stop);
    this.leading = false;
    leadership.abort(
      new LeaderElectionError(`leadership ${ending === "lost" ? "lost" : "released"}`),
    );
    if (ending === "stopped") await this.releaseLease();
    else this.logger.warn(this.logContext(), "lost leadership");
    try {
      callbacks.onStoppedLeading();
    } catch (err) {
      this.logger.error({ ...this.logContext(), err }, "onStoppedLeading threw");
    }
  }

  private startLeading(callbacks: LeaderCallbacks, signal: AbortSignal): void {
    const report = (err: unknown): void =>
      this.logger.error({ ...this.logContext(), err }, "onStartedLeading failed");
    try {
      void Promise.resolve(callbacks.onStartedLeading(signal)).catch(report);
    } catch (err) {
      report(err);
    }
  }

  private async acquire(stop: AbortSignal): Promise<boolean> {
    while (!stop.aborted) {
      const outcome = await this.attempt(this.renewDeadlineMs);
      if (outcome === "acquired") {
        // release() came while the winning write was in flight: hand the lease straight back.
        if (!stop.aborted) return true;
        await this.releaseLease();
        return false;
      }
      // Up to 20% longer (as client-go) so candidates that start together spread out.
      await sleep(this.retryPeriodMs * (1 + 0.2 * Math.random()), stop);
    }
    return false;
  }

  private async renewLoop(stop: AbortSignal): Promise<"lost" | "stopped"> {
    for (;;) {
      const remaining = this.renewedAt + this.renewDeadlineMs - this.now();
      if (remaining <= 0) return "lost";
      if (!(await sleep(Math.min(this.retryPeriodMs, remaining), stop))) return "stopped";
      const outcome = await this.attempt(this.renewedAt + this.renewDeadlineMs - this.now());
      if (outcome === "held") return "lost";
      if (stop.aborted) return "stopped";
      // "conflict" and "failed" retry until the deadline checked at the top of the loop.
    }
  }

  /** One bounded try; errors are logged and reported as "failed" so the caller retries. */
  private async attempt(deadlineMs: number): Promise<Outcome> {
    if (deadlineMs <= 0) return "failed";
    try {
      return await withDeadline(this.tryAcquireOrRenew(), deadlineMs, "lease update");
    } catch (err) {
      this.logger.warn(
        { ...this.logContext(), err },
        this.leading ? "failed to renew lease" : "failed to acquire lease",
      );
      return "failed";
    }
  }

  private async tryAcquireOrRenew(): Promise<Outcome> {
    const now = this.now();
    if (this.leading && this.observed !== undefined) {
      try {
        return this.wrote(
          await this.client.update<Lease>(RESOURCES.lease, this.renewed(this.observed, now)),
          now,
        );
      } catch (err) {
        // Someone else changed or deleted the lease since our last renewal: decide from a
        // fresh read.
        if (!isConflict(err) && !isNotFound(err)) throw err;
      }
    }
    const current = await this.client.getOrUndefined<Lease>(
      RESOURCES.lease,
      this.name,
      this.namespace,
    );
    if (current === undefined) return this.create(now);
    const holder = current.spec?.holderIdentity ?? "";
    // A leader that finds another holder has lost, even if that lease has since expired:
    // someone else may have acted as leader meanwhile.
    if (holder !== this.identity && (this.leading || !this.isFree(current, now))) {
      this.observed = undefined;
      return "held";
    }
    const next =
      holder === this.identity ? this.renewed(current, now) : this.takenOver(current, now);
    try {
      return this.wrote(await this.client.update<Lease>(RESOURCES.lease, next), now);
    } catch (err) {
      if (isConflict(err)) return "conflict";
      throw err;
    }
  }

  private async create(now: number): Promise<Outcome> {
    const lease: Lease = {
      apiVersion: "coordination.k8s.io/v1",
      kind: "Lease",
      metadata: { name: this.name, namespace: this.namespace },
      spec: this.holding({}, now, now, 0),
    };
    try {
      return this.wrote(
        await this.client.create<Lease>(RESOURCES.lease, lease, this.namespace),
        now,
      );
    } catch (err) {
      if (isConflict(err)) return "conflict"; // AlreadyExists: another candidate created it first
      throw err;
    }
  }

  /** Whether a lease held by someone else may be taken: released or expired. */
  private isFree(lease: Lease, now: number): boolean {
    const spec = lease.spec ?? {};
    if ((spec.holderIdentity ?? "") === "" || (spec.renewTime ?? "") === "") return true;
    const renewedAt = parseMicroTime(spec.renewTime!);
    if (Number.isNaN(renewedAt)) {
      this.logger.warn(
        { ...this.logContext(), renewTime: spec.renewTime },
        "unparseable renewTime; treating lease as expired",
      );
      return true;
    }
    // The holder's own duration is what it promised to renew within.
    const durationSeconds = spec.leaseDurationSeconds ?? this.leaseDurationSeconds;
    return renewedAt + durationSeconds * 1000 < now;
  }

  private holding(
    spec: LeaseSpec,
    acquiredAt: number | string,
    now: number,
    transitions: number,
  ): LeaseSpec {
    return {
      ...spec,
      holderIdentity: this.identity,
      leaseDurationSeconds: this.leaseDurationSeconds,
      acquireTime: typeof acquiredAt === "string" ? acquiredAt : formatMicroTime(acquiredAt),
      renewTime: formatMicroTime(now),
      leaseTransitions: transitions,
    };
  }

  private renewed(lease: Lease, now: number): Lease {
    const spec = lease.spec ?? {};
    const acquiredAt = spec.acquireTime ?? now;
    return { ...lease, spec: this.holding(spec, acquiredAt, now, spec.leaseTransitions ?? 0) };
  }

  private takenOver(lease: Lease, now: number): Lease {
    const spec = lease.spec ?? {};
    return { ...lease, spec: this.holding(spec, now, now, (spec.leaseTransitions ?? 0) + 1) };
  }

  private wrote(lease: Lease, now: number): Outcome {
    this.observed = lease;
    this.renewedAt = now;
    return "acquired";
  }

  /** Best effort: if this fails the lease simply expires, leaseDuration later. */
  private async releaseLease(): Promise<void> {
    const lease = this.observed;
    if (lease === undefined) return;
    this.observed = undefined;
    const now = formatMicroTime(this.now());
    const released: Lease = {
      ...lease,
      spec: {
        ...lease.spec,
        holderIdentity: "",
        leaseDurationSeconds: 1,
        acquireTime: now,
        renewTime: now,
      },
    };
    try {
      await withDeadline(
        this.client.update<Lease>(RESOURCES.lease, released),
        this.renewDeadlineMs,
        "lease release",
      );
      this.logger.info(this.logContext(), "released leadership");
    } catch (err) {
      this.logger.warn(
        { ...this.logContext(), err },
        "could not release lease; it will expire instead",
      );
    }
  }

  private logContext(): Record<string, unknown> {
    return { lease: `${this.namespace}/${this.name}`, identity: this.identity };
  }
}
