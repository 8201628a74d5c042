/**
 * `msd cluster up|down|status`: the local control plane in the background, with fake A100
 * nodes, or (`--karpenter`) with no GPU node and real Karpenter launching them on demand.
 */
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import {
  LocalCluster,
  componentStatus,
  readState,
  stopInOrder,
  type ClusterState,
} from "../cluster/local.ts";
import { DEFAULT_FLEET, cacheVolumes, gpuNodes, cpuNode } from "../cluster/nodes.ts";
import { KWOK_NODE_CLASS, startKarpenter } from "../cluster/karpenter.ts";
import { GPU_SHAPES } from "../cluster/gpu-cloud.ts";
import { KubeClient, RESOURCES, isConflict } from "../kube/client.ts";
import { EXIT, type CommandResult } from "./commands.ts";
import { UsageError } from "./main.ts";

export const DEFAULT_CLUSTER_DIR = ".tmp/cluster";

function parseClusterArgs(argv: string[], allowKarpenter: boolean) {
  const { values } = parseArgs({
    args: argv,
    options: {
      dir: { type: "string", short: "d" },
      ...(allowKarpenter ? { karpenter: { type: "boolean" as const } } : {}),
    },
    strict: true,
  });
  return { dir: resolve(values.dir ?? DEFAULT_CLUSTER_DIR), karpenter: values.karpenter === true };
}

function dirArg(argv: string[]): string {
  return parseClusterArgs(argv, false).dir;
}

/** Only signal a pid if it still runs the binary we started (pids get reused). */
function ourPids(state: ClusterState): number[] {
  return Object.values(state.pids).filter((pid): pid is number => {
    if (pid === undefined) return false;
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8");
      return (
        cmd.includes(state.dir) ||
        /(etcd|kube-apiserver|kube-controller-manager|kube-scheduler|kwok|karpenter)/.test(
          cmd.split("\0")[0] ?? "",
        )
      );
    } catch {
      return false;
    }
  });
}

export async function clusterUp(argv: string[]): Promise<CommandResult> {
  const { dir, karpenter } = parseClusterArgs(argv, true);
  if (existsSync(`${dir}/state.json`)) {
    const running = Object.values(componentStatus(readState(dir))).some((s) => s === "running");
    if (running)
      throw new UsageError(
        `a cluster is already running in ${dir}; run msd cluster down --dir ${dir} first`,
      );
  }
  mkdirSync(dir, { recursive: true });
  process.stderr.write(
    `starting the local control plane in ${dir} (the first run builds it from Go modules: 15-25 minutes)...\n`,
  );
  const started = Date.now();
  const cluster = await LocalCluster.start({ dir, detached: true, quietBuild: false });
  if (karpenter) {
    try {
      await startKarpenter(cluster, { detached: true, quietBuild: false });
    } catch (err) {
      await cluster.stop();
      throw err;
    }
  }
  const client = await KubeClient.load(cluster.kubeconfig);
  try {
    // Idempotent: a restarted cluster keeps its etcd data, nodes included.
    // The CPU node runs the model-cache loader Jobs (with Karpenter too: they need no GPU).
    const nodes = [...(karpenter ? [] : gpuNodes(DEFAULT_FLEET)), cpuNode()];
    for (const obj of [...nodes, ...cacheVolumes(16)]) {
      const r = obj.kind === "Node" ? RESOURCES.node : RESOURCES.persistentVolume;
      await client.create(r, obj).catch((err: unknown) => {
        if (!isConflict(err)) throw err;
      });
    }
  } finally {
    client.close();
  }
  const secs = ((Date.now() - started) / 1000).toFixed(1);
  const nodeLines = karpenter
    ? [
        `no GPU node yet: Karpenter launches them (KWOK) from ${GPU_SHAPES.length} fake GPU instance types`,
        `NodePools point at nodeClassRef {group: ${KWOK_NODE_CLASS.group}, kind: ${KWOK_NODE_CLASS.kind}, name: ${KWOK_NODE_CLASS.name}}`,
      ]
    : [`fake GPU nodes: 2x 8x NVIDIA-A100-SXM4-80GB, 1x 8x NVIDIA-A100-SXM4-40GB (KWOK)`];
  return {
    code: EXIT.ok,
    stdout: [
      `local control plane up in ${secs} s: ${cluster.state.apiServerUrl}`,
      ...nodeLines,
      ``,
      `  export KUBECONFIG=${cluster.kubeconfig}`,
      `  kubectl get nodes`,
      `  msd cluster down --dir ${dir}`,
      ``,
    ].join("\n"),
    stderr: "",
  };
}

export async function clusterDown(argv: string[]): Promise<CommandResult> {
  const dir = dirArg(argv);
  if (!existsSync(`${dir}/state.json`)) {
    return { code: EXIT.ok, stdout: `no cluster state in ${dir}: nothing to stop\n`, stderr: "" };
  }
  const state = readState(dir);
  const pids = ourPids(state);
  await stopInOrder(pids);
  return {
    code: EXIT.ok,
    stdout: `stopped ${pids.length} processes of the cluster in ${dir}\n`,
    stderr: "",
  };
}

export function clusterStatus(argv: string[]): CommandResult {
  const dir = dirArg(argv);
  if (!existsSync(`${dir}/state.json`)) {
    return { code: EXIT.error, stdout: "", stderr: `no cluster in ${dir}\n` };
  }
  const state = readState(dir);
  const status = componentStatus(state);
  const lines = Object.entries(status).map(
    ([c, s]) => `${c.padEnd(24)} ${s} (pid ${state.pids[c as keyof typeof state.pids]})`,
  );
  const allUp = Object.values(status).every((s) => s === "running");
  return {
    code: allUp ? EXIT.ok : EXIT.error,
    stdout: `${lines.join("\n")}\napiserver: ${state.apiServerUrl}\nkubeconfig: ${state.kubeconfig}\n`,
    stderr: "",
  };
}

export async function cluster(argv: string[]): Promise<CommandResult> {
  const [sub, ...rest] = argv;
  switch (sub) {
    case "up":
      return clusterUp(rest);
    case "down":
      return clusterDown(rest);
    case "status":
      return clusterStatus(rest);
    default:
      throw new UsageError(
        "usage: msd cluster up [--karpenter] [--dir D] | down | status [--dir D]",
      );
  }
}
