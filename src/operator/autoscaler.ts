/**
 * The builtin autoscaler (`spec.autoscaling.mode: builtin`): every interval, scrape the
 * vLLM `/metrics` of each Ready pod (pod IP, port 8000) concurrently with a timeout, turn
 * counters into rates, decide with src/autoscale/policy.ts and write the decision through
 * the MistralSmallDeployment's scale subresource. The reconciler then follows spec.replicas.
 * The last decisions are kept in status.scaling and emitted as events.
 */
import type { Logger } from "pino";
import type { MistralSmallDeployment, Status } from "../api/schema.ts";
import { parseResource } from "../api/validate.ts";
import { plan as planFor } from "../planner/plan.ts";
import { VLLM_PORT } from "../engine/command.ts";
import { readVllmSample } from "../autoscale/prometheus.ts";
import { RateTracker } from "../autoscale/rates.ts";
import {
  EMPTY_HISTORY,
  appendHistory,
  decide,
  targetModel,
  wakeUpSeconds,
  type PolicyHistory,
  type PolicyOptions,
  type ReadyReplicaMetrics,
  type StartingReplica,
} from "../autoscale/policy.ts";
import { RESOURCES, type KubeClient, type KubeObject } from "../kube/client.ts";
import { targetTokensPerSecond } from "../render/autoscaler.ts";
import type { EventRecorder } from "./events.ts";
import type { Cache } from "./reconcile.ts";

export const LAST_DECISIONS_KEPT = 5;

type Counter = "generation" | "prompt" | "requests";

interface PodObject extends KubeObject {
  status?: {
    podIP?: string;
    conditions?: { type: string; status: string; lastTransitionTime?: string }[];
  };
}

export interface AutoscalerDeps {
  readonly client: KubeClient;
  readonly log: Logger;
  readonly events: EventRecorder;
  readonly caches: { readonly msd: Cache<KubeObject>; readonly pods: Cache<KubeObject> };
  readonly intervalMs: number;
  readonly scrapeTimeoutMs: number;
  /** Fetches a /metrics page; injectable so a port other than 8000 can be used in tests. */
  readonly scrape?: (podIP: string, signal: AbortSignal) => Promise<string>;
  readonly now?: () => number;
}

async function httpScrape(podIP: string, signal: AbortSignal): Promise<string> {
  const res = await fetch(`http://${podIP}:${VLLM_PORT}/metrics`, { signal });
  if (!res.ok) throw new Error(`HTTP ${res.status}`);
  return res.text();
}

function isReady(p: PodObject): boolean {
  return p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") === true;
}

export class BuiltinAutoscaler {
  private timer: ReturnType<typeof setTimeout> | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  private readonly trackers = new Map<string, RateTracker<Counter>>();
  private readonly histories = new Map<string, PolicyHistory>();

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

  private now(): number {
    return (this.deps.now ?? Date.now)() / 1000;
  }

  /** One evaluation of every autoscaled MistralSmallDeployment. */
  async tick(): Promise<void> {
    const live = new Set<string>();
    await Promise.all(
      this.deps.caches.msd.list().map(async (raw) => {
        const key = `${raw.metadata.namespace}/${raw.metadata.name}`;
        let msd: MistralSmallDeployment;
        try {
          msd = parseResource(raw);
        } catch {
          return; // the reconciler reports InvalidSpec
        }
        const a = msd.spec.autoscaling;
        if (!a.enabled || a.mode !== "builtin" || raw.metadata.deletionTimestamp !== undefined)
          return;
        live.add(key);
        await this.evaluate(key, msd, raw as KubeObject & { status?: Status });
      }),
    );
    for (const k of [...this.histories.keys()]) {
      if (!live.has(k)) {
        this.histories.delete(k);
        this.trackers.delete(k);
      }
    }
  }

  private async evaluate(
    key: string,
    msd: MistralSmallDeployment,
    raw: KubeObject & { status?: Status },
  ): Promise<void> {
    const p = planFor(msd.spec);
    if (!p.feasible) return;
    const now = this.now();
    const log = this.deps.log.child({ msd: key, autoscaler: true });
    const pods = (this.deps.caches.pods.list() as PodObject[]).filter(
      (pod) =>
        pod.metadata.namespace === msd.metadata.namespace &&
        pod.metadata.labels?.["app.kubernetes.io/instance"] === msd.metadata.name &&
        pod.metadata.labels?.["app.kubernetes.io/name"] === "mistral-small" &&
        pod.metadata.deletionTimestamp === undefined,
    );
    const tracker = this.trackers.get(key) ?? new RateTracker<Counter>();
    this.trackers.set(key, tracker);
    tracker.retain(pods.map((x) => x.metadata.name));

    const readyPods = pods.filter((x) => isReady(x) && x.status?.podIP !== undefined);
    const starting: StartingReplica[] = pods
      .filter((x) => !isReady(x))
      .map((x) => ({
        name: x.metadata.name,
        ageSeconds: Math.max(
          0,
          now - Date.parse(x.metadata.creationTimestamp ?? new Date().toISOString()) / 1000,
        ),
      }));
    const samples = await Promise.all(
      readyPods.map(async (pod) => {
        const controller = new AbortController();
        const timer = setTimeout(() => controller.abort(), this.deps.scrapeTimeoutMs);
        try {
          const text = await (this.deps.scrape ?? httpScrape)(
            pod.status!.podIP!,
            controller.signal,
          );
          const s = readVllmSample(text, msd.spec.model.servedModelName);
          tracker.observe(pod.metadata.name, {
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
          return { pod: pod.metadata.name, sample: s };
        } catch (err) {
          // Reported, never counted as zero load.
          tracker.miss(pod.metadata.name, now, (err as Error).message);
          log.warn(
            { pod: pod.metadata.name, err: (err as Error).message },
            "vLLM metrics scrape failed",
          );
          return { pod: pod.metadata.name, sample: undefined };
        } finally {
          clearTimeout(timer);
        }
      }),
    );
    const ready: ReadyReplicaMetrics[] = [];
    let unknownPods = 0;
    for (const { pod, sample } of samples) {
      const r = tracker.rate(pod, now);
      if (sample === undefined || r.status !== "ok") {
        unknownPods++;
        continue;
      }
      ready.push({
        name: pod,
        generationTokensPerSecond: r.rates.generation ?? 0,
        promptTokensPerSecond: r.rates.prompt ?? 0,
        ...(r.rates.requests === undefined ? {} : { requestsPerSecond: r.rates.requests }),
        running: sample.running,
        waiting: sample.waiting,
        ...(sample.kvCacheUsage === undefined ? {} : { kvCacheUsage: sample.kvCacheUsage }),
      });
    }
    const model = targetModel(p);
    const history = this.histories.get(key) ?? EMPTY_HISTORY;
    const current = msd.spec.replicas;
    const target = targetTokensPerSecond(msd, p);
    // A target set in the spec keeps the default's ratio to capacity (the headroom that drains
    // backlogs and that a forecast must fit in); a trend is projected one wake-up ahead.
    const options: Partial<PolicyOptions> = { forecastSeconds: wakeUpSeconds(p) };
    const out = decide({
      now,
      autoscaling: msd.spec.autoscaling,
      targetTokensPerSecond: target,
      promptTokenWeight: model.promptTokenWeight,
      capacityTokensPerSecond: (model.decodeTokensPerSecond * target) / model.tokensPerSecond,
      currentReplicas: current,
      ready,
      starting,
      unknownPods,
      history,
      options,
    });
    this.histories.set(key, appendHistory(history, out, current, msd.spec.autoscaling, options));
    if (out.desiredReplicas === current) return;

    await this.deps.client.mergePatch(
      RESOURCES.msd,
      msd.metadata.name,
      msd.metadata.namespace,
      { spec: { replicas: out.desiredReplicas } },
      "scale",
    );
    const decision = {
      time: new Date(now * 1000).toISOString().replace(/\.\d+Z$/, "Z"),
      from: current,
      to: out.desiredReplicas,
      reason: out.reason,
      metrics: { ...out.metrics },
    };
    const previous = raw.status?.scaling?.lastDecisions ?? [];
    await this.deps.client.mergePatch(
      RESOURCES.msd,
      msd.metadata.name,
      msd.metadata.namespace,
      {
        status: {
          scaling: {
            desiredReplicas: out.desiredReplicas,
            wakeUpSeconds: wakeUpSeconds(p),
            lastDecisions: [...previous, decision].slice(-LAST_DECISIONS_KEPT),
          },
        },
      },
      "status",
    );
    log.info({ from: current, to: out.desiredReplicas, reason: out.reason }, "scaled");
    this.deps.events.emit(raw, {
      type: "Normal",
      reason: out.desiredReplicas > current ? "ScaledUp" : "ScaledDown",
      action: "Scale",
      note: out.reason,
    });
  }
}
