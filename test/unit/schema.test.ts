import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { parseResource, ValidationError, type FieldProblem } from "../../src/api/validate.ts";
import { API_VERSION, KIND } from "../../src/api/schema.ts";

type Raw = Record<string, unknown>;

function resource(spec: unknown, overrides: Raw = {}): Raw {
  return {
    apiVersion: API_VERSION,
    kind: KIND,
    metadata: { name: "mistral", namespace: "ml" },
    spec,
    ...overrides,
  };
}

const GPU = { type: "a100-80gb" };

/** Parses and returns the problems; fails the test when parsing succeeds. */
function problemsOf(raw: unknown): readonly FieldProblem[] {
  try {
    parseResource(raw);
  } catch (err) {
    assert.ok(err instanceof ValidationError, `expected ValidationError, got ${String(err)}`);
    return err.problems;
  }
  assert.fail(`expected ${JSON.stringify(raw)} to be rejected`);
}

interface InvalidCase {
  readonly name: string;
  readonly raw: unknown;
  readonly path: string;
  readonly message: string | RegExp;
}

const invalid: readonly InvalidCase[] = [
  {
    name: "unknown quantization",
    raw: resource({ gpu: GPU, model: { quantization: "int8" } }),
    path: "spec.model.quantization",
    message: 'must be one of "fp8", "nvfp4", "bf16", "awq", "gptq"',
  },
  {
    name: "tensor parallel size 3",
    raw: resource({ gpu: { ...GPU, tensorParallelSize: 3 } }),
    path: "spec.gpu.tensorParallelSize",
    message: "must be one of 1, 2, 4, 8",
  },
  {
    name: "maxModelLen above the model's context",
    raw: resource({ gpu: GPU, maxModelLen: 300000 }),
    path: "spec.maxModelLen",
    message: "must be at most 262144",
  },
  {
    name: "maxModelLen below 1024",
    raw: resource({ gpu: GPU, maxModelLen: 512 }),
    path: "spec.maxModelLen",
    message: "must be at least 1024",
  },
  {
    name: "maxModelLen not an integer",
    raw: resource({ gpu: GPU, maxModelLen: 4096.5 }),
    path: "spec.maxModelLen",
    message: "must be an integer",
  },
  {
    name: "minReplicas greater than maxReplicas",
    raw: resource({ gpu: GPU, autoscaling: { minReplicas: 5, maxReplicas: 2 } }),
    path: "spec.autoscaling.minReplicas",
    message: "minReplicas must be less than or equal to maxReplicas",
  },
  ...(["bf16", "awq", "gptq"] as const).map((q) => ({
    name: `${q} without model.name`,
    raw: resource({ gpu: GPU, model: { quantization: q } }),
    path: "spec.model.name",
    message: /^quantization bf16, awq and gptq have no official checkpoint: set model.name/,
  })),
  {
    name: "unknown top-level spec field (typo)",
    raw: resource({ gpu: GPU, maxModelLength: 65536 }),
    path: "spec",
    message: 'unknown field(s) "maxModelLength"',
  },
  {
    name: "unknown nested field (typo)",
    raw: resource({ gpu: { ...GPU, tensorParalelSize: 2 } }),
    path: "spec.gpu",
    message: 'unknown field(s) "tensorParalelSize"',
  },
  {
    name: "extraArgs setting --tensor-parallel-size=4",
    raw: resource({
      gpu: GPU,
      engine: { extraArgs: ["--enforce-eager", "--tensor-parallel-size=4"] },
    }),
    path: "spec.engine.extraArgs",
    message:
      /^extraArgs must not set flags the operator manages, in any spelling vLLM accepts \(.*--tensor-parallel-size.*\)/,
  },
  {
    name: "extraArgs setting --max-model-len as two words",
    raw: resource({ gpu: GPU, engine: { extraArgs: ["--max-model-len", "8192"] } }),
    path: "spec.engine.extraArgs",
    message:
      /^extraArgs must not set flags the operator manages, in any spelling vLLM accepts \(.*--max-model-len.*\); use the matching spec field$/,
  },
  {
    name: "karpenter provider without a karpenter block",
    raw: resource({ gpu: GPU, nodePool: { provider: "karpenter" } }),
    path: "spec.nodePool.karpenter",
    message: "provider karpenter needs nodePool.karpenter (at least nodeClassRef.name)",
  },
  {
    name: "karpenter block with the static provider",
    raw: resource({
      gpu: GPU,
      nodePool: { provider: "static", karpenter: { nodeClassRef: { name: "gpu" } } },
    }),
    path: "spec.nodePool.karpenter",
    message: "nodePool.karpenter is set but provider is not karpenter",
  },
  {
    name: "gpuMemoryUtilization 0.99",
    raw: resource({ gpu: GPU, engine: { gpuMemoryUtilization: 0.99 } }),
    path: "spec.engine.gpuMemoryUtilization",
    message: "must be at most 0.98",
  },
  {
    name: "gpuMemoryUtilization 0.4",
    raw: resource({ gpu: GPU, engine: { gpuMemoryUtilization: 0.4 } }),
    path: "spec.engine.gpuMemoryUtilization",
    message: "must be at least 0.5",
  },
  {
    name: "existingClaim with storageClassName",
    raw: resource({
      gpu: GPU,
      model: { cache: { existingClaim: "weights", storageClassName: "fast" } },
    }),
    path: "spec.model.cache.storageClassName",
    message:
      "storageClassName applies only to a claim the operator creates; remove it or existingClaim",
  },
  {
    name: "minReplicas 0 without scaleToZero",
    raw: resource({ gpu: GPU, autoscaling: { enabled: true, minReplicas: 0, maxReplicas: 2 } }),
    path: "spec.autoscaling.minReplicas",
    message: /^minReplicas 0 needs scaleToZero: true/,
  },
  {
    name: "replicas above maxReplicas with autoscaling enabled",
    raw: resource({
      gpu: GPU,
      replicas: 9,
      autoscaling: { enabled: true, minReplicas: 1, maxReplicas: 4 },
    }),
    path: "spec.replicas",
    message: "with autoscaling enabled, replicas must lie within [minReplicas, maxReplicas]",
  },
  {
    name: "replicas below minReplicas with autoscaling enabled",
    raw: resource({
      gpu: GPU,
      replicas: 1,
      autoscaling: { enabled: true, minReplicas: 2, maxReplicas: 4 },
    }),
    path: "spec.replicas",
    message: "with autoscaling enabled, replicas must lie within [minReplicas, maxReplicas]",
  },
  {
    name: "metadata.name with capitals and underscore",
    raw: resource({ gpu: GPU }, { metadata: { name: "Mistral_Small" } }),
    path: "metadata.name",
    message: /^must be a DNS-1035 label/,
  },
  {
    name: "metadata.name longer than 52 characters",
    raw: resource({ gpu: GPU }, { metadata: { name: "m".repeat(53) } }),
    path: "metadata.name",
    message: /at most 52 characters/,
  },
  {
    name: "metadata.name missing",
    raw: resource({ gpu: GPU }, { metadata: {} }),
    path: "metadata.name",
    message: /^is required/,
  },
  {
    name: "wrong apiVersion",
    raw: resource({ gpu: GPU }, { apiVersion: "serving.mistralsmall.dev/v1" }),
    path: "apiVersion",
    message: "must be serving.mistralsmall.dev/v1alpha1",
  },
  {
    name: "wrong kind",
    raw: resource({ gpu: GPU }, { kind: "Deployment" }),
    path: "kind",
    message: "must be MistralSmallDeployment",
  },
  {
    name: "gpu missing",
    raw: resource({}),
    path: "spec.gpu",
    message: "is required (object)",
  },
  {
    name: "unknown GPU type",
    raw: resource({ gpu: { type: "t4" } }),
    path: "spec.gpu.type",
    message: /^must be one of "a100-40gb", "a100-80gb", "h100-80gb", "h200-141gb", "l40s-48gb"$/,
  },
  {
    name: "maxModelLen as a string",
    raw: resource({ gpu: GPU, maxModelLen: "32k" }),
    path: "spec.maxModelLen",
    message: "must be a number",
  },
  {
    name: "cache size that is not a quantity",
    raw: resource({ gpu: GPU, model: { cache: { size: "lots" } } }),
    path: "spec.model.cache.size",
    message: /^must be a Kubernetes quantity such as 300Gi/,
  },
  {
    name: "model.name that is not owner/name",
    raw: resource({ gpu: GPU, model: { quantization: "bf16", name: "just-a-name" } }),
    path: "spec.model.name",
    message: "must be a Hugging Face repo id: owner/name",
  },
  // Issue 17: what Kubernetes would refuse in a rendered object is refused here.
  {
    name: "a model cache of size 0",
    raw: resource({ gpu: GPU, model: { cache: { size: "0" } } }),
    path: "spec.model.cache.size",
    message: "size must be greater than zero",
  },
  {
    name: "a token Secret key with a space",
    raw: resource({ gpu: GPU, model: { tokenSecretRef: { name: "hf", key: "bad key" } } }),
    path: "spec.model.tokenSecretRef.key",
    message: /must be a Secret key/,
  },
  {
    name: "a toleration key that is not a label key",
    raw: resource({
      gpu: GPU,
      nodePool: { provider: "static", static: { tolerations: [{ key: "bad key!" }] } },
    }),
    path: "spec.nodePool.static.tolerations.0.key",
    message: /must be a label key/,
  },
  {
    name: "a unicode nodeSelector value",
    raw: resource({
      gpu: GPU,
      nodePool: { provider: "static", static: { nodeSelector: { pool: "gpu-é" } } },
    }),
    path: "spec.nodePool.static.nodeSelector.pool",
    message: /must be a label value/,
  },
  {
    name: "cpu below what vLLM needs",
    raw: resource({ gpu: GPU, engine: { resources: { cpu: "0" } } }),
    path: "spec.engine.resources.cpu",
    message: /cpu must be at least 2/,
  },
  {
    name: "memory of one byte",
    raw: resource({ gpu: GPU, engine: { resources: { memory: "1" } } }),
    path: "spec.engine.resources.memory",
    message: /memory must be at least 16Gi/,
  },
  {
    name: "a name of 60 characters, with the actual length",
    raw: { ...resource({ gpu: GPU }), metadata: { name: "a".repeat(60), namespace: "ml" } },
    path: "metadata.name",
    message: /at most 52 characters .*, got 60$/,
  },
  {
    name: "a name with a dot",
    raw: { ...resource({ gpu: GPU }), metadata: { name: "my.model", namespace: "ml" } },
    path: "metadata.name",
    message: /DNS-1035 label/,
  },
];

describe("parseResource rejects invalid resources with the field path", () => {
  for (const c of invalid) {
    test(c.name, () => {
      const problems = problemsOf(c.raw);
      assert.equal(
        problems.length,
        1,
        `expected exactly one problem, got ${JSON.stringify(problems)}`,
      );
      const [p] = problems;
      assert.equal(p!.path, c.path);
      if (typeof c.message === "string") assert.equal(p!.message, c.message);
      else assert.match(p!.message, c.message);
    });
  }

  test("the error message lists each problem as '- path: message'", () => {
    try {
      parseResource(resource({ gpu: GPU, maxModelLen: 512 }));
      assert.fail("expected a ValidationError");
    } catch (err) {
      assert.ok(err instanceof ValidationError);
      assert.equal(err.name, "ValidationError");
      assert.match(
        err.message,
        /^invalid MistralSmallDeployment:\n {2}- spec\.maxModelLen: must be at least 1024$/,
      );
    }
  });

  test("a non-object document is refused as a whole", () => {
    for (const raw of [null, "text", 42, []]) {
      const problems = problemsOf(raw);
      assert.deepEqual(problems, [
        { path: "", message: "must be a MistralSmallDeployment object" },
      ]);
    }
  });

  test("several problems are all reported at once", () => {
    const problems = problemsOf({
      apiVersion: "v1",
      kind: KIND,
      metadata: { name: "Bad_Name" },
      spec: {
        gpu: { type: "a100-80gb", tensorParallelSize: 3 },
        model: { quantization: "int8" },
        maxModelLen: 300000,
        engine: { gpuMemoryUtilization: 0.99 },
      },
    });
    const paths = problems.map((p) => p.path).sort();
    assert.deepEqual(paths, [
      "apiVersion",
      "metadata.name",
      "spec.engine.gpuMemoryUtilization",
      "spec.gpu.tensorParallelSize",
      "spec.maxModelLen",
      "spec.model.quantization",
    ]);
  });

  test("cross-field rules of different objects are all reported together", () => {
    const problems = problemsOf(
      resource({
        gpu: GPU,
        model: { quantization: "awq", cache: { existingClaim: "c", storageClassName: "s" } },
        nodePool: { provider: "karpenter" },
        replicas: 9,
        autoscaling: { enabled: true },
      }),
    );
    assert.deepEqual(problems.map((p) => p.path).sort(), [
      "spec.model.cache.storageClassName",
      "spec.model.name",
      "spec.nodePool.karpenter",
      "spec.replicas",
    ]);
  });
});

describe("extraArgs that do not touch managed flags", () => {
  test("are accepted, including flags that share a managed flag's prefix", () => {
    const extraArgs = ["--enforce-eager", "--max-model-len-cap=3", "--portal", "--model-impl=vllm"];
    const msd = parseResource(resource({ gpu: GPU, engine: { extraArgs: [...extraArgs] } }));
    assert.deepEqual(msd.spec.engine.extraArgs, extraArgs);
  });
});

describe("defaults", () => {
  test("a minimal resource gets every default", () => {
    const msd = parseResource({
      apiVersion: API_VERSION,
      kind: KIND,
      metadata: { name: "mistral" },
      spec: { gpu: { type: "h100-80gb" } },
    });
    assert.equal(msd.metadata.namespace, "default");
    const s = msd.spec;
    assert.equal(s.model.quantization, "fp8");
    assert.equal(s.maxModelLen, 32768);
    assert.equal(s.model.servedModelName, "mistral-small-4");
    assert.deepEqual(s.capabilities.vision, { enabled: true, maxImagesPerPrompt: 4 });
    assert.equal(s.nodePool.provider, "static");
    assert.equal(s.model.cache.size, "400Gi");
    assert.equal(s.gpu.tensorParallelSize, undefined);
    assert.deepEqual(s, {
      model: {
        quantization: "fp8",
        servedModelName: "mistral-small-4",
        cache: { size: "400Gi", accessMode: "ReadWriteOnce", loader: {} },
        source: {},
      },
      gpu: { type: "h100-80gb" },
      maxModelLen: 32768,
      capabilities: {
        toolCalling: true,
        vision: { enabled: true, maxImagesPerPrompt: 4 },
      },
      engine: {
        gpuMemoryUtilization: 0.9,
        kvCacheDtype: "auto",
        speculative: { enabled: false, numSpeculativeTokens: 3 },
        extraArgs: [],
      },
      replicas: 1,
      autoscaling: {
        enabled: false,
        mode: "builtin",
        minReplicas: 1,
        maxReplicas: 4,
        scaleToZero: false,
        scaleUp: { stabilizationWindowSeconds: 0, maxReplicasPerStep: 2, periodSeconds: 60 },
        scaleDown: { stabilizationWindowSeconds: 300, maxReplicasPerStep: 1, periodSeconds: 60 },
      },
      nodePool: { provider: "static" },
      access: {
        networkPolicy: {
          enabled: true,
          metricsNamespaceSelector: {
            matchLabels: { "kubernetes.io/metadata.name": "monitoring" },
          },
        },
      },
      pod: {},
      monitoring: { podMonitor: { enabled: false, interval: "30s" } },
    });
  });

  test("nested defaults fill in around fields the user set", () => {
    const msd = parseResource(
      resource({
        gpu: GPU,
        model: { quantization: "nvfp4", cache: { storageClassName: "fast" } },
        capabilities: { vision: { enabled: false } },
        nodePool: { provider: "karpenter", karpenter: { nodeClassRef: { name: "gpu" } } },
      }),
    );
    assert.deepEqual(msd.spec.model.cache, {
      size: "400Gi",
      accessMode: "ReadWriteOnce",
      loader: {},
      storageClassName: "fast",
    });
    assert.deepEqual(msd.spec.capabilities.vision, { enabled: false, maxImagesPerPrompt: 4 });
    assert.deepEqual(msd.spec.nodePool.karpenter, {
      nodeClassRef: { group: "karpenter.k8s.aws", kind: "EC2NodeClass", name: "gpu" },
      capacityTypes: ["on-demand"],
      consolidateAfter: "30m",
      expireAfter: "720h",
    });
  });

  test("the input object is not mutated by defaulting", () => {
    const raw = resource({ gpu: GPU });
    const before = structuredClone(raw);
    parseResource(raw);
    assert.deepEqual(raw, before);
  });
});

describe("valid resources with every field set", () => {
  const karpenterSpec = {
    model: {
      quantization: "bf16",
      name: "someone/Mistral-Small-4-BF16",
      format: "mistral",
      revision: "main",
      servedModelName: "small/4",
      tokenSecretRef: { name: "hf-token", key: "token" },
      cache: {
        size: "300Gi",
        storageClassName: "efs",
        accessMode: "ReadWriteMany",
        loader: { nodeSelector: { "node-role": "cpu" } },
      },
      source: {},
    },
    gpu: { type: "h200-141gb", tensorParallelSize: 4 },
    maxModelLen: 131072,
    capabilities: {
      reasoning: false,
      toolCalling: false,
      vision: { enabled: true, maxImagesPerPrompt: 8 },
    },
    engine: {
      image: "vllm/vllm-openai:v0.24.0-cu129",
      cudaVersion: "12.9",
      gpuMemoryUtilization: 0.92,
      speculative: { enabled: true, numSpeculativeTokens: 2 },
      maxNumSeqs: 256,
      maxNumBatchedTokens: 32768,
      kvCacheDtype: "fp8",
      extraArgs: ["--enforce-eager"],
      resources: { cpu: "32", memory: "256Gi" },
    },
    replicas: 2,
    autoscaling: {
      enabled: true,
      mode: "keda",
      minReplicas: 0,
      maxReplicas: 6,
      targetGenerationTokensPerSecond: 1500,
      scaleToZero: true,
      scaleUp: { stabilizationWindowSeconds: 30, maxReplicasPerStep: 3, periodSeconds: 120 },
      scaleDown: { stabilizationWindowSeconds: 900, maxReplicasPerStep: 2, periodSeconds: 300 },
    },
    nodePool: {
      provider: "karpenter",
      karpenter: {
        nodeClassRef: { group: "karpenter.azure.com", kind: "AKSNodeClass", name: "gpu" },
        capacityTypes: ["spot", "on-demand"],
        instanceTypes: ["p5e.48xlarge"],
        consolidateAfter: "1h30m",
        expireAfter: "Never",
      },
    },
    access: {
      apiKeySecretRef: { name: "vllm-key", key: "api-key" },
      networkPolicy: {
        enabled: true,
        apiFrom: [
          { namespaceSelector: { matchLabels: { team: "apps" } } },
          { podSelector: { matchLabels: { role: "gateway" } } },
        ],
        metricsNamespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "prom" } },
      },
    },
    monitoring: { podMonitor: { enabled: true, interval: "15s", labels: { release: "kps" } } },
    pod: {
      imagePullSecrets: [{ name: "registry" }],
      env: [{ name: "VLLM_LOGGING_LEVEL", value: "DEBUG" }],
      envFrom: [{ prefix: "X_", configMapRef: { name: "env", optional: true } }],
      serviceAccountName: "vllm",
      priorityClassName: "high",
      runtimeClassName: "nvidia",
      labels: { team: "ml" },
      annotations: { "example.com/owner": "ml" },
      topologySpreadConstraints: [
        {
          maxSkew: 2,
          topologyKey: "topology.kubernetes.io/zone",
          whenUnsatisfiable: "DoNotSchedule",
          minDomains: 2,
        },
      ],
    },
  };

  const staticSpec = {
    ...karpenterSpec,
    model: {
      ...karpenterSpec.model,
      cache: {
        existingClaim: "shared-weights",
        size: "500Gi",
        accessMode: "ReadWriteMany",
        loader: { nodeSelector: { "node-role": "cpu" } },
      },
    },
    nodePool: {
      provider: "static",
      static: {
        nodeSelector: { pool: "gpu" },
        tolerations: [{ key: "dedicated", operator: "Equal", value: "ml", effect: "NoExecute" }],
      },
    },
  };

  for (const [name, spec] of [
    ["karpenter", karpenterSpec],
    ["static with an existing claim", staticSpec],
  ] as const) {
    test(`${name}: parses to exactly what was written`, () => {
      const metadata = {
        name: "mistral-small",
        namespace: "inference",
        uid: "0f6f2a4e-1111-2222-3333-444455556666",
        labels: { team: "ml" },
      };
      const msd = parseResource(resource(structuredClone(spec), { metadata }));
      assert.deepEqual(msd.spec, spec);
      assert.deepEqual(msd.metadata, metadata);
      assert.equal(msd.apiVersion, API_VERSION);
      assert.equal(msd.kind, KIND);
    });
  }
});

describe("resource minimums accept what vLLM can run on", () => {
  test("cpu 2 and memory 16Gi (or 16G-ish 17179869184) pass", () => {
    assert.doesNotThrow(() =>
      parseResource(resource({ gpu: GPU, engine: { resources: { cpu: "2", memory: "16Gi" } } })),
    );
    assert.doesNotThrow(() =>
      parseResource(
        resource({ gpu: GPU, engine: { resources: { cpu: "2500m", memory: "17179869184" } } }),
      ),
    );
  });
});
