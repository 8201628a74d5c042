/**
 * `npm run bench:operator [-- --sizes 50,200,500]`: apply N MistralSmallDeployments at
 * once and measure time until all are Ready, API requests, writes once converged and the
 * operator's peak RSS, next to the floor: a bare `kubectl apply` of the same rendered
 * objects on the same control plane, timed until the same Deployments are ready.
 * Prints figures; asserts nothing (machines here are noisy).
 */
import { execFile, execFileSync, spawn } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs, promisify } from "node:util";
import { stringify } from "yaml";
import { parseResource } from "../src/api/validate.ts";
import { LocalCluster, OPERATOR_TOKEN, OPERATOR_USER, freePort } from "../src/cluster/local.ts";
import { cacheVolumes, gpuNodes } from "../src/cluster/nodes.ts";
import { KubeClient, RESOURCES, type KubeObject } from "../src/kube/client.ts";
import { rbacManifests } from "../src/controller/rbac.ts";
import { plan } from "../src/planner/plan.ts";
import { renderAll } from "../src/render/index.ts";
import { toYamlStream } from "../src/util/yaml.ts";

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, "..");
const { values } = parseArgs({
  options: {
    sizes: { type: "string", default: "50,200,500" },
    "converged-seconds": { type: "string", default: "35" },
    "resync-seconds": { type: "string", default: "15" },
    json: { type: "boolean" },
    // Node flags for the operator process, e.g. the image's --max-old-space-size.
    "node-options": { type: "string" },
    // Run the operator from the TypeScript sources (tsx) instead of the compiled build.
    tsx: { type: "boolean" },
    // How the operator connects: "in-cluster" (a service account directory, the image's
    // lean path) or "kubeconfig" (@kubernetes/client-node's KubeConfig, as out of cluster).
    connection: { type: "string", default: "in-cluster" },
  },
});
const sizes = values.sizes!.split(",").map(Number);

/**
 * The operator as the container image runs it: compiled JavaScript (tsconfig.build.json),
 * built under .tmp/ so that node_modules still resolve. `--tsx` runs the sources instead.
 */
function operatorCommand(): string[] {
  if (values.tsx === true) return [join(ROOT, "bin", "msd.js")];
  const out = join(ROOT, ".tmp", "bench-dist");
  rmSync(out, { recursive: true, force: true });
  execFileSync(
    process.execPath,
    [
      join(ROOT, "node_modules", "typescript", "bin", "tsc"),
      "-p",
      join(ROOT, "tsconfig.build.json"),
      "--outDir",
      out,
    ],
    {
      stdio: "inherit",
    },
  );
  const entry = join(out, "src", "cli", "entry.js");
  return [
    "--input-type=module",
    "-e",
    `const { run } = await import(${JSON.stringify(entry)}); process.exitCode = await run(process.argv.slice(1));`,
  ];
}
const OPERATOR_COMMAND = operatorCommand();
const CONNECTION = values.connection!;
if (CONNECTION !== "in-cluster" && CONNECTION !== "kubeconfig")
  throw new Error(`--connection must be in-cluster or kubeconfig, got ${CONNECTION}`);

/**
 * The operator as in a pod: KUBERNETES_SERVICE_HOST/PORT and a service account directory
 * (token, CA, namespace). `msd run` reads /var/run/secrets/..., which a benchmark cannot
 * write, so the same Operator is started with that directory passed in.
 */
function inClusterCommand(cluster: LocalCluster, port: number): string[] {
  const sa = join(cluster.state.dir, "serviceaccount");
  mkdirSync(sa, { recursive: true });
  writeFileSync(join(sa, "token"), OPERATOR_TOKEN);
  writeFileSync(join(sa, "namespace"), "default");
  copyFileSync(join(cluster.state.dir, "pki", "apiserver.crt"), join(sa, "ca.crt"));
  const manager =
    values.tsx === true
      ? join(ROOT, "src", "controller", "manager.ts")
      : join(ROOT, ".tmp", "bench-dist", "src", "controller", "manager.js");
  const api = new URL(cluster.state.apiServerUrl);
  const opts = {
    connect: {
      env: { KUBERNETES_SERVICE_HOST: api.hostname, KUBERNETES_SERVICE_PORT: api.port },
      serviceAccountDir: sa,
    },
    port,
    resyncMs: RESYNC * 1000,
    leaseNamespace: "default",
  };
  return [
    ...(values.tsx === true ? ["--import", "tsx"] : []),
    "--input-type=module",
    "-e",
    `const { Operator } = await import(${JSON.stringify(manager)});
     const op = new Operator(${JSON.stringify(opts)});
     process.once("SIGTERM", () => op.stop().then(() => process.exit(0)));
     await op.start();`,
  ];
}
const RESYNC = Number(values["resync-seconds"]);
const CONVERGED_WINDOW = Number(values["converged-seconds"]);

/** NVFP4 at 32K fits one A100-80GB: one GPU per replica keeps the fake fleet small. */
// The weights are already in a claim (source.pvc): what is timed is the operator's own work, as
// for the floor. With the Hub source the operator first waits for the loader Job by design, which
// the floor's bare apply does not.
const WEIGHTS_CLAIM = "weights";
const SPEC = {
  gpu: { type: "a100-80gb" },
  model: { quantization: "nvfp4", source: { pvc: { claimName: WEIGHTS_CLAIM } } },
  maxModelLen: 32768,
};

/** The claim holding the weights in a namespace, bound to one of the pre-created volumes. */
function weightsClaim(namespace: string): KubeObject {
  return {
    apiVersion: "v1",
    kind: "PersistentVolumeClaim",
    metadata: { name: WEIGHTS_CLAIM, namespace },
    spec: {
      accessModes: ["ReadWriteMany"],
      storageClassName: "",
      resources: { requests: { storage: "1Ti" } },
    },
  } as KubeObject;
}

function msdObject(name: string, namespace: string) {
  return {
    apiVersion: "serving.mistralsmall.dev/v1alpha1",
    kind: "MistralSmallDeployment",
    metadata: { name, namespace },
    spec: SPEC,
  };
}

function sleep(ms: number) {
  return new Promise((r) => setTimeout(r, ms));
}

async function waitUntil(
  what: string,
  fn: () => Promise<boolean>,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await fn()) return;
    await sleep(200);
  }
  throw new Error(`timed out waiting for ${what}`);
}

interface Result {
  n: number;
  floorSeconds: number;
  operatorSeconds: number;
  ratio: number;
  apiRequests: number;
  apiRequestsPerResource: number;
  writesWhenConverged: number;
  leaseRenewalsWhenConverged: number;
  peakRssMB: number;
}

async function metricsOf(port: number): Promise<Map<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    const m = /^msd_api_requests_total\{verb="(\w+)",resource="(\w+)",code="\d+"\} (\d+)/.exec(
      line,
    );
    if (m === null) continue;
    const key = `${m[1]}:${m[2]}`;
    out.set(key, (out.get(key) ?? 0) + Number(m[3]));
  }
  return out;
}

function sum(m: Map<string, number>, pred: (verb: string, resource: string) => boolean): number {
  let n = 0;
  for (const [k, v] of m) {
    const [verb, resource] = k.split(":") as [string, string];
    if (pred(verb, resource)) n += v;
  }
  return n;
}

const WRITE = new Set(["create", "update", "patch", "delete"]);

async function benchOne(n: number): Promise<Result> {
  const dir = mkdtempSync(join(tmpdir(), `msd-bench-${n}-`));
  const cluster = await LocalCluster.start({ dir, quietBuild: false });
  const kubectl = (args: string[], input?: string) => {
    const p = run(
      cluster.binaries.path("kubectl"),
      [`--kubeconfig=${cluster.kubeconfig}`, ...args],
      {
        maxBuffer: 256 << 20,
      },
    );
    if (input !== undefined) p.child.stdin?.end(input);
    return p;
  };
  const admin = await KubeClient.load(cluster.kubeconfig);
  let operator: ReturnType<typeof spawn> | undefined;
  try {
    // Room for both runs side by side: 2N replicas of the plan's GPUs each.
    const gpus = 2 * n * plan(parseResource(msdObject("size", "floor")).spec).gpusPerReplica;
    for (const node of gpuNodes([
      { gpuType: "a100-80gb", count: Math.ceil(gpus / 8) + 1, gpusPerNode: 8 },
    ])) {
      await admin.create(RESOURCES.node, node);
    }
    for (const pv of cacheVolumes(2 * n)) await admin.create(RESOURCES.persistentVolume, pv);
    for (const ns of ["floor", "bench"]) {
      await admin.create(RESOURCES.namespace, { metadata: { name: ns } });
      await admin.create(RESOURCES.pvc, weightsClaim(ns), ns);
    }
    await kubectl(["apply", "--server-side", "-f", join(ROOT, "crds")]);
    await kubectl([
      "wait",
      "--for=condition=Established",
      "--timeout=30s",
      "crd/mistralsmalldeployments.serving.mistralsmall.dev",
    ]);
    await kubectl(
      ["apply", "-f", "-"],
      rbacManifests("mistral-small-operator", "default", { kind: "User", name: OPERATOR_USER })
        .map((m) => `---\n${stringify(m)}`)
        .join(""),
    );

    const readyDeployments = async (ns: string) => {
      const list = await admin.list(RESOURCES.deployment, { namespace: ns });
      return list.items.filter((d) => d.status?.readyReplicas === 1).length;
    };

    // The floor: the same objects, applied by kubectl, ready when the Deployments are.
    const rendered = Array.from({ length: n }, (_, i) => {
      const msd = parseResource(msdObject(`m${i}`, "floor"));
      return renderAll(msd, plan(msd.spec));
    }).flat();
    const floorStart = Date.now();
    await kubectl(["apply", "--server-side", "-f", "-"], toYamlStream(rendered));
    await waitUntil(
      "floor deployments ready",
      async () => (await readyDeployments("floor")) === n,
      600_000,
    );
    const floorSeconds = (Date.now() - floorStart) / 1000;

    const port = await freePort();
    operator = spawn(
      process.execPath,
      CONNECTION === "in-cluster"
        ? inClusterCommand(cluster, port)
        : [
            ...OPERATOR_COMMAND,
            "run",
            `--kubeconfig=${cluster.state.operatorKubeconfig}`,
            `--port=${port}`,
            `--resync-seconds=${RESYNC}`,
            "--lease-namespace=default",
          ],
      {
        stdio: ["ignore", "ignore", "inherit"],
        env: { ...process.env, NODE_OPTIONS: values["node-options"] ?? "" },
      },
    );
    const pid = operator.pid!;
    await waitUntil(
      "operator ready",
      async () => {
        try {
          return (
            (await fetch(`http://127.0.0.1:${port}/readyz`)).status === 200 &&
            (await metricsOf(port)).size > 0
          );
        } catch {
          return false;
        }
      },
      60_000,
    );
    const before = await metricsOf(port);
    const opStart = Date.now();
    await kubectl(
      ["apply", "--server-side", "-f", "-"],
      Array.from({ length: n }, (_, i) => `---\n${stringify(msdObject(`m${i}`, "bench"))}`).join(
        "",
      ),
    );
    await waitUntil(
      "all MistralSmallDeployments Ready",
      async () => {
        const list = await admin.list(RESOURCES.msd, { namespace: "bench" });
        return (
          list.items.filter((m) =>
            m.status?.conditions?.some((c) => c.type === "Ready" && c.reason === "Available"),
          ).length === n
        );
      },
      900_000,
    );
    const operatorSeconds = (Date.now() - opStart) / 1000;
    const atReady = await metricsOf(port);
    const apiRequests = sum(atReady, () => true) - sum(before, () => true);
    await sleep(3000);
    const settled = await metricsOf(port);
    await sleep(CONVERGED_WINDOW * 1000);
    const converged = await metricsOf(port);
    const writes = (m: Map<string, number>) => sum(m, (v, r) => WRITE.has(v) && r !== "leases");
    const leases = (m: Map<string, number>) => sum(m, (v, r) => WRITE.has(v) && r === "leases");
    const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    const heap = /^msd_nodejs_heap_size_used_bytes (\d+)/m.exec(
      await (await fetch(`http://127.0.0.1:${port}/metrics`)).text(),
    );
    process.stderr.write(
      `N=${n}: V8 heap used after convergence ${heap === null ? "?" : (Number(heap[1]) / 2 ** 20).toFixed(0)} MB\n`,
    );
    return {
      n,
      floorSeconds,
      operatorSeconds,
      ratio: operatorSeconds / floorSeconds,
      apiRequests,
      apiRequestsPerResource: apiRequests / n,
      writesWhenConverged: writes(converged) - writes(settled),
      leaseRenewalsWhenConverged: leases(converged) - leases(settled),
      peakRssMB: hwm === null ? NaN : Number(hwm[1]) / 1024,
    };
  } finally {
    operator?.kill("SIGTERM");
    admin.close();
    await cluster.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

const results: Result[] = [];
for (const n of sizes) {
  process.stderr.write(`bench:operator N=${n} (connection: ${CONNECTION})...\n`);
  results.push(await benchOne(n));
}
if (values.json === true) {
  console.log(JSON.stringify({ results }, null, 2));
} else {
  console.log(
    `\nN     floor(kubectl) s  operator s  ratio  API requests (per MSD)  writes in ${CONVERGED_WINDOW}s converged (lease renewals)  peak RSS MB`,
  );
  for (const r of results) {
    console.log(
      `${String(r.n).padEnd(5)} ${r.floorSeconds.toFixed(1).padStart(16)}  ${r.operatorSeconds.toFixed(1).padStart(10)}  ${r.ratio.toFixed(2).padStart(5)}  ${String(r.apiRequests).padStart(12)} (${r.apiRequestsPerResource.toFixed(1)})  ${String(r.writesWhenConverged).padStart(22)} (${r.leaseRenewalsWhenConverged})  ${r.peakRssMB.toFixed(0).padStart(11)}`,
    );
  }
  console.log(
    "\ntargets: ratio <= 1.5, zero writes when converged (lease renewals are leader election, not reconcile writes), peak RSS < 150 MB at N=500",
  );
}
