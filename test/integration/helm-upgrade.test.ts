/**
 * `helm upgrade` from the previous release's chart to this one, against the real local
 * control plane with a Helm CLI built from Go modules (scripts/build-helm.sh).
 *
 * The previous chart is read from git history (PREVIOUS_CHART_COMMIT): it shipped the CRD in
 * crds/, which Helm installs once and never upgrades, and its CRD lacks fields this one
 * serves (spec.model.format, spec.engine.speculative, spec.engine.cudaVersion). The test
 * installs it, runs the operator, creates a resource and waits until it serves; then it
 * upgrades to the current chart (the CRD is now a template, adopted once with
 * --take-ownership), checks the new field is served, and that the resource kept serving and
 * no vLLM pod was replaced (same pod UIDs, same Deployment generation) — through the CRD
 * change and through an operator restart.
 *
 * The operator is this checkout's `msd run` throughout (a local process: KWOK never runs
 * the chart's own operator pods). An upgrade of the operator's code from the previous
 * release does roll the pods once, because this release changed the pod template (read-only
 * root filesystem, USER/LOGNAME): test/golden/pod-templates/ pins the template from here on.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse, stringify } from "yaml";
import { V0_24 } from "../../src/engine/releases.ts";
import { RESOURCES, type KubeObject } from "../../src/kube/client.ts";
import { TEMPLATE_HASH_ANNOTATION } from "../../src/render/names.ts";
import { eventually, startTestCluster, type TestCluster } from "./cluster.ts";
import { helmCli, type Helm } from "./helm-cli.ts";
import {
  applyOperatorRbac,
  condition,
  httpStatus,
  startChild,
  type ChildOperator,
  type Msd,
} from "./operator-harness.ts";

const REPO = join(import.meta.dirname, "..", "..");
const CHART_PATH = join("charts", "mistral-small-operator");
/** The last commit before the CRD moved into templates/: the previous release's chart. */
const PREVIOUS_CHART_COMMIT = "73c90af";
const RELEASE = "mistral-small-operator";
const NS = "msd-system";
const CRD = "mistralsmalldeployments.serving.mistralsmall.dev";
const NAME = "mistral-small";
/**
 * examples/a100-80gb-fp8.yaml with the image pinned. The previous CRD defaulted engine.image
 * to vllm/vllm-openai:v0.20.0 and the API server stored that default in every resource
 * created under it; the current planner refuses v0.20.0 on A100 (vllm#45031), so a resource
 * relying on the old default would turn infeasible on any upgrade (README: "Upgrading").
 */
const resource = () => {
  const example = parse(readFileSync(join(REPO, "examples", "a100-80gb-fp8.yaml"), "utf8")) as Msd;
  example.spec.engine = { image: V0_24.images["13.0"] };
  return stringify(example);
};

type Pod = KubeObject & { status?: { phase?: string } };
type Deployment = KubeObject & {
  metadata: { generation?: number; annotations?: Record<string, string> };
};

/** The chart folder as it was at `commit`, extracted into `dir`. */
function chartAt(commit: string, dir: string): string {
  let tar: Buffer;
  try {
    tar = execFileSync("git", ["-C", REPO, "archive", "--format=tar", commit, CHART_PATH], {
      stdio: ["ignore", "pipe", "pipe"],
    });
  } catch (err) {
    // A shallow clone (CI's default checkout depth of 1) lacks the commit.
    throw new Error(`the chart of ${commit} is not in git history (fetch-depth: 0?)`, {
      cause: err,
    });
  }
  execFileSync("tar", ["-x", "-C", dir], { input: tar });
  return join(dir, CHART_PATH);
}

/** A resource that sets a field only the current CRD has. */
const withNewField = `apiVersion: serving.mistralsmall.dev/v1alpha1
kind: MistralSmallDeployment
metadata:
  name: uses-new-field
  namespace: default
spec:
  gpu:
    type: a100-80gb
  maxModelLen: 32768
  model:
    format: hf
    name: example/mistral-small-hf
`;

describe("helm upgrade from the previous release", () => {
  let c: TestCluster;
  let helm: Helm;
  let home: string;
  let previousChart: string;
  let operator: ChildOperator | undefined;
  let before_: { pods: Map<string, string>; generation: number; hash: string } | undefined;

  /** vLLM pods of the example: name -> uid. */
  const vllmPods = async (): Promise<Map<string, string>> => {
    const pods = await c.client.list<Pod>(RESOURCES.pod, {
      namespace: "default",
      labelSelector: `app.kubernetes.io/instance=${NAME}`,
    });
    return new Map(pods.items.map((p) => [p.metadata.name, p.metadata.uid!]));
  };
  const deployment = async (): Promise<Deployment> => {
    const d = await c.client.getOrUndefined<Deployment>(RESOURCES.deployment, NAME, "default");
    assert.ok(d, "the vLLM Deployment exists");
    return d;
  };
  const ready = async (): Promise<Msd> =>
    eventually(
      `${NAME} Ready`,
      async () => {
        const m = await c.client.getOrUndefined<Msd>(RESOURCES.msd, NAME, "default");
        const r = condition(m, "Ready");
        return r?.status === "True" && m?.status?.observedGeneration === m?.metadata.generation
          ? m
          : undefined;
      },
      90_000,
    ).catch((err: unknown) => {
      throw new Error(`${String(err)}\noperator log:\n${operator?.log().slice(-4000) ?? ""}`);
    });
  /** Server-side dry run of the resource with the new field: what the API server keeps of it. */
  const dryRunNewField = () =>
    c.kubectl(
      ["create", "--dry-run=server", "--validate=strict", "-o", "json", "-f", "-"],
      withNewField,
    );
  const startOperator = async (identity: string): Promise<ChildOperator> => {
    const o = await startChild(c, identity);
    await eventually(
      `${identity} ready`,
      async () => (await httpStatus(o.port, "/readyz")) === 200,
    );
    return o;
  };
  const stopOperator = async () => {
    if (operator === undefined) return;
    operator.child.kill("SIGTERM");
    assert.equal(
      await operator.exited,
      0,
      `operator exit code; log:\n${operator.log().slice(-2000)}`,
    );
    operator = undefined;
  };

  before(async () => {
    home = mkdtempSync(join(tmpdir(), "msd-helm-upgrade-"));
    previousChart = chartAt(PREVIOUS_CHART_COMMIT, home);
    c = await startTestCluster();
    helm = helmCli(home, c.kubeconfig);
    // The operator's identity gets the current rules (not the CRD: the chart installs that).
    await applyOperatorRbac(c, "msd-upgrade-test-operator");
  });
  after(async () => {
    if (operator !== undefined && operator.child.exitCode === null) operator.child.kill("SIGKILL");
    await c?.stop();
    if (home !== undefined) rmSync(home, { recursive: true, force: true });
  });

  test("the previous release installs, its CRD from crds/, without the new field", async () => {
    assert.ok(
      readFileSync(join(previousChart, "Chart.yaml"), "utf8").includes(
        "name: mistral-small-operator",
      ),
    );
    const r = await helm([
      "install",
      RELEASE,
      previousChart,
      "--namespace",
      NS,
      "--create-namespace",
    ]);
    assert.equal(r.code, 0, r.stderr);
    const crd = await c.kubectl(["get", `crd/${CRD}`, "-o", "json"]);
    assert.equal(crd.code, 0, crd.stderr);
    const meta = (JSON.parse(crd.stdout) as KubeObject).metadata;
    assert.equal(
      meta.labels?.["app.kubernetes.io/managed-by"],
      undefined,
      "crds/ is not owned by the release",
    );
    const dry = await dryRunNewField();
    assert.notEqual(dry.code, 0, "the previous CRD refuses spec.model.format");
    assert.match(dry.stderr, /unknown field "spec\.model\.format"/);
  });

  test("a resource created under the previous release serves", async () => {
    operator = await startOperator("before-upgrade");
    const applied = await c.kubectl(["apply", "-f", "-"], resource());
    assert.equal(applied.code, 0, applied.stderr);
    const m = await ready();
    assert.equal(m.status?.endpoint, `http://${NAME}.default.svc:8000/v1`);
    const pods = await eventually("vLLM pods", async () => {
      const p = await vllmPods();
      return p.size === 1 ? p : undefined;
    });
    const d = await deployment();
    before_ = {
      pods,
      generation: d.metadata.generation!,
      hash: d.metadata.annotations![TEMPLATE_HASH_ANNOTATION]!,
    };
  });

  test("helm upgrade needs --take-ownership once: the CRD moved from crds/ into templates/", async () => {
    const refused = await helm(["upgrade", RELEASE, join(REPO, CHART_PATH), "--namespace", NS]);
    assert.notEqual(refused.code, 0, "an unowned CRD is not silently adopted");
    assert.match(
      refused.stderr,
      new RegExp(
        `CustomResourceDefinition "${CRD.replaceAll(".", "\\.")}" .*exists and cannot be imported into the current release`,
      ),
    );
    const history = await helm(["history", RELEASE, "--namespace", NS, "-o", "json"]);
    assert.deepEqual(
      (JSON.parse(history.stdout) as { revision: number; status: string }[]).map((h) => [
        h.revision,
        h.status,
      ]),
      [[1, "deployed"]],
      "the refused upgrade recorded nothing",
    );

    const r = await helm([
      "upgrade",
      RELEASE,
      join(REPO, CHART_PATH),
      "--namespace",
      NS,
      "--take-ownership",
    ]);
    assert.equal(r.code, 0, r.stderr);
    const crd = await c.kubectl(["get", `crd/${CRD}`, "-o", "json"]);
    const meta = (JSON.parse(crd.stdout) as KubeObject).metadata;
    assert.equal(meta.labels?.["app.kubernetes.io/managed-by"], "Helm");
    assert.equal(meta.annotations?.["meta.helm.sh/release-name"], RELEASE);
    assert.equal(meta.annotations?.["helm.sh/resource-policy"], "keep");
    const pdb = await c.kubectl(["get", "pdb", RELEASE, "-n", NS, "-o", "json"]);
    assert.equal(pdb.code, 0, "the upgrade added the operator's PodDisruptionBudget");
    assert.equal(
      (JSON.parse(pdb.stdout) as { spec: { maxUnavailable: number } }).spec.maxUnavailable,
      1,
    );
  });

  test("the upgraded CRD serves the new field", async () => {
    const served = await eventually("spec.model.format served", async () => {
      const r = await dryRunNewField();
      return r.code === 0 ? r : undefined;
    });
    const obj = JSON.parse(served.stdout) as {
      spec: { model: { format?: string }; engine: Record<string, unknown> };
    };
    assert.equal(obj.spec.model.format, "hf", "kept, not pruned");
    assert.deepEqual(
      obj.spec.engine.speculative,
      { enabled: false, numSpeculativeTokens: 3 },
      "new defaults",
    );
  });

  test("the resource kept serving through the CRD upgrade: same pods, same template", async () => {
    assert.ok(before_, "the previous test recorded the pods");
    const m = await ready();
    assert.equal(condition(m, "Ready")?.status, "True");
    // The stored object now reads with the new CRD's defaults (engine.speculative)...
    assert.deepEqual((m.spec.engine as Record<string, unknown>).speculative, {
      enabled: false,
      numSpeculativeTokens: 3,
    });
    // A CRD change rewrites no stored object, so no watch event: the Deployment is untouched
    // until the next reconcile, which the operator restart below forces (a full relist).
    const d = await deployment();
    assert.equal(d.metadata.annotations![TEMPLATE_HASH_ANNOTATION], before_.hash);
    assert.equal(d.metadata.generation, before_.generation, "the Deployment was not changed");
    assert.deepEqual(await vllmPods(), before_.pods, "no vLLM pod was replaced");
  });

  test("an operator restart (the operator's own rollout) replaces no vLLM pod", async () => {
    assert.ok(before_);
    await stopOperator();
    operator = await startOperator("after-upgrade");
    // It takes the lease, lists everything and reconciles the resource once.
    await eventually("the new operator reconciled", async () => {
      const res = await fetch(`http://127.0.0.1:${operator!.port}/metrics`);
      const text = await res.text();
      return /msd_reconciles_total\{result="(success|requeue)"\} [1-9]/.test(text);
    });
    const m = await ready();
    assert.equal(condition(m, "Ready")?.status, "True");
    const d = await deployment();
    assert.equal(d.metadata.annotations![TEMPLATE_HASH_ANNOTATION], before_.hash);
    assert.equal(d.metadata.generation, before_.generation);
    assert.deepEqual(await vllmPods(), before_.pods, "no vLLM pod was replaced");
    await stopOperator();
  });

  test("helm uninstall keeps the CRD (crds.keep) and so the resource", async () => {
    const r = await helm(["uninstall", RELEASE, "--namespace", NS, "--wait", "--timeout=60s"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout + r.stderr, /kept due to the resource policy/);
    const crd = await c.kubectl(["get", `crd/${CRD}`, "-o", "name"]);
    assert.equal(crd.code, 0, "the CRD is kept");
    assert.ok(
      await c.client.getOrUndefined<Msd>(RESOURCES.msd, NAME, "default"),
      "the resource is kept",
    );
    // A parse check that the values file a user keeps across upgrades still validates.
    assert.ok(parse(readFileSync(join(REPO, CHART_PATH, "values.yaml"), "utf8")));
  });
});
