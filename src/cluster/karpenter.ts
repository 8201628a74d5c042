/**
 * Real Karpenter on the local control plane: its KWOK cloud provider (every Karpenter
 * controller, with a cloud that creates Node objects instead of VMs) launching nodes from the
 * fake GPU cloud of gpu-cloud.ts; the local KWOK then runs those nodes and their pods.
 * Used by `msd cluster up --karpenter`, `npm start` and the Karpenter integration test.
 */
import { execFile } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { runBuildScript } from "./build-script.ts";
import { gpuCloudInstanceTypes } from "./gpu-cloud.ts";
import { ClusterStartError, freePort, probe, waitFor, type LocalCluster } from "./local.ts";

const run = promisify(execFile);
const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url));
export const KARPENTER_BUILD_SCRIPT = join(REPO_ROOT, "scripts", "build-karpenter.sh");

/** The node class every NodePool of the local cluster points at. */
export const KWOK_NODE_CLASS = {
  group: "karpenter.kwok.sh",
  kind: "KWOKNodeClass",
  name: "default",
} as const;

export interface KarpenterBinaries {
  readonly dir: string;
  readonly bin: string;
  /** The KWOKNodeClass CRD (the karpenter.sh CRDs come with the control plane). */
  readonly kwokCrdsDir: string;
}

export class KarpenterError extends Error {
  override name = "KarpenterError";
}

/** Runs scripts/build-karpenter.sh (a no-op on a warm cache) and returns where things are. */
export function ensureKarpenter(options: { quiet?: boolean } = {}): KarpenterBinaries {
  const dir = runBuildScript(
    KARPENTER_BUILD_SCRIPT,
    options.quiet,
    (cause) =>
      new KarpenterError(`building Karpenter failed (${KARPENTER_BUILD_SCRIPT})`, { cause }),
  );
  return { dir, bin: join(dir, "karpenter-kwok"), kwokCrdsDir: join(dir, "kwok-crds") };
}

export interface KarpenterOptions {
  /** Outlive this Node process (`msd cluster up`). */
  readonly detached: boolean;
  readonly quietBuild?: boolean;
  /**
   * Karpenter's batching window (BATCH_MAX_DURATION / BATCH_IDLE_DURATION, upstream 10s / 1s):
   * how long it collects pending pods before launching.
   */
  readonly batchMaxDuration?: string;
  readonly batchIdleDuration?: string;
}

export interface RunningKarpenter {
  readonly pid: number;
  readonly instanceTypesFile: string;
  readonly metricsPort: number;
  readonly logFile: string;
}

async function kubectl(cluster: LocalCluster, args: string[], input?: string): Promise<string> {
  const bin = cluster.binaries.path("kubectl");
  const child = run(bin, [`--kubeconfig=${cluster.kubeconfig}`, ...args], {
    maxBuffer: 16 << 20,
  });
  if (input !== undefined) child.child.stdin?.end(input);
  try {
    return (await child).stdout;
  } catch (err) {
    const e = err as { stderr?: string };
    throw new KarpenterError(`kubectl ${args.join(" ")} failed: ${e.stderr ?? String(err)}`, {
      cause: err,
    });
  }
}

/** The Karpenter CRDs (karpenter.sh and the KWOKNodeClass), established. */
export async function installKarpenterCrds(
  cluster: LocalCluster,
  bins: KarpenterBinaries,
): Promise<void> {
  await kubectl(cluster, ["apply", "--server-side", "-f", cluster.binaries.karpenterCrdsDir]);
  await kubectl(cluster, ["apply", "--server-side", "-f", bins.kwokCrdsDir]);
  await kubectl(cluster, [
    "wait",
    "--for=condition=Established",
    "--timeout=60s",
    "crd/nodepools.karpenter.sh",
    "crd/nodeclaims.karpenter.sh",
    "crd/kwoknodeclasses.karpenter.kwok.sh",
  ]);
}

/**
 * The `default` KWOKNodeClass, marked Ready. Karpenter ignores NodePools whose node class is
 * not Ready, and in the KWOK provider no controller sets that condition (a real cloud's node
 * class controller would), so the test bed sets it, standing in for that controller.
 */
export async function createNodeClass(
  cluster: LocalCluster,
  name: string = KWOK_NODE_CLASS.name,
  nodeRegistrationDelay?: string,
): Promise<void> {
  const manifest = {
    apiVersion: "karpenter.kwok.sh/v1alpha1",
    kind: "KWOKNodeClass",
    metadata: { name },
    spec: nodeRegistrationDelay === undefined ? {} : { nodeRegistrationDelay },
  };
  await kubectl(cluster, ["apply", "-f", "-"], JSON.stringify(manifest));
  const ready = {
    status: {
      conditions: [
        {
          type: "Ready",
          status: "True",
          reason: "Ready",
          message: "",
          lastTransitionTime: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
          observedGeneration: 1,
        },
      ],
    },
  };
  await kubectl(cluster, [
    "patch",
    "kwoknodeclass",
    name,
    "--subresource=status",
    "--type=merge",
    "-p",
    JSON.stringify(ready),
  ]);
}

/**
 * Installs the CRDs and the node class, writes the fake cloud's instance types and starts
 * Karpenter as one more process of the cluster (its pid is saved in state.json).
 * It runs with the admin identity: the test bed stands in for Karpenter's Helm chart and RBAC.
 */
export async function startKarpenter(
  cluster: LocalCluster,
  options: KarpenterOptions,
): Promise<RunningKarpenter> {
  const bins = ensureKarpenter({ quiet: options.quietBuild ?? true });
  await installKarpenterCrds(cluster, bins);
  await createNodeClass(cluster);
  const instanceTypesFile = join(cluster.state.dir, "karpenter-instance-types.json");
  writeFileSync(instanceTypesFile, `${JSON.stringify(gpuCloudInstanceTypes(), null, 2)}\n`);
  const metricsPort = await freePort();
  const healthPort = await freePort();
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    KUBECONFIG: cluster.kubeconfig,
    INSTANCE_TYPES_FILE_PATH: instanceTypesFile,
    // One Karpenter per cluster: no lease to wait for at start.
    DISABLE_LEADER_ELECTION: "true",
    METRICS_PORT: String(metricsPort),
    HEALTH_PROBE_PORT: String(healthPort),
    LOG_LEVEL: "info",
    // Upstream's defaults when unset (spawn leaves out a variable whose value is undefined).
    BATCH_MAX_DURATION: options.batchMaxDuration,
    BATCH_IDLE_DURATION: options.batchIdleDuration,
  };
  const child = cluster.spawnProcess("karpenter", bins.bin, [], {
    detached: options.detached,
    env,
  });
  const logFile = join(cluster.state.dir, "logs", "karpenter.log");
  await waitFor(
    "karpenter",
    async () => (await probe(`http://127.0.0.1:${healthPort}/readyz`)) === 200,
    120_000,
    () => child.exitCode === null,
    logFile,
  );
  if (child.pid === undefined) throw new ClusterStartError("karpenter did not start");
  cluster.saveState();
  return { pid: child.pid, instanceTypesFile, metricsPort, logFile };
}
