/**
 * One autoscaled resource's observe -> rates -> decide pipeline, with the state it keeps
 * between evaluations (the rate tracker and the policy history). The builtin autoscaler
 * (src/controller/scale-loop.ts) runs it every interval on what it scraped from the pods; the
 * benchmark (bench/autoscale) runs the same pipeline on what its simulated pods report, so
 * the benchmark measures the operator's own decision path.
 *
 * Everything here is pure and clock-free: the caller observes (scrapes), calls `evaluate`,
 * writes the decision and then `record`s whether the write happened.
 */
import type { ScalingModel } from "./model.ts";
import {
  EMPTY_HISTORY,
  appendHistory,
  decide,
  type AutoscalingSpec,
  type PolicyHistory,
  type PolicyOptions,
  type PolicyOutput,
  type ReadyReplicaMetrics,
  type StartingReplica,
} from "./policy.ts";
import type { VllmSample } from "./prometheus.ts";
import { RateTracker, type RateTrackerOptions } from "./rates.ts";

type Counter = "generation" | "prompt" | "requests";

/** What one scrape of a Ready pod gave: its metrics, or why there are none. */
export type ScrapeResult =
  | { readonly ok: true; readonly sample: VllmSample }
  | { readonly ok: false; readonly error: string };

export interface PodObservation {
  readonly name: string;
  /** Ready pods are scraped; the others are capacity that is coming. */
  readonly ready: boolean;
  /** Seconds since the pod was asked for. */
  readonly ageSeconds: number;
  /** Ready pods only. */
  readonly scrape?: ScrapeResult;
}

export interface Observation {
  /** Seconds (any epoch, the same for every call). */
  readonly now: number;
  /** The resource's pods that are not being deleted. */
  readonly pods: readonly PodObservation[];
}

/** What a decision is sized with, besides the observation. */
export interface ScalingContext {
  readonly autoscaling: AutoscalingSpec;
  readonly model: Pick<
    ScalingModel,
    "targetTokensPerSecond" | "capacityTokensPerSecond" | "promptTokenWeight" | "forecastSeconds"
  >;
  /** The scale subresource's replicas. */
  readonly currentReplicas: number;
  /** Overrides of the policy's tuning (the benchmark's flags; the operator passes none). */
  readonly options?: Partial<PolicyOptions>;
}

/** The policy's inputs from one observation: pods with rates, pods starting, pods unknown. */
export interface ObservedLoad {
  readonly ready: readonly ReadyReplicaMetrics[];
  readonly starting: readonly StartingReplica[];
  readonly unknownPods: number;
}

export class ScalingPipeline {
  private readonly tracker: RateTracker<Counter>;
  private history: PolicyHistory = EMPTY_HISTORY;

  constructor(rates: Partial<RateTrackerOptions> = {}) {
    this.tracker = new RateTracker<Counter>(rates);
  }

  /** The history the next decision sees (for status and tests). */
  get policyHistory(): PolicyHistory {
    return this.history;
  }

  /**
   * Feeds every scrape to the rate tracker and sorts the pods: ready with a rate, starting,
   * or unknown (no answer, or no rate yet), never counted as idle.
   */
  observe(obs: Observation): ObservedLoad {
    const ready: ReadyReplicaMetrics[] = [];
    const starting: StartingReplica[] = [];
    let unknownPods = 0;
    this.tracker.retain(obs.pods.map((p) => p.name));
    for (const pod of obs.pods) {
      if (!pod.ready) {
        starting.push({ name: pod.name, ageSeconds: pod.ageSeconds });
        continue;
      }
      const metrics = this.rateOf(pod, obs.now);
      if (metrics === undefined) unknownPods++;
      else ready.push(metrics);
    }
    return { ready, starting, unknownPods };
  }

  private rateOf(pod: PodObservation, now: number): ReadyReplicaMetrics | undefined {
    const scrape = pod.scrape ?? { ok: false, error: "not scraped" };
    if (!scrape.ok) {
      this.tracker.miss(pod.name, now, scrape.error);
      return undefined;
    }
    const s = scrape.sample;
    this.tracker.observe(pod.name, {
      time: now,
      counters: {
        generation: s.generationTokensTotal,
        prompt: s.promptTokensTotal,
        requests: s.requestsFinishedTotal ?? 0,
      },
      ...(s.countersCreatedSeconds === undefined
        ? {}
        : { countersStart: s.countersCreatedSeconds }),
    });
    const r = this.tracker.rate(pod.name, now);
    if (r.status !== "ok") return undefined;
    return {
      name: pod.name,
      generationTokensPerSecond: r.rates.generation ?? 0,
      promptTokensPerSecond: r.rates.prompt ?? 0,
      ...(r.rates.requests === undefined ? {} : { requestsPerSecond: r.rates.requests }),
      running: s.running,
      waiting: s.waiting,
      ...(s.kvCacheUsage === undefined ? {} : { kvCacheUsage: s.kvCacheUsage }),
    };
  }

  /**
   * The decision for one observation. The history is left as it is until `record`: the caller
   * writes the decision first.
   */
  evaluate(obs: Observation, ctx: ScalingContext): PolicyOutput {
    const load = this.observe(obs);
    return decide({
      now: obs.now,
      autoscaling: ctx.autoscaling,
      targetTokensPerSecond: ctx.model.targetTokensPerSecond,
      promptTokenWeight: ctx.model.promptTokenWeight,
      capacityTokensPerSecond: ctx.model.capacityTokensPerSecond,
      forecastSeconds: ctx.model.forecastSeconds,
      currentReplicas: ctx.currentReplicas,
      ...load,
      history: this.history,
      ...(ctx.options === undefined ? {} : { options: ctx.options }),
    });
  }

  /**
   * Keeps an evaluation for the next one. `applied` says whether the desired count was written
   * (always true when it equals the current count): a failed write keeps the measurement but
   * no decision, so the step limits are not spent on a change that did not happen.
   */
  record(out: PolicyOutput, ctx: ScalingContext, applied: boolean): void {
    this.history = appendHistory(
      this.history,
      out,
      ctx.currentReplicas,
      ctx.autoscaling,
      ctx.options,
      applied,
    );
  }
}
