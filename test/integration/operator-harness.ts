/** Helpers to run the operator against a test cluster: in-process, or as `msd run` child processes. */
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { pino } from "pino";
import { stringify } from "yaml";
import { API_VERSION, KIND } from "../../src/api/schema.ts";
import { Operator, type OperatorOptions } from "../../src/controller/manager.ts";
import { rbacManifests } from "../../src/controller/rbac.ts";
import { OPERATOR_USER, freePort, kubeconfigYaml } from "../../src/cluster/local.ts";
import { RESOURCES, type KubeObject } from "../../src/kube/client.ts";
import { startTestCluster, type TestCluster } from "./cluster.ts";

const REPO = join(import.meta.dirname, "..", "..");

/** Install our CRD and bind the operator's identity to the generated rules, nothing more. */
export async function installOperatorPrerequisites(c: TestCluster): Promise<void> {
  const crd = await c.kubectl(["apply", "--server-side", "-f", join(REPO, "crds")]);
  if (crd.code !== 0) throw new Error(crd.stderr);
  const wait = await c.kubectl([
    "wait",
    "--for=condition=Established",
    "--timeout=30s",
    "crd/mistralsmalldeployments.serving.mistralsmall.dev",
  ]);
  if (wait.code !== 0) throw new Error(wait.stderr);
  await applyOperatorRbac(c, "mistral-small-operator");
}

/** The generated RBAC (named `name`, in "default") bound to the operator's user. */
export async function applyOperatorRbac(c: TestCluster, name: string): Promise<void> {
  const rbac = rbacManifests(name, "default", { kind: "User", name: OPERATOR_USER })
    .map((m) => `---\n${stringify(m)}`)
    .join("");
  const r = await c.kubectl(["apply", "-f", "-"], rbac);
  if (r.code !== 0) throw new Error(r.stderr);
}

export interface InProcessOperator {
  readonly operator: Operator;
  /** Where its /healthz, /readyz and /metrics answer. */
  readonly port: number;
  readonly logFile: string;
  stop(): Promise<void>;
}

export interface InProcessOptions {
  resyncMs?: number;
  name?: string;
  leaderElection?: boolean;
  autoscaleIntervalMs?: number;
  /** Connect with this instead of the operator's (or admin's) kubeconfig. */
  kubeconfig?: string;
  context?: string;
  /** The namespaced install mode: watch only these namespaces. */
  namespaces?: readonly string[];
  /** Render as another operator release would (a changed default). */
  render?: OperatorOptions["render"];
}

export async function startInProcess(
  c: TestCluster,
  opts: InProcessOptions = {},
): Promise<InProcessOperator> {
  const logFile = join(
    tmpdir(),
    `msd-operator-${opts.name ?? "inproc"}-${process.pid}-${Date.now()}.log`,
  );
  const stream = createWriteStream(logFile);
  const port = await freePort();
  const operator = new Operator({
    kubeconfig: opts.kubeconfig ?? c.operatorKubeconfig ?? c.kubeconfig,
    ...(opts.context === undefined ? {} : { context: opts.context }),
    port,
    host: "127.0.0.1",
    leaderElection: opts.leaderElection ?? false,
    leaseNamespace: "default",
    resyncMs: opts.resyncMs ?? 600_000,
    ...(opts.autoscaleIntervalMs === undefined
      ? {}
      : { autoscaleIntervalMs: opts.autoscaleIntervalMs }),
    concurrency: 4,
    ...(opts.namespaces === undefined ? {} : { namespaces: opts.namespaces }),
    ...(opts.render === undefined ? {} : { render: opts.render }),
    identity: opts.name ?? "in-process",
    logger: pino({ level: "debug" }, stream),
  });
  await operator.start();
  return {
    operator,
    port,
    logFile,
    async stop() {
      await operator.stop();
      stream.end();
    },
  };
}

/**
 * A test cluster with our CRD and the operator's RBAC installed (installOperatorPrerequisites):
 * what every operator test starts from. A failed install stops the cluster again.
 */
export async function startPreparedCluster(
  options?: Parameters<typeof startTestCluster>[0],
): Promise<TestCluster> {
  const c = await startTestCluster(options);
  try {
    await installOperatorPrerequisites(c);
  } catch (err) {
    await c.stop();
    throw err;
  }
  return c;
}

/** A prepared cluster and an in-process operator on it; stop() stops both, operator first. */
export interface OperatorBed {
  readonly c: TestCluster;
  readonly op: InProcessOperator;
  stop(): Promise<void>;
}

export async function startOperatorBed(
  options: { cluster?: Parameters<typeof startTestCluster>[0]; operator?: InProcessOptions } = {},
): Promise<OperatorBed> {
  const c = await startPreparedCluster(options.cluster);
  let op: InProcessOperator;
  try {
    op = await startInProcess(c, options.operator);
  } catch (err) {
    await c.stop();
    throw err;
  }
  return {
    c,
    op,
    async stop() {
      await op.stop();
      await c.stop();
    },
  };
}

/**
 * Writes `file`: a kubeconfig that reaches the test cluster's API server as `user` with `token`
 * (a ServiceAccount's, from `kubectl create token`), readable by its owner only; returns `file`.
 */
export async function tokenKubeconfig(
  c: TestCluster,
  file: string,
  token: string,
  user: string,
): Promise<string> {
  const server = await c.kubectl([
    "config",
    "view",
    "--minify",
    "-o",
    "jsonpath={.clusters[0].cluster.server}",
  ]);
  if (server.code !== 0) throw new Error(server.stderr);
  writeFileSync(file, kubeconfigYaml(server.stdout.trim(), token, user), { mode: 0o600 });
  return file;
}

export interface ChildOperator {
  readonly child: ChildProcess;
  readonly port: number;
  readonly identity: string;
  log(): string;
  exited: Promise<number | null>;
}

export interface ChildOptions {
  /** Default: the cluster's operator kubeconfig (its RBAC), else the admin one. */
  readonly kubeconfig?: string;
  /** Default "default". */
  readonly leaseNamespace?: string;
  /** POD_NAMESPACE, as the chart's Deployment sets it. */
  readonly podNamespace?: string;
}

/** `msd run` as a child process (what the image runs), its output in a log file. */
export async function startChild(
  c: Pick<TestCluster, "kubeconfig" | "operatorKubeconfig">,
  identity: string,
  leaseSeconds = 4,
  options: ChildOptions = {},
): Promise<ChildOperator> {
  const port = await freePort();
  const logFile = join(tmpdir(), `msd-operator-${identity}-${process.pid}-${Date.now()}.log`);
  const out = createWriteStream(logFile);
  const child = spawn(
    process.execPath,
    [
      join(REPO, "bin", "msd.js"),
      "run",
      `--kubeconfig=${options.kubeconfig ?? c.operatorKubeconfig ?? c.kubeconfig}`,
      `--port=${port}`,
      `--lease-duration=${leaseSeconds}`,
      `--lease-namespace=${options.leaseNamespace ?? "default"}`,
    ],
    {
      env: {
        ...process.env,
        POD_NAME: identity,
        ...(options.podNamespace === undefined ? {} : { POD_NAMESPACE: options.podNamespace }),
      },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  child.stdout?.pipe(out);
  child.stderr?.pipe(out);
  const exited = new Promise<number | null>((resolve) =>
    child.once("exit", (code) => resolve(code)),
  );
  return { child, port, identity, log: () => readFileSync(logFile, "utf8"), exited };
}

export async function httpStatus(port: number, path: string): Promise<number> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}${path}`);
    await res.text();
    return res.status;
  } catch {
    return 0;
  }
}

export type Msd = KubeObject & {
  spec: Record<string, unknown> & { replicas?: number };
  status?: {
    observedGeneration?: number;
    replicas?: number;
    readyReplicas?: number;
    selector?: string;
    endpoint?: string;
    plan?: { tensorParallelSize: number; gpusPerReplica: number; kvCacheTokensPerReplica: number };
    conditions?: {
      type: string;
      status: string;
      reason: string;
      message: string;
      observedGeneration?: number;
    }[];
  };
};

export function condition(m: Msd | undefined, type: string) {
  return m?.status?.conditions?.find((c) => c.type === type);
}

/** A MistralSmallDeployment `name` in `namespace` with `spec`, as one would write it. */
export function msdManifest(name: string, spec: unknown, namespace = "default") {
  return { apiVersion: API_VERSION, kind: KIND, metadata: { name, namespace }, spec };
}

export function msdYaml(name: string, spec: unknown, namespace = "default"): string {
  return stringify(msdManifest(name, spec, namespace));
}

/** The model-cache claim a resource's pods mount (shared, so found by its owner reference). */
export async function cacheClaimOf(c: TestCluster, msdName: string, namespace = "default") {
  const claims = await c.client.list<KubeObject>(RESOURCES.pvc, {
    namespace,
    labelSelector: "serving.mistralsmall.dev/model-cache",
  });
  return claims.items.find((p) =>
    (p.metadata.ownerReferences ?? []).some((o) => o.name === msdName),
  );
}
