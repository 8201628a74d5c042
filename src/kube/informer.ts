/**
 * A shared-informer-style cache of one resource type: list, then watch from the list's
 * resourceVersion, keeping an in-memory copy and telling handlers what changed.
 *
 * Recovery follows client-go's reflector: a watch the server ends (timeout) resumes from
 * the last resourceVersion seen, bookmarks included; 410 Gone means that version was
 * compacted away, so the informer relists and diffs the result against its cache; any
 * other failure reconnects with jittered exponential backoff.
 *
 * Cached objects are shared with every handler and caller: treat them as read-only.
 */
import {
  ApiError,
  apiVersionOf,
  isGone,
  type KubeClient,
  type KubeObject,
  type ResourceType,
  type Watch,
  type WatchEvent,
} from "./client.ts";
import type { Addressed } from "./objects.ts";
import { backoffDelay, jitter, type BackoffOptions } from "./queue.ts";

type LogFn = (obj: object, msg?: string) => void;

/** The subset of pino's logger the controller uses. */
export interface Logger {
  info: LogFn;
  warn: LogFn;
  error: LogFn;
  debug: LogFn;
}

export interface InformerHandlers<T> {
  onAdd?(obj: T): void;
  onUpdate?(oldObj: T, newObj: T): void;
  onDelete?(obj: T): void;
  /** Every cached object, every resync period: a safety net for missed or mishandled events. */
  onResync?(obj: T): void;
}

export interface InformerOptions<T extends KubeObject = KubeObject> {
  client: KubeClient;
  resource: ResourceType;
  /** Omit to watch all namespaces (or for cluster-scoped resources). */
  namespace?: string;
  labelSelector?: string;
  /** e.g. `source=karpenter` for the Events another component wrote. */
  fieldSelector?: string;
  logger: Logger;
  /** Resync period; 0 disables. Default 10 minutes. */
  resyncMs?: number;
  /** Resync period spread, as a fraction. Default 0.1 (±10%). */
  resyncJitter?: number;
  /** List page size. Default 500. */
  pageSize?: number;
  /** Server-side watch timeout; default a random 5–10 minutes per watch, so informers
   * started together do not all re-watch at once. */
  watchTimeoutSeconds?: number;
  /**
   * Projects an object before it is cached (client-go's SetTransform): keep only what the
   * handlers read. Applied to list items and watch events alike. T is then the projection's
   * type, which the full object also satisfies.
   */
  transform?: (obj: T) => T;
  /** Reconnect backoff. Default 500 ms doubling to 30 s, each delay jittered ±50%. */
  reconnectBackoff?: Partial<BackoffOptions>;
}

export class InformerError extends Error {
  override name = "InformerError";
}

export class InformerStoppedError extends InformerError {
  override name = "InformerStoppedError";
}

/** "namespace/name", or "name" for cluster-scoped objects: the cache and work-queue key. */
export function objectKey(obj: Addressed): string {
  const { namespace, name } = obj.metadata;
  return namespace === undefined || namespace === "" ? name : `${namespace}/${name}`;
}

const DEFAULT_RECONNECT: BackoffOptions = { baseDelayMs: 500, factor: 2, maxDelayMs: 30_000 };
/** A watch that ends sooner than this with no events is treated as a failed connection,
 * so a server that keeps closing watches at once is not hammered in a tight loop. */
const MIN_HEALTHY_WATCH_MS = 1_000;

interface Status {
  code?: number;
  reason?: string;
  message?: string;
}

type HandlerEvent = "add" | "update" | "delete" | "resync";

export class Informer<T extends KubeObject> {
  private cache = new Map<string, T>();
  private readonly handlers: InformerHandlers<T>[] = [];
  private resourceVersion = "";
  private synced = false;
  private stopped = false;
  private loop: Promise<void> | undefined;
  private watch: Watch | undefined;
  private wake: (() => void) | undefined;
  private resyncTimer: ReturnType<typeof setTimeout> | undefined;
  private readonly syncedPromise: Promise<void>;
  private resolveSynced!: () => void;
  private rejectSynced!: (err: Error) => void;
  private readonly reconnect: BackoffOptions;
  /** Why this cache cannot be trusted right now (a list or watch keeps failing), if it cannot. */
  private problem: string | undefined;

  constructor(private readonly opts: InformerOptions<T>) {
    this.reconnect = { ...DEFAULT_RECONNECT, ...opts.reconnectBackoff };
    this.syncedPromise = new Promise<void>((resolve, reject) => {
      this.resolveSynced = resolve;
      this.rejectSynced = reject;
    });
    // Marks the rejection handled: stopping before sync must not crash a process that
    // never called waitForSync(). Callers that did still see the rejection.
    this.syncedPromise.catch(() => undefined);
  }

  /** Adds handlers; added after the initial sync, they get onAdd for every cached object. */
  addHandlers(handlers: InformerHandlers<T>): void {
    this.handlers.push(handlers);
    if (!this.synced) return;
    for (const obj of this.cache.values()) this.call([handlers], "add", obj, (h) => h.onAdd?.(obj));
  }

  start(): void {
    if (this.loop !== undefined)
      throw new InformerError(`informer for ${this.describe()} already started`);
    if (this.stopped) throw new InformerStoppedError(`informer for ${this.describe()} was stopped`);
    this.loop = this.run();
  }

  /** Stops watching and resyncing; resolves when the loop has exited (a list page in
   * flight is not cancellable and is waited for). */
  stop(): Promise<void> {
    this.stopped = true;
    this.watch?.abort();
    this.wake?.();
    clearTimeout(this.resyncTimer);
    if (!this.synced) {
      this.rejectSynced(
        new InformerStoppedError(`informer for ${this.describe()} stopped before sync`),
      );
    }
    return this.loop ?? Promise.resolve();
  }

  /**
   * Undefined while the cache is fed; otherwise which verb on which resource fails and the API
   * server's answer: every list failure until a list succeeds, and a watch refused as
   * unauthorized, forbidden or not found (it will not heal by retrying) until one is accepted.
   */
  unhealthy(): string | undefined {
    return this.problem;
  }

  /** Resolves after the first full list has been cached and its onAdd events delivered. */
  waitForSync(): Promise<void> {
    return this.syncedPromise;
  }

  get(key: string): T | undefined {
    return this.cache.get(key);
  }

  list(): T[] {
    return [...this.cache.values()];
  }

  private describe(): string {
    const { resource, namespace, labelSelector } = this.opts;
    const scope = namespace === undefined ? "" : ` in ${namespace}`;
    return `${resource.plural}${scope}${labelSelector === undefined ? "" : ` (${labelSelector})`}`;
  }

  private logContext(): Record<string, unknown> {
    const { resource, namespace, labelSelector } = this.opts;
    return { resource: resource.plural, namespace, labelSelector };
  }

  private async run(): Promise<void> {
    let mustList = true;
    let failures = 0; // consecutive connection failures
    let expiries = 0; // consecutive 410s; the first relists at once
    while (!this.stopped) {
      let delayMs = 0;
      try {
        if (mustList) {
          await this.relist();
          mustList = false;
        }
        if (await this.watchOnce()) {
          failures = 0;
          expiries = 0;
        } else {
          failures += 1;
          delayMs = this.reconnectDelay(failures);
          this.opts.logger.debug(
            { ...this.logContext(), delayMs },
            "watch closed at once; backing off",
          );
        }
      } catch (err) {
        if (this.stopped) break;
        if (isGone(err)) {
          mustList = true;
          expiries += 1;
          delayMs = expiries > 1 ? this.reconnectDelay(expiries - 1) : 0;
          this.opts.logger.info(
            { ...this.logContext(), err, delayMs },
            "resourceVersion expired; relisting",
          );
        } else {
          failures += 1;
          delayMs = this.reconnectDelay(failures);
          const what = mustList ? "list" : "watch";
          this.recordFailure(what, err);
          this.opts.logger.warn(
            { ...this.logContext(), err, attempt: failures, delayMs },
            `${what} failed; retrying`,
          );
        }
      }
      if (delayMs > 0 && !this.stopped) await this.sleep(delayMs);
    }
  }

  private recordFailure(verb: "list" | "watch", err: unknown): void {
    const status = err instanceof ApiError ? err.status : 0;
    if (verb === "watch" && status !== 401 && status !== 403 && status !== 404) return;
    const body =
      err instanceof ApiError ? (err.body as { message?: string } | undefined) : undefined;
    const why = body?.message ?? (err as Error).message;
    this.problem = `cannot ${verb} ${this.describe()}: ${status === 0 ? "" : `${status} `}${why}`;
  }

  private reconnectDelay(failures: number): number {
    const delay = backoffDelay(failures - 1, this.reconnect);
    return Math.min(this.reconnect.maxDelayMs, jitter(delay, 0.5));
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => done(), ms);
      const done = (): void => {
        clearTimeout(timer);
        this.wake = undefined;
        resolve();
      };
      this.wake = done;
    });
  }

  private async listAll(): Promise<{ items: T[]; resourceVersion: string }> {
    const { client, resource, namespace, labelSelector, fieldSelector } = this.opts;
    const items: T[] = [];
    let cont: string | undefined;
    let resourceVersion = "";
    do {
      const page = await client.list<T>(resource, {
        namespace,
        labelSelector,
        fieldSelector,
        limit: this.opts.pageSize ?? 500,
        continue: cont,
      });
      items.push(...page.items);
      resourceVersion = page.metadata.resourceVersion;
      // An expired continue token is a 410 and so restarts the whole list via run().
      cont = page.metadata.continue === "" ? undefined : page.metadata.continue;
    } while (cont !== undefined && !this.stopped);
    for (const item of items) this.fillTypeMeta(item);
    return { items: items.map((i) => this.project(i)), resourceVersion };
  }

  /**
   * List items of built-in types come without apiVersion/kind; watch events have them.
   * managedFields are dropped: nothing here reads them and they are a large share of
   * every cached object (the operator's memory at 500 resources).
   */
  private fillTypeMeta(obj: T): void {
    delete obj.metadata.managedFields;
    obj.apiVersion ??= apiVersionOf(this.opts.resource);
    obj.kind ??= this.opts.resource.kind;
  }

  private project(obj: T): T {
    return this.opts.transform === undefined ? obj : this.opts.transform(obj);
  }

  /** Replaces the cache with a fresh list, emitting what changed relative to it. */
  private async relist(): Promise<void> {
    const { items, resourceVersion } = await this.listAll();
    if (this.stopped) return;
    this.problem = undefined;
    const previous = this.cache;
    const next = new Map(items.map((obj) => [objectKey(obj), obj] as const));
    this.cache = next;
    this.resourceVersion = resourceVersion;
    for (const [key, obj] of next) this.diffOne(previous.get(key), obj);
    for (const [key, old] of previous) {
      if (!next.has(key)) this.emit("delete", old, (h) => h.onDelete?.(old));
    }
    this.opts.logger.debug(
      { ...this.logContext(), objects: next.size, resourceVersion },
      this.synced ? "relisted" : "listed",
    );
    if (!this.synced) this.markSynced();
  }

  private diffOne(old: T | undefined, obj: T): void {
    if (old === undefined) return this.emit("add", obj, (h) => h.onAdd?.(obj));
    // Same name, new uid: deleted and recreated while we were not watching.
    if (old.metadata.uid !== obj.metadata.uid) {
      this.emit("delete", old, (h) => h.onDelete?.(old));
      return this.emit("add", obj, (h) => h.onAdd?.(obj));
    }
    if (old.metadata.resourceVersion !== obj.metadata.resourceVersion) {
      this.emit("update", obj, (h) => h.onUpdate?.(old, obj));
    }
  }

  private markSynced(): void {
    this.synced = true;
    this.resolveSynced();
    this.scheduleResync();
  }

  /**
   * One watch, from the last resourceVersion seen, until the server ends it. Returns
   * whether it looked healthy; throws on failure, an ApiError for ERROR events.
   */
  private async watchOnce(): Promise<boolean> {
    if (this.stopped) return true;
    const { client, resource, namespace, labelSelector, fieldSelector } = this.opts;
    const startedAt = Date.now();
    let received = 0;
    let failure: ApiError | undefined;
    const watch = client.watch<T>(
      resource,
      {
        namespace,
        labelSelector,
        fieldSelector,
        resourceVersion: this.resourceVersion,
        timeoutSeconds: this.opts.watchTimeoutSeconds ?? Math.round(300 + Math.random() * 300),
        // Accepted: permissions are back, whatever the last attempt said.
        onOpen: () => {
          this.problem = undefined;
        },
      },
      (event) => {
        // The client may still hand over lines it had buffered before abort().
        if (failure !== undefined || this.stopped) return;
        received += 1;
        if (event.type === "ERROR") {
          failure = this.statusError(event.object as unknown as Status);
          watch.abort();
          return;
        }
        this.apply(event);
      },
    );
    this.watch = watch;
    try {
      await watch.done;
    } finally {
      this.watch = undefined;
    }
    if (failure !== undefined) throw failure;
    return received > 0 || Date.now() - startedAt >= MIN_HEALTHY_WATCH_MS;
  }

  private statusError(status: Status): ApiError {
    const code = status.code ?? 0;
    const message = `watch ${this.describe()}: ERROR event ${code} ${status.message ?? ""}`;
    return new ApiError(code, status.reason ?? "WatchError", message, status);
  }

  private apply(event: WatchEvent<T>): void {
    const rv = event.object.metadata?.resourceVersion;
    if (rv !== undefined && rv !== "") this.resourceVersion = rv;
    if (event.type === "BOOKMARK") return;
    this.fillTypeMeta(event.object);
    const obj = this.project(event.object);
    const key = objectKey(obj);
    const old = this.cache.get(key);
    if (event.type === "DELETED") {
      this.cache.delete(key);
      return this.emit("delete", obj, (h) => h.onDelete?.(obj));
    }
    this.cache.set(key, obj);
    if (old === undefined) this.emit("add", obj, (h) => h.onAdd?.(obj));
    else this.emit("update", obj, (h) => h.onUpdate?.(old, obj));
  }

  private scheduleResync(): void {
    const period = this.opts.resyncMs ?? 600_000;
    if (period <= 0 || this.stopped) return;
    this.resyncTimer = setTimeout(
      () => {
        this.resync();
        this.scheduleResync();
      },
      jitter(period, this.opts.resyncJitter ?? 0.1),
    );
  }

  private resync(): void {
    for (const obj of [...this.cache.values()]) this.emit("resync", obj, (h) => h.onResync?.(obj));
  }

  private emit(event: HandlerEvent, obj: T, fn: (h: InformerHandlers<T>) => void): void {
    this.call(this.handlers, event, obj, fn);
  }

  /** A handler that throws is logged and skipped: it must not stop the informer or the
   * other handlers. */
  private call(
    handlers: readonly InformerHandlers<T>[],
    event: HandlerEvent,
    obj: T,
    fn: (h: InformerHandlers<T>) => void,
  ): void {
    for (const h of handlers) {
      try {
        fn(h);
      } catch (err) {
        this.opts.logger.error(
          { ...this.logContext(), err, event, key: objectKey(obj) },
          "informer handler threw",
        );
      }
    }
  }
}

/** What the operator needs of a cache, whether one informer or one per namespace feeds it. */
export interface SharedCache<T extends KubeObject> {
  addHandlers(handlers: InformerHandlers<T>): void;
  start(): void;
  stop(): Promise<void>;
  waitForSync(): Promise<void>;
  unhealthy(): string | undefined;
  get(key: string): T | undefined;
  list(): T[];
}

/**
 * One informer per watched namespace behind one cache: the namespaced install mode, where
 * RBAC grants list/watch only in those namespaces and a cluster-wide watch would be forbidden.
 * Keys are "namespace/name", so a lookup goes straight to the namespace's informer.
 */
export class NamespacedInformers<T extends KubeObject> implements SharedCache<T> {
  private readonly byNamespace: ReadonlyMap<string, Informer<T>>;

  constructor(namespaces: readonly string[], make: (namespace: string) => Informer<T>) {
    if (namespaces.length === 0) {
      throw new InformerError("NamespacedInformers needs at least one namespace");
    }
    this.byNamespace = new Map(namespaces.map((ns) => [ns, make(ns)]));
  }

  private all(): Informer<T>[] {
    return [...this.byNamespace.values()];
  }

  addHandlers(handlers: InformerHandlers<T>): void {
    for (const i of this.all()) i.addHandlers(handlers);
  }

  start(): void {
    for (const i of this.all()) i.start();
  }

  async stop(): Promise<void> {
    await Promise.all(this.all().map((i) => i.stop()));
  }

  async waitForSync(): Promise<void> {
    await Promise.all(this.all().map((i) => i.waitForSync()));
  }

  unhealthy(): string | undefined {
    const problems = this.all().flatMap((i) => {
      const p = i.unhealthy();
      return p === undefined ? [] : [p];
    });
    return problems.length === 0 ? undefined : problems.join("\n");
  }

  get(key: string): T | undefined {
    const slash = key.indexOf("/");
    return slash < 0 ? undefined : this.byNamespace.get(key.slice(0, slash))?.get(key);
  }

  list(): T[] {
    return this.all().flatMap((i) => i.list());
  }
}
