/**
 * The builtin autoscaler (`spec.autoscaling.mode: builtin`): every interval, scrape the
 * vLLM `/metrics` of each Ready pod (pod IP, port 8000) concurrently with a timeout, and run
 * the resource's observe -> rates -> decide pipeline (src/autoscale/pipeline.ts, sized by
 * src/autoscale/model.ts) on it; a change is written through the MistralSmallDeployment's
 * scale subresource, and the reconciler then follows spec.replicas. status.scaling keeps the
 * wake-up time and the last decisions; each decision is also an event.
 */
import type { Logger } from "pino";
import type { MistralSmallDeployment, Status } from "../api/schema.ts";
import { ValidationError, parseResource } from "../api/validate.ts";
import { plan as planFor } from "../planner/plan.ts";
import { VLLM_PORT } from "../engine/command.ts";
import { scalingModel, type ScalingModel, type WeightSource } from "../autoscale/model.ts";
import { MODEL_CACHED } from "./model-cache.ts";
import {
  ScalingPipeline,
  type PodObservation,
  type ScalingContext,
  type ScrapeResult,
} from "../autoscale/pipeline.ts";
import type { PolicyOutput } from "../autoscale/policy.ts";
import { readVllmSample } from "../autoscale/prometheus.ts";
import { isConflict, RESOURCES, type KubeClient } from "../kube/client.ts";
import { objectKey } from "../kube/informer.ts";
import type { EventRecorder } from "./events.ts";
import type { Cache } from "./reconcile.ts";
import { podsOfResource, type SlimPod } from "./cached.ts";
import type { MistralSmallDeploymentObject } from "../kube/objects.ts";

export const LAST_DECISIONS_KEPT = 5;

/** A status write that lost to a concurrent writer is retried this many times. */
const STATUS_WRITE_ATTEMPTS = 3;

/**
 * A complete model cache (ModelCached=True, or a source read in place): a new replica only reads
 * the weights, so its wake-up, and with it the forecast horizon, is shorter than a download's.
 */
function weightSourceOf(raw: MistralSmallDeploymentObject): WeightSource {
  const cached = raw.status?.conditions?.find((c) => c.type === MODEL_CACHED);
  return cached?.status === "True" ? "cached" : "download";
}
type Decision = NonNullable<NonNullable<Status["scaling"]>["lastDecisions"]>[number];

/**
 * A resource as last parsed, with its scaling model (undefined when its plan is infeasible):
 * kept while its generation (its spec) and its weight source hold.
 */
interface Sized {
  readonly generation: number | undefined;
  readonly weights: WeightSource;
  readonly msd: MistralSmallDeployment;
  readonly model: ScalingModel | undefined;
}

export interface AutoscalerDeps {
  readonly client: KubeClient;
  readonly log: Logger;
  readonly events: EventRecorder;
  readonly caches: {
    readonly msd: Cache<MistralSmallDeploymentObject>;
    readonly pods: Cache<SlimPod>;
  };
  readonly intervalMs: number;
  readonly scrapeTimeoutMs: number;
  /** Fetches a /metrics page; injectable so a port other than 8000 can be used in tests. */
  readonly scrape?: (podIP: string, signal: AbortSignal) => Promise<string>;
  readonly now?: () => number;
}

/** One resource's evaluation failed; `cause` is why, `resource` is namespace/name. */
export class AutoscalerError extends Error {
  override name = "AutoscalerError";
  constructor(
    readonly resource: string,
    message: string,
    options: { cause: unknown },
  ) {
    super(`${resource}: ${message}`, options);
  }
}

/** Some resources' evaluations failed in one tick (the others ran and were kept). */
export class AutoscalerTickError extends AggregateError {
  override name = "AutoscalerTickError";
  constructor(readonly failures: readonly AutoscalerError[]) {
    super(failures, failures.map((f) => f.message).join("; "));
  }
}

class ScrapeHttpError extends Error {
  override name = "ScrapeHttpError";
}

async function httpScrape(podIP: string, signal: AbortSignal): Promise<string> {
  const res = await fetch(`http://${podIP}:${VLLM_PORT}/metrics`, { signal });
  if (!res.ok) throw new ScrapeHttpError(`HTTP ${res.status}`);
  return res.text();
}

function isReady(p: SlimPod): boolean {
  return p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") === true;
}

const errorText = (err: unknown): string => (err instanceof Error ? err.message : String(err));

export class BuiltinAutoscaler {
  private timer: ReturnType<typeof setTimeout> | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  private readonly pipelines = new Map<string, ScalingPipeline>();
  /** Beside each pipeline: its resource parsed and sized (dropped with it). */
  private readonly sized = new Map<string, Sized>();

  constructor(private readonly deps: AutoscalerDeps) {}

  start(): void {
    const loop = () => {
      if (this.stopped) return;
      this.running = this.tick()
        .catch((err: unknown) => this.deps.log.error({ err }, "autoscaler tick failed"))
        .finally(() => {
          if (!this.stopped) this.timer = setTimeout(loop, this.deps.intervalMs);
        });
    };
    this.timer = setTimeout(loop, this.deps.intervalMs);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    await this.running;
  }

  /** The resources (namespace/name) whose scaling state is kept. */
  tracked(): string[] {
    return [...this.pipelines.keys()];
  }

  private now(): number {
    return (this.deps.now ?? Date.now)() / 1000;
  }

  /**
   * One evaluation of every autoscaled MistralSmallDeployment. A failing resource does not stop
   * the others nor the clean-up of resources that are gone; the failures are thrown together
   * afterwards (AutoscalerTickError).
   */
  async tick(): Promise<void> {
    const live = new Set<string>();
    const pods = podsByInstance(this.deps.caches.pods.list());
    const outcomes = await Promise.all(
      this.deps.caches.msd
        .list()
        .map((raw) => this.tickOne(raw, pods.get(objectKey(raw)) ?? [], live)),
    );
    for (const k of this.tracked()) if (!live.has(k)) this.pipelines.delete(k);
    for (const k of this.sized.keys()) if (!live.has(k)) this.sized.delete(k);
    const failures = outcomes.filter((o): o is AutoscalerError => o !== undefined);
    if (failures.length > 0) throw new AutoscalerTickError(failures);
  }

  /** Evaluates one resource; never rejects: a failure is returned, with its cause. */
  private async tickOne(
    raw: MistralSmallDeploymentObject,
    pods: readonly SlimPod[],
    live: Set<string>,
  ): Promise<AutoscalerError | undefined> {
    const key = objectKey(raw);
    try {
      const sized = this.sizedOf(key, raw, live);
      if (sized === undefined) return undefined;
      if (sized.model === undefined) return undefined;
      await this.evaluate(key, sized.msd, sized.model, raw, pods);
      return undefined;
    } catch (err) {
      return new AutoscalerError(key, errorText(err), { cause: err });
    }
  }

  /**
   * The resource parsed and sized: kept from an earlier tick while its generation and weight
   * source are the same (and it is not being deleted), else parsed and planned again. Undefined
   * when the builtin autoscaler does not own its count (autoscaledResource); when it does, the
   * key is `live` before it is planned, so a planning error keeps the resource's state.
   */
  private sizedOf(
    key: string,
    raw: MistralSmallDeploymentObject,
    live: Set<string>,
  ): Sized | undefined {
    const generation = raw.metadata.generation;
    const weights = weightSourceOf(raw);
    const kept = this.sized.get(key);
    if (
      kept !== undefined &&
      generation !== undefined &&
      kept.generation === generation &&
      kept.weights === weights &&
      raw.metadata.deletionTimestamp === undefined
    ) {
      live.add(key);
      return kept;
    }
    this.sized.delete(key);
    const msd = autoscaledResource(raw);
    if (msd === undefined) return undefined;
    live.add(key);
    const p = planFor(msd.spec);
    const sized: Sized = {
      generation,
      weights,
      msd,
      model: p.feasible ? scalingModel(msd.spec, p, { weights }) : undefined,
    };
    this.sized.set(key, sized);
    return sized;
  }

  private async evaluate(
    key: string,
    msd: MistralSmallDeployment,
    model: ScalingModel,
    raw: MistralSmallDeploymentObject,
    candidates: readonly SlimPod[],
  ): Promise<void> {
    const now = this.now();
    const log = this.deps.log.child({ msd: key, autoscaler: true });
    const pipeline = this.pipelines.get(key) ?? new ScalingPipeline();
    this.pipelines.set(key, pipeline);
    const pods = await this.observePods(msd, candidates, now, log);
    const ctx: ScalingContext = {
      autoscaling: msd.spec.autoscaling,
      model,
      currentReplicas: msd.spec.replicas,
    };
    const out = pipeline.evaluate({ now, pods }, ctx);
    const change = out.desiredReplicas !== ctx.currentReplicas;
    let ok = false;
    try {
      if (change) await this.writeScale(msd, out.desiredReplicas);
      ok = true;
    } finally {
      // A failed write measured the load but changed nothing: it must not spend the step budget.
      pipeline.record(out, ctx, ok);
    }
    if (!change) {
      await this.keepWakeUpStated(msd, raw, model);
      return;
    }
    await this.recordDecision(msd, raw, model, out, now);
    log.info({ from: ctx.currentReplicas, to: out.desiredReplicas, reason: out.reason }, "scaled");
  }

  /**
   * The resource's pods (podsOfResource of `candidates`, its instance's pods) that are not being
   * deleted, Ready ones scraped concurrently.
   */
  private async observePods(
    msd: MistralSmallDeployment,
    candidates: readonly SlimPod[],
    now: number,
    log: Logger,
  ): Promise<PodObservation[]> {
    const pods = podsOfResource(candidates, msd).filter(
      (pod) => pod.metadata.deletionTimestamp === undefined,
    );
    return Promise.all(
      pods.map(async (pod): Promise<PodObservation> => {
        const created = Date.parse(pod.metadata.creationTimestamp ?? "");
        const ageSeconds = Number.isNaN(created) ? 0 : Math.max(0, now - created / 1000);
        const name = pod.metadata.name;
        if (!isReady(pod)) return { name, ready: false, ageSeconds };
        const scrape = await this.scrapePod(pod, msd.spec.model.servedModelName);
        if (!scrape.ok) log.warn({ pod: name, err: scrape.error }, "vLLM metrics scrape failed");
        return { name, ready: true, ageSeconds, scrape };
      }),
    );
  }

  /** Reported as a failed scrape, never counted as zero load. */
  private async scrapePod(pod: SlimPod, modelName: string): Promise<ScrapeResult> {
    const ip = pod.status?.podIP;
    if (ip === undefined) return { ok: false, error: "Ready without a pod IP" };
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), this.deps.scrapeTimeoutMs);
    try {
      const text = await (this.deps.scrape ?? httpScrape)(ip, controller.signal);
      return { ok: true, sample: readVllmSample(text, modelName) };
    } catch (err) {
      return { ok: false, error: errorText(err) };
    } finally {
      clearTimeout(timer);
    }
  }

  private async writeScale(msd: MistralSmallDeployment, replicas: number): Promise<void> {
    await this.deps.client.mergePatch(
      RESOURCES.msd,
      msd.metadata.name,
      msd.metadata.namespace,
      { spec: { replicas } },
      "scale",
    );
  }

  /**
   * status.scaling.wakeUpSeconds states how long a replica takes to serve whether or not a
   * decision was made (a resource at its minimum from the start makes none); written when the
   * cached status differs from the model.
   */
  private async keepWakeUpStated(
    msd: MistralSmallDeployment,
    raw: MistralSmallDeploymentObject,
    model: ScalingModel,
  ): Promise<void> {
    if (raw.status?.scaling?.wakeUpSeconds === model.wakeUp.seconds) return;
    await this.deps.client.mergePatch(
      RESOURCES.msd,
      msd.metadata.name,
      msd.metadata.namespace,
      { status: { scaling: { wakeUpSeconds: model.wakeUp.seconds } } },
      "status",
    );
  }

  /**
   * Appends the decision to status.scaling.lastDecisions. The list is read from the API server,
   * not the informer's cache (which may not show the previous decision yet), and written with
   * that read's resourceVersion, so a concurrent status write is retried, never overwritten.
   */
  private async recordDecision(
    msd: MistralSmallDeployment,
    raw: MistralSmallDeploymentObject,
    model: ScalingModel,
    out: PolicyOutput,
    now: number,
  ): Promise<void> {
    const decision: Decision = {
      time: new Date(now * 1000).toISOString().replace(/\.\d+Z$/, "Z"),
      from: msd.spec.replicas,
      to: out.desiredReplicas,
      reason: out.reason,
      metrics: { ...out.metrics },
    };
    for (let attempt = 1; ; attempt++) {
      const fresh = await this.deps.client.get(
        RESOURCES.msd,
        msd.metadata.name,
        msd.metadata.namespace,
      );
      const previous = fresh.status?.scaling?.lastDecisions ?? [];
      try {
        await this.deps.client.mergePatch(
          RESOURCES.msd,
          msd.metadata.name,
          msd.metadata.namespace,
          {
            metadata: { resourceVersion: fresh.metadata.resourceVersion },
            status: {
              scaling: {
                desiredReplicas: out.desiredReplicas,
                wakeUpSeconds: model.wakeUp.seconds,
                lastDecisions: [...previous, decision].slice(-LAST_DECISIONS_KEPT),
              },
            },
          },
          "status",
        );
        break;
      } catch (err) {
        if (!isConflict(err) || attempt >= STATUS_WRITE_ATTEMPTS) throw err;
      }
    }
    this.deps.events.emit(raw, {
      type: "Normal",
      reason: out.desiredReplicas > msd.spec.replicas ? "ScaledUp" : "ScaledDown",
      action: "Scale",
      note: out.reason,
    });
  }
}

/**
 * The pods by the resource they name in their instance label, keyed as objectKey keys the
 * resource (namespace/name): one pass over the pod cache per tick, not one per resource.
 */
function podsByInstance(pods: readonly SlimPod[]): Map<string, SlimPod[]> {
  const out = new Map<string, SlimPod[]>();
  for (const pod of pods) {
    const instance = pod.metadata.labels?.["app.kubernetes.io/instance"];
    if (instance === undefined) continue;
    const key = objectKey({ metadata: { name: instance, namespace: pod.metadata.namespace } });
    const group = out.get(key);
    if (group === undefined) out.set(key, [pod]);
    else group.push(pod);
  }
  return out;
}

/**
 * The resource when the builtin autoscaler owns its count; undefined when it does not (another
 * mode, disabled, being deleted) or its spec is invalid (the reconciler reports InvalidSpec).
 * Any other error is the autoscaler's and is thrown.
 */
function autoscaledResource(raw: MistralSmallDeploymentObject): MistralSmallDeployment | undefined {
  let msd: MistralSmallDeployment;
  try {
    msd = parseResource(raw);
  } catch (err) {
    if (err instanceof ValidationError) return undefined;
    throw err;
  }
  const a = msd.spec.autoscaling;
  if (!a.enabled || a.mode !== "builtin" || raw.metadata.deletionTimestamp !== undefined) {
    return undefined;
  }
  return msd;
}
