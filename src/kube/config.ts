/**
 * Where the API server is and how to authenticate to it, resolved the way kubectl does.
 *
 * - In a pod (no --kubeconfig, no $KUBECONFIG, no --context): the service account, read
 *   here directly. Importing @kubernetes/client-node costs ~80 MB of RSS (its config module
 *   pulls in the whole generated API), which the in-cluster operator never needs.
 * - Everywhere else: @kubernetes/client-node's KubeConfig. Its `loadFromDefault` fails when
 *   the first $KUBECONFIG entry is missing and throws on duplicate names, so the files are
 *   merged here with kubectl's rules first (missing files skipped, the first file to define
 *   a name wins, relative paths resolved against the file that holds them), then handed to
 *   KubeConfig, which applies authentication per request: exec plugins (re-run when their
 *   credential expires), OIDC (refreshed on expiry), client certificates, tokens,
 *   `as` impersonation, tls-server-name and insecure-skip-tls-verify.
 *   What client-node 1.4.0 does not read is added here: `as-groups`, `as-uid`,
 *   `as-user-extra` and `tokenFile` (re-read every minute, as client-go does).
 */
import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { delimiter, dirname, isAbsolute, join, resolve, sep } from "node:path";
import type { RequestOptions } from "node:https";
import { parse } from "yaml";

/** TLS settings of the API server connection that do not change between requests. */
export interface ServerTls {
  readonly ca?: Buffer;
  readonly servername?: string;
  readonly rejectUnauthorized?: boolean;
}

/** What one request needs from the current credentials. */
export interface RequestCredentials {
  readonly headers: Record<string, string | string[]>;
  /** Client certificate and key; exec plugins may hand out new ones as they expire. */
  readonly cert?: string | Buffer;
  readonly key?: string | Buffer;
}

export interface Connection {
  readonly server: string;
  /** The context's namespace (kubeconfig) or the service account's (in-cluster). */
  readonly namespace: string | undefined;
  /** For log lines: which file, context and user, or the in-cluster service account. */
  readonly source: string;
  readonly tls: ServerTls;
  /** The cluster's proxy-url (http, https or socks), if any. */
  readonly proxyUrl?: string;
  /** Credentials for the next request; tokens and exec/OIDC credentials refresh as they expire. */
  credentials(): Promise<RequestCredentials>;
}

export class KubeConfigError extends Error {
  override name = "KubeConfigError";
}

/** The credentials could not be obtained (an exec plugin failed, a token file is unreadable). */
export class CredentialsError extends Error {
  override name = "CredentialsError";
}

export interface ConnectOptions {
  /** One kubeconfig file (`--kubeconfig`): must exist; $KUBECONFIG is then ignored. */
  readonly kubeconfig?: string;
  /** A context of the kubeconfig (`--context`) instead of its current-context. */
  readonly context?: string;
  /** Defaults to process.env: $KUBECONFIG, $KUBERNETES_SERVICE_HOST/PORT, $HOME. */
  readonly env?: NodeJS.ProcessEnv;
  /** The service account directory (a test seam, like client-node's loadFromCluster(pathPrefix)). */
  readonly serviceAccountDir?: string;
}

export const SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";
/** client-go re-reads token files at most once a minute (transport/token_source.go). */
const TOKEN_FILE_TTL_MS = 60_000;

/**
 * controller-runtime's order: --kubeconfig, then $KUBECONFIG, then in-cluster, then
 * ~/.kube/config. A --context names a kubeconfig entry, so it skips the in-cluster step.
 */
export async function loadConnection(opts: ConnectOptions = {}): Promise<Connection> {
  const env = opts.env ?? process.env;
  if (opts.kubeconfig !== undefined) {
    if (!existsSync(opts.kubeconfig))
      throw new KubeConfigError(`kubeconfig ${opts.kubeconfig} does not exist`);
    return viaKubeConfig([opts.kubeconfig], opts.context);
  }
  const listed = (env.KUBECONFIG ?? "").split(delimiter).filter((f) => f !== "");
  if (listed.length > 0) return viaKubeConfig(listed, opts.context);
  if (opts.context === undefined) {
    const ic = inCluster(env, opts.serviceAccountDir ?? SERVICE_ACCOUNT_DIR);
    if (ic !== undefined) return ic;
  }
  const home = join(env.HOME ?? homedir(), ".kube", "config");
  if (!existsSync(home)) {
    throw new KubeConfigError(
      `no kubeconfig: --kubeconfig and $KUBECONFIG are not set, ${home} does not exist, ` +
        "and this is not a pod with a service account token",
    );
  }
  return viaKubeConfig([home], opts.context);
}

function inCluster(env: NodeJS.ProcessEnv, dir: string): Connection | undefined {
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT;
  const tokenFile = join(dir, "token");
  if (host === undefined || port === undefined || !existsSync(tokenFile)) return undefined;
  const namespaceFile = join(dir, "namespace");
  const token = new TokenFile(tokenFile);
  return {
    server: `https://${host.includes(":") ? `[${host}]` : host}:${port}`,
    namespace: existsSync(namespaceFile) ? readFileSync(namespaceFile, "utf8").trim() : undefined,
    source: `in-cluster service account (${dir})`,
    tls: { ca: readFile(join(dir, "ca.crt"), "the service account CA") },
    credentials: async () => ({ headers: { Authorization: `Bearer ${token.read()}` } }),
  };
}

/** A token file (projected service account tokens rotate): re-read at most once a minute. */
class TokenFile {
  private cached: { value: string; readAt: number } | undefined;
  constructor(readonly path: string) {}

  read(): string {
    if (this.cached === undefined || Date.now() - this.cached.readAt > TOKEN_FILE_TTL_MS) {
      let value: string;
      try {
        value = readFileSync(this.path, "utf8").trim();
      } catch (err) {
        throw new CredentialsError(`cannot read token file ${this.path}`, { cause: err });
      }
      this.cached = { value, readAt: Date.now() };
    }
    return this.cached.value;
  }
}

function readFile(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new KubeConfigError(`cannot read ${what} ${path}`, { cause: err });
  }
}

type Doc = Record<string, unknown>;
interface Named {
  name: string;
  [k: string]: unknown;
}
interface RawUser {
  token?: string;
  tokenFile?: string;
  "token-file"?: string;
  "client-certificate"?: string;
  "client-key"?: string;
  exec?: { command?: string; [k: string]: unknown };
  as?: string;
  "as-groups"?: string[];
  "as-uid"?: string;
  "as-user-extra"?: Record<string, string[]>;
  [k: string]: unknown;
}
interface RawCluster {
  "certificate-authority"?: string;
  [k: string]: unknown;
}

/** The kubeconfig files merged by kubectl's rules, as one document. */
export interface MergedKubeConfig {
  readonly files: readonly string[];
  readonly missing: readonly string[];
  readonly doc: {
    clusters: Named[];
    users: Named[];
    contexts: Named[];
    "current-context"?: string;
  };
}

/**
 * kubectl's merge (client-go tools/clientcmd/loader.go, Load): missing files are skipped,
 * the first file to define a cluster, user or context name wins, the first current-context
 * set wins, and relative paths resolve against the directory of the file that holds them.
 */
export function mergeKubeConfigFiles(paths: readonly string[]): MergedKubeConfig {
  const files: string[] = [];
  const missing: string[] = [];
  const merged: MergedKubeConfig["doc"] = { clusters: [], users: [], contexts: [] };
  for (const path of paths) {
    if (!existsSync(path)) {
      missing.push(path);
      continue;
    }
    files.push(path);
    const doc = parseFile(path);
    const base = dirname(resolve(path));
    addNew(merged.clusters, doc.clusters, (c) => resolveClusterPaths(c, base));
    addNew(merged.users, doc.users, (u) => resolveUserPaths(u, base));
    addNew(merged.contexts, doc.contexts, (c) => c);
    const current = doc["current-context"];
    if (merged["current-context"] === undefined && typeof current === "string" && current !== "")
      merged["current-context"] = current;
  }
  if (files.length === 0)
    throw new KubeConfigError(`none of the kubeconfig files exist: ${paths.join(", ")}`);
  return { files, missing, doc: merged };
}

function parseFile(path: string): Doc {
  try {
    const doc: unknown = parse(readFileSync(path, "utf8"));
    if (doc === null || doc === undefined) return {};
    if (typeof doc !== "object") throw new Error("not a YAML mapping");
    return doc as Doc;
  } catch (err) {
    throw new KubeConfigError(`cannot read kubeconfig ${path}`, { cause: err });
  }
}

function addNew(into: Named[], list: unknown, fix: (n: Named) => Named): void {
  if (!Array.isArray(list)) return;
  for (const item of list as Named[]) {
    if (typeof item?.name !== "string" || into.some((n) => n.name === item.name)) continue;
    into.push(fix(structuredClone(item)));
  }
}

const abs = (base: string, p: string | undefined) =>
  p === undefined || p === "" || isAbsolute(p) ? p : join(base, p);

function resolveClusterPaths(c: Named, base: string): Named {
  const cluster = c.cluster as RawCluster | undefined;
  if (cluster !== undefined) {
    const ca = abs(base, cluster["certificate-authority"]);
    if (ca !== undefined) cluster["certificate-authority"] = ca;
  }
  return c;
}

function resolveUserPaths(u: Named, base: string): Named {
  const user = u.user as RawUser | undefined;
  if (user === undefined) return u;
  for (const key of ["client-certificate", "client-key", "tokenFile", "token-file"] as const) {
    const p = abs(base, user[key]);
    if (p !== undefined) user[key] = p;
  }
  // An exec command with a path separator is relative to the file; a bare name is on $PATH.
  const command = user.exec?.command;
  if (command !== undefined && command.includes(sep)) user.exec!.command = abs(base, command);
  return u;
}

async function viaKubeConfig(paths: readonly string[], context?: string): Promise<Connection> {
  const merged = mergeKubeConfigFiles(paths);
  const where = merged.files.join(delimiter);
  const contextName = context ?? merged.doc["current-context"];
  if (contextName === undefined) {
    throw new KubeConfigError(`kubeconfig ${where} has no current-context; pass --context`);
  }
  const ctx = merged.doc.contexts.find((c) => c.name === contextName)?.context as
    | { cluster?: string; user?: string; namespace?: string }
    | undefined;
  if (ctx === undefined) {
    const names = merged.doc.contexts.map((c) => c.name).join(", ");
    throw new KubeConfigError(
      `context "${contextName}" not found in kubeconfig ${where} (contexts: ${names || "none"})`,
    );
  }
  const rawUser = (merged.doc.users.find((u) => u.name === ctx.user)?.user ?? {}) as RawUser;
  const extras = impersonationExtras(rawUser, contextName);
  const tokenFile = rawUser.token === undefined ? tokenFileOf(rawUser) : undefined;
  // client-node 1.4.0 reads `token-file` once at load; the file is ours to re-read.
  for (const u of merged.doc.users) {
    const user = u.user as RawUser | undefined;
    delete user?.tokenFile;
    delete user?.["token-file"];
  }

  const { KubeConfig } = await import("@kubernetes/client-node");
  const kc = new KubeConfig();
  try {
    kc.loadFromString(JSON.stringify(merged.doc));
  } catch (err) {
    throw new KubeConfigError(`invalid kubeconfig ${where}`, { cause: err });
  }
  kc.setCurrentContext(contextName);
  const cluster = kc.getCurrentCluster();
  if (cluster === null) {
    throw new KubeConfigError(
      `kubeconfig ${where}: cluster "${ctx.cluster}" of context "${contextName}" not found`,
    );
  }
  const tls: ServerTls = {
    ...(cluster.caData !== undefined && cluster.caData !== ""
      ? { ca: Buffer.from(cluster.caData, "base64") }
      : cluster.caFile !== undefined && cluster.caFile !== ""
        ? { ca: readFile(cluster.caFile, `certificate-authority of cluster "${cluster.name}"`) }
        : {}),
    ...(cluster.tlsServerName === undefined ? {} : { servername: cluster.tlsServerName }),
    ...(cluster.skipTLSVerify ? { rejectUnauthorized: false } : {}),
  };
  checkUserFiles(rawUser, ctx.user);
  const token = tokenFile === undefined ? undefined : new TokenFile(tokenFile);
  const userName = ctx.user ?? "(none)";
  const credentials = singleFlight(async (): Promise<RequestCredentials> => {
    const opts: RequestOptions = { headers: {} };
    try {
      await kc.applyToHTTPSOptions(opts);
    } catch (err) {
      throw new CredentialsError(`credentials of kubeconfig user "${userName}" failed`, {
        cause: err,
      });
    }
    // A fresh non-keep-alive agent per call: the client keeps its own (see agent.ts).
    (opts.agent as { destroy?: () => void } | undefined)?.destroy?.();
    const headers = { ...(opts.headers as Record<string, string | string[]>), ...extras };
    if (token !== undefined) headers.Authorization = `Bearer ${token.read()}`;
    if (opts.auth !== undefined && opts.auth !== null)
      headers.Authorization = `Basic ${Buffer.from(opts.auth).toString("base64")}`;
    return {
      headers,
      ...(opts.cert === undefined ? {} : { cert: opts.cert as string | Buffer }),
      ...(opts.key === undefined ? {} : { key: opts.key as string | Buffer }),
    };
  });
  return {
    server: cluster.server,
    namespace: ctx.namespace,
    source: `kubeconfig ${where}, context "${contextName}", user "${userName}"`,
    tls,
    ...(cluster.proxyUrl === undefined || cluster.proxyUrl === ""
      ? {}
      : { proxyUrl: cluster.proxyUrl }),
    credentials,
  };
}

function tokenFileOf(user: RawUser): string | undefined {
  return user.tokenFile ?? user["token-file"];
}

/** Missing certificate files are configuration errors: say so at start, not per request. */
function checkUserFiles(user: RawUser, name: string | undefined): void {
  for (const key of ["client-certificate", "client-key"] as const) {
    const p = user[key];
    if (p !== undefined && p !== "") readFile(p, `${key} of user "${name}"`);
  }
}

/** Impersonation beyond `as` (which client-node sends as Impersonate-User). */
function impersonationExtras(user: RawUser, context: string): Record<string, string | string[]> {
  const headers: Record<string, string | string[]> = {};
  const groups = user["as-groups"] ?? [];
  const extra = user["as-user-extra"] ?? {};
  const uid = user["as-uid"];
  const asUser = user.as;
  if ((asUser === undefined || asUser === "") && (groups.length > 0 || uid !== undefined)) {
    // kubectl refuses the same: groups and uid only qualify an impersonated user.
    throw new KubeConfigError(
      `context "${context}": as-groups/as-uid need "as" (the user to impersonate)`,
    );
  }
  if (groups.length > 0) headers["Impersonate-Group"] = groups;
  if (uid !== undefined) headers["Impersonate-Uid"] = uid;
  for (const [k, v] of Object.entries(extra))
    headers[`Impersonate-Extra-${encodeURIComponent(k)}`] = v;
  return headers;
}

/**
 * Concurrent callers share one evaluation: when a credential expires, a burst of requests
 * runs the exec plugin once, not once per request (client-node 1.4.0 does not coalesce).
 */
function singleFlight<T>(fn: () => Promise<T>): () => Promise<T> {
  let inFlight: Promise<T> | undefined;
  return () => {
    inFlight ??= fn().finally(() => {
      inFlight = undefined;
    });
    return inFlight;
  };
}
