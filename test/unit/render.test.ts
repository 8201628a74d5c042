import { test, describe } from "node:test";
import assert from "node:assert/strict";
import type {
  V1Container,
  V1Deployment,
  V1PersistentVolumeClaim,
  V1PodDisruptionBudget,
  V1Service,
} from "@kubernetes/client-node";
import { parseResource } from "../../src/api/validate.ts";
import { API_VERSION, KIND, type MistralSmallDeployment } from "../../src/api/schema.ts";
import { GPU_CATALOG } from "../../src/catalog/gpus.ts";
import { plan } from "../../src/planner/plan.ts";
import { renderAll, type Manifest } from "../../src/render/index.ts";
import type { NodePool } from "../../src/render/nodepool.ts";
import { toYamlStream } from "../../src/util/yaml.ts";
import { RENDERED_KINDS } from "./msd-fixtures.ts";

type Raw = Record<string, unknown>;

const HASH = "serving.mistralsmall.dev/template-hash";
const UID = "8d3b1c9e-0000-4000-8000-000000000001";

function karpenterRaw(spec: Raw = {}, metadata: Raw = {}): Raw {
  return {
    apiVersion: API_VERSION,
    kind: KIND,
    metadata: { name: "small", namespace: "inference", uid: UID, ...metadata },
    spec: {
      gpu: { type: "a100-80gb" },
      model: { tokenSecretRef: { name: "hf-token", key: "token" } },
      replicas: 2,
      autoscaling: { enabled: true, minReplicas: 1, maxReplicas: 5 },
      nodePool: {
        provider: "karpenter",
        karpenter: {
          nodeClassRef: { name: "gpu-nodes" },
          capacityTypes: ["spot", "on-demand"],
          consolidateAfter: "45m",
        },
      },
      ...spec,
    },
  };
}

function staticRaw(spec: Raw = {}, metadata: Raw = {}): Raw {
  return {
    apiVersion: API_VERSION,
    kind: KIND,
    metadata: { name: "small-static", namespace: "ml", ...metadata },
    spec: {
      gpu: { type: "h100-80gb", tensorParallelSize: 4 },
      model: { cache: { existingClaim: "shared-weights" } },
      replicas: 3,
      nodePool: {
        provider: "static",
        static: {
          nodeSelector: { pool: "h100" },
          tolerations: [{ key: "dedicated", operator: "Equal", value: "ml", effect: "NoSchedule" }],
        },
      },
      ...spec,
    },
  };
}

function render(raw: Raw): { msd: MistralSmallDeployment; objects: Manifest[] } {
  const msd = parseResource(raw);
  const p = plan(msd.spec);
  assert.ok(p.feasible, p.reasons.join("; "));
  return { msd, objects: renderAll(msd, p) };
}

function one<T>(objects: readonly Manifest[], kind: string): T {
  const found = objects.filter((o) => o.kind === kind);
  assert.equal(found.length, 1, `expected one ${kind}, got ${found.length}`);
  return found[0] as unknown as T;
}

function vllm(d: V1Deployment): V1Container {
  const containers = d.spec!.template.spec!.containers;
  assert.equal(containers.length, 1);
  assert.equal(containers[0]!.name, "vllm");
  return containers[0]!;
}

function templateHash(raw: Raw): string {
  const d = one<V1Deployment>(render(raw).objects, "Deployment");
  const hash = d.spec!.template.metadata!.annotations![HASH];
  assert.ok(hash !== undefined && /^[0-9a-f]{10}$/.test(hash), `bad hash ${String(hash)}`);
  assert.equal(d.metadata!.annotations![HASH], hash, "Deployment and template carry the same hash");
  return hash;
}

/** Deep copy with every object's keys in reverse order. */
function reverseKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(reverseKeys);
  if (typeof value !== "object" || value === null) return value;
  return Object.fromEntries(
    Object.entries(value)
      .reverse()
      .map(([k, v]) => [k, reverseKeys(v)]),
  );
}

const LABELS = {
  "app.kubernetes.io/instance": "small",
  "app.kubernetes.io/name": "mistral-small",
  "app.kubernetes.io/component": "inference-server",
  "app.kubernetes.io/managed-by": "mistral-small-operator",
  "app.kubernetes.io/part-of": "mistral-small-4",
};

describe("karpenter spec", () => {
  const { msd, objects } = render(karpenterRaw());
  const p = plan(msd.spec);
  const tp = p.tensorParallelSize;
  const deployment = one<V1Deployment>(objects, "Deployment");
  const pod = deployment.spec!.template.spec!;
  const container = vllm(deployment);
  const nodePool = one<NodePool>(objects, "NodePool");

  test("objects come in a fixed order", () => {
    assert.deepEqual(
      objects.map((o) => o.kind),
      ["NodePool", ...RENDERED_KINDS],
    );
    assert.deepEqual(
      objects.map((o) => o.apiVersion),
      ["karpenter.sh/v1", "v1", "batch/v1", "v1", "networking.k8s.io/v1", "policy/v1", "apps/v1"],
    );
  });

  test("the plan picked TP 2, so the pod asks for 2 GPUs", () => {
    assert.equal(tp, 2);
    assert.equal(container.resources!.requests!["nvidia.com/gpu"], "2");
    assert.equal(container.resources!.limits!["nvidia.com/gpu"], "2");
    assert.equal(container.resources!.requests!.cpu, "8");
    assert.equal(container.resources!.requests!.memory, "96Gi");
    assert.equal(container.resources!.limits!.memory, "96Gi");
    assert.deepEqual(container.args, [...p.vllmArgs]);
    assert.deepEqual(container.command, ["vllm", "serve"]);
    assert.equal(container.image, "vllm/vllm-openai:v0.24.0");
  });

  test("deployment replicas, selector and rollout strategy", () => {
    assert.equal(deployment.spec!.replicas, 2);
    assert.deepEqual(deployment.spec!.selector.matchLabels, {
      "app.kubernetes.io/instance": "small",
      "app.kubernetes.io/name": "mistral-small",
    });
    // The selector must select the pods it creates.
    for (const [k, v] of Object.entries(deployment.spec!.selector.matchLabels!)) {
      assert.equal(deployment.spec!.template.metadata!.labels![k], v);
    }
    assert.equal(deployment.spec!.strategy!.rollingUpdate!.maxSurge, 0);
    assert.ok(
      deployment.spec!.progressDeadlineSeconds! > 10 * 540,
      "the progress deadline outlasts the startup probe",
    );
  });

  test("shared memory is a memory-backed emptyDir mounted at /dev/shm", () => {
    const dshm = pod.volumes!.find((v) => v.name === "dshm");
    assert.ok(dshm?.emptyDir);
    assert.equal(dshm.emptyDir.medium, "Memory");
    const mount = container.volumeMounts!.find((m) => m.mountPath === "/dev/shm");
    assert.equal(mount?.name, "dshm");
  });

  test("the model cache claim is created and mounted", () => {
    const pvc = one<V1PersistentVolumeClaim>(objects, "PersistentVolumeClaim");
    assert.match(pvc.metadata!.name!, /^model-cache-[0-9a-f]{10}$/);
    assert.equal(pvc.metadata!.namespace, "inference");
    assert.deepEqual(pvc.spec!.accessModes, ["ReadWriteOnce"]);
    assert.equal(pvc.spec!.resources!.requests!.storage, "400Gi");
    assert.equal(pvc.spec!.storageClassName, undefined);
    const volume = pod.volumes!.find((v) => v.persistentVolumeClaim !== undefined);
    assert.equal(volume?.persistentVolumeClaim?.claimName, pvc.metadata!.name);
    assert.equal(volume?.persistentVolumeClaim?.readOnly, true);
    const mount = container.volumeMounts!.find((m) => m.name === volume.name);
    assert.ok(mount, "the claim is mounted");
    assert.equal(mount.readOnly, true, "vLLM pods only read the cache");
    const hfHome = container.env!.find((e) => e.name === "HF_HOME")?.value;
    assert.ok(hfHome?.startsWith(`${mount.mountPath}/`), `HF_HOME ${hfHome} is on the claim`);
  });

  test("HF_TOKEN comes from the referenced secret", () => {
    const tokens = container.env!.filter((e) => e.name === "HF_TOKEN");
    assert.equal(tokens.length, 1);
    assert.equal(tokens[0]!.value, undefined, "never inlined");
    assert.deepEqual(tokens[0]!.valueFrom, { secretKeyRef: { name: "hf-token", key: "token" } });
  });

  test("startup, readiness and liveness probes on /health", () => {
    for (const name of ["startupProbe", "readinessProbe", "livenessProbe"] as const) {
      const probe = container[name];
      assert.ok(probe, name);
      assert.equal(probe.httpGet?.path, "/health", name);
      assert.equal(probe.httpGet?.port, "http", name);
    }
    const s = container.startupProbe!;
    assert.ok(
      s.periodSeconds! * s.failureThreshold! >= 30 * 60,
      `startup budget ${s.periodSeconds! * s.failureThreshold!}s is under 30 minutes`,
    );
    const l = container.livenessProbe!;
    assert.ok(l.periodSeconds! * l.failureThreshold! < 30 * 60, "liveness reacts faster");
    assert.deepEqual(container.ports, [{ name: "http", containerPort: 8000, protocol: "TCP" }]);
  });

  test("pod security and lifecycle", () => {
    assert.equal(pod.enableServiceLinks, false);
    assert.equal(pod.securityContext!.runAsNonRoot, true);
    assert.ok(pod.securityContext!.runAsUser! > 0);
    assert.equal(container.securityContext!.allowPrivilegeEscalation, false);
    // Owned explicitly, so server-side apply reverts a hand edit (issue 17, item 3).
    assert.equal(pod.hostNetwork, false);
    assert.equal(pod.hostPID, false);
    assert.equal(pod.hostIPC, false);
    assert.equal(pod.automountServiceAccountToken, false);
    assert.equal(container.securityContext!.privileged, false);
    assert.deepEqual(container.securityContext!.capabilities, { drop: ["ALL"], add: [] });
    const grace = pod.terminationGracePeriodSeconds!;
    assert.ok(grace >= 30, `grace ${grace}`);
    const preStop = container.lifecycle?.preStop?.exec?.command;
    assert.ok(preStop && preStop[0] === "sleep");
    assert.ok(Number(preStop[1]) < grace, "preStop sleep fits in the grace period");
  });

  test("GPU toleration and node affinity on the GPU type's labels", () => {
    assert.ok(
      pod.tolerations!.some(
        (t) => t.key === "nvidia.com/gpu" && t.operator === "Exists" && t.effect === "NoSchedule",
      ),
    );
    const terms =
      pod.affinity!.nodeAffinity!.requiredDuringSchedulingIgnoredDuringExecution!.nodeSelectorTerms;
    const product = terms
      .flatMap((t) => t.matchExpressions ?? [])
      .find((e) => e.key === "nvidia.com/gpu.product");
    assert.equal(product?.operator, "In");
    assert.deepEqual(product.values, [...GPU_CATALOG["a100-80gb"].productLabels]);
    assert.ok(product.values!.includes("NVIDIA-A100-SXM4-80GB"));
    assert.ok(!product.values!.some((v) => v.includes("40GB")), "no 40GB A100 in an 80GB spec");
  });

  test("the pod is pinned to its own NodePool", () => {
    assert.deepEqual(pod.nodeSelector, { "karpenter.sh/nodepool": nodePool.metadata.name });
  });

  test("labels and owner references on namespaced objects", () => {
    for (const o of objects) {
      // The NodePool is cluster-scoped; the cache claim and its Job are shared (model-cache tests).
      if (["NodePool", "PersistentVolumeClaim", "Job"].includes(o.kind)) continue;
      const meta = o.metadata as {
        namespace?: string;
        labels?: Record<string, string>;
        ownerReferences?: Record<string, unknown>[];
      };
      assert.equal(meta.namespace, "inference", o.kind);
      assert.deepEqual(meta.labels, LABELS, o.kind);
      assert.deepEqual(
        meta.ownerReferences,
        [
          {
            apiVersion: API_VERSION,
            kind: KIND,
            name: "small",
            uid: UID,
            controller: true,
            blockOwnerDeletion: true,
          },
        ],
        o.kind,
      );
    }
    assert.deepEqual(deployment.spec!.template.metadata!.labels, LABELS);
  });

  test("the cluster-scoped NodePool carries owner labels instead of a reference", () => {
    const meta = nodePool.metadata as Record<string, unknown>;
    assert.equal(meta.ownerReferences, undefined);
    assert.equal(meta.namespace, undefined);
    assert.deepEqual(nodePool.metadata.labels, {
      "app.kubernetes.io/managed-by": "mistral-small-operator",
      "serving.mistralsmall.dev/owner-name": "small",
      "serving.mistralsmall.dev/owner-namespace": "inference",
      "serving.mistralsmall.dev/owner-uid": UID,
    });
    assert.equal(nodePool.metadata.name, "msd-inference-small");
  });

  test("Service on port 8000 selecting the pods", () => {
    const svc = one<V1Service>(objects, "Service");
    assert.equal(svc.metadata!.name, "small");
    assert.equal(svc.spec!.ports!.length, 1);
    assert.equal(svc.spec!.ports![0]!.port, 8000);
    assert.equal(svc.spec!.ports![0]!.targetPort, "http");
    assert.deepEqual(svc.spec!.selector, deployment.spec!.selector.matchLabels);
  });

  test("PodDisruptionBudget for the pods", () => {
    const pdb = one<V1PodDisruptionBudget>(objects, "PodDisruptionBudget");
    assert.equal(pdb.spec!.maxUnavailable, 1);
    assert.deepEqual(pdb.spec!.selector!.matchLabels, deployment.spec!.selector.matchLabels);
  });

  test("NodePool: karpenter.sh/v1, requirements, taint, limits, disruption", () => {
    assert.equal(nodePool.apiVersion, "karpenter.sh/v1");
    const spec = nodePool.spec as {
      template: {
        spec: {
          nodeClassRef: Record<string, string>;
          requirements: { key: string; operator: string; values: string[] }[];
          taints: Record<string, string>[];
          expireAfter: string;
        };
      };
      disruption: { consolidationPolicy: string; consolidateAfter: string };
      limits: Record<string, string>;
    };
    const req = new Map(spec.template.spec.requirements.map((r) => [r.key, r]));
    assert.deepEqual(req.get("karpenter.sh/capacity-type"), {
      key: "karpenter.sh/capacity-type",
      operator: "In",
      values: ["spot", "on-demand"],
    });
    assert.deepEqual(req.get("karpenter.k8s.aws/instance-gpu-name")?.values, ["a100"]);
    assert.deepEqual(req.get("karpenter.k8s.aws/instance-gpu-memory")?.values, ["81920"]);
    const count = req.get("karpenter.k8s.aws/instance-gpu-count");
    assert.equal(count?.operator, "Gt");
    assert.deepEqual(count.values, [String(tp - 1)]);
    assert.deepEqual(spec.template.spec.nodeClassRef, {
      group: "karpenter.k8s.aws",
      kind: "EC2NodeClass",
      name: "gpu-nodes",
    });
    assert.ok(
      spec.template.spec.taints.some(
        (t) => t.key === "nvidia.com/gpu" && t.effect === "NoSchedule",
      ),
    );
    // Autoscaling enabled: room for maxReplicas (5) x TP (2) = 10, in whole 8-GPU machines.
    assert.deepEqual(spec.limits, { "nvidia.com/gpu": "16" });
    assert.equal(spec.disruption.consolidationPolicy, "WhenEmpty");
    assert.equal(spec.disruption.consolidateAfter, "45m");
    assert.equal(spec.template.spec.expireAfter, "720h");
  });

  test("NodePool limits follow replicas when autoscaling is off", () => {
    const r = render(
      karpenterRaw({
        replicas: 3,
        autoscaling: { enabled: false },
        gpu: { type: "h100-80gb", tensorParallelSize: 4 },
      }),
    );
    const np = one<NodePool>(r.objects, "NodePool");
    // 3 x TP 4 = 12 GPUs: two 8-GPU machines' worth.
    assert.deepEqual((np.spec as { limits: unknown }).limits, { "nvidia.com/gpu": "16" });
  });

  test("one TP 2 replica restricted to p4de still leaves room for one 8-GPU machine", () => {
    // Karpenter compares a limit with the capacity of the node it would launch: a limit of 2
    // would filter out p4de.24xlarge (8 GPUs) and nothing could ever be launched.
    const r = render(
      karpenterRaw({
        replicas: 1,
        autoscaling: { enabled: false },
        nodePool: {
          provider: "karpenter",
          karpenter: { nodeClassRef: { name: "gpu" }, instanceTypes: ["p4de.24xlarge"] },
        },
      }),
    );
    const np = one<NodePool>(r.objects, "NodePool");
    assert.deepEqual((np.spec as { limits: unknown }).limits, { "nvidia.com/gpu": "8" });
  });

  test("the node template carries the owner uid, so NodeClaims and nodes can be traced back", () => {
    const labels = (nodePool.spec as { template: { metadata: { labels: Record<string, string> } } })
      .template.metadata.labels;
    assert.equal(labels["serving.mistralsmall.dev/owner-uid"], UID);
  });

  test("instance types become a requirement when given", () => {
    const r = render(
      karpenterRaw({
        nodePool: {
          provider: "karpenter",
          karpenter: { nodeClassRef: { name: "gpu" }, instanceTypes: ["p4de.24xlarge"] },
        },
      }),
    );
    const np = one<NodePool>(r.objects, "NodePool");
    const reqs = (
      np.spec as { template: { spec: { requirements: { key: string; values: string[] }[] } } }
    ).template.spec.requirements;
    assert.deepEqual(reqs.find((q) => q.key === "node.kubernetes.io/instance-type")?.values, [
      "p4de.24xlarge",
    ]);
  });

  test("NodePool names stay within 63 characters and stay distinct for long names", () => {
    const namespace = "n".repeat(63);
    const a = render(karpenterRaw({}, { namespace, name: `${"a".repeat(51)}1` }));
    const b = render(karpenterRaw({}, { namespace, name: `${"a".repeat(51)}2` }));
    const nameA = one<NodePool>(a.objects, "NodePool").metadata.name;
    const nameB = one<NodePool>(b.objects, "NodePool").metadata.name;
    for (const n of [nameA, nameB]) {
      assert.ok(n.length <= 63, `${n} is ${n.length} characters`);
      assert.match(n, /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
    }
    assert.notEqual(nameA, nameB);
    const podA = one<V1Deployment>(a.objects, "Deployment").spec!.template.spec!;
    assert.deepEqual(podA.nodeSelector, { "karpenter.sh/nodepool": nameA });
  });
});

describe("static spec", () => {
  const { msd, objects } = render(staticRaw());
  const deployment = one<V1Deployment>(objects, "Deployment");
  const pod = deployment.spec!.template.spec!;
  const container = vllm(deployment);

  test("no NodePool and no claim when existingClaim is set", () => {
    assert.deepEqual(
      objects.map((o) => o.kind),
      ["Job", "Service", "NetworkPolicy", "PodDisruptionBudget", "Deployment"],
    );
  });

  test("the existing claim is mounted", () => {
    const volume = pod.volumes!.find((v) => v.name === "model-cache");
    assert.equal(volume?.persistentVolumeClaim?.claimName, "shared-weights");
  });

  test("explicit TP 4 gives 4 GPUs per pod, and replicas as written", () => {
    assert.equal(plan(msd.spec).tensorParallelSize, 4);
    assert.equal(container.resources!.requests!["nvidia.com/gpu"], "4");
    assert.equal(container.resources!.limits!["nvidia.com/gpu"], "4");
    assert.equal(deployment.spec!.replicas, 3);
  });

  test("no HF_TOKEN without tokenSecretRef", () => {
    assert.ok(!container.env!.some((e) => e.name === "HF_TOKEN"));
    assert.ok(container.env!.some((e) => e.name === "HF_HOME"));
  });

  test("user node selector and tolerations are added to the GPU ones", () => {
    assert.deepEqual(pod.nodeSelector, { pool: "h100" });
    assert.deepEqual(pod.tolerations, [
      { key: "nvidia.com/gpu", operator: "Exists", effect: "NoSchedule" },
      { key: "dedicated", operator: "Equal", value: "ml", effect: "NoSchedule" },
    ]);
    const product = pod
      .affinity!.nodeAffinity!.requiredDuringSchedulingIgnoredDuringExecution!.nodeSelectorTerms.flatMap(
        (t) => t.matchExpressions ?? [],
      )
      .find((e) => e.key === "nvidia.com/gpu.product");
    assert.deepEqual(product?.values, ["NVIDIA-H100-80GB-HBM3", "H100-80GB-HBM3"]);
  });

  test("no owner references before the object has a uid", () => {
    for (const o of objects) {
      assert.equal(o.metadata.ownerReferences, undefined, o.kind);
    }
  });

  test("a single-GPU replica gets a smaller /dev/shm than a TP replica", () => {
    const single = render(staticRaw({ gpu: { type: "h200-141gb", tensorParallelSize: 1 } }));
    const dshm = (objs: Manifest[]) =>
      one<V1Deployment>(objs, "Deployment").spec!.template.spec!.volumes!.find(
        (v) => v.name === "dshm",
      )!.emptyDir!;
    assert.equal(dshm(single.objects).medium, "Memory");
    assert.ok(dshm(single.objects).sizeLimit !== dshm(objects).sizeLimit);
  });

  test("a created claim carries the storage class and access mode", () => {
    const r = render(
      staticRaw({
        model: { cache: { storageClassName: "fast", accessMode: "ReadWriteOnce", size: "250Gi" } },
      }),
    );
    const pvc = one<V1PersistentVolumeClaim>(r.objects, "PersistentVolumeClaim");
    assert.equal(pvc.spec!.storageClassName, "fast");
    assert.deepEqual(pvc.spec!.accessModes, ["ReadWriteOnce"]);
    assert.equal(pvc.spec!.resources!.requests!.storage, "250Gi");
  });
});

describe("pod template hash", () => {
  test("stays when nothing changes", () => {
    assert.equal(templateHash(karpenterRaw()), templateHash(karpenterRaw()));
  });

  test("changes when maxModelLen changes", () => {
    assert.notEqual(
      templateHash(karpenterRaw()),
      templateHash(karpenterRaw({ maxModelLen: 65536 })),
    );
  });

  test("changes when the image or the token secret changes", () => {
    const base = templateHash(karpenterRaw());
    assert.notEqual(
      base,
      templateHash(karpenterRaw({ engine: { image: "vllm/vllm-openai:v0.24.0-cu129" } })),
    );
    assert.notEqual(
      base,
      templateHash(karpenterRaw({ model: { tokenSecretRef: { name: "other", key: "token" } } })),
    );
  });

  test("does not change with the replica count or the uid (no needless rollout)", () => {
    const base = templateHash(karpenterRaw());
    assert.equal(base, templateHash(karpenterRaw({ replicas: 4 })));
    assert.equal(base, templateHash(karpenterRaw({}, { uid: "another-uid" })));
  });
});

describe("determinism", () => {
  for (const [name, raw] of [
    ["karpenter", karpenterRaw()],
    ["static", staticRaw()],
  ] as const) {
    test(`${name}: rendering twice gives byte-identical YAML`, () => {
      const a = toYamlStream(render(structuredClone(raw)).objects);
      const b = toYamlStream(render(structuredClone(raw)).objects);
      assert.equal(a, b);
      assert.ok(a.startsWith("---\n"));
    });

    test(`${name}: input key order does not matter`, () => {
      const reversed = reverseKeys(raw) as Raw;
      assert.notDeepEqual(Object.keys(reversed), Object.keys(raw));
      assert.equal(toYamlStream(render(reversed).objects), toYamlStream(render(raw).objects));
    });

    test(`${name}: rendering does not mutate the resource or the plan`, () => {
      const msd = parseResource(structuredClone(raw));
      const p = plan(msd.spec);
      const before = structuredClone({ msd, p });
      renderAll(msd, p);
      assert.deepEqual({ msd, p }, before);
    });
  }
});
