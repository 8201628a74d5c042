/**
 * A real `pulumi up` / `pulumi destroy` of the example program infra/index.ts with its own stack
 * configuration (infra/Pulumi.yaml, infra/Pulumi.dev.yaml: stack "dev"), against the local control
 * plane, with the Pulumi CLI and the Kubernetes provider built from Go modules
 * (infra/scripts/build-pulumi.sh) and a local file backend: what the CI workflow runs.
 *
 * The CLI's Node.js language host (pulumi-language-nodejs) cannot be built from the Go module
 * proxy, so the program runs as an Automation API inline program whose body is infra/index.ts
 * itself (imported afresh for each run with tsx's tsImport), in a workspace whose workDir is
 * infra/: project and stack configuration come from the committed files. The only test-specific
 * input is the environment: KUBECONFIG (the program's ambient-kubeconfig path) and the backend.
 *
 * The in-cluster operator pods are KWOK fakes: they schedule on an untainted fake CPU node and
 * turn Ready, so the component's Deployment await passes as on a real cluster, and the operator
 * itself runs as a local `msd run` process with a token of the ServiceAccount the component
 * created, i.e. exactly its RBAC, started as soon as that ServiceAccount exists.
 *
 * Run: npm run test:e2e --prefix infra (opt-in: builds take 20-40 minutes cold).
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { tsImport } from "tsx/esm/api";
import { LocalWorkspace, PulumiCommand, type Stack } from "@pulumi/pulumi/automation/index.js";
import { eventually, startTestCluster, type TestCluster } from "../../test/integration/cluster.ts";
import { RESOURCES, type KubeObject } from "../../src/kube/client.ts";
import {
  httpStatus,
  startChild,
  tokenKubeconfig,
} from "../../test/integration/operator-harness.ts";

const INFRA = join(import.meta.dirname, "..");
const PROVIDER_VERSION = "4.25.0";
const STACK = "dev";
const STACK_FILE = join(INFRA, `Pulumi.${STACK}.yaml`);

/** The stack's configuration as the CLI reads it (from Pulumi.dev.yaml), without the project prefix. */
async function stackConfig(stack: Stack): Promise<Record<string, string>> {
  const all = await stack.getAllConfig();
  return Object.fromEntries(
    Object.entries(all).map(([k, v]) => [k.replace(/^[^:]+:/, ""), v.value]),
  );
}

function binaries(): string {
  const out = execFileSync("bash", [join(INFRA, "scripts", "build-pulumi.sh")], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
  });
  return out.trim().split("\n").pop()!;
}

type Deployment = KubeObject & { spec: { replicas: number } };
type Msd = KubeObject & { spec: { maxModelLen: number; replicas: number } };

describe("pulumi up of infra/index.ts with Pulumi.dev.yaml against the local control plane", () => {
  let cfg: Record<string, string> = {};
  let operatorNs = "";
  let ns = "";
  let c: TestCluster;
  let work: string;
  let stack: Stack;
  let operator: ChildProcess | undefined;
  let committedStackFile = "";

  /** The operator, once the component has created its ServiceAccount (and with its token). */
  async function runOperatorWhenInstalled(): Promise<void> {
    const token = await eventually(
      "the operator's ServiceAccount",
      async () => {
        const r = await c.kubectl(["create", "token", "mistral-small-operator", "-n", operatorNs]);
        return r.code === 0 ? r.stdout.trim() : undefined;
      },
      300_000,
      500,
    );
    const kc = await tokenKubeconfig(c, join(work, "operator.kubeconfig"), token, "operator");
    const started = await startChild(c, "pulumi-e2e", 4, {
      kubeconfig: kc,
      leaseNamespace: operatorNs,
    });
    operator = started.child;
    const port = started.port;
    await eventually("operator ready", async () => (await httpStatus(port, "/readyz")) === 200);
  }

  before(async () => {
    const bins = binaries();
    committedStackFile = readFileSync(STACK_FILE, "utf8");
    work = mkdtempSync(join(tmpdir(), "msd-pulumi-"));
    mkdirSync(join(work, "root", "bin"), { recursive: true });
    symlinkSync(join(bins, "pulumi"), join(work, "root", "bin", "pulumi"));
    mkdirSync(join(work, "backend"));
    c = await startTestCluster();
    // The test bed has an untainted CPU node (cpuNode) for the operator's own pods.
    const env = {
      PULUMI_HOME: join(work, "home"),
      PULUMI_BACKEND_URL: `file://${join(work, "backend")}`,
      PULUMI_CONFIG_PASSPHRASE: "local-test",
      PULUMI_SKIP_UPDATE_CHECK: "true",
      PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
      PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK: "true",
      // The program's "ambient kubeconfig" path (no `kubeconfig` in Pulumi.dev.yaml).
      KUBECONFIG: c.kubeconfig,
    };
    // The provider plugin, from the local build (never downloaded).
    execFileSync(
      join(bins, "pulumi"),
      [
        "plugin",
        "install",
        "resource",
        "kubernetes",
        PROVIDER_VERSION,
        "--file",
        join(bins, "pulumi-resource-kubernetes"),
      ],
      { env: { ...process.env, ...env }, stdio: ["ignore", "inherit", "inherit"] },
    );
    const pulumiCommand = await PulumiCommand.get({
      root: join(work, "root"),
      skipVersionCheck: true,
    });
    stack = await LocalWorkspace.createOrSelectStack(
      {
        stackName: STACK,
        projectName: "mistral-small",
        // The example program itself, evaluated afresh for every run like `pulumi up` does.
        program: async () => ({ ...(await tsImport(join(INFRA, "index.ts"), import.meta.url)) }),
      },
      // No projectSettings/stackSettings: they would be written over the committed files.
      { pulumiCommand, workDir: INFRA, envVars: env },
    );
    cfg = await stackConfig(stack);
    operatorNs = cfg.operatorNamespace!;
    ns = cfg.namespace!;
  });

  after(async () => {
    if (operator !== undefined && operator.exitCode === null) operator.kill("SIGKILL");
    await c?.stop();
    if (work !== undefined) rmSync(work, { recursive: true, force: true });
    // `stack init` with a passphrase writes an encryptionsalt into Pulumi.dev.yaml.
    if (committedStackFile !== "") writeFileSync(STACK_FILE, committedStackFile);
  });

  test("up creates the operator and the model server, sized and configured by Pulumi.dev.yaml", async () => {
    const [res] = await Promise.all([
      stack.up({ onOutput: (s) => process.stderr.write(s) }),
      runOperatorWhenInstalled(),
    ]);
    assert.equal(res.summary.result, "succeeded");
    assert.equal(res.outputs.operatorNamespace?.value, operatorNs);
    assert.equal(res.outputs.ready?.value, true);
    assert.equal(res.outputs.readyReason?.value, "Available");
    assert.equal(res.outputs.endpoint?.value, `http://mistral-small.${ns}.svc:8000/v1`);
    const plan = res.outputs.plan?.value as { tensorParallelSize?: number } | undefined;
    assert.ok((plan?.tensorParallelSize ?? 0) >= 1, JSON.stringify(plan));

    const op = await c.client.get<Deployment>(
      RESOURCES.deployment,
      "mistral-small-operator",
      operatorNs,
    );
    assert.equal(String(op.spec.replicas), cfg.operatorReplicas);
    const msd = await c.client.get<Msd>(RESOURCES.msd, "mistral-small", ns);
    assert.equal(String(msd.spec.maxModelLen), cfg.maxModelLen);
    assert.equal(String(msd.spec.replicas), cfg.replicas);
    const crd = await c.kubectl(["get", "crd", "mistralsmalldeployments.serving.mistralsmall.dev"]);
    assert.equal(crd.code, 0);
  });

  test("a second up changes nothing (the program is deterministic)", async () => {
    const res = await stack.up({ onOutput: (s) => process.stderr.write(s) });
    assert.equal(res.summary.result, "succeeded");
    const changes = Object.entries(res.summary.resourceChanges ?? {}).filter(
      ([op]) => op !== "same",
    );
    assert.deepEqual(changes, []);
  });

  test("destroy: everything goes but the CRD (retained by default, like Helm)", async () => {
    const res = await stack.destroy({ onOutput: (s) => process.stderr.write(s) });
    assert.equal(res.summary.result, "succeeded");
    assert.equal(await c.client.getOrUndefined(RESOURCES.msd, "mistral-small", ns), undefined);
    const crd = await c.kubectl(["get", "crd", "mistralsmalldeployments.serving.mistralsmall.dev"]);
    assert.equal(crd.code, 0, "the CRD is retained");
    for (const obj of [
      ["clusterrole", "mistral-small-operator"],
      ["clusterrolebinding", "mistral-small-operator"],
      ["namespace", operatorNs],
    ]) {
      const r = await c.kubectl(["get", ...obj, "--ignore-not-found", "-o", "name"]);
      assert.equal(r.stdout.trim(), "", `${obj.join(" ")} left behind`);
    }
    operator?.kill("SIGTERM");
  });
});
