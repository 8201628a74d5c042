/**
 * GPU node pools provisioned for real: Karpenter's own controllers (its KWOK cloud provider,
 * built from sigs.k8s.io/karpenter at the version of our CRDs) act on the NodePools the operator
 * owns, launching nodes from the fake GPU cloud generated from our catalog. No GPU node exists
 * beforehand; the real kube-scheduler places the pods on what Karpenter launched, KWOK runs them.
 * The operator runs as `msd run` child processes with only its generated RBAC rules.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { RESOURCES, type KubeObject } from "../../src/kube/client.ts";
import { createNodeClass, startKarpenter, KWOK_NODE_CLASS } from "../../src/cluster/karpenter.ts";
import { GPU_SHAPES, shapeNamed } from "../../src/cluster/gpu-cloud.ts";
import { eventually, startTestCluster, type TestCluster } from "./cluster.ts";
import {
  condition,
  installOperatorPrerequisites,
  msdYaml,
  startChild,
  type ChildOperator,
  type Msd,
} from "./operator-harness.ts";

type Node = KubeObject & {
  spec?: { taints?: { key: string; effect: string }[] };
  status?: { capacity?: Record<string, string>; allocatable?: Record<string, string> };
};
type Pod = KubeObject & {
  spec: { nodeName?: string };
  status?: { conditions?: { type: string; status: string }[] };
};
type NodePool = KubeObject & { spec: { limits?: Record<string, string> } };

const POOL_LABEL = "karpenter.sh/nodepool";
/** Karpenter launches only after this registration delay: long enough to see it launching. */
const SLOW_CLASS = "slow";

function karpenterSpec(extra: Record<string, unknown>, nodeClass: string = KWOK_NODE_CLASS.name) {
  return {
    gpu: { type: "a100-80gb", tensorParallelSize: 2 },
    maxModelLen: 32768,
    replicas: 1,
    // Replicas spread over several nodes: a shared cache (ReadWriteOnce would co-locate them).
    model: { cache: { accessMode: "ReadWriteMany" } },
    nodePool: {
      provider: "karpenter",
      karpenter: {
        nodeClassRef: { group: KWOK_NODE_CLASS.group, kind: KWOK_NODE_CLASS.kind, name: nodeClass },
        consolidateAfter: "5s",
      },
    },
    ...extra,
  };
}

describe(
  "Karpenter provisions the GPU node pools the operator owns",
  { skip: skipReason() },
  () => {
    let c: TestCluster;
    let op: ChildOperator;
    let operators = 0;
    const started = Date.now();
    const getMsd = (name: string) => c.client.getOrUndefined<Msd>(RESOURCES.msd, name, "default");
    const apply = async (name: string, spec: unknown) => {
      const r = await c.kubectl(["apply", "-f", "-"], msdYaml(name, spec));
      assert.equal(r.code, 0, r.stderr);
    };
    /** `kubectl patch` of the resource's replicas, as a user scales it. */
    const scale = async (name: string, replicas: number) => {
      const patch = JSON.stringify({ spec: { replicas } });
      const r = await c.kubectl(["patch", "msd", name, "--type=merge", "-p", patch]);
      assert.equal(r.code, 0, r.stderr);
    };
    const poolOf = (name: string) => `msd-default-${name}`;
    const nodesOf = async (pool: string) =>
      (await c.client.list<Node>(RESOURCES.node, { labelSelector: `${POOL_LABEL}=${pool}` })).items;
    const claimsOf = async (pool: string) =>
      (
        await c.client.list<KubeObject>(RESOURCES.nodeClaim, {
          labelSelector: `${POOL_LABEL}=${pool}`,
        })
      ).items;
    const podsOf = async (name: string) =>
      (
        await c.client.list<Pod>(RESOURCES.pod, {
          namespace: "default",
          labelSelector: `app.kubernetes.io/instance=${name}`,
        })
      ).items.filter((p) => p.metadata.deletionTimestamp === undefined);
    const isReady = (p: Pod) =>
      p.status?.conditions?.some((x) => x.type === "Ready" && x.status === "True") ?? false;
    const startOperator = async () => {
      operators += 1;
      op = await startChild(c, `karpenter-op-${operators}`, 4);
    };
    /** Polls the resource and records every Ready reason and message it shows. */
    const watchReasons = (name: string) => {
      const seen: { reason: string; message: string }[] = [];
      let stop = false;
      const done = (async () => {
        while (!stop) {
          const ready = condition(await getMsd(name), "Ready");
          if (ready !== undefined && seen.at(-1)?.message !== ready.message) {
            seen.push({ reason: ready.reason, message: ready.message });
          }
          await new Promise((r) => setTimeout(r, 200));
        }
      })();
      return {
        seen,
        stop: async () => {
          stop = true;
          await done;
        },
      };
    };
    const readyReplicas = (name: string, n: number, timeoutMs = 120_000) =>
      eventually(
        `${name}: ${n} pods Ready on Karpenter's nodes`,
        async () => {
          const pods = await podsOf(name);
          return pods.length === n && pods.every(isReady) ? pods : undefined;
        },
        timeoutMs,
        500,
      );

    const nodeNames = async () =>
      (await c.client.list(RESOURCES.node)).items.map((n) => n.metadata.name).sort();

    before(async () => {
      c = await startTestCluster({ fleet: [], karpenterCrds: false });
      const t0 = Date.now();
      await startKarpenter(c.local!, { detached: false, quietBuild: false });
      await createNodeClass(c.local!, SLOW_CLASS, "8s");
      console.log(`karpenter ready in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
      await installOperatorPrerequisites(c);
      await startOperator();
    });
    after(async () => {
      if (op !== undefined && op.child.exitCode === null) {
        op.child.kill("SIGTERM");
        await op.exited;
      }
      await c?.stop();
      console.log(`karpenter suite ran ${((Date.now() - started) / 1000).toFixed(0)} s`);
    });

    test("create: NodePool -> pending pod -> NodeClaim -> an A100-80GB node with 2+ GPUs -> Ready", async () => {
      // Only the test bed's CPU node (where the model-cache loader runs): no GPU node yet.
      assert.deepEqual(await nodeNames(), ["cpu-0"], "no GPU node beforehand");
      const reasons = watchReasons("tp2");
      await apply("tp2", karpenterSpec({}, SLOW_CLASS));
      const [pod] = await readyReplicas("tp2", 1, 180_000);
      await reasons.stop();

      const node = await c.client.get<Node>(RESOURCES.node, pod!.spec.nodeName!);
      const labels = node.metadata.labels ?? {};
      assert.equal(labels[POOL_LABEL], poolOf("tp2"));
      assert.equal(labels["karpenter.k8s.aws/instance-gpu-name"], "a100");
      assert.equal(labels["karpenter.k8s.aws/instance-gpu-memory"], "81920");
      const shape = shapeNamed(labels["node.kubernetes.io/instance-type"] ?? "");
      assert.ok(shape !== undefined, `a shape of the fake cloud: ${JSON.stringify(labels)}`);
      assert.equal(shape.gpuType, "a100-80gb", "never a 40GB machine");
      assert.ok(shape.gpus >= 2, `${shape.name} holds a TP 2 replica`);
      // Karpenter launches the cheapest compatible offering.
      const cheapest = GPU_SHAPES.filter((s) => s.gpuType === "a100-80gb" && s.gpus >= 2).sort(
        (a, b) => a.onDemandUsdPerHour - b.onDemandUsdPerHour,
      )[0]!;
      assert.equal(shape.name, cheapest.name);
      assert.ok(
        node.spec?.taints?.some((t) => t.key === "nvidia.com/gpu" && t.effect === "NoSchedule"),
      );
      assert.equal(node.status?.allocatable?.["nvidia.com/gpu"] ?? "", String(shape.gpus));

      // While it waited, status said which NodeClaim Karpenter was launching.
      const launching = reasons.seen.find((s) => s.reason === "ProvisioningNodes");
      assert.ok(launching !== undefined, `reasons seen: ${JSON.stringify(reasons.seen)}`);
      assert.match(launching.message, new RegExp(`NodeClaim ${poolOf("tp2")}-\\w+`));
      const m = await eventually("tp2 Available", async () => {
        const x = await getMsd("tp2");
        return condition(x, "Ready")?.reason === "Available" ? x : undefined;
      });
      assert.equal(m.status?.readyReplicas, 1);
    });

    test("scale 1 -> 3: new nodes; a replica beyond the pool's GPU limit pends with Karpenter's reason", async () => {
      const pool = poolOf("tp2");
      // Someone else's 4-GPU pod on our pool takes its share of the limit first.
      const intruder = {
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name: "intruder", namespace: "default" },
        spec: {
          nodeSelector: { [POOL_LABEL]: pool },
          tolerations: [{ key: "nvidia.com/gpu", operator: "Exists", effect: "NoSchedule" }],
          containers: [
            {
              name: "x",
              image: "busybox",
              resources: { requests: { "nvidia.com/gpu": "4" }, limits: { "nvidia.com/gpu": "4" } },
            },
          ],
        },
      };
      await c.client.create(RESOURCES.pod, intruder, "default");
      await eventually(
        "the intruder runs on a pool node",
        async () => {
          const p = await c.client.get<Pod>(RESOURCES.pod, "intruder", "default");
          return isReady(p) ? p : undefined;
        },
        120_000,
        500,
      );
      await scale("tp2", 3);
      // 3 replicas x TP 2 = 6 GPUs, in whole 8-GPU machines: 8, of which the intruder holds 4.
      const np = await eventually("limit follows replicas", async () => {
        const x = await c.client.get<NodePool>(RESOURCES.nodePool, pool);
        return x.spec.limits?.["nvidia.com/gpu"] === "8" ? x : undefined;
      });
      assert.equal(np.spec.limits?.["nvidia.com/gpu"], "8");
      // The second replica may still be starting when Karpenter refuses the third: wait for both.
      const m = await eventually(
        "two replicas Ready, the third pending with Karpenter's limit message in status",
        async () => {
          const [x, pods] = await Promise.all([getMsd("tp2"), podsOf("tp2")]);
          const ready = condition(x, "Ready");
          return ready?.reason === "CapacityUnavailable" && pods.filter(isReady).length === 2
            ? x
            : undefined;
        },
        180_000,
        500,
      );
      const ready = condition(m, "Ready")!;
      assert.match(ready.message, /Karpenter cannot provision a node for pod tp2-/);
      assert.match(ready.message, /exceed limits for nodepool/);

      // Once the intruder goes, the capacity is ours again.
      await c.client.delete(RESOURCES.pod, "intruder", "default");
      const all = await readyReplicas("tp2", 3, 180_000);
      for (const p of all) {
        const n = await c.client.get<Node>(RESOURCES.node, p.spec.nodeName!);
        assert.equal(n.metadata.labels?.[POOL_LABEL], pool);
        assert.equal(n.metadata.labels?.["karpenter.k8s.aws/instance-gpu-memory"], "81920");
      }
      assert.ok((await nodesOf(pool)).length >= 2, "new nodes were launched");
    });

    test("scale 3 -> 1: empty nodes consolidated after consolidateAfter; the node serving stays", async () => {
      const pool = poolOf("tp2");
      await scale("tp2", 1);
      const [survivor] = await readyReplicas("tp2", 1, 120_000);
      const kept = survivor!.spec.nodeName!;
      await eventually(
        "only the serving node left in the pool",
        async () => {
          const nodes = await nodesOf(pool);
          return nodes.length === 1 && nodes[0]!.metadata.name === kept ? nodes : undefined;
        },
        180_000,
        1000,
      );
      // Well past consolidateAfter (5 s): the node running a do-not-disrupt vLLM pod is left alone.
      await new Promise((r) => setTimeout(r, 15_000));
      const [still] = await podsOf("tp2");
      assert.equal(still?.metadata.uid, survivor!.metadata.uid, "the pod was not disrupted");
      assert.deepEqual(
        (await nodesOf(pool)).map((n) => n.metadata.name),
        [kept],
      );
    });

    test("delete: the NodePool, its NodeClaims and Karpenter's nodes all go, then the resource", async () => {
      const pool = poolOf("tp2");
      assert.ok((await claimsOf(pool)).length > 0);
      const r = await c.kubectl(["delete", "msd", "tp2", "--wait=false"]);
      assert.equal(r.code, 0, r.stderr);
      await eventually(
        "resource, NodePool, NodeClaims and nodes gone",
        async () => {
          const [m, np, claims, nodes] = await Promise.all([
            getMsd("tp2"),
            c.client.getOrUndefined(RESOURCES.nodePool, pool),
            claimsOf(pool),
            nodesOf(pool),
          ]);
          return m === undefined && np === undefined && claims.length === 0 && nodes.length === 0;
        },
        180_000,
        500,
      );
      assert.deepEqual(await nodeNames(), ["cpu-0"], "no GPU node left behind");
    });

    test("operator killed while Karpenter launches -> restarted -> one NodePool, converges", async () => {
      await apply("restart", karpenterSpec({}, SLOW_CLASS));
      // The slow node class holds the node back 8 s after the NodeClaim exists.
      await eventually(
        "a NodeClaim launching",
        async () => (await claimsOf(poolOf("restart"))).length > 0,
        120_000,
        250,
      );
      op.child.kill("SIGKILL");
      await op.exited;
      await startOperator();
      await readyReplicas("restart", 1, 180_000);
      const pools = (await c.client.list<KubeObject>(RESOURCES.nodePool)).items.filter(
        (p) => p.metadata.labels?.["serving.mistralsmall.dev/owner-name"] === "restart",
      );
      assert.equal(pools.length, 1);
      assert.equal((await claimsOf(poolOf("restart"))).length, 1, "one node for one replica");
      await eventually("restart Available", async () =>
        condition(await getMsd("restart"), "Ready")?.reason === "Available" ? true : undefined,
      );
    });
  },
);

function skipReason(): string | false {
  return process.env.MSD_TEST_KUBECONFIG === undefined
    ? false
    : "needs the local control plane (Karpenter runs beside it)";
}
