/**
 * A real `pulumi up` / `pulumi destroy` of both components against the local control plane,
 * with the Pulumi CLI and the Kubernetes provider built from Go modules
 * (infra/scripts/build-pulumi.sh) and a local file backend.
 *
 * The program runs as an Automation API inline program: its language host is @pulumi/pulumi
 * itself, because the CLI's own Node.js language host (pulumi-language-nodejs) cannot be built
 * from the Go module proxy. The operator's pods are KWOK fakes, so the Deployment is declared
 * with skipAwait and the operator runs as a local `msd run` process with a token of the
 * ServiceAccount the component created, i.e. exactly its RBAC.
 *
 * Run: npm run test:e2e --prefix infra (opt-in: builds take 20-40 minutes cold).
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as k8s from "@pulumi/kubernetes";
import { LocalWorkspace, PulumiCommand, type Stack } from "@pulumi/pulumi/automation/index.js";
import { MistralSmallDeployment, MistralSmallOperator } from "../src/index.ts";
import { eventually, startTestCluster, type TestCluster } from "../../test/integration/cluster.ts";
import { freePort, kubeconfigYaml } from "../../src/cluster/local.ts";
import { RESOURCES } from "../../src/kube/client.ts";
import { httpStatus } from "../../test/integration/operator-harness.ts";

const INFRA = join(import.meta.dirname, "..");
const REPO = join(INFRA, "..");
const NS = "msd-pulumi";
const PROVIDER_VERSION = "4.25.0";

function binaries(): string {
  const out = execFileSync("bash", [join(INFRA, "scripts", "build-pulumi.sh")], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
  });
  return out.trim().split("\n").pop()!;
}

describe("pulumi up against the local control plane", () => {
  let c: TestCluster;
  let work: string;
  let stack: Stack;
  let operator: ChildProcess | undefined;
  let withModel = false;

  before(async () => {
    const bins = binaries();
    work = mkdtempSync(join(tmpdir(), "msd-pulumi-"));
    mkdirSync(join(work, "root", "bin"), { recursive: true });
    symlinkSync(join(bins, "pulumi"), join(work, "root", "bin", "pulumi"));
    mkdirSync(join(work, "backend"));
    c = await startTestCluster();
    const env = {
      PULUMI_HOME: join(work, "home"),
      PULUMI_BACKEND_URL: `file://${join(work, "backend")}`,
      PULUMI_CONFIG_PASSPHRASE: "local-test",
      PULUMI_SKIP_UPDATE_CHECK: "true",
      PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
      PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK: "true",
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
    const kubeconfig = c.kubeconfig;
    stack = await LocalWorkspace.createOrSelectStack(
      {
        stackName: "local",
        projectName: "mistral-small-e2e",
        program: async () => {
          const provider = new k8s.Provider("local", { kubeconfig, enableServerSideApply: true });
          const op = new MistralSmallOperator(
            "operator",
            { namespace: NS, skipAwait: true },
            { provider },
          );
          const out: Record<string, unknown> = {
            namespace: op.namespace,
            serviceAccount: op.serviceAccountName,
          };
          if (withModel) {
            const model = new MistralSmallDeployment(
              "mistral-small",
              {
                namespace: "default",
                spec: { gpu: { type: "a100-80gb" }, maxModelLen: 65536 },
                timeoutSeconds: 180,
              },
              { provider, dependsOn: [op] },
            );
            out.endpoint = model.endpoint;
            out.ready = model.ready;
            out.readyReason = model.readyReason;
          }
          return out;
        },
      },
      {
        pulumiCommand,
        workDir: work,
        envVars: env,
        projectSettings: {
          name: "mistral-small-e2e",
          runtime: "nodejs",
          backend: { url: env.PULUMI_BACKEND_URL },
        },
      },
    );
  });

  after(async () => {
    if (operator !== undefined && operator.exitCode === null) operator.kill("SIGKILL");
    await c?.stop();
    if (work !== undefined) rmSync(work, { recursive: true, force: true });
  });

  test("up: the operator component (CRD, namespace, ServiceAccount, RBAC, Lease, Deployment, Service)", async () => {
    const res = await stack.up({ onOutput: (s) => process.stderr.write(s) });
    assert.equal(res.summary.result, "succeeded");
    assert.equal(res.outputs.namespace?.value, NS);
    const crd = await c.kubectl(["get", "crd", "mistralsmalldeployments.serving.mistralsmall.dev"]);
    assert.equal(crd.code, 0, "the CRD is retained");
    for (const obj of [
      ["clusterrole", "mistral-small-operator"],
      ["-n", NS, "deployment", "mistral-small-operator"],
      ["-n", NS, "lease", "mistral-small-operator"],
    ]) {
      const r = await c.kubectl(["get", ...obj, "-o", "name"]);
      assert.equal(r.code, 0, `${obj.join(" ")}: ${r.stderr}`);
    }
  });

  test("up: a MistralSmallDeployment waits for Ready and outputs its endpoint", async () => {
    // The in-cluster operator pods are fake: run it here, with the component's ServiceAccount.
    const token = await c.kubectl(["create", "token", "mistral-small-operator", "-n", NS]);
    assert.equal(token.code, 0, token.stderr);
    const server = await c.kubectl([
      "config",
      "view",
      "--minify",
      "-o",
      "jsonpath={.clusters[0].cluster.server}",
    ]);
    const kc = join(work, "operator.kubeconfig");
    writeFileSync(kc, kubeconfigYaml(server.stdout.trim(), token.stdout.trim(), "operator"));
    const port = await freePort();
    operator = spawn(
      process.execPath,
      [
        join(REPO, "bin", "msd.js"),
        "run",
        `--kubeconfig=${kc}`,
        `--port=${port}`,
        `--lease-namespace=${NS}`,
        "--lease-duration=4",
      ],
      { env: { ...process.env, POD_NAME: "pulumi-e2e" }, stdio: "ignore" },
    );
    await eventually("operator ready", async () => (await httpStatus(port, "/readyz")) === 200);

    withModel = true;
    const res = await stack.up({ onOutput: (s) => process.stderr.write(s) });
    assert.equal(res.summary.result, "succeeded");
    assert.equal(res.outputs.ready?.value, true);
    assert.equal(res.outputs.readyReason?.value, "Available");
    assert.equal(res.outputs.endpoint?.value, "http://mistral-small.default.svc:8000/v1");
  });

  test("up without the deployment deletes it; the running operator finishes its cleanup", async () => {
    withModel = false;
    const res = await stack.up({ onOutput: (s) => process.stderr.write(s) });
    assert.equal(res.summary.result, "succeeded");
    assert.equal(
      await c.client.getOrUndefined(RESOURCES.msd, "mistral-small", "default"),
      undefined,
    );
    operator?.kill("SIGTERM");
    await new Promise((resolve) => operator?.once("exit", resolve));
  });

  test("destroy: everything goes but the CRD (retained by default, like Helm)", async () => {
    const res = await stack.destroy({ onOutput: (s) => process.stderr.write(s) });
    assert.equal(res.summary.result, "succeeded");
    const crd = await c.kubectl(["get", "crd", "mistralsmalldeployments.serving.mistralsmall.dev"]);
    assert.equal(crd.code, 0, "the CRD is retained");
    for (const obj of [
      ["clusterrole", "mistral-small-operator"],
      ["clusterrolebinding", "mistral-small-operator"],
      ["namespace", NS],
    ]) {
      const r = await c.kubectl(["get", ...obj, "--ignore-not-found", "-o", "name"]);
      assert.equal(r.stdout.trim(), "", `${obj.join(" ")} left behind`);
    }
  });
});
