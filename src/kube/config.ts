/**
 * Connection settings from a kubeconfig or the in-cluster service account.
 * Tokens, client certificates and CA data are handled here directly; anything
 * else (exec plugins, auth providers) is handed to @kubernetes/client-node, loaded
 * only then: importing it costs ~75 MB of memory that the common case never needs.
 */
import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import type { RequestOptions } from "node:https";
import { parse } from "yaml";

export interface Connection {
  readonly server: string;
  readonly options: RequestOptions;
  /** A token file to re-read as it rotates (in-cluster service account tokens). */
  readonly tokenFile?: string;
}

export class KubeConfigError extends Error {
  override name = "KubeConfigError";
}

const SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

interface NamedCluster {
  name: string;
  cluster: {
    server: string;
    "certificate-authority"?: string;
    "certificate-authority-data"?: string;
    "insecure-skip-tls-verify"?: boolean;
  };
}
interface NamedUser {
  name: string;
  user: {
    token?: string;
    tokenFile?: string;
    "client-certificate"?: string;
    "client-certificate-data"?: string;
    "client-key"?: string;
    "client-key-data"?: string;
    exec?: unknown;
    "auth-provider"?: unknown;
    username?: string;
    password?: string;
  };
}
interface NamedContext {
  name: string;
  context: { cluster: string; user: string };
}
interface KubeConfigFile {
  clusters?: NamedCluster[];
  users?: NamedUser[];
  contexts?: NamedContext[];
  "current-context"?: string;
}

const b64 = (s: string) => Buffer.from(s, "base64");

function fromFile(path: string): Connection | "delegate" {
  let doc: KubeConfigFile;
  try {
    doc = parse(readFileSync(path, "utf8")) as KubeConfigFile;
  } catch (err) {
    throw new KubeConfigError(`cannot read kubeconfig ${path}`, { cause: err });
  }
  const ctxName = doc["current-context"];
  const ctx = doc.contexts?.find((c) => c.name === ctxName) ?? doc.contexts?.[0];
  if (ctx === undefined) throw new KubeConfigError(`kubeconfig ${path} has no context`);
  const cluster = doc.clusters?.find((c) => c.name === ctx.context.cluster)?.cluster;
  const user = doc.users?.find((u) => u.name === ctx.context.user)?.user ?? {};
  if (cluster === undefined)
    throw new KubeConfigError(`kubeconfig ${path}: cluster ${ctx.context.cluster} not found`);
  if (user.exec !== undefined || user["auth-provider"] !== undefined) return "delegate";
  const headers: Record<string, string> = {};
  const token =
    user.token ??
    (user.tokenFile === undefined ? undefined : readFileSync(user.tokenFile, "utf8").trim());
  if (token !== undefined) headers.Authorization = `Bearer ${token}`;
  else if (user.username !== undefined) {
    headers.Authorization = `Basic ${Buffer.from(`${user.username}:${user.password ?? ""}`).toString("base64")}`;
  }
  const options: RequestOptions = { headers };
  if (cluster["insecure-skip-tls-verify"] === true) options.rejectUnauthorized = false;
  if (cluster["certificate-authority-data"] !== undefined)
    options.ca = b64(cluster["certificate-authority-data"]);
  else if (cluster["certificate-authority"] !== undefined)
    options.ca = readFileSync(cluster["certificate-authority"]);
  if (user["client-certificate-data"] !== undefined)
    options.cert = b64(user["client-certificate-data"]);
  else if (user["client-certificate"] !== undefined)
    options.cert = readFileSync(user["client-certificate"]);
  if (user["client-key-data"] !== undefined) options.key = b64(user["client-key-data"]);
  else if (user["client-key"] !== undefined) options.key = readFileSync(user["client-key"]);
  return { server: cluster.server, options };
}

function inCluster(): Connection | undefined {
  const host = process.env.KUBERNETES_SERVICE_HOST;
  const port = process.env.KUBERNETES_SERVICE_PORT;
  if (host === undefined || port === undefined || !existsSync(`${SA_DIR}/token`)) return undefined;
  const server = `https://${host.includes(":") ? `[${host}]` : host}:${port}`;
  return {
    server,
    options: { ca: readFileSync(`${SA_DIR}/ca.crt`) },
    // Projected tokens rotate: the client re-reads the file.
    tokenFile: `${SA_DIR}/token`,
  };
}

async function viaClientNode(path: string | undefined): Promise<Connection> {
  const { KubeConfig } = await import("@kubernetes/client-node");
  const kc = new KubeConfig();
  if (path === undefined) kc.loadFromDefault();
  else kc.loadFromFile(path);
  const cluster = kc.getCurrentCluster();
  if (cluster === null) throw new KubeConfigError("kubeconfig has no current cluster");
  const options: RequestOptions = {};
  await kc.applyToHTTPSOptions(options);
  return { server: cluster.server, options };
}

/** An explicit path, else $KUBECONFIG, else in-cluster, else ~/.kube/config. */
export async function loadConnection(path?: string): Promise<Connection> {
  const explicit = path ?? process.env.KUBECONFIG?.split(":")[0];
  if (explicit === undefined) {
    const ic = inCluster();
    if (ic !== undefined) return ic;
  }
  const file = explicit ?? `${homedir()}/.kube/config`;
  if (!existsSync(file))
    throw new KubeConfigError(`no kubeconfig at ${file} and not running in a cluster`);
  const conn = fromFile(file);
  return conn === "delegate" ? viaClientNode(file) : conn;
}
