/**
 * The policies the benchmark compares, each as its own documentation and source describe it,
 * all with the same per-replica target (generation tokens/s from the scaling model).
 */
import { loadTokensPerSecond, type TargetModel } from "../../src/autoscale/model.ts";
import {
  ScalingPipeline,
  type PodObservation,
  type ScalingContext,
} from "../../src/autoscale/pipeline.ts";
import type { AutoscalingSpec, PolicyOptions } from "../../src/autoscale/policy.ts";
import type { VllmSample } from "../../src/autoscale/prometheus.ts";
import type { FleetView, PodScrape, PodView, SimPolicy } from "./fleet.ts";
import type { Trace } from "./traces.ts";

// ---------------------------------------------------------------------------------------------
// 1. Ours: the operator's own pipeline (src/autoscale/pipeline.ts: rates, then decide), fed
//    every 15 s with what the simulated pods' /metrics would say, as the operator is.

/** A simulated pod's scrape as readVllmSample returns it from a real /metrics page. */
function vllmSampleOf(pod: PodView, s: PodScrape): VllmSample {
  return {
    generationTokensTotal: s.generationTokensTotal,
    promptTokensTotal: s.promptTokensTotal,
    running: s.running,
    waiting: s.waiting,
    kvCacheUsage: s.kvCacheUsage,
    requestsFinishedTotal: s.requestsFinishedTotal,
    // vLLM's _created series: the counters started when the engine became ready.
    countersCreatedSeconds: pod.readyAt,
    engines: 1,
  };
}

/** The fleet's pods as the operator observes its pods: Ready ones scraped, others starting. */
function observeFleet(view: FleetView): PodObservation[] {
  return view.pods().map((pod): PodObservation => {
    const ageSeconds = view.now - pod.requestedAt;
    if (pod.phase !== "ready") return { name: pod.name, ready: false, ageSeconds };
    const s = view.scrape(pod.name);
    return {
      name: pod.name,
      ready: true,
      ageSeconds,
      scrape:
        s === undefined
          ? { ok: false, error: "no answer" }
          : { ok: true, sample: vllmSampleOf(pod, s) },
    };
  });
}

export class OursPolicy implements SimPolicy {
  readonly name = "ours";
  /** The operator's default --autoscale-interval-seconds. */
  readonly intervalSeconds = 15;
  private readonly pipeline = new ScalingPipeline();

  constructor(
    private readonly autoscaling: AutoscalingSpec,
    private readonly model: ScalingContext["model"],
    private readonly options: Partial<PolicyOptions> = {},
  ) {}

  decide(view: FleetView): number {
    const ctx: ScalingContext = {
      autoscaling: this.autoscaling,
      model: this.model,
      currentReplicas: view.specReplicas,
      options: this.options,
    };
    const out = this.pipeline.evaluate({ now: view.now, pods: observeFleet(view) }, ctx);
    // The simulated scale write always succeeds.
    this.pipeline.record(out, ctx, true);
    return out.desiredReplicas;
  }
}

// ---------------------------------------------------------------------------------------------
// 2. The Kubernetes HPA (pkg/controller/podautoscaler) on a Pods metric: generation tokens/s
//    per pod (rate over 1 min of vllm:generation_tokens_total, Prometheus scraping every 15 s),
//    AverageValue target, with the vLLM production-stack's behaviour.

export interface HpaBehavior {
  readonly syncSeconds: number;
  readonly tolerance: number;
  readonly rateWindowSeconds: number;
  readonly scaleUp: {
    readonly windowSeconds: number;
    readonly pods: number;
    readonly periodSeconds: number;
  };
  readonly scaleDown: {
    readonly windowSeconds: number;
    readonly pods: number;
    readonly periodSeconds: number;
  };
}

/** production-stack: up without a window at 1 pod / 60 s; down after 300 s at 1 pod / 60 s. */
export const PRODUCTION_STACK_HPA: HpaBehavior = {
  syncSeconds: 15,
  tolerance: 0.1,
  rateWindowSeconds: 60,
  scaleUp: { windowSeconds: 0, pods: 1, periodSeconds: 60 },
  scaleDown: { windowSeconds: 300, pods: 1, periodSeconds: 60 },
};

export class HpaPolicy implements SimPolicy {
  readonly name = "hpa";
  readonly intervalSeconds: number;
  private readonly samples = new Map<string, { time: number; value: number }[]>();
  private recommendations: { time: number; replicas: number }[] | undefined;
  private scaleUpEvents: { time: number; change: number }[] = [];
  private scaleDownEvents: { time: number; change: number }[] = [];

  constructor(
    private readonly targetPerPod: number,
    private readonly b: HpaBehavior = PRODUCTION_STACK_HPA,
  ) {
    this.intervalSeconds = b.syncSeconds;
  }

  /** Prometheus: rate() over the window from the stored scrapes (needs two samples). */
  private metrics(view: FleetView): Map<string, number> {
    const now = view.now;
    const m = new Map<string, number>();
    for (const pod of view.pods()) {
      const s = view.scrape(pod.name);
      if (s !== undefined) {
        const list = this.samples.get(pod.name) ?? [];
        list.push({ time: now, value: s.generationTokensTotal });
        this.samples.set(pod.name, list);
      }
      const list = (this.samples.get(pod.name) ?? []).filter(
        (x) => x.time > now - this.b.rateWindowSeconds,
      );
      this.samples.set(pod.name, list);
      if (list.length >= 2) {
        const first = list[0]!;
        const last = list[list.length - 1]!;
        m.set(pod.name, (last.value - first.value) / (last.time - first.time));
      }
    }
    const names = new Set(view.pods().map((p) => p.name));
    for (const k of [...this.samples.keys()]) if (!names.has(k)) this.samples.delete(k);
    return m;
  }

  /** replica_calculator.go: calcPlainMetricReplicas (calibration 1). */
  private proposal(view: FleetView, metrics: Map<string, number>): number | undefined {
    const current = view.specReplicas;
    const unready = new Set<string>();
    const missing = new Set<string>();
    let readyCount = 0;
    for (const pod of view.pods()) {
      if (pod.phase === "pending") unready.add(pod.name);
      else if (!metrics.has(pod.name)) missing.add(pod.name);
      else readyCount++;
    }
    const m = new Map([...metrics].filter(([k]) => !unready.has(k)));
    if (m.size === 0) return undefined; // "did not receive metrics for any ready pods"
    const ratioOf = (mm: Map<string, number>): number => {
      let sum = 0;
      for (const v of mm.values()) sum += v;
      return sum / mm.size / this.targetPerPod;
    };
    const usageRatio = ratioOf(m);
    const scaleUpWithUnready = unready.size > 0 && usageRatio > 1;
    if (!scaleUpWithUnready && missing.size === 0) {
      if (Math.abs(1 - usageRatio) <= this.b.tolerance) return current;
      return Math.ceil(usageRatio * readyCount);
    }
    if (missing.size > 0) {
      if (usageRatio < 1) for (const p of missing) m.set(p, this.targetPerPod);
      else if (usageRatio > 1) for (const p of missing) m.set(p, 0);
    }
    if (scaleUpWithUnready) for (const p of unready) m.set(p, 0);
    const newRatio = ratioOf(m);
    if (
      Math.abs(1 - newRatio) <= this.b.tolerance ||
      (usageRatio < 1 && newRatio > 1) ||
      (usageRatio > 1 && newRatio < 1)
    ) {
      return current;
    }
    const newReplicas = Math.ceil(newRatio * m.size);
    if ((newRatio < 1 && newReplicas > current) || (newRatio > 1 && newReplicas < current)) {
      return current;
    }
    return newReplicas;
  }

  decide(view: FleetView): number {
    const now = view.now;
    const current = view.specReplicas;
    const metrics = this.metrics(view);
    if (current > view.maxReplicas) return this.record(now, current, view.maxReplicas);
    if (current < view.minReplicas) return this.record(now, current, view.minReplicas);
    const proposed = this.proposal(view, metrics);
    if (proposed === undefined) return current; // metrics error: no rescale
    // maybeInitScaleDownStabilizationWindow
    this.recommendations ??= [{ time: now, replicas: current }];
    // stabilizeRecommendationWithBehaviors
    let up = proposed;
    let down = proposed;
    const upCutoff = now - this.b.scaleUp.windowSeconds;
    const downCutoff = now - this.b.scaleDown.windowSeconds;
    for (const r of this.recommendations) {
      if (r.time > upCutoff) up = Math.min(up, r.replicas);
      if (r.time > downCutoff) down = Math.max(down, r.replicas);
    }
    let stabilized = current;
    if (stabilized < up) stabilized = up;
    if (stabilized > down) stabilized = down;
    this.recommendations = this.recommendations.filter(
      (r) => r.time > Math.min(upCutoff, downCutoff),
    );
    this.recommendations.push({ time: now, replicas: proposed });
    // convertDesiredReplicasWithBehaviorRate
    let desired = stabilized;
    const changeIn = (events: { time: number; change: number }[], period: number): number =>
      events.filter((e) => e.time > now - period).reduce((s, e) => s + e.change, 0);
    if (desired > current) {
      const added = changeIn(this.scaleUpEvents, this.b.scaleUp.periodSeconds);
      const deleted = changeIn(this.scaleDownEvents, this.b.scaleUp.periodSeconds);
      let limit = current - added + deleted + this.b.scaleUp.pods;
      if (limit < current) limit = current;
      desired = Math.min(desired, Math.min(view.maxReplicas, limit));
    } else if (desired < current) {
      const added = changeIn(this.scaleUpEvents, this.b.scaleDown.periodSeconds);
      const deleted = changeIn(this.scaleDownEvents, this.b.scaleDown.periodSeconds);
      let limit = current - added + deleted - this.b.scaleDown.pods;
      if (limit > current) limit = current;
      desired = Math.max(desired, Math.max(view.minReplicas, limit));
    }
    return this.record(now, current, desired);
  }

  private record(now: number, current: number, desired: number): number {
    const keep = Math.max(this.b.scaleUp.periodSeconds, this.b.scaleDown.periodSeconds);
    this.scaleUpEvents = this.scaleUpEvents.filter((e) => e.time > now - keep);
    this.scaleDownEvents = this.scaleDownEvents.filter((e) => e.time > now - keep);
    if (desired > current) this.scaleUpEvents.push({ time: now, change: desired - current });
    if (desired < current) this.scaleDownEvents.push({ time: now, change: current - desired });
    return desired;
  }
}

// ---------------------------------------------------------------------------------------------
// 3. KubeAI (internal/modelautoscaler, internal/modelscaler): every 10 s, the in-flight
//    requests of the model through its proxy go into a 10-minute simple moving average;
//    desired = ceil(avg / targetRequests) bounded by min/max; a lower value is applied only
//    after scaleDownDelaySeconds / interval consecutive lower decisions (30 s / 10 s = 3).

export interface KubeAiConfig {
  readonly intervalSeconds: number;
  readonly timeWindowSeconds: number;
  readonly scaleDownDelaySeconds: number;
  readonly targetRequests: number;
}

/**
 * targetRequests from the per-replica token target by Little's law: in-flight = arrival rate x
 * time in system. While decoding, every in-flight request gets one token per step, so a replica
 * delivering T tokens/s at inter-token latency ITL(B) holds B = T x ITL(B) requests; B is the
 * batch at which decode throughput B / ITL(B) equals T. That B, rounded, is the in-flight
 * count per replica that corresponds to the token target.
 */
export function kubeAiTargetRequests(
  target: TargetModel,
  decodeAt: (batch: number) => { tokensPerSecond: number },
  maxBatch: number,
): number {
  for (let b = 1; b <= maxBatch; b++) {
    if (decodeAt(b).tokensPerSecond >= target.tokensPerSecond) return b;
  }
  return maxBatch;
}

export class KubeAiPolicy implements SimPolicy {
  readonly name = "kubeai";
  readonly intervalSeconds: number;
  private history: number[] | undefined;
  private index = 0;
  private consecutiveScaleDowns = 0;
  private readonly required: number;

  constructor(private readonly c: KubeAiConfig) {
    this.intervalSeconds = c.intervalSeconds;
    this.required = Math.ceil(c.scaleDownDelaySeconds / c.intervalSeconds);
  }

  decide(view: FleetView): number {
    const current = view.specReplicas;
    if (!view.pods().some((p) => p.phase === "ready")) return current; // "No endpoints found"
    const active = view.inFlight();
    // Warm start: the window as if the autoscaler had been running and had chosen the fleet's
    // starting count (KubeAI keeps its state in a ConfigMap so a restart does not empty it).
    // The first in-flight sample would not do: 10 s after the start the replicas' batches are
    // still filling, and a window full of it would scale a right-sized fleet down at once.
    this.history ??= new Array<number>(
      Math.ceil(this.c.timeWindowSeconds / this.c.intervalSeconds),
    ).fill(Math.max(active, current * this.c.targetRequests));
    this.history[this.index] = active;
    this.index = (this.index + 1) % this.history.length;
    const avg = this.history.reduce((s, x) => s + x, 0) / this.history.length;
    let replicas = Math.ceil(avg / this.c.targetRequests);
    replicas = Math.min(view.maxReplicas, Math.max(view.minReplicas, replicas));
    if (current > replicas) {
      if (this.consecutiveScaleDowns < this.required) {
        this.consecutiveScaleDowns++;
        return current;
      }
    } else {
      this.consecutiveScaleDowns = 0;
    }
    return replicas;
  }
}

// ---------------------------------------------------------------------------------------------
// 4. The oracle: knows every future arrival. Per minute it computes the load of the requests
//    arriving in that minute (loadTokensPerSecond: the busier of decode and prefill) and the
//    replicas that carry it at `utilisation` x a replica's capacity (decode tokens/s at the
//    ITL bound, targetModel.decodeTokensPerSecond); at each decision it holds the most any
//    minute needs until a replica requested now would be ready. A replica requested at t costs
//    from t and serves from t + cold start, so this is the cheapest schedule that has that
//    capacity ready for every minute. It needs no headroom for load it cannot see coming, so
//    the benchmark runs it at several utilisations and keeps the cheapest that reaches the best
//    SLO attainment any other policy reached (bench.ts: runOracle).

export class OraclePolicy implements SimPolicy {
  readonly name = "oracle";
  readonly intervalSeconds = 15;
  private readonly need: number[];
  private readonly bin = 60;

  constructor(
    trace: Trace,
    target: TargetModel,
    private readonly coldStartSeconds: number,
    readonly utilisation = 1,
  ) {
    const bins = Math.ceil(trace.durationSeconds / this.bin) + 1;
    const gen = new Array<number>(bins).fill(0);
    const prompt = new Array<number>(bins).fill(0);
    for (const r of trace.requests) {
      const i = Math.floor(r.t / this.bin);
      gen[i]! += r.gen;
      prompt[i]! += r.prompt;
    }
    const perReplica = target.decodeTokensPerSecond * utilisation;
    this.need = gen.map((g, i) => {
      const load = loadTokensPerSecond(
        g / this.bin,
        prompt[i]! / this.bin,
        target.promptTokenWeight,
      );
      return Math.ceil(load / perReplica - 1e-9);
    });
  }

  /** Replicas needed from `from` to `to` (seconds). */
  needBetween(from: number, to: number): number {
    let n = 0;
    const last = Math.min(this.need.length - 1, Math.floor(to / this.bin));
    for (let i = Math.max(0, Math.floor(from / this.bin)); i <= last; i++)
      n = Math.max(n, this.need[i]!);
    return n;
  }

  decide(view: FleetView): number {
    const now = view.now;
    const n = this.needBetween(now, now + this.coldStartSeconds + this.intervalSeconds);
    return Math.min(view.maxReplicas, Math.max(view.minReplicas, n));
  }
}
