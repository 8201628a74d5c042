/**
 * A thin Kubernetes REST client: connection and credentials from ./config.ts (per request,
 * so rotating and expiring credentials are picked up), requests and watches over one
 * keep-alive agent per client identity. Every request is counted by verb, so tests and
 * benchmarks can prove "zero writes when converged"; 401/403 answers are tracked so the
 * operator can report that the API server refuses it, and when it stops doing so.
 */
import {
  CredentialsError,
  loadConnection,
  type ConnectOptions,
  type Connection,
  type RequestCredentials,
} from "./config.ts";
import { createAgent, identityOf } from "./agent.ts";
import { LineDecoder } from "./lines.ts";
import { request as httpsRequest } from "node:https";
import { request as httpRequest, type Agent, type IncomingMessage } from "node:http";
import { URL } from "node:url";
import { USER_AGENT } from "../util/version.ts";

/** Upper bound for one non-watch request. */
export const REQUEST_TIMEOUT_MS = 30_000;

export class ApiError extends Error {
  override name = "ApiError";
  constructor(
    readonly status: number,
    readonly reason: string,
    message: string,
    readonly body?: unknown,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** A metav1.Status body, when the text is one. */
function parseStatus(text: string): { reason?: string; message?: string } | undefined {
  try {
    const parsed = JSON.parse(text) as unknown;
    return typeof parsed === "object" && parsed !== null
      ? (parsed as { reason?: string; message?: string })
      : undefined;
  } catch {
    return undefined; // not JSON: the caller quotes the raw text
  }
}

export function isNotFound(err: unknown): boolean {
  return err instanceof ApiError && err.status === 404;
}
export function isConflict(err: unknown): boolean {
  return err instanceof ApiError && err.status === 409;
}
export function isGone(err: unknown): boolean {
  return err instanceof ApiError && err.status === 410;
}
/** The API server did not accept our credentials (401), or they could not be obtained. */
export function isUnauthenticated(err: unknown): boolean {
  return err instanceof ApiError && (err.status === 401 || err.reason === "CredentialsFailed");
}
/** Refused for who we are: unauthenticated, or not allowed (403). */
export function isAuthFailure(err: unknown): boolean {
  return isUnauthenticated(err) || (err instanceof ApiError && err.status === 403);
}

export type Verb = "get" | "list" | "watch" | "create" | "update" | "patch" | "delete";
export const WRITE_VERBS: readonly Verb[] = ["create", "update", "patch", "delete"];

import { apiVersionOf, RESOURCES, type ResourceType } from "./resources.ts";
import type { Addressed, KubeObject, ObjectOf } from "./objects.ts";

export { apiVersionOf, RESOURCES, type ResourceType };
export type { KubeObject, ObjectOf } from "./objects.ts";

export function resourceFor(apiVersion: string, kind: string): ResourceType {
  const found = Object.values(RESOURCES).find(
    (r) => apiVersionOf(r) === apiVersion && r.kind === kind,
  );
  if (found === undefined) throw new Error(`no resource mapping for ${apiVersion} ${kind}`);
  return found;
}

export function collectionPath(r: ResourceType, namespace?: string): string {
  const base = r.group === "" ? `/api/${r.version}` : `/apis/${r.group}/${r.version}`;
  return r.namespaced && namespace !== undefined
    ? `${base}/namespaces/${encodeURIComponent(namespace)}/${r.plural}`
    : `${base}/${r.plural}`;
}

export function objectPath(r: ResourceType, name: string, namespace?: string): string {
  return `${collectionPath(r, namespace)}/${encodeURIComponent(name)}`;
}

/** The resource plural a request path addresses ("other" when not one of ours). */
export function resourceOfPath(path: string): string {
  const parts = path
    .split("?")[0]!
    .split("/")
    .filter((s) => s !== "");
  // From the end: ".../namespaces/x/leases/y" addresses leases, not namespaces.
  const found = [...parts]
    .reverse()
    .find((s) => Object.values(RESOURCES).some((r) => r.plural === s));
  return found ?? "other";
}

export interface ListOptions {
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  limit?: number;
  continue?: string;
}

export interface ObjectList<T> {
  metadata: { resourceVersion: string; continue?: string };
  items: T[];
}

export interface WatchEvent<T> {
  type: "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR";
  object: T;
}

export interface Watch {
  /** Resolves when the stream ends (server closed, error, or abort). */
  readonly done: Promise<void>;
  abort(): void;
}

/** What the client reports when the API server starts or stops refusing it. */
export interface AuthStatus {
  /** Refusals still standing, by "verb resource"; empty once every one has succeeded since. */
  readonly refused: ReadonlyMap<string, ApiError>;
  /** The refusal that changed the status, or undefined on recovery. */
  readonly latest: ApiError | undefined;
}

export class KubeClient {
  readonly server: URL;
  /** The context's or service account's namespace, if any. */
  readonly namespace: string | undefined;
  /** Which kubeconfig/context/user or service account this client authenticates as. */
  readonly source: string;
  /** Requests made, by verb and by resource plural. */
  readonly counts = new Map<string, number>();
  onRequest: ((verb: Verb, path: string, status: number) => void) | undefined;
  /** Called when a new refusal (401/403, failed credentials) appears and when all are gone. */
  onAuthStatus: ((status: AuthStatus) => void) | undefined;
  private readonly refusals = new Map<string, ApiError>();
  private agent: { identity: string; agent: Agent } | undefined;
  private readonly agents: Agent[] = [];

  private constructor(private readonly conn: Connection) {
    this.server = new URL(conn.server);
    this.namespace = conn.namespace;
    this.source = conn.source;
  }

  /**
   * From `--kubeconfig`/`--context` (a path alone is accepted too), else $KUBECONFIG,
   * in-cluster config, ~/.kube/config.
   */
  static async load(opts: ConnectOptions | string = {}): Promise<KubeClient> {
    return new KubeClient(
      await loadConnection(typeof opts === "string" ? { kubeconfig: opts } : opts),
    );
  }

  static fromConnection(conn: Connection): KubeClient {
    return new KubeClient(conn);
  }

  /** Whether the API server currently refuses any request we make (401/403). */
  refused(): ReadonlyMap<string, ApiError> {
    return this.refusals;
  }

  /** One agent per client certificate: exec plugins may rotate it, connections keep theirs. */
  private agentFor(creds: RequestCredentials): Agent {
    const identity = identityOf(creds);
    if (this.agent?.identity !== identity) {
      const agent = createAgent(this.conn, creds);
      this.agents.push(agent);
      this.agent = { identity, agent };
    }
    return this.agent.agent;
  }

  private trackAuth(verb: Verb, path: string, err: ApiError | undefined): void {
    const key = `${verb} ${resourceOfPath(path)}`;
    if (err !== undefined && isAuthFailure(err)) {
      const isNew = !this.refusals.has(key);
      this.refusals.set(key, err);
      if (isNew) this.onAuthStatus?.({ refused: this.refusals, latest: err });
    } else if (err === undefined && this.refusals.delete(key) && this.refusals.size === 0) {
      this.onAuthStatus?.({ refused: this.refusals, latest: undefined });
    }
  }

  writes(): number {
    let n = 0;
    for (const v of WRITE_VERBS) n += this.counts.get(v) ?? 0;
    return n;
  }

  private count(verb: Verb, path: string): void {
    this.counts.set(verb, (this.counts.get(verb) ?? 0) + 1);
    const key = `${verb}:${resourceOfPath(path)}`;
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
  }

  private async open(
    verb: Verb,
    method: string,
    path: string,
    headers: Record<string, string>,
    body: string | undefined,
    signal?: AbortSignal,
  ): Promise<IncomingMessage> {
    let creds: RequestCredentials;
    try {
      creds = await this.conn.credentials();
    } catch (err) {
      const failure = new ApiError(
        0,
        "CredentialsFailed",
        `${method} ${path}: no credentials (${this.source}): ${(err as Error).message}`,
        undefined,
        { cause: err instanceof CredentialsError ? err : new CredentialsError(String(err)) },
      );
      this.trackAuth(verb, path, failure);
      throw failure;
    }
    const isHttps = this.server.protocol === "https:";
    const url = new URL(path, this.server);
    const agent = this.agentFor(creds);
    return new Promise((resolve, reject) => {
      const req = (isHttps ? httpsRequest : httpRequest)(
        url,
        {
          agent,
          method,
          headers: {
            ...creds.headers,
            "User-Agent": USER_AGENT,
            Accept: "application/json",
            ...headers,
            ...(body === undefined ? {} : { "Content-Length": String(Buffer.byteLength(body)) }),
          },
          ...(signal === undefined ? {} : { signal }),
        },
        resolve,
      );
      req.on("error", reject);
      if (signal === undefined) {
        // A request that never answers must not hold a worker forever (watches pass a signal).
        req.setTimeout(REQUEST_TIMEOUT_MS, () =>
          req.destroy(new Error(`no answer within ${REQUEST_TIMEOUT_MS} ms`)),
        );
      }
      if (body !== undefined) req.write(body);
      req.end();
    });
  }

  async request<T>(
    verb: Verb,
    method: string,
    path: string,
    body?: unknown,
    contentType = "application/json",
  ): Promise<T> {
    this.count(verb, path);
    let res: IncomingMessage;
    const payload = body === undefined ? undefined : JSON.stringify(body);
    try {
      res = await this.open(
        verb,
        method,
        path,
        payload === undefined ? {} : { "Content-Type": contentType },
        payload,
      );
    } catch (err) {
      this.onRequest?.(verb, path, 0);
      if (err instanceof ApiError) throw err;
      throw new ApiError(
        0,
        "ConnectionFailed",
        `${method} ${path}: ${(err as Error).message}`,
        undefined,
        {
          cause: err,
        },
      );
    }
    const chunks: Buffer[] = [];
    for await (const c of res) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString("utf8");
    const status = res.statusCode ?? 0;
    this.onRequest?.(verb, path, status);
    let parsed: unknown = undefined;
    try {
      parsed = text === "" ? undefined : JSON.parse(text);
    } catch {
      parsed = text;
    }
    if (status < 200 || status >= 300) {
      const st = parsed as { reason?: string; message?: string } | undefined;
      const err = new ApiError(
        status,
        st?.reason ?? "Unknown",
        `${method} ${path}: ${status} ${st?.message ?? text.slice(0, 500)}`,
        parsed,
      );
      this.trackAuth(verb, path, err);
      throw err;
    }
    this.trackAuth(verb, path, undefined);
    return parsed as T;
  }

  // The reads are typed by the resource (`get(RESOURCES.deployment, ...)` is a Deployment)
  // unless the caller names the type it reads (`get<Lease>(...)`).
  get<R extends ResourceType>(r: R, name: string, namespace?: string): Promise<ObjectOf<R>>;
  get<T extends KubeObject>(r: ResourceType, name: string, namespace?: string): Promise<T>;
  get<T extends KubeObject>(r: ResourceType, name: string, namespace?: string): Promise<T> {
    return this.request<T>("get", "GET", objectPath(r, name, namespace));
  }

  getOrUndefined<R extends ResourceType>(
    r: R,
    name: string,
    namespace?: string,
  ): Promise<ObjectOf<R> | undefined>;
  getOrUndefined<T extends KubeObject>(
    r: ResourceType,
    name: string,
    namespace?: string,
  ): Promise<T | undefined>;
  async getOrUndefined<T extends KubeObject>(
    r: ResourceType,
    name: string,
    namespace?: string,
  ): Promise<T | undefined> {
    try {
      return await this.get<T>(r, name, namespace);
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  list<R extends ResourceType>(r: R, opts?: ListOptions): Promise<ObjectList<ObjectOf<R>>>;
  list<T extends KubeObject>(r: ResourceType, opts?: ListOptions): Promise<ObjectList<T>>;
  list<T extends KubeObject>(r: ResourceType, opts: ListOptions = {}): Promise<ObjectList<T>> {
    const q = new URLSearchParams();
    if (opts.labelSelector !== undefined) q.set("labelSelector", opts.labelSelector);
    if (opts.fieldSelector !== undefined) q.set("fieldSelector", opts.fieldSelector);
    if (opts.limit !== undefined) q.set("limit", String(opts.limit));
    if (opts.continue !== undefined) q.set("continue", opts.continue);
    const qs = q.toString();
    return this.request(
      "list",
      "GET",
      `${collectionPath(r, opts.namespace)}${qs === "" ? "" : `?${qs}`}`,
    );
  }

  create<T extends KubeObject>(r: ResourceType, obj: unknown, namespace?: string): Promise<T> {
    return this.request("create", "POST", collectionPath(r, namespace), obj);
  }

  /** Server-side apply with our field manager; `force` takes fields other managers set. */
  apply<T extends KubeObject>(
    r: ResourceType,
    obj: Addressed,
    fieldManager: string,
    opts: { subresource?: "status"; force?: boolean; dryRun?: boolean } = {},
  ): Promise<T> {
    const q = new URLSearchParams({ fieldManager, force: String(opts.force ?? true) });
    if (opts.dryRun === true) q.set("dryRun", "All");
    const path = `${objectPath(r, obj.metadata.name, obj.metadata.namespace)}${
      opts.subresource === undefined ? "" : `/${opts.subresource}`
    }?${q.toString()}`;
    return this.request("patch", "PATCH", path, obj, "application/apply-patch+yaml");
  }

  mergePatch<T extends KubeObject>(
    r: ResourceType,
    name: string,
    namespace: string | undefined,
    patch: unknown,
    subresource?: string,
  ): Promise<T> {
    const path = `${objectPath(r, name, namespace)}${subresource === undefined ? "" : `/${subresource}`}`;
    return this.request("patch", "PATCH", path, patch, "application/merge-patch+json");
  }

  update<T extends KubeObject>(r: ResourceType, obj: Addressed, subresource?: string): Promise<T> {
    const path = `${objectPath(r, obj.metadata.name, obj.metadata.namespace)}${subresource === undefined ? "" : `/${subresource}`}`;
    return this.request("update", "PUT", path, obj);
  }

  async delete(
    r: ResourceType,
    name: string,
    namespace?: string,
    opts: { propagationPolicy?: "Foreground" | "Background" | "Orphan"; uid?: string } = {},
  ): Promise<boolean> {
    const body = {
      apiVersion: "v1",
      kind: "DeleteOptions",
      propagationPolicy: opts.propagationPolicy ?? "Background",
      ...(opts.uid === undefined ? {} : { preconditions: { uid: opts.uid } }),
    };
    try {
      await this.request("delete", "DELETE", objectPath(r, name, namespace), body);
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  /**
   * Streams watch events from `resourceVersion` (with bookmarks). The server ends
   * the stream after its timeout; callers re-watch from the last version seen.
   */
  watch<T extends KubeObject>(
    r: ResourceType,
    opts: {
      namespace?: string;
      resourceVersion: string;
      labelSelector?: string;
      fieldSelector?: string;
      timeoutSeconds?: number;
      /** Called once the server has accepted the watch (HTTP 200), before any event. */
      onOpen?: () => void;
    },
    onEvent: (e: WatchEvent<T>) => void,
  ): Watch {
    const controller = new AbortController();
    const q = new URLSearchParams({
      watch: "true",
      allowWatchBookmarks: "true",
      resourceVersion: opts.resourceVersion,
      timeoutSeconds: String(opts.timeoutSeconds ?? 300),
    });
    if (opts.labelSelector !== undefined) q.set("labelSelector", opts.labelSelector);
    if (opts.fieldSelector !== undefined) q.set("fieldSelector", opts.fieldSelector);
    const path = `${collectionPath(r, opts.namespace)}?${q.toString()}`;
    this.count("watch", path);
    const done = (async () => {
      const res = await this.open("watch", "GET", path, {}, undefined, controller.signal);
      if ((res.statusCode ?? 0) !== 200) {
        const chunks: Buffer[] = [];
        for await (const c of res) chunks.push(c as Buffer);
        const text = Buffer.concat(chunks).toString("utf8");
        const st = parseStatus(text);
        const err = new ApiError(
          res.statusCode ?? 0,
          st?.reason ?? "WatchFailed",
          `watch ${path}: ${res.statusCode} ${st?.message ?? text.slice(0, 300)}`,
          st,
        );
        this.trackAuth("watch", path, err);
        throw err;
      }
      this.trackAuth("watch", path, undefined);
      opts.onOpen?.();
      // Chunks end anywhere, even inside a UTF-8 character: decode as a stream.
      const lines = new LineDecoder();
      const deliver = (line: string) => {
        if (line.trim() !== "") onEvent(JSON.parse(line) as WatchEvent<T>);
      };
      for await (const chunk of res) lines.push(chunk as Buffer).forEach(deliver);
      lines.end().forEach(deliver);
    })().catch((err: unknown) => {
      if (controller.signal.aborted) return;
      throw err;
    });
    return { done, abort: () => controller.abort() };
  }

  close(): void {
    for (const agent of this.agents) agent.destroy();
  }
}
