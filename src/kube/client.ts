/**
 * A thin Kubernetes REST client: kubeconfig and auth from @kubernetes/client-node,
 * requests and watches over one keep-alive HTTPS agent. Every request is counted
 * by verb, so tests and benchmarks can prove "zero writes when converged".
 */
import { loadConnection, type Connection } from "./config.ts";
import { Agent as HttpsAgent, request as httpsRequest, type RequestOptions } from "node:https";
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from "node:http";
import { URL } from "node:url";
import { readFileSync } from "node:fs";

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

export type Verb = "get" | "list" | "watch" | "create" | "update" | "patch" | "delete";
export const WRITE_VERBS: readonly Verb[] = ["create", "update", "patch", "delete"];

export interface ResourceType {
  readonly group: string; // "" for core
  readonly version: string;
  readonly plural: string;
  readonly kind: string;
  readonly namespaced: boolean;
}

export const RESOURCES = {
  msd: {
    group: "serving.mistralsmall.dev",
    version: "v1alpha1",
    plural: "mistralsmalldeployments",
    kind: "MistralSmallDeployment",
    namespaced: true,
  },
  deployment: {
    group: "apps",
    version: "v1",
    plural: "deployments",
    kind: "Deployment",
    namespaced: true,
  },
  service: { group: "", version: "v1", plural: "services", kind: "Service", namespaced: true },
  pvc: {
    group: "",
    version: "v1",
    plural: "persistentvolumeclaims",
    kind: "PersistentVolumeClaim",
    namespaced: true,
  },
  pdb: {
    group: "policy",
    version: "v1",
    plural: "poddisruptionbudgets",
    kind: "PodDisruptionBudget",
    namespaced: true,
  },
  nodePool: {
    group: "karpenter.sh",
    version: "v1",
    plural: "nodepools",
    kind: "NodePool",
    namespaced: false,
  },
  pod: { group: "", version: "v1", plural: "pods", kind: "Pod", namespaced: true },
  event: {
    group: "events.k8s.io",
    version: "v1",
    plural: "events",
    kind: "Event",
    namespaced: true,
  },
  lease: {
    group: "coordination.k8s.io",
    version: "v1",
    plural: "leases",
    kind: "Lease",
    namespaced: true,
  },
  hpa: {
    group: "autoscaling",
    version: "v2",
    plural: "horizontalpodautoscalers",
    kind: "HorizontalPodAutoscaler",
    namespaced: true,
  },
  scaledObject: {
    group: "keda.sh",
    version: "v1alpha1",
    plural: "scaledobjects",
    kind: "ScaledObject",
    namespaced: true,
  },
  node: { group: "", version: "v1", plural: "nodes", kind: "Node", namespaced: false },
  persistentVolume: {
    group: "",
    version: "v1",
    plural: "persistentvolumes",
    kind: "PersistentVolume",
    namespaced: false,
  },
  namespace: {
    group: "",
    version: "v1",
    plural: "namespaces",
    kind: "Namespace",
    namespaced: false,
  },
} as const satisfies Record<string, ResourceType>;

export function resourceFor(apiVersion: string, kind: string): ResourceType {
  const found = Object.values(RESOURCES).find(
    (r) =>
      (r.group === "" ? r.version : `${r.group}/${r.version}`) === apiVersion && r.kind === kind,
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

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name: string;
    namespace?: string;
    uid?: string;
    resourceVersion?: string;
    generation?: number;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    ownerReferences?: {
      apiVersion: string;
      kind: string;
      name: string;
      uid: string;
      controller?: boolean;
    }[];
    finalizers?: string[];
    deletionTimestamp?: string;
    creationTimestamp?: string;
    managedFields?: unknown[];
  };
  [key: string]: unknown;
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

export class KubeClient {
  readonly server: URL;
  private readonly baseOptions: RequestOptions;
  private readonly agent: HttpsAgent | HttpAgent;
  /** Requests made, by verb and by resource plural. */
  readonly counts = new Map<string, number>();
  onRequest: ((verb: Verb, path: string, status: number) => void) | undefined;

  private constructor(conn: Connection) {
    this.server = new URL(conn.server);
    const isHttps = this.server.protocol === "https:";
    this.agent = isHttps
      ? new HttpsAgent({ keepAlive: true, maxSockets: 64 })
      : new HttpAgent({ keepAlive: true, maxSockets: 64 });
    this.baseOptions = { ...conn.options, agent: this.agent };
    this.tokenFile = conn.tokenFile;
  }

  private readonly tokenFile: string | undefined;
  private token: { value: string; readAt: number } | undefined;

  /** Authorization from a rotating token file, re-read at most once a minute. */
  private authHeader(): Record<string, string> {
    if (this.tokenFile === undefined) return {};
    if (this.token === undefined || Date.now() - this.token.readAt > 60_000) {
      this.token = { value: readFileSync(this.tokenFile, "utf8").trim(), readAt: Date.now() };
    }
    return { Authorization: `Bearer ${this.token.value}` };
  }

  /** From a kubeconfig file, or $KUBECONFIG / in-cluster config when no path is given. */
  static async load(kubeconfigPath?: string): Promise<KubeClient> {
    return new KubeClient(await loadConnection(kubeconfigPath));
  }

  writes(): number {
    let n = 0;
    for (const v of WRITE_VERBS) n += this.counts.get(v) ?? 0;
    return n;
  }

  totalRequests(): number {
    let n = 0;
    for (const [k, v] of this.counts) if (!k.includes(":")) n += v;
    return n;
  }

  private count(verb: Verb, path: string): void {
    this.counts.set(verb, (this.counts.get(verb) ?? 0) + 1);
    const key = `${verb}:${resourceOfPath(path)}`;
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
  }

  private open(
    method: string,
    path: string,
    headers: Record<string, string>,
    body: string | undefined,
    signal?: AbortSignal,
  ): Promise<IncomingMessage> {
    const isHttps = this.server.protocol === "https:";
    const url = new URL(path, this.server);
    return new Promise((resolve, reject) => {
      const req = (isHttps ? httpsRequest : httpRequest)(
        url,
        {
          ...this.baseOptions,
          method,
          headers: {
            ...(this.baseOptions.headers as Record<string, string> | undefined),
            ...this.authHeader(),
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
        method,
        path,
        payload === undefined ? {} : { "Content-Type": contentType },
        payload,
      );
    } catch (err) {
      this.onRequest?.(verb, path, 0);
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
      throw new ApiError(
        status,
        st?.reason ?? "Unknown",
        `${method} ${path}: ${status} ${st?.message ?? text.slice(0, 500)}`,
        parsed,
      );
    }
    return parsed as T;
  }

  get<T extends KubeObject>(r: ResourceType, name: string, namespace?: string): Promise<T> {
    return this.request<T>("get", "GET", objectPath(r, name, namespace));
  }

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

  list<T extends KubeObject>(
    r: ResourceType,
    opts: {
      namespace?: string;
      labelSelector?: string;
      fieldSelector?: string;
      limit?: number;
      continue?: string;
    } = {},
  ): Promise<ObjectList<T>> {
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
    obj: KubeObject,
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

  jsonPatch<T extends KubeObject>(
    r: ResourceType,
    name: string,
    namespace: string | undefined,
    ops: unknown[],
  ): Promise<T> {
    return this.request(
      "patch",
      "PATCH",
      objectPath(r, name, namespace),
      ops,
      "application/json-patch+json",
    );
  }

  update<T extends KubeObject>(r: ResourceType, obj: KubeObject, subresource?: string): Promise<T> {
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
    const path = `${collectionPath(r, opts.namespace)}?${q.toString()}`;
    this.count("watch", path);
    const done = (async () => {
      const res = await this.open("GET", path, {}, undefined, controller.signal);
      if ((res.statusCode ?? 0) !== 200) {
        const chunks: Buffer[] = [];
        for await (const c of res) chunks.push(c as Buffer);
        const text = Buffer.concat(chunks).toString("utf8");
        const st = parseStatus(text);
        throw new ApiError(
          res.statusCode ?? 0,
          st?.reason ?? "WatchFailed",
          `watch ${path}: ${res.statusCode} ${st?.message ?? text.slice(0, 300)}`,
          st,
        );
      }
      opts.onOpen?.();
      let buf = "";
      for await (const chunk of res) {
        buf += (chunk as Buffer).toString("utf8");
        let nl: number;
        while ((nl = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, nl).trim();
          buf = buf.slice(nl + 1);
          if (line !== "") onEvent(JSON.parse(line) as WatchEvent<T>);
        }
      }
    })().catch((err: unknown) => {
      if (controller.signal.aborted) return;
      throw err;
    });
    return { done, abort: () => controller.abort() };
  }

  close(): void {
    this.agent.destroy();
  }
}
