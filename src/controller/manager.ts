/**
 * The operator process: informers feed a work queue of `namespace/name` keys,
 * one reconcile per key at a time, only while this instance holds the leader lease.
 */
import { hostname } from "node:os";
import type { Server } from "node:http";
import { pino, type Logger } from "pino";
import {
  Informer,
  NamespacedInformers,
  objectKey,
  type InformerOptions,
  type SharedCache,
} from "../kube/informer.ts";
import { LeaderElector } from "../kube/leader.ts";
import { backoffDelay, jitter, WorkQueue } from "../kube/queue.ts";
import type { ConnectOptions } from "../kube/config.ts";
import {
  ApiError,
  isAuthFailure,
  KubeClient,
  resourceOfPath,
  RESOURCES,
  WRITE_VERBS,
  type KubeObject,
  type ResourceType,
} from "../kube/client.ts";
import { KIND } from "../api/schema.ts";
import {
  OPERATOR_NAME,
  OWNER_NAMESPACE_LABEL,
  OWNER_NAME_LABEL,
  OWNER_UID_LABEL,
} from "../render/names.ts";
import { MODEL_SERVER_APP, RUN_DEFAULTS } from "../util/identity.ts";
import { isPlainObject } from "../util/json.ts";
import type { MistralSmallDeploymentObject, NodeClaim, ObjectOf } from "../kube/objects.ts";
import { slimEvent, slimPod, type SlimEvent, type SlimPod } from "./cached.ts";
import { ApiEventRecorder } from "./events.ts";
import { BuiltinAutoscaler } from "./scale-loop.ts";
import { OperatorMetrics, startHttpServer } from "./metrics.ts";
import { memoKeyOf, reconcile, type ReconcilerDeps } from "./reconcile.ts";
import type { AppliedMemo } from "./reconcile-plan.ts";
import { OWNED_KINDS } from "../render/owned.ts";

export interface OperatorOptions {
  readonly kubeconfig?: string;
  /** A kubeconfig context instead of its current-context (`--context`). */
  readonly context?: string;
  /** Overrides kubeconfig/context: everything the connection is loaded from (tests, benchmarks). */
  readonly connect?: ConnectOptions;
  /**
   * Watch only these namespaces (one informer per namespace and kind, so Roles in them
   * suffice); all namespaces when omitted or empty.
   */
  readonly namespaces?: readonly string[];
  readonly port: number;
  readonly host?: string;
  readonly identity?: string;
  readonly leaderElection?: boolean;
  /** Default: the kubeconfig context's namespace, else the service account's, else "default". */
  readonly leaseNamespace?: string;
  readonly leaseName?: string;
  readonly leaseDurationSeconds?: number;
  readonly concurrency?: number;
  readonly resyncMs?: number;
  /** How often the builtin autoscaler scrapes and decides (default 15 s). */
  readonly autoscaleIntervalMs?: number;
  readonly logger?: Logger;
  /** The renderer: tests stand in a later release's defaults (template-pin.ts). */
  readonly render?: ReconcilerDeps["render"];
  /** Called when leadership is lost: the process should exit so it restarts clean. */
  readonly onLostLeadership?: () => void;
}

/** What the manager's informer helper may add to a cache of one resource. */
type InformerChoice<T extends KubeObject> = Pick<
  InformerOptions<T>,
  "labelSelector" | "fieldSelector" | "transform"
>;

/** The informers' caches: what reconcile reads, with handlers (informer.ts). */
interface WatchedCaches {
  readonly msd: SharedCache<MistralSmallDeploymentObject>;
  readonly pods: SharedCache<SlimPod>;
  /** One cache per owned kind (OWNED_KINDS), by kind: read through the plan's typed lookups. */
  readonly owned: Map<string, SharedCache<KubeObject>>;
  readonly nodeClaims: SharedCache<NodeClaim> | undefined;
  readonly karpenterEvents: SharedCache<SlimEvent> | undefined;
}

const MANAGED_SELECTOR = `app.kubernetes.io/managed-by=${OPERATOR_NAME}`;
const DISCOVERY_BACKOFF = { baseDelayMs: 500, factor: 2, maxDelayMs: 30_000 };

/** An error and its causes, one message each: exec plugins explain themselves on stderr. */
function describeCause(err: Error): string {
  const parts: string[] = [];
  for (let e: unknown = err; e instanceof Error && parts.length < 5; e = e.cause)
    parts.push(e.message.trim());
  return parts.join(": ");
}

/** Which MistralSmallDeployment an owned object belongs to, as a queue key. */
/** Every MistralSmallDeployment named by a non-controller owner reference. */
export function sharedOwnerKeys(obj: KubeObject): string[] {
  const ns = obj.metadata.namespace;
  if (ns === undefined) return [];
  return (obj.metadata.ownerReferences ?? [])
    .filter((o) => o.kind === KIND && o.controller !== true)
    .map((o) => `${ns}/${o.name}`);
}

export function ownerKey(obj: KubeObject): string | undefined {
  const ns = obj.metadata.namespace;
  const ref = obj.metadata.ownerReferences?.find((o) => o.controller === true && o.kind === KIND);
  if (ref !== undefined && ns !== undefined) return `${ns}/${ref.name}`;
  const labels = obj.metadata.labels ?? {};
  if (labels[OWNER_NAME_LABEL] !== undefined && labels[OWNER_NAMESPACE_LABEL] !== undefined) {
    return `${labels[OWNER_NAMESPACE_LABEL]}/${labels[OWNER_NAME_LABEL]}`;
  }
  const instance = labels["app.kubernetes.io/instance"];
  if (
    ns !== undefined &&
    instance !== undefined &&
    labels["app.kubernetes.io/name"] === MODEL_SERVER_APP
  ) {
    return `${ns}/${instance}`;
  }
  return undefined;
}

function forEvery<T>(fn: (obj: T) => void) {
  return { onAdd: fn, onUpdate: (_o: T, n: T) => fn(n), onDelete: fn };
}

export class Operator {
  readonly metrics = new OperatorMetrics();
  readonly log: Logger;
  private client!: KubeClient;
  private server: Server | undefined;
  private queue: WorkQueue | undefined;
  private informers: Pick<
    SharedCache<KubeObject>,
    "start" | "stop" | "waitForSync" | "unhealthy"
  >[] = [];
  private elector: LeaderElector | undefined;
  private events: ApiEventRecorder | undefined;
  private autoscaler: BuiltinAutoscaler | undefined;
  private leading = false;
  private synced = false;
  private stopping = false;
  private controllersStopped: Promise<void> | undefined;
  readonly identity: string;

  constructor(private readonly opts: OperatorOptions) {
    this.log = opts.logger ?? pino({ name: OPERATOR_NAME });
    this.identity = opts.identity ?? `${hostname()}-${process.pid}`;
  }

  get apiClient(): KubeClient {
    return this.client;
  }

  private connectOptions(): ConnectOptions {
    if (this.opts.connect !== undefined) return this.opts.connect;
    return {
      ...(this.opts.kubeconfig === undefined ? {} : { kubeconfig: this.opts.kubeconfig }),
      ...(this.opts.context === undefined ? {} : { context: this.opts.context }),
    };
  }

  async start(): Promise<void> {
    this.client = await KubeClient.load(this.connectOptions());
    this.client.onRequest = (verb, path, status) => {
      this.metrics.apiRequests.inc({ verb, resource: resourceOfPath(path), code: String(status) });
      if (status === 0 || status >= 400) this.metrics.apiErrors.inc({ verb });
    };
    this.client.onAuthStatus = ({ refused, latest }) => this.logAuthStatus(refused, latest);
    this.server = await startHttpServer(
      this.opts.port,
      this.metrics,
      {
        healthy: () => !this.stopping,
        // Ready when this instance is a healthy standby, or a synced leader whose every
        // cache is fed (a forbidden watch leaves a cache silently stale otherwise), and the
        // API server accepts what it asks (credentials valid, RBAC allowing it).
        ready: () =>
          !this.stopping &&
          (!this.leading || (this.synced && this.cacheProblems().length === 0)) &&
          this.client.refused().size === 0,
        notReadyBecause: () => [
          ...(this.stopping ? ["shutting down"] : []),
          ...(this.leading && !this.synced ? ["caches have not synced"] : []),
          ...(this.leading ? this.cacheProblems() : []),
          ...[...this.client.refused().keys()].map((k) => `the API server refuses ${k}`),
        ],
      },
      this.opts.host,
    );
    this.log.info(
      { port: this.opts.port, identity: this.identity, connection: this.client.source },
      "operator starting",
    );
    if (this.opts.leaderElection === false) {
      this.leading = true;
      this.metrics.leader.set(1);
      await this.startControllers();
      return;
    }
    const leaseSeconds = this.opts.leaseDurationSeconds ?? RUN_DEFAULTS.leaseDurationSeconds;
    this.elector = new LeaderElector({
      client: this.client,
      namespace: this.opts.leaseNamespace ?? this.client.namespace ?? "default",
      name: this.opts.leaseName ?? OPERATOR_NAME,
      identity: this.identity,
      leaseDurationSeconds: leaseSeconds,
      renewDeadlineSeconds: Math.max(2, Math.floor((leaseSeconds * 2) / 3)),
      retryPeriodSeconds: Math.max(1, Math.floor(leaseSeconds / 7)),
      logger: this.log,
    });
    void this.elector.run({
      onStartedLeading: async () => {
        this.leading = true;
        this.metrics.leader.set(1);
        this.log.info({ identity: this.identity }, "became leader");
        try {
          await this.startControllers();
        } catch (err) {
          this.log.error({ err }, "controllers failed to start");
          this.opts.onLostLeadership?.();
        }
      },
      onStoppedLeading: () => {
        const wasLeading = this.leading;
        this.leading = false;
        this.metrics.leader.set(0);
        if (!wasLeading || this.stopping) return;
        this.log.warn({ identity: this.identity }, "lost leadership; stopping controllers");
        void this.stopControllers().then(() => this.opts.onLostLeadership?.());
      },
    });
  }

  /** A cache of one resource, typed by it (or by its projection, with a transform). */
  private informer<R extends ResourceType, T extends KubeObject = ObjectOf<R>>(
    resource: R,
    opts: InformerChoice<T> = {},
  ): SharedCache<T> {
    const make = (namespace: string | undefined) =>
      new Informer<T>({
        ...opts,
        client: this.client,
        resource,
        ...(namespace === undefined ? {} : { namespace }),
        logger: this.log.child({
          informer: resource.plural,
          ...(namespace === undefined ? {} : { namespace }),
        }),
        resyncMs: this.opts.resyncMs ?? RUN_DEFAULTS.resyncSeconds * 1000,
      });
    const namespaces = this.opts.namespaces ?? [];
    const inf: SharedCache<T> =
      !resource.namespaced || namespaces.length === 0
        ? make(undefined)
        : namespaces.length === 1
          ? make(namespaces[0])
          : new NamespacedInformers(namespaces, make);
    this.informers.push(inf);
    return inf;
  }

  /**
   * One line when the API server starts refusing a kind of request (with the server's
   * message, or the credential failure's cause, and who we are), one when all refusals
   * are gone. /readyz fails in between.
   */
  private logAuthStatus(
    refused: ReadonlyMap<string, ApiError>,
    latest: ApiError | undefined,
  ): void {
    const connection = this.client.source;
    if (latest === undefined) {
      this.log.info({ connection }, "API server accepts our requests again");
      return;
    }
    const cause = latest.cause instanceof Error ? latest.cause : undefined;
    const why =
      latest.status === 403
        ? "API server forbids a request (RBAC of this identity)"
        : latest.status === 401
          ? "API server rejects our credentials (401)"
          : "could not obtain credentials";
    this.log.error(
      {
        err: latest,
        status: latest.status,
        reason: latest.reason,
        cause: cause === undefined ? undefined : describeCause(cause),
        refused: [...refused.keys()],
        connection,
      },
      `${why}; not ready, retrying with backoff`,
    );
  }

  /** Kinds from optional CRDs (Karpenter, KEDA) are watched only when installed. */
  private async installed(r: ResourceType, what: string): Promise<boolean> {
    for (let failures = 0; ; failures++) {
      try {
        // In the namespaced install mode a cluster-wide list of a namespaced kind is forbidden.
        const ns = r.namespaced ? this.opts.namespaces?.[0] : undefined;
        await this.client.list(r, { limit: 1, ...(ns === undefined ? {} : { namespace: ns }) });
        return true;
      } catch (err) {
        if (err instanceof ApiError && err.status === 404) {
          this.log.warn(
            `${r.group}/${r.version} ${r.kind} CRD not found: ${what} will be reported as unavailable`,
          );
          return false;
        }
        // Refused or unreachable: wait and ask again rather than give up the controllers.
        if (this.stopping) throw err;
        const delayMs = jitter(backoffDelay(failures, DISCOVERY_BACKOFF), 0.5);
        this.log.warn(
          { err, resource: r.plural, attempt: failures + 1, delayMs, auth: isAuthFailure(err) },
          "cannot tell whether an optional CRD is installed; retrying",
        );
        await new Promise((resolve) => setTimeout(resolve, delayMs));
      }
    }
  }

  /** Informers, then the event handlers that enqueue, then (once synced) the workers. */
  private async startControllers(): Promise<void> {
    const queue = new WorkQueue({
      onError: (key, err, attempt, retryInMs) => {
        this.metrics.reconciles.inc({ result: "error" });
        this.log.error({ err, key, attempt, retryInMs }, "reconcile failed; retrying with backoff");
      },
    });
    this.queue = queue;
    const caches = await this.watchCaches();
    const appliedMemo = new Map<string, AppliedMemo>();
    this.enqueueOnChanges(queue, caches, appliedMemo);
    this.events = new ApiEventRecorder(this.client, this.identity, this.log);
    const deps: ReconcilerDeps = {
      client: this.client,
      log: this.log,
      events: this.events,
      now: () => new Date(),
      ...(this.opts.render === undefined ? {} : { render: this.opts.render }),
      statusMemo: new Map(),
      appliedMemo,
      caches,
    };
    for (const inf of this.informers) inf.start();
    await Promise.all(this.informers.map((i) => i.waitForSync()));
    this.synced = true;
    this.log.info({ objects: caches.msd.list().length }, "caches synced; reconciling");
    this.startAutoscaler(caches);
    this.startWorkers(queue, deps, caches.msd);
  }

  /**
   * One informer for the resources, their pods and each owned kind (a kind from an optional CRD
   * only when it is installed), and Karpenter's NodeClaims and events when NodePools are owned.
   */
  private async watchCaches(): Promise<WatchedCaches> {
    const msd = this.informer(RESOURCES.msd);
    const pods = this.informer(RESOURCES.pod, {
      labelSelector: MANAGED_SELECTOR,
      transform: slimPod,
    });
    const owned = new Map<string, SharedCache<KubeObject>>();
    for (const k of OWNED_KINDS) {
      const r = k.resource;
      if (k.optionalCrd !== undefined && !(await this.installed(r, k.optionalCrd.neededFor))) {
        continue;
      }
      owned.set(r.kind, this.informer(r, { labelSelector: MANAGED_SELECTOR }));
    }
    const karpenter = owned.has(RESOURCES.nodePool.kind);
    // NodeClaims carry our pool template's owner-uid label; events are Karpenter's only.
    const nodeClaims = karpenter
      ? this.informer(RESOURCES.nodeClaim, { labelSelector: OWNER_UID_LABEL })
      : undefined;
    const karpenterEvents = karpenter
      ? this.informer(RESOURCES.coreEvent, {
          fieldSelector: "source=karpenter",
          transform: slimEvent,
        })
      : undefined;
    return { msd, pods, owned, nodeClaims, karpenterEvents };
  }

  /** Every change enqueues the resource it belongs to; a deleted object drops its apply memo. */
  private enqueueOnChanges(
    queue: WorkQueue,
    caches: WatchedCaches,
    appliedMemo: Map<string, AppliedMemo>,
  ): void {
    const { msd, pods, owned, nodeClaims, karpenterEvents } = caches;
    const enqueue = (obj: KubeObject) => queue.add(objectKey(obj));
    msd.addHandlers({ ...forEvery(enqueue), onResync: enqueue });
    const enqueueOwner = (obj: KubeObject) => {
      const key = ownerKey(obj);
      if (key !== undefined) queue.add(key);
      // A shared model cache (claim, loader Job) names each resource using it, none as controller.
      for (const k of sharedOwnerKeys(obj)) queue.add(k);
    };
    for (const inf of [...owned.values(), pods]) {
      inf.addHandlers({
        onAdd: enqueueOwner,
        onUpdate: (_o, n) => enqueueOwner(n),
        onDelete: (o) => {
          appliedMemo.delete(memoKeyOf(o));
          enqueueOwner(o);
        },
      });
    }
    // A NodeClaim names its owner by uid; an event names the pod it is about.
    nodeClaims?.addHandlers(
      forEvery((c: NodeClaim) => {
        const uid = c.metadata.labels?.[OWNER_UID_LABEL];
        const owner = msd.list().find((m) => m.metadata.uid === uid);
        if (owner !== undefined) enqueue(owner);
      }),
    );
    karpenterEvents?.addHandlers(
      forEvery((e: SlimEvent) => {
        const o = e.involvedObject;
        if (o?.kind !== "Pod" || o.namespace === undefined || o.name === undefined) return;
        const pod = pods.get(objectKey({ metadata: { namespace: o.namespace, name: o.name } }));
        if (pod !== undefined) enqueueOwner(pod);
      }),
    );
  }

  private startAutoscaler(caches: WatchedCaches): void {
    this.autoscaler = new BuiltinAutoscaler({
      client: this.client,
      log: this.log,
      events: this.events!,
      caches: { msd: caches.msd, pods: caches.pods },
      intervalMs: this.opts.autoscaleIntervalMs ?? RUN_DEFAULTS.autoscaleIntervalSeconds * 1000,
      scrapeTimeoutMs: 2_000,
    });
    this.autoscaler.start();
  }

  /** Reconciles keys from the queue, a few at a time, timing each and counting its result. */
  private startWorkers(queue: WorkQueue, deps: ReconcilerDeps, msd: SharedCache<KubeObject>): void {
    queue.start(async (key) => {
      const end = this.metrics.reconcileDuration.startTimer();
      try {
        const result = await reconcile(key, deps);
        this.metrics.reconciles.inc({
          result: result.requeueAfterMs === undefined ? "success" : "requeue",
        });
        this.observeReplicas(key, msd);
        return result;
      } finally {
        end();
        this.metrics.queueDepth.set(queue.len());
      }
    }, this.opts.concurrency ?? RUN_DEFAULTS.concurrency);
  }

  private observeReplicas(key: string, msd: SharedCache<MistralSmallDeploymentObject>): void {
    const obj = msd.get(key);
    const [namespace, name] = key.split("/") as [string, string];
    if (obj === undefined) {
      this.metrics.replicas.remove({ namespace, name, kind: "desired" });
      this.metrics.replicas.remove({ namespace, name, kind: "ready" });
      return;
    }
    // The stored spec, before the schema's defaults: what the user asked for, if a number.
    const desired = isPlainObject(obj.spec) ? obj.spec.replicas : undefined;
    this.metrics.replicas.set(
      { namespace, name, kind: "desired" },
      typeof desired === "number" ? desired : 0,
    );
    this.metrics.replicas.set({ namespace, name, kind: "ready" }, obj.status?.readyReplicas ?? 0);
  }

  /** One line per informer that cannot list or watch, naming the resource and the verb. */
  cacheProblems(): string[] {
    return this.informers.flatMap((i) => {
      const problem = i.unhealthy();
      return problem === undefined ? [] : [problem];
    });
  }

  private stopControllers(): Promise<void> {
    this.controllersStopped ??= (async () => {
      // Finish the reconcile (and the scaling decision) in flight, take no new work.
      await this.autoscaler?.stop();
      await this.queue?.shutDown();
      await Promise.all(this.informers.map((i) => i.stop()));
      await this.events?.flush();
      this.informers = [];
      this.synced = false;
    })();
    return this.controllersStopped;
  }

  /** SIGTERM: stop taking work, finish the reconcile in flight, release the lease. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.log.info("shutting down");
    await this.stopControllers();
    if (this.elector !== undefined) await this.elector.release();
    this.leading = false;
    await new Promise<void>((resolve) =>
      this.server === undefined ? resolve() : this.server.close(() => resolve()),
    );
    this.server?.closeAllConnections();
    this.client?.close();
    this.log.info("stopped");
  }

  writes(): number {
    return this.client.writes();
  }
}

export { WRITE_VERBS };
