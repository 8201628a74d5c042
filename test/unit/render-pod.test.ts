import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { parseResource, ValidationError } from "../../src/api/validate.ts";
import { MANAGED_POD_ANNOTATIONS, MANAGED_POD_LABELS } from "../../src/api/schema.ts";
import { MANAGED_ENV } from "../../src/render/deployment.ts";
import { selectorLabels } from "../../src/render/names.ts";
import { deploymentOf, resource, type Raw } from "./msd-fixtures.ts";

/** The paths of the problems parsing reports; fails when parsing succeeds. */
function refused(spec: Raw): string[] {
  try {
    parseResource(resource(spec));
  } catch (err) {
    assert.ok(err instanceof ValidationError, String(err));
    return err.problems.map((p) => `${p.path}: ${p.message}`);
  }
  assert.fail(`expected ${JSON.stringify(spec)} to be refused`);
}

const POD = {
  imagePullSecrets: [{ name: "registry" }],
  env: [
    { name: "VLLM_LOGGING_LEVEL", value: "DEBUG" },
    { name: "POD_NAME", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
    { name: "EXTRA", valueFrom: { secretKeyRef: { name: "extra", key: "value", optional: true } } },
  ],
  envFrom: [{ configMapRef: { name: "vllm-env" } }, { prefix: "S_", secretRef: { name: "more" } }],
  serviceAccountName: "vllm",
  priorityClassName: "inference-high",
  runtimeClassName: "nvidia",
  labels: { team: "ml", "example.com/cost-center": "42" },
  annotations: { "example.com/owner": "platform team" },
  topologySpreadConstraints: [
    { topologyKey: "topology.kubernetes.io/zone", maxSkew: 1, whenUnsatisfiable: "DoNotSchedule" },
  ],
};

describe("spec.pod", () => {
  const msd = parseResource(resource({ pod: POD }));
  const template = deploymentOf(msd).spec!.template;
  const pod = template.spec!;
  const container = pod.containers[0]!;

  test("pull secrets, service account, priority and runtime class are set on the pod", () => {
    assert.deepEqual(pod.imagePullSecrets, [{ name: "registry" }]);
    assert.equal(pod.serviceAccountName, "vllm");
    assert.equal(pod.priorityClassName, "inference-high");
    assert.equal(pod.runtimeClassName, "nvidia");
    assert.equal(pod.automountServiceAccountToken, false, "the account's token stays unmounted");
  });

  test("extra env comes after the operator's, envFrom as written", () => {
    const names = container.env!.map((e) => e.name);
    assert.deepEqual(names.slice(-3), ["VLLM_LOGGING_LEVEL", "POD_NAME", "EXTRA"]);
    assert.ok(names.includes("HF_HOME"));
    assert.deepEqual(container.env!.at(-1)!.valueFrom, {
      secretKeyRef: { name: "extra", key: "value", optional: true },
    });
    assert.deepEqual(container.envFrom, POD.envFrom);
  });

  test("extra labels and annotations join the operator's", () => {
    assert.equal(template.metadata!.labels!.team, "ml");
    assert.equal(template.metadata!.labels!["example.com/cost-center"], "42");
    assert.equal(template.metadata!.labels!["app.kubernetes.io/instance"], "small");
    assert.equal(template.metadata!.annotations!["example.com/owner"], "platform team");
    assert.equal(template.metadata!.annotations!["karpenter.sh/do-not-disrupt"], "true");
  });

  test("topology spread selects this deployment's own pods", () => {
    assert.deepEqual(pod.topologySpreadConstraints, [
      {
        topologyKey: "topology.kubernetes.io/zone",
        maxSkew: 1,
        whenUnsatisfiable: "DoNotSchedule",
        labelSelector: { matchLabels: selectorLabels(msd) },
      },
    ]);
  });

  test("nothing is set when spec.pod is empty", () => {
    const plain = deploymentOf(parseResource(resource())).spec!.template;
    for (const k of [
      "imagePullSecrets",
      "serviceAccountName",
      "priorityClassName",
      "runtimeClassName",
      "topologySpreadConstraints",
    ] as const) {
      assert.equal(plain.spec![k], undefined, k);
    }
    assert.equal(plain.spec!.containers[0]!.envFrom, undefined);
  });

  test("any pod field changes the template hash (it rolls out)", () => {
    const hash = (spec: Raw) =>
      deploymentOf(parseResource(resource(spec))).spec!.template.metadata!.annotations![
        "serving.mistralsmall.dev/template-hash"
      ];
    const base = hash({});
    for (const [k, v] of Object.entries(POD)) assert.notEqual(hash({ pod: { [k]: v } }), base, k);
  });
});

describe("the operator's own names are derived from what it renders", () => {
  test("MANAGED_ENV is exactly the variables the renderer sets with every Secret named", () => {
    const all = parseResource(
      resource({
        model: { tokenSecretRef: { name: "hf" } },
        access: { apiKeySecretRef: { name: "key" } },
      }),
    );
    const names = deploymentOf(all).spec!.template.spec!.containers[0]!.env!.map((e) => e.name);
    assert.deepEqual([...names].sort(), [...MANAGED_ENV].sort());
  });

  test("the managed label and annotation lists are the rendered pod's keys", () => {
    const t = deploymentOf(parseResource(resource())).spec!.template.metadata!;
    assert.deepEqual(Object.keys(t.labels!).sort(), [...MANAGED_POD_LABELS].sort());
    assert.deepEqual(Object.keys(t.annotations!).sort(), [...MANAGED_POD_ANNOTATIONS].sort());
  });
});

describe("spec.pod validation", () => {
  test("every variable the operator manages is refused in env", () => {
    for (const name of MANAGED_ENV) {
      const problems = refused({ pod: { env: [{ name, value: "x" }] } });
      assert.ok(
        problems.some((p) => p.startsWith("spec.pod.env: env must not set variables")),
        `${name}: ${problems.join("; ")}`,
      );
    }
  });

  test("an env entry needs exactly one of value and valueFrom, and one source", () => {
    assert.match(refused({ pod: { env: [{ name: "A" }] } }).join(), /exactly one of value/);
    assert.match(
      refused({
        pod: {
          env: [
            {
              name: "A",
              valueFrom: {
                secretKeyRef: { name: "s", key: "k" },
                fieldRef: { fieldPath: "metadata.name" },
              },
            },
          ],
        },
      }).join(),
      /exactly one of secretKeyRef, configMapKeyRef and fieldRef/,
    );
    assert.match(refused({ pod: { env: [{ name: "1BAD", value: "x" }] } }).join(), /variable name/);
  });

  test("envFrom needs exactly one of secretRef and configMapRef", () => {
    assert.match(refused({ pod: { envFrom: [{ prefix: "X_" }] } }).join(), /exactly one of/);
  });

  test("the operator's labels and annotations are refused", () => {
    for (const key of MANAGED_POD_LABELS) {
      assert.match(refused({ pod: { labels: { [key]: "other" } } }).join(), /spec\.pod\.labels/);
    }
    for (const key of MANAGED_POD_ANNOTATIONS) {
      assert.match(
        refused({ pod: { annotations: { [key]: "x" } } }).join(),
        /spec\.pod\.annotations/,
      );
    }
    assert.match(
      refused({ pod: { labels: { "bad key!": "x" } } }).join(),
      /spec\.pod\.labels\.bad key!/,
    );
    assert.match(refused({ pod: { labels: { ok: "not a value!" } } }).join(), /label value/);
  });

  test("names are DNS names, minDomains needs DoNotSchedule", () => {
    assert.match(refused({ pod: { priorityClassName: "High" } }).join(), /spec\.pod\.priority/);
    assert.match(refused({ pod: { runtimeClassName: "nvidia_x" } }).join(), /spec\.pod\.runtime/);
    assert.match(
      refused({
        pod: {
          topologySpreadConstraints: [{ topologyKey: "kubernetes.io/hostname", minDomains: 2 }],
        },
      }).join(),
      /minDomains needs whenUnsatisfiable DoNotSchedule/,
    );
  });
});

describe("spec.pod.nodeSelector and tolerations, with either node-pool provider", () => {
  const toleration = { key: "team", operator: "Equal", value: "ml", effect: "NoSchedule" };
  const karpenter = {
    provider: "karpenter",
    karpenter: { nodeClassRef: { name: "gpu" } },
  };
  for (const nodePool of [{ provider: "static" }, karpenter]) {
    test(`${nodePool.provider}: added to the operator's own selector and tolerations`, () => {
      const msd = parseResource(
        resource({
          nodePool,
          pod: {
            nodeSelector: { "topology.kubernetes.io/zone": "eu-west-1a" },
            tolerations: [toleration],
          },
        }),
      );
      const pod = deploymentOf(msd).spec!.template.spec!;
      assert.equal(pod.nodeSelector?.["topology.kubernetes.io/zone"], "eu-west-1a");
      if (nodePool.provider === "karpenter") {
        assert.ok(
          pod.nodeSelector?.["karpenter.sh/nodepool"] !== undefined,
          "still pinned to its pool",
        );
      }
      assert.ok(pod.tolerations?.some((t) => t.key === "team" && t.value === "ml"));
      assert.ok(
        pod.tolerations?.some((t) => t.key === "nvidia.com/gpu"),
        "the GPU toleration stays",
      );
    });
  }

  test("the operator's NodePool pin cannot be overridden", () => {
    assert.deepEqual(refused({ pod: { nodeSelector: { "karpenter.sh/nodepool": "other" } } }), [
      "spec.pod.nodeSelector: nodeSelector must not set karpenter.sh/nodepool: the operator pins the pods to their own NodePool",
    ]);
  });
});
