/**
 * The integration tests' cluster: a fresh local control plane per test file
 * (or an existing one when MSD_TEST_KUBECONFIG is set), torn down even when a
 * test fails or the run is interrupted. Logs of a failed run are kept.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { readdirSync } from "node:fs";
import { LocalCluster } from "../../src/cluster/local.ts";
import {
  cacheVolumes,
  cpuNode,
  gpuNodes,
  DEFAULT_FLEET,
  type GpuNodeGroup,
} from "../../src/cluster/nodes.ts";
import { ensureBinaries } from "../../src/cluster/binaries.ts";
import { runBuildScript } from "../../src/cluster/build-script.ts";
import { KubeClient, RESOURCES } from "../../src/kube/client.ts";

const run = promisify(execFile);

export interface TestCluster {
  readonly kubeconfig: string;
  readonly operatorKubeconfig: string | undefined;
  readonly client: KubeClient;
  /** Runs kubectl; resolves with stdout/stderr and the exit code (never throws on exit code). */
  kubectl(
    args: string[],
    input?: string,
  ): Promise<{ code: number; stdout: string; stderr: string }>;
  readonly local: LocalCluster | undefined;
  stop(): Promise<void>;
}

const live = new Set<LocalCluster>();
let hooked = false;
function hookExit(): void {
  if (hooked) return;
  hooked = true;
  // Interrupted runs must not leave processes behind.
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    process.once(sig, () => {
      for (const c of live)
        for (const pid of Object.values(c.state.pids)) {
          try {
            process.kill(pid!, "SIGKILL");
          } catch {
            // gone
          }
        }
      process.exit(130);
    });
  }
  process.on("exit", () => {
    for (const c of live)
      for (const pid of Object.values(c.state.pids)) {
        try {
          process.kill(pid!, "SIGKILL");
        } catch {
          // gone
        }
      }
  });
}

export interface ToolResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs one of our build scripts (scripts/build-*.sh: cached by version, a no-op when warm)
 * and returns the path it prints last: the built binary or cache folder.
 */
export function builtTool(script: string): string {
  const path = runBuildScript(
    join(import.meta.dirname, "..", "..", "scripts", script),
    false,
    (cause) => new Error(`scripts/${script} failed`, { cause }),
  );
  if (path === "") throw new Error(`${script} printed no path`);
  return path;
}

/** Runs a command-line tool; resolves with its output and exit code (never throws on exit code). */
export async function runTool(
  bin: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv } = {},
  input?: string,
): Promise<ToolResult> {
  const child = run(bin, args, { maxBuffer: 64 << 20, ...options });
  if (input !== undefined) child.child.stdin?.end(input);
  try {
    const { stdout, stderr } = await child;
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return {
      code: typeof e.code === "number" ? e.code : 1,
      stdout: e.stdout ?? "",
      stderr: e.stderr ?? "",
    };
  }
}

export async function startTestCluster(
  options: {
    fleet?: readonly GpuNodeGroup[];
    karpenterCrds?: boolean;
    volumes?: number;
    podCidr?: string;
    tokenWebhookUrl?: string;
    /** KWOK Stage files read after the test bed's own (e.g. a loader that fails). */
    extraKwokStages?: readonly string[];
  } = {},
): Promise<TestCluster> {
  const bins = ensureBinaries({ quiet: false });
  const kubectlBin = bins.path("kubectl");
  const existing = process.env.MSD_TEST_KUBECONFIG;
  let local: LocalCluster | undefined;
  let dir: string | undefined;
  let kubeconfig: string;
  if (existing !== undefined) {
    kubeconfig = existing;
  } else {
    hookExit();
    dir = mkdtempSync(join(tmpdir(), "msd-it-"));
    local = await LocalCluster.start({
      dir,
      ...(options.podCidr === undefined ? {} : { podCidr: options.podCidr }),
      ...(options.tokenWebhookUrl === undefined
        ? {}
        : { tokenWebhookUrl: options.tokenWebhookUrl }),
      ...(options.extraKwokStages === undefined
        ? {}
        : { extraKwokStages: options.extraKwokStages }),
    });
    live.add(local);
    kubeconfig = local.kubeconfig;
  }
  const client = await KubeClient.load(kubeconfig);
  const kubectl = (args: string[], input?: string) =>
    runTool(kubectlBin, [`--kubeconfig=${kubeconfig}`, ...args], {}, input);

  if (local !== undefined) {
    for (const node of gpuNodes(options.fleet ?? DEFAULT_FLEET)) {
      await client.create(RESOURCES.node, node);
    }
    // Where the model-cache loader Jobs run (they need no GPU).
    await client.create(RESOURCES.node, cpuNode());
    for (const pv of cacheVolumes(options.volumes ?? 16)) {
      await client.create(RESOURCES.persistentVolume, pv);
    }
    if (options.karpenterCrds !== false) {
      const r = await kubectl(["apply", "--server-side", "-f", bins.karpenterCrdsDir]);
      if (r.code !== 0) throw new Error(`installing Karpenter CRDs failed: ${r.stderr}`);
      // The Prometheus operator's PodMonitor and ServiceMonitor, as its module ships them.
      const p = await kubectl(["apply", "--server-side", "-f", bins.prometheusCrdsDir]);
      if (p.code !== 0) throw new Error(`installing prometheus-operator CRDs failed: ${p.stderr}`);
    }
  }
  return {
    kubeconfig,
    operatorKubeconfig: local?.state.operatorKubeconfig,
    client,
    kubectl,
    local,
    async stop() {
      client.close();
      if (local === undefined) return;
      await local.stop();
      live.delete(local);
      // Keep the component logs of a failed run; clean up after a passing one.
      if (dir !== undefined) {
        if (process.exitCode === undefined || process.exitCode === 0) {
          process.once("exit", (code) => {
            if (code === 0) rmSync(dir!, { recursive: true, force: true });
            else
              console.error(
                `control-plane logs kept in ${dir}/logs: ${readdirSync(join(dir!, "logs")).join(", ")}`,
              );
          });
        }
      }
    },
  };
}

export async function eventually<T>(
  what: string,
  fn: () => Promise<T | undefined | false>,
  timeoutMs = 60_000,
  intervalMs = 250,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(
    `timed out after ${timeoutMs} ms waiting for ${what}${last === undefined ? "" : `: ${String(last)}`}`,
  );
}
