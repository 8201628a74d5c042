/**
 * The fleet simulation: a trace of requests, a router, replicas that start, serve and drain,
 * and one autoscaling policy deciding the replica count at its own interval.
 *
 * - Router: each request goes to the ready replica with the fewest outstanding requests
 *   (waiting + running; ties to the oldest), and queues there. With no ready replica the request
 *   is rejected (nothing holds requests), which counts against the SLO.
 * - Cold start: a new replica is a new GPU node (provisioning, default 240 s) plus weight
 *   loading and engine start (default 360 s) before it is Ready. It costs GPU-hours
 *   (gpusPerReplica each) from the moment it is requested until it is removed.
 * - Scale-down removes replicas that are not ready yet first (newest first), then the most
 *   recently ready ones; a ready replica leaves the router at once and finishes what it holds
 *   within a grace period (default 120 s, then the rest fails).
 * - Every change of the replica count is one scaling action.
 */
import type { ReplicaPerf } from "../perf.ts";
import { Outcomes, SimReplica } from "./replica.ts";
import type { Trace } from "./traces.ts";

export interface ColdStart {
  readonly nodeProvisioningSeconds: number;
  /** Weight loading plus engine start. */
  readonly weightLoadSeconds: number;
}

export const DEFAULT_COLD_START: ColdStart = {
  nodeProvisioningSeconds: 240,
  weightLoadSeconds: 360,
};

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

export function simulate(trace: Trace, policy: SimPolicy, cfg: FleetConfig): RunResult {
  const reqs = trace.requests;
  const out = new Outcomes(reqs.length);
  const coldStart = cfg.coldStart.nodeProvisioningSeconds + cfg.coldStart.weightLoadSeconds;
  const end = trace.durationSeconds;
  const replicas: SimReplica[] = [];
  let live: SimReplica[] = []; // not gone
  let nextId = 0;
  let spec = cfg.initialReplicas;
  let actions = 0;
  let maxSeen = spec;
  const timeline: [number, number][] = [[0, spec]];
  const add = (now: number, ready: boolean): void => {
    const readyAt = ready ? now : now + coldStart;
    const r = new SimReplica(nextId++, now, readyAt, cfg.perf, reqs, out);
    replicas.push(r);
    live.push(r);
  };
  for (let i = 0; i < spec; i++) add(0, true);

  const podName = (r: SimReplica): string => `r${r.id}`;
  const byName = new Map<string, SimReplica>();
  const view: { now: number } & FleetView = {
    now: 0,
    get specReplicas() {
      return spec;
    },
    minReplicas: cfg.minReplicas,
    maxReplicas: cfg.maxReplicas,
    pods() {
      const now = this.now;
      return live
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
        }));
    },
    scrape(name) {
      const r = byName.get(name);
      if (r === undefined || r.phase !== "ready") return undefined;
      return {
        time: this.now,
        generationTokensTotal: r.generationTokens,
        promptTokensTotal: r.promptTokens,
        requestsFinishedTotal: r.requestsFinished,
        running: r.running,
        waiting: r.queued,
        kvCacheUsage: r.kvUsage,
      };
    },
    inFlight() {
      let n = 0;
      for (const r of live) n += r.outstanding;
      return n;
    },
  };

  const scaleTo = (desired: number, now: number): void => {
    desired = Math.max(0, Math.round(desired));
    if (desired === spec) return;
    actions++;
    if (desired > spec) {
      for (let i = spec; i < desired; i++) add(now, false);
    } else {
      let remove = spec - desired;
      const starting = live
        .filter((r) => r.phase === "starting")
        .sort((a, b) => b.requestedAt - a.requestedAt || b.id - a.id);
      const ready = live
        .filter((r) => r.phase === "ready")
        .sort((a, b) => b.readyAt - a.readyAt || b.id - a.id);
      for (const r of [...starting, ...ready]) {
        if (remove === 0) break;
        r.startDraining(now, now + cfg.drainGraceSeconds);
        remove--;
      }
    }
    spec = desired;
    maxSeen = Math.max(maxSeen, spec);
    timeline.push([now, spec]);
  };

  let ai = 0;
  let nextDecision = policy.intervalSeconds;
  const hardEnd = end + cfg.tailSeconds;
  for (;;) {
    const tA = ai < reqs.length ? reqs[ai]!.t : Number.POSITIVE_INFINITY;
    const tD = nextDecision <= end ? nextDecision : Number.POSITIVE_INFINITY;
    let tL = Number.POSITIVE_INFINITY;
    for (const r of live) {
      if (r.phase === "starting") tL = Math.min(tL, r.readyAt);
      else if (r.phase === "draining") tL = Math.min(tL, r.drainDeadline);
    }
    const t = Math.min(tA, tD, tL);
    if (t === Number.POSITIVE_INFINITY || t > hardEnd) break;
    for (const r of live) r.advanceTo(t);
    view.now = t;
    if (tL === t) {
      for (const r of live) {
        if (r.phase === "starting" && r.readyAt === t) r.markReady();
        else if (r.phase === "draining" && r.drainDeadline === t) r.kill(t);
      }
    } else if (tA === t) {
      let best: SimReplica | undefined;
      for (const r of live) {
        if (r.phase !== "ready") continue;
        if (best === undefined || r.outstanding < best.outstanding) best = r;
      }
      if (best === undefined) out.failed[ai] = 1;
      else best.enqueue(ai, t);
      ai++;
    } else {
      byName.clear();
      for (const r of live) byName.set(podName(r), r);
      scaleTo(policy.decide(view), t);
      nextDecision += policy.intervalSeconds;
    }
    if (live.some((r) => r.phase === "gone")) live = live.filter((r) => r.phase !== "gone");
  }
  // Finish what is in flight (not billed past the trace's end).
  for (const r of live) r.advanceTo(hardEnd);

  // Cost: every replica from request to removal, within [0, end].
  let gpuSeconds = 0;
  let replicaSeconds = 0;
  for (const r of replicas) {
    const stop = Number.isNaN(r.removedAt) ? end : Math.min(r.removedAt, end);
    const span = Math.max(0, stop - Math.max(0, r.requestedAt));
    replicaSeconds += span;
    gpuSeconds += span * cfg.perf.gpusPerReplica;
  }

  let met = 0;
  let failed = 0;
  const ttfts: number[] = [];
  const queues: number[] = [];
  const tpots: number[] = [];
  const missedArrivals: number[] = [];
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
    if (q <= cfg.slo.queueSeconds && ttft <= cfg.slo.ttftSeconds) met++;
    else missedArrivals.push(arrival);
  }
  const ttftArr = Float64Array.from(ttfts);
  return {
    policy: policy.name,
    trace: trace.name,
    gpuHours: gpuSeconds / 3600,
    sloAttainment: reqs.length === 0 ? 1 : met / reqs.length,
    scaleActions: actions,
    requests: reqs.length,
    failed,
    p50TtftSeconds: quantile(ttftArr, 0.5),
    p95TtftSeconds: quantile(ttftArr, 0.95),
    p99QueueSeconds: quantile(Float64Array.from(queues), 0.99),
    p95TpotMs: quantile(Float64Array.from(tpots), 0.95) * 1000,
    maxReplicas: maxSeen,
    meanReplicas: end > 0 ? replicaSeconds / end : 0,
    timeline,
    missedArrivals,
  };
}
