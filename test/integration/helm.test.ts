/**
 * The Helm chart against the real local control plane, with a Helm CLI built from Go
 * modules (scripts/build-helm.sh): lint, template (accepted by the API server in a
 * server-side dry run), values rejected by values.schema.json, install, the operator
 * running with exactly the installed ServiceAccount's permissions reconciling an example
 * to Ready, and an uninstall that leaves nothing of the chart behind but the CRD (crds.keep).
 * test/integration/helm-upgrade.test.ts upgrades from the previous release's chart.
 *
 * The chart's own operator pods never run here (KWOK only fakes pods, and ours stay
 * Pending: every fake node carries the nvidia.com/gpu taint), so the operator runs as a
 * local `msd run` process authenticated with a TokenRequest token of the chart's
 * ServiceAccount.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import {
  CLUSTER_RULES,
  CLUSTER_SCOPED_RULES,
  NAMESPACED_RULES,
  NAMESPACE_RULES,
  type PolicyRule,
} from "../../src/controller/rbac.ts";
import {
  LEASE_NAME,
  METRICS_PORT,
  operatorLabels,
  operatorPodSpec,
} from "../../src/delivery/manifests.ts";
import { RESOURCES, type KubeObject } from "../../src/kube/client.ts";
import { eventually, startTestCluster, type TestCluster, type ToolResult } from "./cluster.ts";
import { helmCli, type Helm } from "./helm-cli.ts";
import {
  condition,
  httpStatus,
  startChild,
  tokenKubeconfig,
  type Msd,
} from "./operator-harness.ts";
import { DASHBOARD_FILE, dashboard } from "../../src/delivery/dashboard.ts";

const REPO = join(import.meta.dirname, "..", "..");
const CHART = join(REPO, "charts", "mistral-small-operator");
const RELEASE = "mistral-small-operator";
const NS = "msd-system";
const CRD = "mistralsmalldeployments.serving.mistralsmall.dev";

type Result = ToolResult;
type Doc = KubeObject & Record<string, unknown>;

/** Builds Helm once (a no-op on a warm cache) and returns its path: the script's last line. */

/** `kubectl get` arguments of every object the chart installs besides the CRD. */
const INSTALLED = [
  ["clusterrole", RELEASE],
  ["clusterrolebinding", RELEASE],
  ["-n", NS, "role", RELEASE],
  ["-n", NS, "rolebinding", RELEASE],
  ["-n", NS, "serviceaccount", RELEASE],
  ["-n", NS, "deployment", RELEASE],
  ["-n", NS, "service", `${RELEASE}-metrics`],
  ["-n", NS, "lease", LEASE_NAME],
  ["-n", NS, "poddisruptionbudget", RELEASE],
];

function docs(yamlText: string): Doc[] {
  return parseAllDocuments(yamlText)
    .map((d) => d.toJS() as Doc | null)
    .filter((d): d is Doc => d !== null);
}

function find(all: Doc[], kind: string, name?: string): Doc {
  const d = all.find((x) => x.kind === kind && (name === undefined || x.metadata.name === name));
  assert.ok(d, `${kind} ${name ?? ""} rendered`);
  return d;
}

describe("helm chart", () => {
  let c: TestCluster;
  let helm: Helm;
  let home: string;
  let operator: ChildProcess | undefined;

  /** `helm template` of the chart in NS with each `--set` given. */
  const helmTemplate = (...sets: string[]): Promise<Result> =>
    helm(["template", RELEASE, CHART, "--namespace", NS, ...sets.flatMap((v) => ["--set", v])]);

  /** `kubectl get -o name` of the `kinds` in NS labelled with the release's instance. */
  const labelledWithRelease = (kinds: string) =>
    c.kubectl([
      "get",
      kinds,
      "-n",
      NS,
      "-l",
      `app.kubernetes.io/instance=${RELEASE}`,
      "-o",
      "name",
    ]);

  /** The object as JSON, or undefined when it does not exist. */
  const getJson = async (args: string[]): Promise<Doc | undefined> => {
    const r = await c.kubectl(["get", ...args, "-o", "json", "--ignore-not-found"]);
    assert.equal(r.code, 0, r.stderr);
    return r.stdout.trim() === "" ? undefined : (JSON.parse(r.stdout) as Doc);
  };

  before(async () => {
    home = mkdtempSync(join(tmpdir(), "msd-helm-"));
    c = await startTestCluster();
    helm = helmCli(home, c.kubeconfig);
  });
  after(async () => {
    if (operator !== undefined && operator.exitCode === null) operator.kill("SIGKILL");
    await c?.stop();
    if (home !== undefined) rmSync(home, { recursive: true, force: true });
  });

  test("helm lint --strict passes", async () => {
    const r = await helm(["lint", "--strict", CHART]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
  });

  test("helm template renders the generated RBAC and the operator pod, and the API server accepts it", async () => {
    const r = await helmTemplate();
    assert.equal(r.code, 0, r.stderr);
    const all = docs(r.stdout);
    assert.deepEqual(all.map((d) => d.kind).sort(), [
      "ClusterRole",
      "ClusterRoleBinding",
      "ConfigMap",
      "CustomResourceDefinition",
      "Deployment",
      "Lease",
      "PodDisruptionBudget",
      "Role",
      "RoleBinding",
      "Service",
      "ServiceAccount",
    ]);
    // The generated rules, exactly: nothing more, nothing less.
    assert.deepEqual(find(all, "ClusterRole").rules, CLUSTER_RULES);
    assert.deepEqual(find(all, "Role").rules, NAMESPACE_RULES);
    for (const kind of ["ClusterRoleBinding", "RoleBinding"]) {
      assert.deepEqual(find(all, kind).subjects, [
        { kind: "ServiceAccount", name: RELEASE, namespace: NS },
      ]);
    }
    // The same operator pod as the Pulumi component declares (src/delivery/manifests.ts).
    const dep = find(all, "Deployment") as Doc & {
      spec: { replicas: number; template: { metadata: { labels: object }; spec: unknown } };
    };
    assert.equal(dep.spec.replicas, 2);
    assert.deepEqual(dep.spec.template.spec, operatorPodSpec({ name: RELEASE, namespace: NS }));
    for (const [k, v] of Object.entries(operatorLabels({ name: RELEASE }))) {
      assert.equal((dep.spec.template.metadata.labels as Record<string, string>)[k], v, k);
    }
    assert.equal(find(all, "Lease").metadata.name, LEASE_NAME);
    // The Grafana dashboard reaches the ConfigMap byte for byte, past Helm's template engine.
    const dash = find(all, "ConfigMap") as Doc & { data: Record<string, string> };
    assert.equal(dash.metadata.labels?.grafana_dashboard, "1");
    assert.deepEqual(JSON.parse(dash.data[DASHBOARD_FILE]!), dashboard());

    const ns = await c.kubectl(["create", "namespace", NS]);
    assert.equal(ns.code, 0, ns.stderr);
    const dry = await c.kubectl(["apply", "--dry-run=server", "-f", "-"], r.stdout);
    assert.equal(dry.code, 0, dry.stderr);
    assert.equal(dry.stdout.trim().split("\n").length, all.length, dry.stdout);
    assert.match(dry.stdout, /deployment\.apps\/mistral-small-operator created \(server dry run\)/);
  });

  test("serviceMonitor.enabled adds a ServiceMonitor scraping the metrics Service", async () => {
    const r = await helmTemplate("serviceMonitor.enabled=true");
    assert.equal(r.code, 0, r.stderr);
    const all = docs(r.stdout);
    const sm = find(all, "ServiceMonitor") as Doc & {
      spec: { selector: { matchLabels: Record<string, string> }; endpoints: { port: string }[] };
    };
    const svc = find(all, "Service") as Doc & {
      spec: { ports: { name: string; port: number }[] };
    };
    for (const [k, v] of Object.entries(sm.spec.selector.matchLabels)) {
      assert.equal(svc.metadata.labels?.[k], v, `the Service carries ${k}`);
    }
    assert.equal(sm.spec.endpoints[0]?.port, "metrics");
    // Against the real monitoring.coreos.com/v1 CRD (prometheus-operator module, in the test bed).
    const dry = await c.kubectl(["apply", "--dry-run=server", "-f", "-"], JSON.stringify(sm));
    assert.equal(dry.code, 0, dry.stderr);
    assert.deepEqual(
      svc.spec.ports.map((p) => [p.name, p.port]),
      [["metrics", METRICS_PORT]],
    );
    const off = await helmTemplate();
    assert.ok(!docs(off.stdout).some((d) => d.kind === "ServiceMonitor"), "off by default");
  });

  test("crds.enabled and crds.keep: the CRD is a template, kept unless told otherwise", async () => {
    const on = docs((await helmTemplate()).stdout);
    const crd = find(on, "CustomResourceDefinition", CRD);
    assert.equal(crd.metadata.annotations?.["helm.sh/resource-policy"], "keep");
    assert.equal(crd.metadata.labels?.["app.kubernetes.io/managed-by"], "Helm");
    const off = await helm(["template", RELEASE, CHART, "--set", "crds.enabled=false"]);
    assert.equal(off.code, 0, off.stderr);
    assert.ok(!docs(off.stdout).some((d) => d.kind === "CustomResourceDefinition"));
    const unkept = await helm(["template", RELEASE, CHART, "--set", "crds.keep=false"]);
    const c2 = find(docs(unkept.stdout), "CustomResourceDefinition", CRD);
    assert.equal(c2.metadata.annotations?.["helm.sh/resource-policy"], undefined);
  });

  test("watchNamespaces: a Role per watched namespace, a ClusterRole only for NodePools, --namespace passed", async () => {
    const r = await helmTemplate("watchNamespaces={team-a,team-b}");
    assert.equal(r.code, 0, r.stderr);
    const all = docs(r.stdout);
    type Rules = Doc & { rules: PolicyRule[] };
    const clusterRoles = all.filter((d) => d.kind === "ClusterRole") as Rules[];
    assert.equal(clusterRoles.length, 1);
    assert.deepEqual(clusterRoles[0]!.rules, CLUSTER_SCOPED_RULES);
    const managed = all.filter(
      (d) => d.kind === "Role" && d.metadata.name === `${RELEASE}-managed`,
    ) as Rules[];
    assert.deepEqual(
      managed.map((m) => m.metadata.namespace),
      ["team-a", "team-b"],
    );
    for (const m of managed) assert.deepEqual(m.rules, NAMESPACED_RULES);
    const bindings = all.filter(
      (d) => d.kind === "RoleBinding" && d.metadata.name === `${RELEASE}-managed`,
    );
    assert.deepEqual(
      bindings.map((b) => b.metadata.namespace),
      ["team-a", "team-b"],
    );
    const dep = find(all, "Deployment") as Doc & {
      spec: { template: { spec: { containers: { args: string[] }[] } } };
    };
    assert.ok(dep.spec.template.spec.containers[0]!.args.includes("--namespace=team-a,team-b"));
    // The API server accepts the namespaced RBAC as rendered.
    for (const ns of ["team-a", "team-b"]) {
      await c.kubectl(["create", "namespace", ns]);
    }
    const dry = await c.kubectl(["apply", "--dry-run=server", "-f", "-"], r.stdout);
    assert.equal(dry.code, 0, dry.stderr);
  });

  test("a wrong value fails at install with the field's path and what is allowed", async () => {
    const cases: [string, RegExp][] = [
      ["replicaCount=-1", /at '\/replicaCount': minimum: got -1, want 0/],
      [
        "image.pullPolicy=Sometimes",
        /at '\/image\/pullPolicy': value must be one of 'Always', 'IfNotPresent', 'Never'/,
      ],
      ["replicas=3", /additional properties 'replicas' not allowed/],
      ["resources.limits.memory=lots", /at '\/resources\/limits\/memory': 'lots' does not match/],
      ["leaderElection.leaseDurationSeconds=1", /at '\/leaderElection\/leaseDurationSeconds'/],
    ];
    for (const [set, message] of cases) {
      const r = await helm(["install", "bad", CHART, "--namespace", NS, "--set", set]);
      assert.notEqual(r.code, 0, `${set} accepted`);
      assert.match(r.stderr, /values don't meet the specifications of the schema/, set);
      assert.match(r.stderr, message, set);
    }
    const releases = await helm(["list", "--namespace", NS, "-q"]);
    assert.equal(releases.stdout.trim(), "", "nothing was installed");
  });

  test("helm install into the local control plane", async () => {
    const r = await helm(["install", RELEASE, CHART, "--namespace", NS, "--create-namespace"]);
    assert.equal(r.code, 0, r.stderr);
    const status = await helm(["status", RELEASE, "--namespace", NS, "-o", "json"]);
    assert.equal(
      (JSON.parse(status.stdout) as { info: { status: string } }).info.status,
      "deployed",
    );
    const wait = await c.kubectl([
      "wait",
      "--for=condition=Established",
      "--timeout=30s",
      `crd/${CRD}`,
    ]);
    assert.equal(wait.code, 0, wait.stderr);
    for (const obj of INSTALLED) {
      assert.ok(await getJson(obj), `${obj.join(" ")} installed`);
    }
  });

  test("the operator, with only the chart's ServiceAccount permissions, reconciles an example to Ready", async () => {
    const token = await c.kubectl(["create", "token", RELEASE, "-n", NS, "--duration=1h"]);
    assert.equal(token.code, 0, token.stderr);
    const kubeconfig = await tokenKubeconfig(
      c,
      join(home, "operator-sa.kubeconfig"),
      token.stdout.trim(),
      `${NS}-${RELEASE}`,
    );
    // Least privilege, as the API server sees it.
    const can = async (...args: string[]) =>
      (await c.kubectl(["auth", "can-i", `--kubeconfig=${kubeconfig}`, ...args])).stdout.trim();
    // kubectl's own --kubeconfig comes first; the last one wins.
    assert.equal(await can("create", "deployments.apps", "-n", "default"), "yes");
    assert.equal(await can("update", `leases.coordination.k8s.io/${LEASE_NAME}`, "-n", NS), "yes");
    assert.equal(await can("update", "leases.coordination.k8s.io", "-n", "default"), "no");
    assert.equal(await can("list", "secrets", "-n", "default"), "no");
    assert.equal(await can("delete", "pods", "-n", "default"), "no");

    const identity = "helm-test-operator";
    const { child, port, exited, log } = await startChild(c, identity, 4, {
      kubeconfig,
      leaseNamespace: NS,
      podNamespace: NS,
    });
    operator = child;

    try {
      // It takes the Lease the chart created (empty) and becomes ready.
      await eventually("leader", async () => {
        const lease = await getJson(["-n", NS, "lease", LEASE_NAME]);
        const spec = lease?.spec as { holderIdentity?: string } | undefined;
        return spec?.holderIdentity === identity;
      });
      await eventually("/readyz", async () => (await httpStatus(port, "/readyz")) === 200);

      const example = readFileSync(join(REPO, "examples", "a100-80gb-fp8.yaml"), "utf8");
      const applied = await c.kubectl(["apply", "-f", "-"], example);
      assert.equal(applied.code, 0, applied.stderr);
      const m = await eventually(
        "example Ready",
        async () => {
          const x = await c.client.getOrUndefined<Msd>(RESOURCES.msd, "mistral-small", "default");
          const ready = condition(x, "Ready");
          return ready?.status === "True" &&
            ready.reason === "Available" &&
            x?.status?.observedGeneration === x?.metadata.generation
            ? x
            : undefined;
        },
        90_000,
      ).catch((err: unknown) => {
        throw new Error(`${String(err)}\noperator log:\n${log().slice(-4000)}`);
      });
      assert.equal(m.status?.endpoint, "http://mistral-small.default.svc:8000/v1");
      assert.equal(m.status?.plan?.tensorParallelSize, 2);
      assert.doesNotMatch(log(), /forbidden/i, "no request was refused");

      // Deleting it while the operator runs lets the operator finish its cleanup.
      const del = await c.kubectl(["delete", "-f", "-", "--wait=true", "--timeout=60s"], example);
      assert.equal(del.code, 0, del.stderr);
    } finally {
      child.kill("SIGTERM");
    }
    assert.equal(await exited, 0, `operator exit code; log:\n${log().slice(-2000)}`);
  });

  test("helm uninstall removes everything the chart installed; the CRD is kept by design", async () => {
    const r = await helm(["uninstall", RELEASE, "--namespace", NS, "--wait", "--timeout=60s"]);
    assert.equal(r.code, 0, r.stderr);
    for (const obj of INSTALLED) {
      assert.equal(await getJson(obj), undefined, `${obj.join(" ")} left behind`);
    }
    await eventually("operator pods gone", async () => {
      const pods = await labelledWithRelease("pods");
      return pods.code === 0 && pods.stdout.trim() === "";
    });
    // Nothing else labelled with the release, and no release record.
    const left = await labelledWithRelease(
      "all,serviceaccounts,roles,rolebindings,leases,secrets,configmaps",
    );
    assert.equal(left.stdout.trim(), "", left.stdout);
    const records = await c.kubectl(["get", "secrets", "-n", NS, "-l", "owner=helm", "-o", "name"]);
    assert.equal(records.stdout.trim(), "", "release history deleted");
    assert.equal((await helm(["list", "--all", "--namespace", NS, "-q"])).stdout.trim(), "");
    // crds.keep (helm.sh/resource-policy: keep): the user's resources survive an uninstall.
    assert.match(r.stdout + r.stderr, /kept due to the resource policy/);
    assert.ok(await getJson([`crd/${CRD}`]), "the CRD is kept");
    // What the operator created for the example is garbage-collected with it (owner references).
    await eventually("the example's objects collected", async () => {
      const owned = await c.kubectl([
        "get",
        "deployments,services,poddisruptionbudgets",
        "-A",
        "-l",
        "app.kubernetes.io/managed-by=mistral-small-operator",
        "-o",
        "name",
      ]);
      return owned.code === 0 && owned.stdout.trim() === "";
    });
  });
});
