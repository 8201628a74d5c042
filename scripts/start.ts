/**
 * `npm start`: the project's main job on an embedded default. Starts a local control
 * plane with fake A100 nodes (never a cluster you did not ask for), installs the CRDs,
 * runs the operator with only its generated RBAC rules, applies an example and shows
 * what happens. `npm start -- --keep` leaves it all running until Ctrl-C.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { pino } from "pino";
import { stringify } from "yaml";
import { LocalCluster, OPERATOR_USER, freePort } from "../src/cluster/local.ts";
import { DEFAULT_FLEET, cacheVolumes, gpuNodes, cpuNode } from "../src/cluster/nodes.ts";
import { KubeClient, RESOURCES } from "../src/kube/client.ts";
import { Operator } from "../src/controller/manager.ts";
import { rbacManifests } from "../src/controller/rbac.ts";
import { runPlan } from "../src/cli/commands.ts";
import { KWOK_NODE_CLASS, startKarpenter } from "../src/cluster/karpenter.ts";

const { values } = parseArgs({
  options: {
    keep: { type: "boolean" },
    "no-karpenter": { type: "boolean" },
    example: { type: "string", default: "examples/a100-80gb-fp8.yaml" },
    dir: { type: "string", default: ".tmp/start" },
  },
});
const root = resolve(import.meta.dirname, "..");
const dir = resolve(root, values.dir!);
const example = resolve(root, values.example!);
const t0 = Date.now();
const say = (msg: string) =>
  console.log(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(5)} s] ${msg}`);

rmSync(dir, { recursive: true, force: true });
mkdirSync(dir, { recursive: true });
say(
  `starting a local control plane in ${dir} (first run: builds it from Go modules, 15-25 minutes)`,
);
const cluster = await LocalCluster.start({ dir, quietBuild: false });
const kubectl = (args: string[], input?: string) =>
  execFileSync(cluster.binaries.path("kubectl"), [`--kubeconfig=${cluster.kubeconfig}`, ...args], {
    encoding: "utf8",
    ...(input === undefined ? {} : { input }),
  });
let operator: Operator | undefined;
let admin: KubeClient | undefined;
const shutdown = async () => {
  await operator?.stop();
  admin?.close();
  await cluster.stop();
};
process.once("SIGINT", () => void shutdown().then(() => process.exit(130)));

try {
  admin = await KubeClient.load(cluster.kubeconfig);
  for (const node of [...gpuNodes(DEFAULT_FLEET), cpuNode()])
    await admin.create(RESOURCES.node, node);
  for (const pv of cacheVolumes(8)) await admin.create(RESOURCES.persistentVolume, pv);
  say("control plane ready: 2 nodes of 8x A100-80GB and 1 of 8x A100-40GB (KWOK)");
  kubectl([
    "apply",
    "--server-side",
    "-f",
    join(root, "crds"),
    "-f",
    cluster.binaries.karpenterCrdsDir,
  ]);
  kubectl([
    "wait",
    "--for=condition=Established",
    "--timeout=30s",
    "crd/mistralsmalldeployments.serving.mistralsmall.dev",
  ]);
  kubectl(
    ["apply", "-f", "-"],
    rbacManifests("mistral-small-operator", "default", { kind: "User", name: OPERATOR_USER })
      .map((m) => `---\n${stringify(m)}`)
      .join(""),
  );
  say("installed the CRDs and the operator's RBAC rules");

  const port = await freePort();
  operator = new Operator({
    kubeconfig: cluster.state.operatorKubeconfig,
    port,
    host: "127.0.0.1",
    leaseNamespace: "default",
    logger: pino({ level: "warn" }),
  });
  await operator.start();
  say(`operator running (leader election on, metrics on http://127.0.0.1:${port}/metrics)`);

  const planned = runPlan(example, "table");
  console.log(`\n$ msd plan -f ${values.example}\n${planned.stdout}`);
  kubectl(["apply", "-f", example]);
  const name = (
    kubectl(["get", "-f", example, "-o", "jsonpath={.metadata.name}"]) || "mistral-small"
  ).trim();
  say(`applied ${values.example} (${name}); watching its status`);

  await watchReady(admin, name);
  console.log(`\n$ kubectl get msd -o wide\n${kubectl(["get", "msd", "-o", "wide"])}`);
  console.log(
    `$ kubectl get deploy,svc,pdb,pvc,pods -l app.kubernetes.io/instance=${name}\n${kubectl(["get", "deploy,svc,pdb,pvc,pods", "-o", "wide", "-l", `app.kubernetes.io/instance=${name}`])}`,
  );
  console.log(
    `$ kubectl get events (for ${name})\n${kubectl(["get", "events.events.k8s.io", "--field-selector", `regarding.name=${name}`, "-o", "custom-columns=TYPE:.type,REASON:.reason,NOTE:.note"])}`,
  );
  if (values["no-karpenter"] !== true) await karpenterAct(admin);
  if (values.keep === true) {
    say(
      `running until Ctrl-C. In another shell:\n  export KUBECONFIG=${cluster.kubeconfig}\n  kubectl get msd -o wide`,
    );
    await new Promise(() => undefined);
  }
  await shutdown();
  say("done: operator and control plane stopped");
} catch (err) {
  await shutdown();
  console.error(err);
  process.exitCode = 1;
}

/** Prints each new Ready verdict until the resource is Available. */
async function watchReady(client: KubeClient, name: string): Promise<void> {
  let last = "";
  const deadline = Date.now() + 180_000;
  for (;;) {
    const m = await client.get(RESOURCES.msd, name, "default");
    const ready = m.status?.conditions?.find((c) => c.type === "Ready");
    const line =
      ready === undefined
        ? "no status yet"
        : `Ready=${ready.status} ${ready.reason}: ${ready.message}`;
    if (line !== last) say(line);
    last = line;
    if (ready?.status === "True" && ready.reason === "Available") return;
    if (Date.now() > deadline) throw new Error(`not Ready after 180 s: ${line}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/**
 * The second act: real Karpenter (its KWOK provider, on a fake GPU cloud generated from our
 * catalog) launches the GPU nodes for a resource with a NodePool of its own, and gives them
 * back when the resource is deleted.
 */
async function karpenterAct(client: KubeClient): Promise<void> {
  say("starting Karpenter (its KWOK provider, real controllers; first run builds it, ~13 min)");
  const k = await startKarpenter(cluster, { detached: false, quietBuild: false });
  say(`Karpenter running (log: ${k.logFile}); a KWOKNodeClass named default is Ready`);
  const name = "mistral-small-karpenter";
  const manifest = {
    apiVersion: "serving.mistralsmall.dev/v1alpha1",
    kind: "MistralSmallDeployment",
    metadata: { name, namespace: "default" },
    spec: {
      gpu: { type: "a100-80gb" },
      maxModelLen: 65536,
      nodePool: {
        provider: "karpenter",
        karpenter: { nodeClassRef: { ...KWOK_NODE_CLASS }, consolidateAfter: "30s" },
      },
    },
  };
  console.log(`\n$ kubectl apply -f - <<EOF\n${stringify(manifest)}EOF`);
  kubectl(["apply", "-f", "-"], JSON.stringify(manifest));
  await watchReady(client, name);
  const columns =
    "custom-columns=NODECLAIM:.metadata.name,TYPE:.metadata.labels.node\\.kubernetes\\.io/instance-type,CAPACITY:.metadata.labels.karpenter\\.sh/capacity-type,NODE:.status.nodeName";
  console.log(`\n$ kubectl get nodeclaims\n${kubectl(["get", "nodeclaims", "-o", columns])}`);
  console.log(
    `$ kubectl get pods -o wide -l app.kubernetes.io/instance=${name}\n${kubectl(["get", "pods", "-o", "wide", "-l", `app.kubernetes.io/instance=${name}`])}`,
  );
  kubectl(["delete", "msd", name, "--wait=false"]);
  say(`deleted ${name}: the operator removes its replicas, then its NodePool; Karpenter drains`);
  const deadline = Date.now() + 180_000;
  let last = "";
  for (;;) {
    const claims = kubectl(["get", "nodeclaims", "-o", "name"]).trim();
    const gone = kubectl(["get", "msd", name, "--ignore-not-found", "-o", "name"]).trim() === "";
    const line = `${claims === "" ? 0 : claims.split("\n").length} NodeClaim(s) left${gone ? ", resource gone" : ""}`;
    if (line !== last) say(line);
    last = line;
    if (claims === "" && gone) break;
    if (Date.now() > deadline) throw new Error(`not cleaned up after 180 s: ${line}`);
    await new Promise((r) => setTimeout(r, 500));
  }
  say("the NodePool, its NodeClaims and their nodes are gone; nothing left behind");
}
