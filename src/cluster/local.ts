/**
 * A real local Kubernetes control plane as plain processes on 127.0.0.1:
 * etcd, kube-apiserver, kube-controller-manager, kube-scheduler and KWOK.
 * Used by every integration test, `msd cluster up` and `npm start`.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { mkdirSync, openSync, readFileSync, readdirSync, writeFileSync, closeSync } from "node:fs";
import { request as httpsRequest } from "node:https";
import { request as httpRequest } from "node:http";
import { createServer } from "node:net";
import { join } from "node:path";
import { ensureBinaries, type Binaries, type Component } from "./binaries.ts";

export const ADMIN_TOKEN = "msd-admin-token";
/** A second identity, bound only to the operator's generated RBAC rules in tests. */
export const OPERATOR_TOKEN = "msd-operator-token";
export const OPERATOR_USER = "mistral-small-operator";

export interface ClusterState {
  readonly dir: string;
  readonly kubeconfig: string;
  readonly operatorKubeconfig: string;
  readonly apiServerUrl: string;
  /** Start order: etcd first; extra processes (Karpenter) after the core components. */
  readonly pids: Partial<Record<ProcessName, number>>;
  readonly ports: Record<string, number>;
}

/** Core components, and processes started beside them (Karpenter with `--karpenter`). */
export type ProcessName = Component | "karpenter";

export class ClusterStartError extends Error {
  override name = "ClusterStartError";
}

/**
 * A free port below the kernel's ephemeral range (32768+ on Linux), so an outgoing
 * connection of another component cannot take it between our check and its bind.
 */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = 20000 + Math.floor(Math.random() * 12000);
    if (await canBind(port)) return port;
  }
  throw new ClusterStartError("no free port found in 20000-32000");
}

function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.unref();
    srv.once("error", () => resolve(false));
    srv.listen(port, "127.0.0.1", () => srv.close(() => resolve(true)));
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** GET a URL; resolves with the status code, or 0 when nothing answers. */
export function probe(url: string, token?: string): Promise<number> {
  return new Promise((resolve) => {
    const isHttps = url.startsWith("https:");
    const req = (isHttps ? httpsRequest : httpRequest)(
      url,
      {
        method: "GET",
        timeout: 2000,
        rejectUnauthorized: false,
        headers: token === undefined ? {} : { Authorization: `Bearer ${token}` },
      },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.on("error", () => resolve(0));
    req.on("timeout", () => {
      req.destroy();
      resolve(0);
    });
    req.end();
  });
}

export async function waitFor(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs: number,
  alive: () => boolean,
  logFile: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    if (!alive()) {
      throw new ClusterStartError(
        `${what} exited during start-up; see ${logFile}:\n${tail(logFile)}`,
      );
    }
    await sleep(100);
  }
  throw new ClusterStartError(
    `${what} not ready after ${timeoutMs} ms; see ${logFile}:\n${tail(logFile)}`,
  );
}

export function tail(file: string, lines = 20): string {
  try {
    return readFileSync(file, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

export function kubeconfigYaml(server: string, token: string, user: string): string {
  return [
    "apiVersion: v1",
    "kind: Config",
    "clusters:",
    "- name: local",
    "  cluster:",
    `    server: ${server}`,
    "    insecure-skip-tls-verify: true",
    "users:",
    `- name: ${user}`,
    "  user:",
    `    token: ${token}`,
    "contexts:",
    "- name: local",
    "  context:",
    "    cluster: local",
    `    user: ${user}`,
    "current-context: local",
    "",
  ].join("\n");
}

export interface StartOptions {
  readonly dir: string;
  /** Detach the processes so they outlive this Node process (`msd cluster up`). */
  readonly detached?: boolean;
  readonly quietBuild?: boolean;
  /**
   * KWOK's pod CIDR. A range inside 127.0.0.0/8 gives pods addresses this machine can
   * listen on, so something can answer at a pod's IP (the autoscaling test does).
   */
  readonly podCidr?: string;
  /**
   * A TokenReview webhook (http URL) the apiserver asks about bearer tokens it does not know
   * from its token file, with a 1 s cache: lets a test issue short-lived credentials.
   */
  readonly tokenWebhookUrl?: string;
  /** More KWOK Stage files, after the test bed's (kwok's --config takes several). */
  readonly extraKwokStages?: readonly string[];
}

function tokenWebhookArgs(dir: string, url: string | undefined): string[] {
  if (url === undefined) return [];
  const file = join(dir, "token-webhook.kubeconfig");
  writeFileSync(
    file,
    JSON.stringify({
      apiVersion: "v1",
      kind: "Config",
      clusters: [{ name: "webhook", cluster: { server: url } }],
      users: [{ name: "apiserver", user: {} }],
      contexts: [{ name: "webhook", context: { cluster: "webhook", user: "apiserver" } }],
      "current-context": "webhook",
    }),
  );
  return [
    `--authentication-token-webhook-config-file=${file}`,
    "--authentication-token-webhook-version=v1",
    "--authentication-token-webhook-cache-ttl=1s",
  ];
}

export class LocalCluster {
  private readonly children: ChildProcess[] = [];
  private stopped = false;
  /** How kube-apiserver was started, to start it again (restartApiServer). */
  private apiServer: { args: string[]; detached: boolean } | undefined;
  private constructor(
    readonly state: ClusterState,
    private readonly bins: Binaries,
  ) {}

  get kubeconfig(): string {
    return this.state.kubeconfig;
  }

  get binaries(): Binaries {
    return this.bins;
  }

  static async start(options: StartOptions): Promise<LocalCluster> {
    const bins = ensureBinaries({ quiet: options.quietBuild ?? true });
    const dir = options.dir;
    const logs = join(dir, "logs");
    mkdirSync(logs, { recursive: true });
    mkdirSync(join(dir, "etcd"), { recursive: true });
    mkdirSync(join(dir, "pki"), { recursive: true });

    const ports = {
      etcd: await freePort(),
      etcdPeer: await freePort(),
      apiserver: await freePort(),
      controllerManager: await freePort(),
      scheduler: await freePort(),
      kwok: await freePort(),
    };
    const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const saKey = join(dir, "sa.key");
    writeFileSync(saKey, privateKey.export({ type: "pkcs1", format: "pem" }), { mode: 0o600 });
    const tokens = join(dir, "tokens.csv");
    writeFileSync(
      tokens,
      `${ADMIN_TOKEN},admin,admin-uid,"system:masters"\n${OPERATOR_TOKEN},${OPERATOR_USER},operator-uid\n`,
      { mode: 0o600 },
    );
    const apiServerUrl = `https://127.0.0.1:${ports.apiserver}`;
    const kubeconfig = join(dir, "kubeconfig");
    writeFileSync(kubeconfig, kubeconfigYaml(apiServerUrl, ADMIN_TOKEN, "admin"), { mode: 0o600 });
    const operatorKubeconfig = join(dir, "operator.kubeconfig");
    writeFileSync(operatorKubeconfig, kubeconfigYaml(apiServerUrl, OPERATOR_TOKEN, OPERATOR_USER), {
      mode: 0o600,
    });

    const pids: Partial<Record<ProcessName, number>> = {};
    const state: ClusterState = { dir, kubeconfig, operatorKubeconfig, apiServerUrl, pids, ports };
    const cluster = new LocalCluster(state, bins);
    try {
      const launch = (c: Component, args: string[]) =>
        cluster.launch(c, args, options.detached === true);

      const etcd = launch("etcd", [
        `--data-dir=${join(dir, "etcd")}`,
        `--listen-client-urls=http://127.0.0.1:${ports.etcd}`,
        `--advertise-client-urls=http://127.0.0.1:${ports.etcd}`,
        `--listen-peer-urls=http://127.0.0.1:${ports.etcdPeer}`,
        `--initial-advertise-peer-urls=http://127.0.0.1:${ports.etcdPeer}`,
        `--initial-cluster=default=http://127.0.0.1:${ports.etcdPeer}`,
        "--unsafe-no-fsync",
        "--quota-backend-bytes=4294967296",
      ]);
      await waitFor(
        "etcd",
        async () => (await probe(`http://127.0.0.1:${ports.etcd}/health`)) === 200,
        30_000,
        () => etcd.exitCode === null,
        join(logs, "etcd.log"),
      );

      const apiServerArgs = [
        `--etcd-servers=http://127.0.0.1:${ports.etcd}`,
        "--bind-address=127.0.0.1",
        `--secure-port=${ports.apiserver}`,
        "--advertise-address=127.0.0.1",
        `--cert-dir=${join(dir, "pki")}`,
        // A /16: a /24 runs out after ~250 Services (the 500-replica benchmark needs 1000).
        "--service-cluster-ip-range=10.96.0.0/16",
        `--service-account-issuer=${apiServerUrl}`,
        `--service-account-key-file=${saKey}`,
        `--service-account-signing-key-file=${saKey}`,
        `--token-auth-file=${tokens}`,
        "--authorization-mode=RBAC",
        "--allow-privileged=true",
        "--enable-priority-and-fairness=false",
        "--max-requests-inflight=2000",
        "--max-mutating-requests-inflight=1000",
        ...tokenWebhookArgs(dir, options.tokenWebhookUrl),
      ];
      cluster.apiServer = { args: apiServerArgs, detached: options.detached === true };
      await cluster.startApiServer();

      const cm = launch("kube-controller-manager", [
        `--kubeconfig=${kubeconfig}`,
        `--authentication-kubeconfig=${kubeconfig}`,
        `--authorization-kubeconfig=${kubeconfig}`,
        `--service-account-private-key-file=${saKey}`,
        "--controllers=*,-nodeipam,-cloud-node-lifecycle,-service-lb-controller,-route",
        "--leader-elect=false",
        "--bind-address=127.0.0.1",
        `--secure-port=${ports.controllerManager}`,
        "--use-service-account-credentials=false",
        "--concurrent-deployment-syncs=10",
        "--concurrent-replicaset-syncs=10",
        "--concurrent-gc-syncs=20",
        "--kube-api-qps=200",
        "--kube-api-burst=400",
      ]);
      const scheduler = launch("kube-scheduler", [
        `--kubeconfig=${kubeconfig}`,
        `--authentication-kubeconfig=${kubeconfig}`,
        `--authorization-kubeconfig=${kubeconfig}`,
        "--leader-elect=false",
        "--bind-address=127.0.0.1",
        `--secure-port=${ports.scheduler}`,
        "--kube-api-qps=200",
        "--kube-api-burst=400",
      ]);
      const kwokArgs = [
        `--kubeconfig=${kubeconfig}`,
        "--manage-all-nodes=false",
        "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
        "--node-lease-duration-seconds=40",
        `--cidr=${options.podCidr ?? "10.244.0.0/16"}`,
        "--node-ip=127.0.0.1",
        `--server-address=127.0.0.1:${ports.kwok}`,
      ];
      if (bins.kwokStages !== undefined) kwokArgs.push(`--config=${bins.kwokStages}`);
      for (const f of options.extraKwokStages ?? []) kwokArgs.push(`--config=${f}`);
      const kwok = launch("kwok", kwokArgs);
      await waitFor(
        "kube-controller-manager",
        async () => (await probe(`https://127.0.0.1:${ports.controllerManager}/healthz`)) === 200,
        60_000,
        () => cm.exitCode === null,
        join(logs, "kube-controller-manager.log"),
      );
      await waitFor(
        "kube-scheduler",
        async () => (await probe(`https://127.0.0.1:${ports.scheduler}/healthz`)) === 200,
        60_000,
        () => scheduler.exitCode === null,
        join(logs, "kube-scheduler.log"),
      );
      if (kwok.exitCode !== null) {
        throw new ClusterStartError(`kwok exited: ${tail(join(logs, "kwok.log"))}`);
      }
      cluster.saveState();
      return cluster;
    } catch (err) {
      await cluster.stop({ keepLogs: true });
      throw err;
    }
  }

  private launch(c: Component, args: string[], detached: boolean): ChildProcess {
    return this.spawnProcess(c, this.bins.path(c), args, { detached });
  }

  /**
   * Starts a process that belongs to this cluster: logged to logs/<name>.log, recorded in
   * state.pids (so `msd cluster down` stops it) and stopped by stop(), before the core.
   */
  spawnProcess(
    name: ProcessName,
    bin: string,
    args: string[],
    options: { detached: boolean; env?: NodeJS.ProcessEnv },
  ): ChildProcess {
    const logFile = join(this.state.dir, "logs", `${name}.log`);
    const fd = openSync(logFile, "a");
    const child = spawn(bin, args, {
      stdio: ["ignore", fd, fd],
      detached: options.detached,
      cwd: this.state.dir,
      ...(options.env === undefined ? {} : { env: options.env }),
    });
    closeSync(fd);
    if (options.detached) child.unref();
    this.children.push(child);
    if (child.pid !== undefined) (this.state.pids as Record<string, number>)[name] = child.pid;
    return child;
  }

  private async startApiServer(): Promise<void> {
    const { args, detached } = this.apiServer!;
    const apiserver = this.launch("kube-apiserver", args, detached);
    await waitFor(
      "kube-apiserver",
      async () => (await probe(`${this.state.apiServerUrl}/readyz`, ADMIN_TOKEN)) === 200,
      60_000,
      () => apiserver.exitCode === null,
      join(this.state.dir, "logs", "kube-apiserver.log"),
    );
  }

  /**
   * Stops kube-apiserver and starts it again with the same flags (etcd keeps the data): every
   * client sees its connections drop, and watches resumed from before the restart find their
   * resourceVersion older than the new watch cache (410 Gone).
   */
  async restartApiServer(): Promise<void> {
    const pid = this.state.pids["kube-apiserver"];
    if (pid !== undefined) await stopPids([pid]);
    const i = this.children.findIndex((c) => c.pid === pid);
    if (i >= 0) this.children.splice(i, 1);
    await this.startApiServer();
    this.saveState();
  }

  /** Rewrites state.json, after a process was added with spawnProcess. */
  saveState(): void {
    writeFileSync(join(this.state.dir, "state.json"), `${JSON.stringify(this.state, null, 2)}\n`);
  }

  /** Stops every process, newest first; SIGKILL after a grace period. */
  async stop(options: { keepLogs?: boolean } = {}): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    void options;
    await stopInOrder(this.children.map((c) => c.pid).filter((p): p is number => p !== undefined));
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export async function stopPids(pids: readonly number[], graceMs = 5000): Promise<void> {
  for (const pid of pids) {
    try {
      process.kill(pid, "SIGTERM");
    } catch {
      // already gone
    }
  }
  const deadline = Date.now() + graceMs;
  while (pids.some(isAlive) && Date.now() < deadline) await sleep(50);
  for (const pid of pids.filter(isAlive)) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
  while (pids.some(isAlive)) await sleep(20);
}

/**
 * Stops the components (given in start order, etcd first) newest first, and etcd
 * last: an apiserver whose etcd vanished hangs instead of exiting.
 */
export async function stopInOrder(pidsInStartOrder: readonly number[]): Promise<void> {
  const [etcd, ...rest] = pidsInStartOrder;
  await stopPids(rest.slice().reverse());
  if (etcd !== undefined) await stopPids([etcd]);
}

/** Reads a detached cluster's state (for `msd cluster down/status`). */
export function readState(dir: string): ClusterState {
  return JSON.parse(readFileSync(join(dir, "state.json"), "utf8")) as ClusterState;
}

export function componentStatus(state: ClusterState): Record<string, "running" | "stopped"> {
  return Object.fromEntries(
    Object.entries(state.pids).map(([c, pid]) => [
      c,
      pid !== undefined && isAlive(pid) ? "running" : "stopped",
    ]),
  );
}

export function listLogs(dir: string): string[] {
  try {
    return readdirSync(join(dir, "logs")).map((f) => join(dir, "logs", f));
  } catch {
    return [];
  }
}
