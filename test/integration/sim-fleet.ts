/**
 * One vLLM simulator (llm-d-inference-sim, a third-party program built from Go modules)
 * per Ready pod. KWOK gives pods loopback IPs; the simulator cannot bind one address, so a
 * plain TCP relay listens on podIP:8000 and forwards to the simulator's own port. The
 * operator therefore scrapes `http://<podIP>:8000/metrics` exactly as it would in a cluster.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { connect, createServer, type Server } from "node:net";
import { freePort } from "../../src/cluster/local.ts";
import { builtTool } from "./cluster.ts";
import { RESOURCES, type KubeClient, type KubeObject } from "../../src/kube/client.ts";

/** The simulator's binary, built once by scripts/build-sim.sh. */
export function ensureSimulator(): string {
  return builtTool("build-sim.sh");
}

interface Replica {
  sim: ChildProcess;
  relay: Server;
  ip: string;
  simPort: number;
}

type Pod = KubeObject & {
  status?: { podIP?: string; conditions?: { type: string; status: string }[] };
};

export class SimFleet {
  private readonly replicas = new Map<string, Replica>();
  private timer: ReturnType<typeof setInterval> | undefined;
  private syncing: Promise<void> | undefined;

  constructor(
    private readonly bin: string,
    private readonly client: KubeClient,
    private readonly namespace: string,
    private readonly selector: string,
    private readonly simArgs: string[],
  ) {}

  start(): void {
    this.timer = setInterval(() => {
      this.syncing ??= this.sync().finally(() => (this.syncing = undefined));
    }, 300);
  }

  /** Pod IPs with a simulator answering behind them. */
  endpoints(): string[] {
    return [...this.replicas.values()].map((r) => r.ip);
  }

  private async sync(): Promise<void> {
    const pods = await this.client.list<Pod>(RESOURCES.pod, {
      namespace: this.namespace,
      labelSelector: this.selector,
    });
    const ready = new Map<string, string>();
    for (const p of pods.items) {
      const ok = p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True");
      if (ok && p.metadata.deletionTimestamp === undefined && p.status?.podIP?.startsWith("127.")) {
        ready.set(p.metadata.name, p.status.podIP);
      }
    }
    for (const [name, r] of this.replicas) {
      if (!ready.has(name)) {
        this.stopReplica(r);
        this.replicas.delete(name);
      }
    }
    for (const [name, ip] of ready) {
      if (!this.replicas.has(name)) this.replicas.set(name, await this.startReplica(ip));
    }
  }

  private async startReplica(ip: string): Promise<Replica> {
    const simPort = await freePort();
    const sim = spawn(
      this.bin,
      ["--port", String(simPort), "--force-dummy-tokenizer", ...this.simArgs],
      {
        stdio: "ignore",
      },
    );
    const relay = createServer((socket) => {
      const upstream = connect(simPort, "127.0.0.1");
      socket.pipe(upstream).pipe(socket);
      const close = () => {
        socket.destroy();
        upstream.destroy();
      };
      socket.on("error", close);
      upstream.on("error", close);
    });
    await new Promise<void>((resolve, reject) => {
      relay.once("error", reject);
      relay.listen(8000, ip, () => resolve());
    });
    return { sim, relay, ip, simPort };
  }

  private stopReplica(r: Replica): void {
    r.relay.close();
    r.sim.kill("SIGKILL");
  }

  async stop(): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer);
    await this.syncing;
    for (const r of this.replicas.values()) this.stopReplica(r);
    this.replicas.clear();
  }
}

/**
 * A bounded load generator: `workers` concurrent loops of completions against the
 * simulators (round robin over their pod IPs) until `stop()` or `maxSeconds`.
 */
export class LoadGenerator {
  private stopped = false;
  private done: Promise<void> | undefined;
  sent = 0;
  failed = 0;

  constructor(
    private readonly endpoints: () => string[],
    private readonly model: string,
    private readonly workers: number,
    private readonly maxTokens: number,
    private readonly maxSeconds: number,
  ) {}

  start(): void {
    const deadline = Date.now() + this.maxSeconds * 1000;
    let next = 0;
    const worker = async () => {
      while (!this.stopped && Date.now() < deadline) {
        const ips = this.endpoints();
        if (ips.length === 0) {
          await new Promise((r) => setTimeout(r, 100));
          continue;
        }
        const ip = ips[next++ % ips.length]!;
        try {
          const res = await fetch(`http://${ip}:8000/v1/completions`, {
            method: "POST",
            headers: { "Content-Type": "application/json" },
            body: JSON.stringify({
              model: this.model,
              prompt: "Tell me about GPUs.",
              max_tokens: this.maxTokens,
            }),
            signal: AbortSignal.timeout(10_000),
          });
          await res.text();
          this.sent++;
        } catch {
          this.failed++;
          await new Promise((r) => setTimeout(r, 50));
        }
      }
    };
    this.done = Promise.all(Array.from({ length: this.workers }, worker)).then(() => undefined);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.done;
  }
}
