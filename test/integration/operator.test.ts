/**
 * The operator against a real control plane, running with only its generated RBAC rules.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { RESOURCES, type KubeObject } from "../../src/kube/client.ts";
import {
  CLUSTER_SCOPED_RULES,
  NAMESPACED_RULES,
  clusterRole,
  type PolicyRule,
} from "../../src/controller/rbac.ts";
import { OPERATOR_USER } from "../../src/cluster/local.ts";
import { eventually, startTestCluster, type TestCluster } from "./cluster.ts";
import {
  condition,
  httpStatus,
  installOperatorPrerequisites,
  msdYaml,
  startInProcess,
  cacheClaimOf,
  type InProcessOperator,
  type Msd,
} from "./operator-harness.ts";

type Deployment = KubeObject & {
  spec: {
    replicas: number;
    template: {
      metadata: { annotations: Record<string, string> };
      spec: { containers: { args: string[] }[] };
    };
  };
  status?: { readyReplicas?: number };
};
type Pod = KubeObject & {
  spec: { nodeName?: string };
  status: { conditions?: { type: string; status: string }[] };
};

describe("operator", () => {
  let c: TestCluster;
  let op: InProcessOperator;
  const getMsd = (name: string) => c.client.getOrUndefined<Msd>(RESOURCES.msd, name, "default");
  const apply = async (name: string, spec: unknown) => {
    const r = await c.kubectl(["apply", "-f", "-"], msdYaml(name, spec));
    assert.equal(r.code, 0, r.stderr);
  };
  const readyAt = (name: string, generation?: number) =>
    eventually(
      `${name} Ready`,
      async () => {
        const m = await getMsd(name);
        const ready = condition(m, "Ready");
        const gen = generation ?? m?.metadata.generation;
        return ready?.status === "True" &&
          ready.reason === "Available" &&
          m?.status?.observedGeneration === gen
          ? m
          : undefined;
      },
      60_000,
    );

  before(async () => {
    c = await startTestCluster();
    await installOperatorPrerequisites(c);
    op = await startInProcess(c, { resyncMs: 3000 });
  });
  after(async () => {
    await op?.stop();
    await c?.stop();
  });

  test("create: owned objects exist, pods run on fake A100 nodes, Ready=True at the current generation", async () => {
    await apply("basic", { gpu: { type: "a100-80gb" }, maxModelLen: 32768 });
    const m = await readyAt("basic", 1);
    assert.equal(m.status?.plan?.tensorParallelSize, 2);
    assert.equal(m.status?.plan?.gpusPerReplica, 2);
    assert.ok((m.status?.plan?.kvCacheTokensPerReplica ?? 0) > 32768);
    assert.equal(m.status?.endpoint, "http://basic.default.svc:8000/v1");
    assert.equal(
      m.status?.selector,
      "app.kubernetes.io/instance=basic,app.kubernetes.io/name=mistral-small",
    );
    assert.equal(m.status?.readyReplicas, 1);
    for (const r of [RESOURCES.deployment, RESOURCES.service, RESOURCES.pdb]) {
      const o = await c.client.get<KubeObject>(r, "basic", "default");
      const owner = o.metadata.ownerReferences?.find((x) => x.controller === true);
      assert.equal(owner?.uid, m.metadata.uid, `${r.kind} owned by the MSD`);
    }
    assert.ok(await cacheClaimOf(c, "basic"), "the model-cache claim names the resource");
    const pods = await c.client.list<Pod>(RESOURCES.pod, {
      namespace: "default",
      labelSelector: "app.kubernetes.io/instance=basic",
    });
    assert.equal(pods.items.length, 1);
    assert.match(
      pods.items[0]!.spec.nodeName ?? "",
      /^a100-80gb-\d$/,
      "an 80GB node, by the GPU product affinity",
    );
    assert.equal(condition(m, "Degraded")?.status, "False");
  });

  test("changing maxModelLen rolls out a new pod template and the new generation is observed", async () => {
    const before = await c.client.get<Deployment>(RESOURCES.deployment, "basic", "default");
    const hashBefore =
      before.spec.template.metadata.annotations["serving.mistralsmall.dev/template-hash"];
    await apply("basic", { gpu: { type: "a100-80gb" }, maxModelLen: 65536 });
    await readyAt("basic", 2);
    const afterDep = await c.client.get<Deployment>(RESOURCES.deployment, "basic", "default");
    assert.notEqual(
      afterDep.spec.template.metadata.annotations["serving.mistralsmall.dev/template-hash"],
      hashBefore,
    );
    const args = afterDep.spec.template.spec.containers[0]!.args;
    assert.equal(args[args.indexOf("--max-model-len") + 1], "65536");
  });

  test("a hand patch making the pod privileged is reverted, with an event naming each field", async () => {
    await readyAt("basic");
    const patch = {
      spec: {
        template: {
          spec: {
            hostNetwork: true,
            automountServiceAccountToken: true,
            containers: [
              {
                name: "vllm",
                securityContext: {
                  privileged: true,
                  allowPrivilegeEscalation: true,
                  capabilities: { add: ["SYS_ADMIN"] },
                },
              },
            ],
          },
        },
      },
    };
    const r = await c.kubectl([
      "patch",
      "deployment/basic",
      "-n",
      "default",
      "--type=strategic",
      "-p",
      JSON.stringify(patch),
    ]);
    assert.equal(r.code, 0, r.stderr);
    type PodSpec = {
      hostNetwork?: boolean;
      automountServiceAccountToken?: boolean;
      containers: {
        securityContext?: {
          privileged?: boolean;
          allowPrivilegeEscalation?: boolean;
          capabilities?: { add?: string[] };
        };
      }[];
    };
    const reverted = await eventually("security fields reverted", async () => {
      const d = await c.client.get<Deployment>(RESOURCES.deployment, "basic", "default");
      const pod = d.spec.template.spec as unknown as PodSpec;
      const sc = pod.containers[0]?.securityContext;
      return pod.hostNetwork !== true &&
        pod.automountServiceAccountToken === false &&
        sc?.privileged === false &&
        sc.allowPrivilegeEscalation === false &&
        (sc.capabilities?.add ?? []).length === 0
        ? d
        : undefined;
    });
    assert.ok(reverted);
    const events = await eventually("SecurityDriftReverted event", async () => {
      const list = await c.client.list<KubeObject & { reason?: string; note?: string }>(
        RESOURCES.event,
        { namespace: "default" },
      );
      const found = list.items.filter((e) => e.reason === "SecurityDriftReverted");
      return found.length > 0 ? found : undefined;
    });
    const note = events.map((e) => e.note ?? "").join("\n");
    for (const field of [
      "spec.template.spec.hostNetwork: true -> false",
      "securityContext.privileged: true -> false",
      "securityContext.allowPrivilegeEscalation: true -> false",
      'capabilities.add: ["SYS_ADMIN"] -> []',
    ]) {
      assert.ok(note.includes(field), `event note lacks ${field}: ${note}`);
    }
    const m = await readyAt("basic");
    assert.notEqual(condition(m, "Degraded")?.reason, "ApplyFailed");
  });

  test("one object the API server refuses: nothing is applied, status names the object and field", async () => {
    // Passes the CRD schema and the planner; the PVC fails Kubernetes validation.
    const bad = {
      gpu: { type: "a100-80gb" },
      model: { cache: { storageClassName: "Not_A_Class" } },
    };
    await apply("refused", bad);
    const m = await eventually("ObjectRejected", async () => {
      const x = await getMsd("refused");
      return condition(x, "Ready")?.reason === "ObjectRejected" ? x : undefined;
    });
    const message = condition(m, "Ready")!.message;
    assert.match(message, /PersistentVolumeClaim default\/model-cache-[0-9a-f]{10}/);
    assert.match(message, /spec\.storageClassName/);
    assert.match(message, /nothing was applied/);
    const left = await Promise.all(
      [RESOURCES.deployment, RESOURCES.service, RESOURCES.pdb].map((r) =>
        c.client.getOrUndefined(r, "refused", "default"),
      ),
    );
    assert.deepEqual(left, [undefined, undefined, undefined], "no half-applied workload");
    assert.equal(await cacheClaimOf(c, "refused"), undefined);
    // Fixing the field converges as usual.
    await apply("refused", { gpu: { type: "a100-80gb" } });
    await readyAt("refused");
    await c.client.delete(RESOURCES.msd, "refused", "default");
  });

  test("an infeasible spec gets a condition with the numbers and no pods", async () => {
    await apply("too-small", { gpu: { type: "a100-40gb", tensorParallelSize: 2 } });
    const m = await eventually("infeasible condition", async () => {
      const x = await getMsd("too-small");
      return condition(x, "Ready")?.reason === "Infeasible" ? x : undefined;
    });
    const ready = condition(m, "Ready")!;
    assert.equal(ready.status, "False");
    assert.match(
      ready.message,
      /FP8 weights need 56\.3 GiB per GPU at TP=2 .*A100-40GB offers 35\.6 GiB at 0\.90/,
    );
    assert.equal(condition(m, "Degraded")?.status, "True");
    assert.equal(
      await c.client.getOrUndefined(RESOURCES.deployment, "too-small", "default"),
      undefined,
    );
    const pods = await c.client.list(RESOURCES.pod, {
      namespace: "default",
      labelSelector: "app.kubernetes.io/instance=too-small",
    });
    assert.equal(pods.items.length, 0);
    const events = await c.kubectl([
      "get",
      "events.events.k8s.io",
      "--field-selector",
      "regarding.name=too-small",
      "-o",
      "jsonpath={.items[*].note}",
    ]);
    assert.match(events.stdout, /56\.3 GiB per GPU at TP=2/);
  });

  test("a running workload whose spec turns infeasible keeps serving, marked Degraded", async () => {
    await apply("basic", { gpu: { type: "a100-80gb", tensorParallelSize: 1 }, maxModelLen: 65536 });
    const m = await eventually("degraded", async () => {
      const x = await getMsd("basic");
      return condition(x, "Degraded")?.reason === "InfeasibleKeepsServing" ? x : undefined;
    });
    assert.equal(condition(m, "Ready")?.status, "True");
    const dep = await c.client.get<Deployment>(RESOURCES.deployment, "basic", "default");
    assert.equal(dep.status?.readyReplicas, 1, "the old plan keeps serving");
    const args = dep.spec.template.spec.containers[0]!.args;
    assert.equal(args[args.indexOf("--tensor-parallel-size") + 1], "2");
    await apply("basic", { gpu: { type: "a100-80gb" }, maxModelLen: 65536 });
    await readyAt("basic");
  });

  test("too few GPUs in the cluster: the scheduler's Unschedulable cause shows on the resource", async () => {
    // Two 80GB nodes of 8 GPUs: a third TP=8 replica cannot fit anywhere.
    await apply("greedy", { gpu: { type: "a100-80gb", tensorParallelSize: 8 }, replicas: 3 });
    const m = await eventually("unschedulable", async () => {
      const x = await getMsd("greedy");
      const r = condition(x, "Ready");
      // Until the claim binds, the scheduler first says "unbound immediate
      // PersistentVolumeClaims"; wait for its verdict on GPUs.
      const gpus = /Insufficient nvidia\.com\/gpu/.test(condition(x, "Degraded")?.message ?? "");
      return gpus &&
        (r?.reason === "Unschedulable" ||
          (r?.status === "True" && condition(x, "Degraded")?.reason === "Unschedulable"))
        ? x
        : undefined;
    });
    const degraded = condition(m, "Degraded")!;
    assert.equal(degraded.status, "True");
    assert.match(degraded.message, /cannot be scheduled: .*Insufficient nvidia\.com\/gpu/);
    await c.client.delete(RESOURCES.msd, "greedy", "default");
    await eventually("greedy pods gone", async () => {
      const pods = await c.client.list(RESOURCES.pod, {
        namespace: "default",
        labelSelector: "app.kubernetes.io/instance=greedy",
      });
      return pods.items.length === 0;
    });
  });

  test("kubectl scale msd/x: replicas follow through the scale subresource", async () => {
    const r = await c.kubectl(["scale", "msd/basic", "--replicas=2"]);
    assert.equal(r.code, 0, r.stderr);
    const m = await eventually("2 ready", async () => {
      const x = await getMsd("basic");
      return x?.status?.readyReplicas === 2 && condition(x, "Ready")?.reason === "Available"
        ? x
        : undefined;
    });
    assert.equal(m.spec.replicas, 2);
    const dep = await c.client.get<Deployment>(RESOURCES.deployment, "basic", "default");
    assert.equal(dep.spec.replicas, 2);
    const scale = await c.kubectl(["get", "msd/basic", "-o", "jsonpath={.status.replicas}"]);
    assert.equal(scale.stdout, "2");
  });

  test("a converged resync makes zero writes", async () => {
    await readyAt("basic");
    // Let in-flight events settle, then count writes over several resync periods (3 s each).
    await new Promise((r) => setTimeout(r, 4000));
    const client = op.operator.apiClient;
    const writesBefore = client.writes();
    const reconcilesBefore = await reconcileCount(op);
    await new Promise((r) => setTimeout(r, 10_000));
    const reconciles = (await reconcileCount(op)) - reconcilesBefore;
    assert.ok(reconciles >= 3, `resyncs must have reconciled (got ${reconciles})`);
    assert.equal(
      client.writes() - writesBefore,
      0,
      `writes during ${reconciles} converged reconciles: ${JSON.stringify([...client.counts])}`,
    );
  });

  test("delete: every owned object goes, the NodePool included", async () => {
    await apply("pooled", {
      gpu: { type: "a100-80gb" },
      nodePool: { provider: "karpenter", karpenter: { nodeClassRef: { name: "gpu" } } },
    });
    const np = await eventually("nodepool", () =>
      c.client.getOrUndefined<KubeObject>(RESOURCES.nodePool, "msd-default-pooled"),
    );
    const m = await getMsd("pooled");
    assert.ok(m?.metadata.finalizers?.includes("serving.mistralsmall.dev/cleanup"));
    assert.equal(np.metadata.labels?.["serving.mistralsmall.dev/owner-uid"], m?.metadata.uid);
    await c.client.delete(RESOURCES.msd, "pooled", "default");
    await eventually("all gone", async () => {
      const left = await Promise.all([
        c.client.getOrUndefined(RESOURCES.msd, "pooled", "default"),
        c.client.getOrUndefined(RESOURCES.nodePool, "msd-default-pooled"),
        c.client.getOrUndefined(RESOURCES.deployment, "pooled", "default"),
        c.client.getOrUndefined(RESOURCES.service, "pooled", "default"),
        c.client.getOrUndefined(RESOURCES.pdb, "pooled", "default"),
        cacheClaimOf(c, "pooled"),
      ]);
      return (
        left.every((x) => x === undefined || x.metadata.deletionTimestamp !== undefined) &&
        left[0] === undefined &&
        left[1] === undefined
      );
    });
  });

  test("switching the node-pool provider deletes the NodePool no longer desired", async () => {
    const pool = { provider: "karpenter", karpenter: { nodeClassRef: { name: "gpu" } } };
    await apply("switch", { gpu: { type: "a100-80gb" }, nodePool: pool });
    await eventually("nodepool", () =>
      c.client.getOrUndefined(RESOURCES.nodePool, "msd-default-switch"),
    );
    await apply("switch", { gpu: { type: "a100-80gb" }, nodePool: { provider: "static" } });
    await eventually(
      "nodepool deleted",
      async () =>
        (await c.client.getOrUndefined(RESOURCES.nodePool, "msd-default-switch")) === undefined,
    );
    await readyAt("switch");
    await c.client.delete(RESOURCES.msd, "switch", "default");
  });

  // Last: it replaces the operator under test with one whose RBAC lacks `watch` on pods.
  test("a forbidden watch fails /readyz, naming the resource and the verb, until RBAC allows it", async () => {
    await op.stop();
    const role = clusterRole("mistral-small-operator") as { rules: PolicyRule[] };
    const without = {
      ...role,
      rules: role.rules.map((r) =>
        r.resources.includes("pods") ? { ...r, verbs: r.verbs.filter((v) => v !== "watch") } : r,
      ),
    };
    const restrict = await c.kubectl(["apply", "-f", "-"], JSON.stringify(without));
    assert.equal(restrict.code, 0, restrict.stderr);
    op = await startInProcess(c, { name: "no-pod-watch" });
    const port = op.port;
    const body = await eventually("readyz names the forbidden watch", async () => {
      const res = await fetch(`http://127.0.0.1:${port}/readyz`);
      const text = await res.text();
      return res.status === 503 && text.includes("cannot watch pods") ? text : undefined;
    });
    assert.match(body, /403/);
    assert.match(body, /forbidden/i);
    assert.equal(await httpStatus(port, "/healthz"), 200, "alive, only not ready");
    const restore = await c.kubectl(["apply", "-f", "-"], JSON.stringify(role));
    assert.equal(restore.code, 0, restore.stderr);
    // The informer retries with backoff (at most 30 s) and clears the problem once accepted.
    await eventually(
      "ready again",
      async () => (await httpStatus(port, "/readyz")) === 200,
      60_000,
    );
  });

  // After the RBAC test: the operator with Roles in one namespace only, as the chart's
  // watchNamespaces installs it, and a ClusterRole for nothing but NodePools.
  test("namespaced install mode: with a Role in one namespace only, a resource there reaches Ready", async () => {
    await op.stop();
    const ns = "team-a";
    const subject = { kind: "User", apiGroup: "rbac.authorization.k8s.io", name: OPERATOR_USER };
    const objects = [
      { apiVersion: "v1", kind: "Namespace", metadata: { name: ns } },
      {
        apiVersion: "rbac.authorization.k8s.io/v1",
        kind: "ClusterRole",
        metadata: { name: "mistral-small-operator" },
        rules: CLUSTER_SCOPED_RULES,
      },
      {
        apiVersion: "rbac.authorization.k8s.io/v1",
        kind: "Role",
        metadata: { name: "mistral-small-operator-managed", namespace: ns },
        rules: NAMESPACED_RULES,
      },
      {
        apiVersion: "rbac.authorization.k8s.io/v1",
        kind: "RoleBinding",
        metadata: { name: "mistral-small-operator-managed", namespace: ns },
        roleRef: {
          apiGroup: "rbac.authorization.k8s.io",
          kind: "Role",
          name: "mistral-small-operator-managed",
        },
        subjects: [subject],
      },
    ];
    for (const o of objects) {
      const r = await c.kubectl(["apply", "-f", "-"], JSON.stringify(o));
      assert.equal(r.code, 0, r.stderr);
    }
    op = await startInProcess(c, { name: "namespaced", namespaces: [ns] });
    const r = await c.kubectl(
      ["apply", "-f", "-"],
      msdYaml("scoped", { gpu: { type: "a100-80gb" } }, ns),
    );
    assert.equal(r.code, 0, r.stderr);
    await eventually(
      "scoped Ready",
      async () => {
        const m = await c.client.getOrUndefined<Msd>(RESOURCES.msd, "scoped", ns);
        return condition(m, "Ready")?.reason === "Available" ? m : undefined;
      },
      60_000,
    );
    assert.equal(await httpStatus(op.port, "/readyz"), 200, "no cache is forbidden");
    // A cluster-wide list is indeed refused to this identity: only the Role grants access.
    const asOperator = await c.kubectl([
      "auth",
      "can-i",
      "list",
      "deployments",
      "--all-namespaces",
      `--as=${OPERATOR_USER}`,
    ]);
    assert.equal(asOperator.stdout.trim(), "no");
  });
});

async function reconcileCount(op: InProcessOperator): Promise<number> {
  const m = await op.operator.metrics.reconciles.get();
  return m.values.reduce((a, v) => a + v.value, 0);
}
