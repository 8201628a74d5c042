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
import { OPERATOR_NAME } from "../util/identity.ts";
import { ensureBinaries, type Binaries, type Component } from "./binaries.ts";

export const ADMIN_TOKEN = "msd-admin-token";
/** A second identity, bound only to the operator's generated RBAC rules in tests. */
export const OPERATOR_TOKEN = "msd-operator-token";
export const OPERATOR_USER = OPERATOR_NAME;

export interface ClusterState {
  readonly dir: string;
  readonly kubeconfig: string;
  readonly operatorKubeconfig: string;
  readonly apiServerUrl: string;
  /** Start order: etcd first; extra processes (Karpenter) after the core components. */
  readonly pids: Partial<Record<ProcessName, number>>;
  readonly ports: Ports;
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

/** Loopback ports of the control-plane components. */
interface Ports {
  readonly etcd: number;
  readonly etcdPeer: number;
  readonly apiserver: number;
  readonly controllerManager: number;
  readonly scheduler: number;
  readonly kwok: number;
}

async function allocatePorts(): Promise<Ports> {
  return {
    etcd: await freePort(),
    etcdPeer: await freePort(),
    apiserver: await freePort(),
    controllerManager: await freePort(),
    scheduler: await freePort(),
    kwok: await freePort(),
  };
}

interface CredentialFiles {
  /** The service-account signing key. */
  readonly saKey: string;
  /** Static bearer tokens: the admin and the operator user. */
  readonly tokens: string;
  readonly kubeconfig: string;
  readonly operatorKubeconfig: string;
}

function writeCredentials(dir: string, apiServerUrl: string): CredentialFiles {
  const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const files: CredentialFiles = {
    saKey: join(dir, "sa.key"),
    tokens: join(dir, "tokens.csv"),
    kubeconfig: join(dir, "kubeconfig"),
    operatorKubeconfig: join(dir, "operator.kubeconfig"),
  };
  const secret = { mode: 0o600 };
  writeFileSync(files.saKey, privateKey.export({ type: "pkcs1", format: "pem" }), secret);
  writeFileSync(
    files.tokens,
    `${ADMIN_TOKEN},admin,admin-uid,"system:masters"\n${OPERATOR_TOKEN},${OPERATOR_USER},operator-uid\n`,
    secret,
  );
  writeFileSync(files.kubeconfig, kubeconfigYaml(apiServerUrl, ADMIN_TOKEN, "admin"), secret);
  writeFileSync(
    files.operatorKubeconfig,
    kubeconfigYaml(apiServerUrl, OPERATOR_TOKEN, OPERATOR_USER),
    secret,
  );
  return files;
}

function etcdArgs(dir: string, ports: Ports): string[] {
  return [
    `--data-dir=${join(dir, "etcd")}`,
    `--listen-client-urls=http://127.0.0.1:${ports.etcd}`,
    `--advertise-client-urls=http://127.0.0.1:${ports.etcd}`,
    `--listen-peer-urls=http://127.0.0.1:${ports.etcdPeer}`,
    `--initial-advertise-peer-urls=http://127.0.0.1:${ports.etcdPeer}`,
    `--initial-cluster=default=http://127.0.0.1:${ports.etcdPeer}`,
    "--unsafe-no-fsync",
    "--quota-backend-bytes=4294967296",
  ];
}

function apiServerArgs(
  dir: string,
  ports: Ports,
  apiServerUrl: string,
  files: CredentialFiles,
): string[] {
  return [
    `--etcd-servers=http://127.0.0.1:${ports.etcd}`,
    "--bind-address=127.0.0.1",
    `--secure-port=${ports.apiserver}`,
    "--advertise-address=127.0.0.1",
    `--cert-dir=${join(dir, "pki")}`,
    // A /16: a /24 runs out after ~250 Services (the 500-replica benchmark needs 1000).
    "--service-cluster-ip-range=10.96.0.0/16",
    `--service-account-issuer=${apiServerUrl}`,
    `--service-account-key-file=${files.saKey}`,
    `--service-account-signing-key-file=${files.saKey}`,
    `--token-auth-file=${files.tokens}`,
    "--authorization-mode=RBAC",
    "--allow-privileged=true",
    "--enable-priority-and-fairness=false",
    "--max-requests-inflight=2000",
    "--max-mutating-requests-inflight=1000",
  ];
}

/** Flags every control-plane client component takes: the admin kubeconfig, no leader election. */
function componentArgs(files: CredentialFiles, port: number): string[] {
  return [
    `--kubeconfig=${files.kubeconfig}`,
    `--authentication-kubeconfig=${files.kubeconfig}`,
    `--authorization-kubeconfig=${files.kubeconfig}`,
    "--leader-elect=false",
    "--bind-address=127.0.0.1",
    `--secure-port=${port}`,
    "--kube-api-qps=200",
    "--kube-api-burst=400",
  ];
}

function controllerManagerArgs(ports: Ports, files: CredentialFiles): string[] {
  return [
    ...componentArgs(files, ports.controllerManager),
    `--service-account-private-key-file=${files.saKey}`,
    "--controllers=*,-nodeipam,-cloud-node-lifecycle,-service-lb-controller,-route",
    "--use-service-account-credentials=false",
    "--concurrent-deployment-syncs=10",
    "--concurrent-replicaset-syncs=10",
    "--concurrent-gc-syncs=20",
  ];
}

function schedulerArgs(ports: Ports, files: CredentialFiles): string[] {
  return componentArgs(files, ports.scheduler);
}

function kwokArgs(
  ports: Ports,
  files: CredentialFiles,
  options: StartOptions,
  bins: Binaries,
): string[] {
  return [
    `--kubeconfig=${files.kubeconfig}`,
    "--manage-all-nodes=false",
    "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
    "--node-lease-duration-seconds=40",
    `--cidr=${options.podCidr ?? "10.244.0.0/16"}`,
    "--node-ip=127.0.0.1",
    `--server-address=127.0.0.1:${ports.kwok}`,
    ...(bins.kwokStages === undefined ? [] : [`--config=${bins.kwokStages}`]),
    ...(options.extraKwokStages ?? []).map((f) => `--config=${f}`),
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
    for (const sub of ["logs", "etcd", "pki"]) mkdirSync(join(dir, sub), { recursive: true });
    const ports = await allocatePorts();
    const apiServerUrl = `https://127.0.0.1:${ports.apiserver}`;
    const files = writeCredentials(dir, apiServerUrl);
    const state: ClusterState = {
      dir,
      kubeconfig: files.kubeconfig,
      operatorKubeconfig: files.operatorKubeconfig,
      apiServerUrl,
      pids: {},
      ports,
    };
    const cluster = new LocalCluster(state, bins);
    try {
      await cluster.startComponents(options, files);
      cluster.saveState();
      return cluster;
    } catch (err) {
      await cluster.stop();
      throw err;
    }
  }

  /** etcd, then kube-apiserver, then the controller manager, scheduler and KWOK together. */
  private async startComponents(options: StartOptions, files: CredentialFiles): Promise<void> {
    const { dir, ports } = this.state;
    const detached = options.detached === true;
    const etcd = this.launch("etcd", etcdArgs(dir, ports), detached);
    await this.waitHealthy("etcd", `http://127.0.0.1:${ports.etcd}/health`, 30_000, etcd);

    const apiServer = apiServerArgs(dir, ports, this.state.apiServerUrl, files);
    apiServer.push(...tokenWebhookArgs(dir, options.tokenWebhookUrl));
    this.apiServer = { args: apiServer, detached };
    await this.startApiServer();

    const cm = this.launch(
      "kube-controller-manager",
      controllerManagerArgs(ports, files),
      detached,
    );
    const scheduler = this.launch("kube-scheduler", schedulerArgs(ports, files), detached);
    const kwok = this.launch("kwok", kwokArgs(ports, files, options, this.bins), detached);
    await this.waitHealthy(
      "kube-controller-manager",
      `https://127.0.0.1:${ports.controllerManager}/healthz`,
      60_000,
      cm,
    );
    await this.waitHealthy(
      "kube-scheduler",
      `https://127.0.0.1:${ports.scheduler}/healthz`,
      60_000,
      scheduler,
    );
    if (kwok.exitCode !== null) {
      throw new ClusterStartError(`kwok exited: ${tail(join(dir, "logs", "kwok.log"))}`);
    }
  }

  private waitHealthy(
    c: Component,
    url: string,
    timeoutMs: number,
    child: ChildProcess,
  ): Promise<void> {
    return waitFor(
      c,
      async () => (await probe(url)) === 200,
      timeoutMs,
      () => child.exitCode === null,
      join(this.state.dir, "logs", `${c}.log`),
    );
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
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
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
