/**
 * Proves the local control plane is real and that our CRD, CEL rules and rendered
 * objects are accepted or refused by the real API server, scheduler and KWOK nodes.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { stringify } from "yaml";
import { runRender } from "../../src/cli/commands.ts";
import { RESOURCES, type KubeObject } from "../../src/kube/client.ts";
import { eventually, startTestCluster, type TestCluster } from "./cluster.ts";

const EXAMPLES = join(import.meta.dirname, "..", "..", "examples");
const CRDS = join(import.meta.dirname, "..", "..", "crds");

function msd(name: string, spec: unknown): string {
  return stringify({
    apiVersion: "serving.mistralsmall.dev/v1alpha1",
    kind: "MistralSmallDeployment",
    metadata: { name, namespace: "default" },
    spec,
  });
}

describe("local control plane", () => {
  let c: TestCluster;
  before(async () => {
    c = await startTestCluster();
  });
  after(async () => {
    await c?.stop();
  });

  test("CRDs apply and kubectl explain shows the schema's descriptions", async () => {
    const applied = await c.kubectl(["apply", "--server-side", "-f", CRDS]);
    assert.equal(applied.code, 0, applied.stderr);
    await eventually("CRD established", async () => {
      const r = await c.kubectl([
        "wait",
        "--for=condition=Established",
        "--timeout=5s",
        "crd/mistralsmalldeployments.serving.mistralsmall.dev",
      ]);
      return r.code === 0;
    });
    const explain = await eventually("explain", async () => {
      const r = await c.kubectl(["explain", "msd.spec.gpu"]);
      return r.code === 0 ? r.stdout : undefined;
    });
    assert.match(explain, /The GPU type and how many GPUs each replica spans/);
    assert.match(explain, /tensorParallelSize/);
    assert.match(explain, /Chosen by the planner\s+when omitted/);
    const tp = await c.kubectl(["explain", "msd.spec.maxModelLen"]);
    assert.match(tp.stdout, /Context-length cap in\s+tokens/);
  });

  const invalid: [string, unknown, RegExp][] = [
    ["bad-gpu", { gpu: { type: "a100-50gb" } }, /spec\.gpu\.type: Unsupported value: "a100-50gb"/],
    [
      "tp-three",
      { gpu: { type: "a100-80gb", tensorParallelSize: 3 } },
      /spec\.gpu\.tensorParallelSize: Unsupported value: 3/,
    ],
    [
      "ctx-too-long",
      { gpu: { type: "a100-80gb" }, maxModelLen: 300000 },
      /spec\.maxModelLen: Invalid value: 300000: .*less than or equal to 262144/,
    ],
    [
      "min-gt-max",
      {
        gpu: { type: "a100-80gb" },
        autoscaling: { enabled: true, minReplicas: 5, maxReplicas: 2 },
      },
      /minReplicas must be less than or equal to maxReplicas/,
    ],
    [
      "bf16-no-name",
      { gpu: { type: "a100-80gb" }, model: { quantization: "bf16" } },
      /quantization bf16, awq and gptq have no official checkpoint: set model.name/,
    ],
    [
      "bad-quant",
      { gpu: { type: "a100-80gb" }, model: { quantization: "int3" } },
      /spec\.model\.quantization: Unsupported value: "int3"/,
    ],
    [
      "managed-flag",
      { gpu: { type: "a100-80gb" }, engine: { extraArgs: ["--tensor-parallel-size=4"] } },
      /extraArgs must not set flags the operator manages/,
    ],
    [
      "karpenter-no-block",
      { gpu: { type: "a100-80gb" }, nodePool: { provider: "karpenter" } },
      /provider karpenter needs nodePool.karpenter/,
    ],
    [
      "util-too-high",
      { gpu: { type: "a100-80gb" }, engine: { gpuMemoryUtilization: 0.99 } },
      /spec\.engine\.gpuMemoryUtilization: Invalid value: 0\.99: .*less than or equal to 0\.98/,
    ],
    ["no-gpu", { maxModelLen: 32768 }, /spec\.gpu: Required value/],
    [
      "zero-min",
      {
        gpu: { type: "a100-80gb" },
        replicas: 0,
        autoscaling: { enabled: true, minReplicas: 0, maxReplicas: 2 },
      },
      /minReplicas 0 needs scaleToZero: true/,
    ],
    [
      "claim-and-class",
      {
        gpu: { type: "a100-80gb" },
        model: { cache: { existingClaim: "weights", storageClassName: "fast" } },
      },
      /storageClassName applies only to a claim the operator creates/,
    ],
    [
      "replicas-out",
      {
        gpu: { type: "a100-80gb" },
        replicas: 9,
        autoscaling: { enabled: true, minReplicas: 1, maxReplicas: 4 },
      },
      /replicas must lie within \[minReplicas, maxReplicas\]/,
    ],
    // Issue 17: refused at admission instead of half-applied or rendered with a 1-byte limit.
    [
      "cache-zero",
      { gpu: { type: "a100-80gb" }, model: { cache: { size: "0" } } },
      /size must be greater than zero/,
    ],
    [
      "cpu-zero",
      { gpu: { type: "a100-80gb" }, engine: { resources: { cpu: "0" } } },
      /cpu must be at least 2/,
    ],
    [
      "memory-one-byte",
      { gpu: { type: "a100-80gb" }, engine: { resources: { memory: "1" } } },
      /memory must be at least 16Gi/,
    ],
    [
      "bad-secret-key",
      { gpu: { type: "a100-80gb" }, model: { tokenSecretRef: { name: "hf", key: "bad key" } } },
      /spec\.model\.tokenSecretRef\.key: Invalid value/,
    ],
    [
      "unicode-label",
      {
        gpu: { type: "a100-80gb" },
        nodePool: { provider: "static", static: { nodeSelector: { pool: "gpu-\u00e9" } } },
      },
      /spec\.nodePool\.static\.nodeSelector\.pool: Invalid value/,
    ],
    [
      "bad-toleration-key",
      {
        gpu: { type: "a100-80gb" },
        nodePool: { provider: "static", static: { tolerations: [{ key: "bad key!" }] } },
      },
      /spec\.nodePool\.static\.tolerations\[0\]\.key: Invalid value/,
    ],
    [
      `n${"x".repeat(59)}`,
      { gpu: { type: "a100-80gb" } },
      /metadata\.name must be at most 52 characters/,
    ],
    ["dotted.name", { gpu: { type: "a100-80gb" } }, /metadata\.name must be a DNS-1035 label/],
  ];

  test(`${invalid.length} invalid MistralSmallDeployments are refused by the API server with a readable message`, async () => {
    for (const [name, spec, message] of invalid) {
      const r = await c.kubectl(["apply", "-f", "-"], msd(name, spec));
      assert.notEqual(r.code, 0, `${name} was accepted`);
      assert.match(r.stderr, message, `${name}: ${r.stderr}`);
    }
    const stored = await c.client.list<KubeObject>(RESOURCES.msd, { namespace: "default" });
    assert.deepEqual(
      stored.items.map((i) => i.metadata.name),
      [],
      "nothing invalid may be stored",
    );
  });

  test("a valid MistralSmallDeployment is stored with the schema's defaults", async () => {
    const r = await c.kubectl(
      ["apply", "-f", "-"],
      msd("defaults", { gpu: { type: "a100-80gb" } }),
    );
    assert.equal(r.code, 0, r.stderr);
    const got = await c.client.get<KubeObject & { spec: Record<string, Record<string, unknown>> }>(
      RESOURCES.msd,
      "defaults",
      "default",
    );
    assert.equal(got.spec.maxModelLen, 32768);
    assert.equal(got.spec.model!.quantization, "fp8");
    assert.equal(got.spec.model!.servedModelName, "mistral-small-4");
    assert.equal(got.spec.nodePool!.provider, "static");
    await c.client.delete(RESOURCES.msd, "defaults", "default");
  });

  test("every example MistralSmallDeployment is accepted by the API server", async () => {
    const r = await c.kubectl(["apply", "--dry-run=server", "-f", EXAMPLES]);
    assert.equal(r.code, 0, r.stderr);
    const files = readdirSync(EXAMPLES).filter((f) => f.endsWith(".yaml"));
    assert.equal(
      (r.stdout.match(/created \(server dry run\)/g) ?? []).length,
      files.length,
      r.stdout,
    );
  });

  test("everything msd render produces for the examples passes kubectl apply --dry-run=server", async () => {
    const files = readdirSync(EXAMPLES).filter((f) => f.endsWith(".yaml"));
    assert.ok(files.length >= 1);
    for (const f of files) {
      const rendered = runRender(join(EXAMPLES, f));
      assert.equal(rendered.code, 0, `${f}: ${rendered.stderr}`);
      const r = await c.kubectl(["apply", "--dry-run=server", "-f", "-"], rendered.stdout);
      assert.equal(r.code, 0, `${f}: ${r.stderr}`);
      assert.match(r.stdout, /deployment\.apps\/\S+ created \(server dry run\)/);
    }
  });

  function gpuDeployment(name: string, gpus: number): string {
    return stringify({
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { name, namespace: "default" },
      spec: {
        replicas: 1,
        selector: { matchLabels: { app: name } },
        template: {
          metadata: { labels: { app: name } },
          spec: {
            tolerations: [{ key: "nvidia.com/gpu", operator: "Exists", effect: "NoSchedule" }],
            affinity: {
              nodeAffinity: {
                requiredDuringSchedulingIgnoredDuringExecution: {
                  nodeSelectorTerms: [
                    {
                      matchExpressions: [
                        {
                          key: "nvidia.com/gpu.product",
                          operator: "In",
                          values: ["NVIDIA-A100-SXM4-80GB", "NVIDIA-A100-SXM4-40GB"],
                        },
                      ],
                    },
                  ],
                },
              },
            },
            containers: [
              {
                name: "c",
                image: "vllm/vllm-openai:v0.20.0",
                resources: { limits: { "nvidia.com/gpu": String(gpus) } },
              },
            ],
          },
        },
      },
    });
  }

  type PodCondition = { type: string; status: string; reason?: string; message?: string };
  type Pod = KubeObject & {
    spec: { nodeName?: string };
    status: { phase?: string; conditions?: PodCondition[] };
  };

  test("a 4-GPU pod is scheduled on a fake A100 node and becomes Ready; a 16-GPU pod stays Pending as Unschedulable", async () => {
    assert.equal((await c.kubectl(["apply", "-f", "-"], gpuDeployment("four-gpus", 4))).code, 0);
    assert.equal(
      (await c.kubectl(["apply", "-f", "-"], gpuDeployment("sixteen-gpus", 16))).code,
      0,
    );
    /** The first pod of the Deployment `app` with a condition that satisfies `has`. */
    const podWith = (what: string, app: string, has: (x: PodCondition) => boolean) =>
      eventually(what, async () => {
        const pods = await c.client.list<Pod>(RESOURCES.pod, {
          namespace: "default",
          labelSelector: `app=${app}`,
        });
        return pods.items.find((p) => p.status.conditions?.some(has));
      });
    const ready = await podWith(
      "4-GPU pod Ready",
      "four-gpus",
      (x) => x.type === "Ready" && x.status === "True",
    );
    assert.match(ready.spec.nodeName ?? "", /^a100-(80|40)gb-\d$/);
    const pending = await podWith(
      "16-GPU pod unschedulable",
      "sixteen-gpus",
      (x) => x.type === "PodScheduled" && x.reason === "Unschedulable",
    );
    assert.equal(pending.status.phase, "Pending");
    const cond = pending.status.conditions!.find((x) => x.type === "PodScheduled")!;
    assert.match(cond.message ?? "", /Insufficient nvidia\.com\/gpu/);
  });
});
