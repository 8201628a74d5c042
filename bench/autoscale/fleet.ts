/**
 * The fleet simulation: a trace of requests, a router, replicas that start, serve and drain,
 * and one autoscaling policy deciding the replica count at its own interval.
 *
 * - Router: each request goes to the ready replica with the fewest outstanding requests
 *   (waiting + running; ties to the oldest), and queues there. With no ready replica the request
 *   is rejected (nothing holds requests), which counts against the SLO.
 * - Cold start: a new replica is a new GPU node (provisioning) plus weight loading and engine
 *   start before it is Ready: the wake-up of the operator's scaling model
 *   (src/autoscale/model.ts), the same number its forecast horizon is. It costs GPU-hours
 *   (gpusPerReplica each) from the moment it is requested until it is removed.
 * - Scale-down removes replicas that are not ready yet first (newest first), then the most
 *   recently ready ones; a ready replica leaves the router at once and finishes what it holds
 *   within a grace period (default 120 s, then the rest fails).
 * - Every change of the replica count is one scaling action.
 */
import type { WakeUp } from "../../src/autoscale/model.ts";
import type { ReplicaPerf } from "../../src/autoscale/perf.ts";
import { Outcomes, SimReplica } from "./replica.ts";
import type { Trace } from "./traces.ts";

/**
 * A new replica's cold start: Pending for the node's provisioning, then loading until the whole
 * wake-up has passed (the scaling model's WakeUp, src/autoscale/model.ts).
 */
export type ColdStart = Pick<WakeUp, "nodeProvisioningSeconds" | "seconds">;

export interface Slo {
  /** Longest acceptable time in a replica's queue (vLLM's request_queue_time). */
  readonly queueSeconds: number;
  /** Longest acceptable time to first token, queue included. */
  readonly ttftSeconds: number;
}

export const DEFAULT_SLO: Slo = { queueSeconds: 1, ttftSeconds: 2 };

export interface FleetConfig {
  readonly perf: ReplicaPerf;
  readonly coldStart: ColdStart;
  readonly minReplicas: number;
  readonly maxReplicas: number;
  readonly initialReplicas: number;
  readonly drainGraceSeconds: number;
  readonly slo: Slo;
  /** Seconds after the trace's end the simulation keeps serving (not billed) to finish requests. */
  readonly tailSeconds: number;
}

/** What a policy can observe of one pod. */
export interface PodView {
  readonly name: string;
  /** pending: no node yet (Pending pod); loading: node up, weights loading (Running, not Ready). */
  readonly phase: "pending" | "loading" | "ready";
  readonly requestedAt: number;
  readonly readyAt: number;
}

/** One /metrics scrape of a ready pod, as readVllmSample would return it. */
export interface PodScrape {
  readonly time: number;
  readonly generationTokensTotal: number;
  readonly promptTokensTotal: number;
  readonly requestsFinishedTotal: number;
  readonly running: number;
  readonly waiting: number;
  readonly kvCacheUsage: number;
}

export interface FleetView {
  readonly now: number;
  /** The scale subresource's replicas. */
  readonly specReplicas: number;
  readonly minReplicas: number;
  readonly maxReplicas: number;
  /** Pods that exist (not draining), oldest first. */
  pods(): readonly PodView[];
  /** Scrapes a ready pod (undefined if it is not ready). */
  scrape(name: string): PodScrape | undefined;
  /** Requests in flight anywhere (queued or running, draining pods included). */
  inFlight(): number;
}

export interface SimPolicy {
  readonly name: string;
  /** Seconds between decisions; the first comes one interval after the start. */
  readonly intervalSeconds: number;
  /** Desired replicas (the fleet clamps nothing: min/max are the policy's job). */
  decide(view: FleetView): number;
}

export interface RunResult {
  readonly policy: string;
  readonly trace: string;
  readonly gpuHours: number;
  /** Share of requests with queue wait <= slo.queueSeconds and TTFT <= slo.ttftSeconds. */
  readonly sloAttainment: number;
  readonly scaleActions: number;
  readonly requests: number;
  readonly failed: number;
  readonly p50TtftSeconds: number;
  readonly p95TtftSeconds: number;
  readonly p99QueueSeconds: number;
  /** 95th percentile of time per output token after the first (ms): the decode-speed cost. */
  readonly p95TpotMs: number;
  readonly maxReplicas: number;
  readonly meanReplicas: number;
  /** (time, replicas) at every change of the replica count. */
  readonly timeline: readonly (readonly [number, number])[];
  /** Arrival times of the requests that missed the SLO (failed included), for plots. */
  readonly missedArrivals: readonly number[];
}

function quantile(values: Float64Array, q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = Float64Array.from(values).sort();
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

const podName = (r: SimReplica): string => `r${r.id}`;

/** The replicas of one run, the spec count, and the scaling actions taken. */
class Fleet {
  readonly replicas: SimReplica[] = [];
  /** Not gone yet. */
  live: SimReplica[] = [];
  spec: number;
  actions = 0;
  maxSeen: number;
  readonly timeline: [number, number][];
  private nextId = 0;
  private readonly byName = new Map<string, SimReplica>();

  constructor(
    private readonly trace: Trace,
    private readonly cfg: FleetConfig,
    private readonly out: Outcomes,
  ) {
    this.spec = cfg.initialReplicas;
    this.maxSeen = this.spec;
    this.timeline = [[0, this.spec]];
    for (let i = 0; i < this.spec; i++) this.add(0, true);
  }

  private add(now: number, ready: boolean): void {
    const readyAt = ready ? now : now + this.cfg.coldStart.seconds;
    const r = new SimReplica(
      this.nextId++,
      now,
      readyAt,
      this.cfg.perf,
      this.trace.requests,
      this.out,
    );
    this.replicas.push(r);
    this.live.push(r);
  }

  /** What a policy sees at `now`. */
  view(now: number): FleetView {
    this.byName.clear();
    for (const r of this.live) this.byName.set(podName(r), r);
    const cfg = this.cfg;
    const live = this.live;
    const byName = this.byName;
    return {
      now,
      specReplicas: this.spec,
      minReplicas: cfg.minReplicas,
      maxReplicas: cfg.maxReplicas,
      pods: () =>
        live
          .filter((r) => r.phase === "ready" || r.phase === "starting")
          .map((r) => ({
            name: podName(r),
            phase:
              r.phase === "ready"
                ? "ready"
                : now < r.requestedAt + cfg.coldStart.nodeProvisioningSeconds
                  ? "pending"
                  : "loading",
            requestedAt: r.requestedAt,
            readyAt: r.readyAt,
          })),
      scrape: (name) => {
        const r = byName.get(name);
        if (r === undefined || r.phase !== "ready") return undefined;
        return {
          time: now,
          generationTokensTotal: r.generationTokens,
          promptTokensTotal: r.promptTokens,
          requestsFinishedTotal: r.requestsFinished,
          running: r.running,
          waiting: r.queued,
          kvCacheUsage: r.kvUsage,
        };
      },
      inFlight: () => {
        let n = 0;
        for (const r of live) n += r.outstanding;
        return n;
      },
    };
  }

  /**
   * Applies a policy's count: new replicas cold-start; removals take starting replicas first
   * (newest first), then the most recently ready ones, which drain.
   */
  scaleTo(desired: number, now: number): void {
    desired = Math.max(0, Math.round(desired));
    if (desired === this.spec) return;
    this.actions++;
    if (desired > this.spec) {
      for (let i = this.spec; i < desired; i++) this.add(now, false);
    } else {
      let remove = this.spec - desired;
      const starting = this.live
        .filter((r) => r.phase === "starting")
        .sort((a, b) => b.requestedAt - a.requestedAt || b.id - a.id);
      const ready = this.live
        .filter((r) => r.phase === "ready")
        .sort((a, b) => b.readyAt - a.readyAt || b.id - a.id);
      for (const r of [...starting, ...ready]) {
        if (remove === 0) break;
        r.startDraining(now, now + this.cfg.drainGraceSeconds);
        remove--;
      }
    }
    this.spec = desired;
    this.maxSeen = Math.max(this.maxSeen, this.spec);
    this.timeline.push([now, this.spec]);
  }

  /** The next replica becoming ready or reaching its drain deadline. */
  nextLifecycleTime(): number {
    let t = Number.POSITIVE_INFINITY;
    for (const r of this.live) {
      if (r.phase === "starting") t = Math.min(t, r.readyAt);
      else if (r.phase === "draining") t = Math.min(t, r.drainDeadline);
    }
    return t;
  }

  lifecycleAt(t: number): void {
    for (const r of this.live) {
      if (r.phase === "starting" && r.readyAt === t) r.markReady();
      else if (r.phase === "draining" && r.drainDeadline === t) r.kill(t);
    }
  }

  /** Routes request `i` to the ready replica with the fewest outstanding; none: rejected. */
  route(i: number, t: number): void {
    let best: SimReplica | undefined;
    for (const r of this.live) {
      if (r.phase !== "ready") continue;
      if (best === undefined || r.outstanding < best.outstanding) best = r;
    }
    if (best === undefined) this.out.failed[i] = 1;
    else best.enqueue(i, t);
  }

  advanceTo(t: number): void {
    for (const r of this.live) r.advanceTo(t);
  }

  dropGone(): void {
    if (this.live.some((r) => r.phase === "gone")) {
      this.live = this.live.filter((r) => r.phase !== "gone");
    }
  }
}

/** Runs the events in time order: lifecycle first, then arrivals, then decisions. */
function runEvents(trace: Trace, policy: SimPolicy, cfg: FleetConfig, fleet: Fleet): void {
  const reqs = trace.requests;
  const end = trace.durationSeconds;
  const hardEnd = end + cfg.tailSeconds;
  let ai = 0;
  let nextDecision = policy.intervalSeconds;
  for (;;) {
    const tA = ai < reqs.length ? reqs[ai]!.t : Number.POSITIVE_INFINITY;
    const tD = nextDecision <= end ? nextDecision : Number.POSITIVE_INFINITY;
    const tL = fleet.nextLifecycleTime();
    const t = Math.min(tA, tD, tL);
    if (t === Number.POSITIVE_INFINITY || t > hardEnd) break;
    fleet.advanceTo(t);
    if (tL === t) {
      fleet.lifecycleAt(t);
    } else if (tA === t) {
      fleet.route(ai, t);
      ai++;
    } else {
      fleet.scaleTo(policy.decide(fleet.view(t)), t);
      nextDecision += policy.intervalSeconds;
    }
    fleet.dropGone();
  }
  // Finish what is in flight (not billed past the trace's end).
  fleet.advanceTo(hardEnd);
}

/** Cost: every replica from request to removal, within [0, end]. */
function bill(
  replicas: readonly SimReplica[],
  end: number,
  gpusPerReplica: number,
): { gpuSeconds: number; replicaSeconds: number } {
  let gpuSeconds = 0;
  let replicaSeconds = 0;
  for (const r of replicas) {
    const stop = Number.isNaN(r.removedAt) ? end : Math.min(r.removedAt, end);
    const span = Math.max(0, stop - Math.max(0, r.requestedAt));
    replicaSeconds += span;
    gpuSeconds += span * gpusPerReplica;
  }
  return { gpuSeconds, replicaSeconds };
}

/** Per-request outcomes against the SLO, and the latency quantiles. */
function serviceOf(trace: Trace, out: Outcomes, slo: Slo) {
  const reqs = trace.requests;
  const missedArrivals: number[] = [];
  let met = 0;
  let failed = 0;
  const ttfts: number[] = [];
  const queues: number[] = [];
  const tpots: number[] = [];
  for (let i = 0; i < reqs.length; i++) {
    const arrival = reqs[i]!.t;
    const gen = reqs[i]!.gen;
    if (gen > 1 && !Number.isNaN(out.finished[i]!) && out.failed[i] !== 1) {
      tpots.push((out.finished[i]! - out.firstToken[i]!) / (gen - 1));
    }
    if (out.failed[i] === 1 || Number.isNaN(out.firstToken[i]!)) {
      failed++;
      missedArrivals.push(arrival);
      continue;
    }
    const q = out.admitted[i]! - arrival;
    const ttft = out.firstToken[i]! - arrival;
    ttfts.push(ttft);
    queues.push(q);
    if (q <= slo.queueSeconds && ttft <= slo.ttftSeconds) met++;
    else missedArrivals.push(arrival);
  }
  const ttftArr = Float64Array.from(ttfts);
  return {
    sloAttainment: reqs.length === 0 ? 1 : met / reqs.length,
    failed,
    p50TtftSeconds: quantile(ttftArr, 0.5),
    p95TtftSeconds: quantile(ttftArr, 0.95),
    p99QueueSeconds: quantile(Float64Array.from(queues), 0.99),
    p95TpotMs: quantile(Float64Array.from(tpots), 0.95) * 1000,
    missedArrivals,
  };
}

export function simulate(trace: Trace, policy: SimPolicy, cfg: FleetConfig): RunResult {
  const out = new Outcomes(trace.requests.length);
  const fleet = new Fleet(trace, cfg, out);
  runEvents(trace, policy, cfg, fleet);
  const end = trace.durationSeconds;
  const cost = bill(fleet.replicas, end, cfg.perf.gpusPerReplica);
  return {
    policy: policy.name,
    trace: trace.name,
    gpuHours: cost.gpuSeconds / 3600,
    scaleActions: fleet.actions,
    requests: trace.requests.length,
    ...serviceOf(trace, out, cfg.slo),
    maxReplicas: fleet.maxSeen,
    meanReplicas: end > 0 ? cost.replicaSeconds / end : 0,
    timeline: fleet.timeline,
  };
}
