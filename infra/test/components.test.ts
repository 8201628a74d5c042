/**
 * What each component declares, with Pulumi's mocks (no CLI, no cluster): the operator's
 * objects are the shared manifests (generated RBAC rules included), and a deployment is a
 * MistralSmallDeployment whose outputs come from the status the operator writes.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import * as pulumi from "@pulumi/pulumi";
import * as k8s from "@pulumi/kubernetes";
import { execFile } from "node:child_process";
import { join } from "node:path";
import { CLUSTER_RULES, NAMESPACE_RULES } from "../src/generated/controller/rbac.ts";
import { operatorManifests } from "../src/generated/delivery/manifests.ts";

interface Declared {
  type: string;
  name: string;
  inputs: Record<string, unknown> & {
    metadata?: { name?: string; namespace?: string; annotations?: Record<string, string> };
  };
}
const MSD_TYPE = "kubernetes:serving.mistralsmall.dev/v1alpha1:MistralSmallDeployment";
const declared: Declared[] = [];

// Mocks are global to the process: set them before the components are loaded.
pulumi.runtime.setMocks(
  {
    newResource(args: pulumi.runtime.MockResourceArgs) {
      const inputs = args.inputs as Declared["inputs"];
      declared.push({ type: args.type, name: args.name, inputs });
      let state: Record<string, unknown> = { ...inputs };
      // The operator's answer for a MistralSmallDeployment (what pulumi.com/waitFor waits for).
      if (args.type === MSD_TYPE && inputs.metadata?.name !== "not-yet") {
        const { name, namespace } = inputs.metadata ?? {};
        state = {
          ...state,
          status: {
            observedGeneration: 1,
            endpoint: `http://${name}.${namespace}.svc:8000/v1`,
            conditions: [
              {
                type: "Ready",
                status: "True",
                reason: "Available",
                message: "1/1 replicas ready",
                lastTransitionTime: "2026-01-01T00:00:00Z",
              },
            ],
            plan: { gpuType: "a100-80gb", tensorParallelSize: 2, gpusPerReplica: 2 },
          },
        };
      }
      return { id: `${args.name}-id`, state };
    },
    call(args: pulumi.runtime.MockCallArgs) {
      return args.inputs as Record<string, unknown>;
    },
  },
  "mistral-small",
  "test",
  false,
);

const { MistralSmallDeployment, MistralSmallOperator, crdManifests } = await import(
  "../src/index.ts"
);

const value = <T>(o: pulumi.Output<T>): Promise<T> =>
  new Promise((resolve) => {
    o.apply((v) => {
      resolve(v);
      return v;
    });
  });
/** Waits until every child is registered, then returns what was declared under this prefix. */
async function declaredBy(
  objects: Iterable<pulumi.CustomResource>,
  prefix: string,
): Promise<Declared[]> {
  await Promise.all([...objects].map((r) => value(r.urn)));
  return declared.filter((d) => d.name.startsWith(prefix) && d.type.startsWith("kubernetes:"));
}
/** Runs a program under tsx in its own process; resolves with its exit code and output. */
function runProgram(file: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ["--import", "tsx", file], (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === "number" ? err.code : 1;
      resolve({ code, stdout, stderr });
    });
  });
}
const byType = (ds: Declared[], kind: string) => ds.filter((d) => d.type.endsWith(`:${kind}`));
const plain = (x: unknown) => JSON.parse(JSON.stringify(x)) as unknown;

describe("MistralSmallOperator", () => {
  test("declares the namespace, CRDs, ServiceAccount, generated RBAC, Lease, Deployment, PodDisruptionBudget and Service", async () => {
    const op = new MistralSmallOperator("op1", { namespace: "msd-ops" });
    const ds = await declaredBy(op.objects.values(), "op1-");
    assert.deepEqual(ds.map((d) => d.type).sort(), [
      "kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition",
      "kubernetes:apps/v1:Deployment",
      "kubernetes:coordination.k8s.io/v1:Lease",
      "kubernetes:core/v1:Namespace",
      "kubernetes:core/v1:Service",
      "kubernetes:core/v1:ServiceAccount",
      "kubernetes:policy/v1:PodDisruptionBudget",
      "kubernetes:rbac.authorization.k8s.io/v1:ClusterRole",
      "kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding",
      "kubernetes:rbac.authorization.k8s.io/v1:Role",
      "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding",
    ]);
    assert.deepEqual(byType(ds, "ClusterRole")[0]?.inputs.rules, plain(CLUSTER_RULES));
    assert.deepEqual(byType(ds, "Role")[0]?.inputs.rules, plain(NAMESPACE_RULES));
    assert.equal(byType(ds, "Namespace")[0]?.inputs.metadata?.name, "msd-ops");
    for (const b of [...byType(ds, "ClusterRoleBinding"), ...byType(ds, "RoleBinding")]) {
      assert.deepEqual(b.inputs.subjects, [
        { kind: "ServiceAccount", name: "mistral-small-operator", namespace: "msd-ops" },
      ]);
    }
    // Exactly the shared manifests the Helm chart is checked against.
    const expected = operatorManifests({
      name: "mistral-small-operator",
      namespace: "msd-ops",
      labels: { "app.kubernetes.io/managed-by": "pulumi" },
    });
    for (const m of expected) {
      const d = byType(ds, m.kind)[0];
      assert.ok(d, m.kind);
      assert.deepEqual(d.inputs, plain(m), `${m.kind} as in src/delivery/manifests.ts`);
    }
    const crd = byType(ds, "CustomResourceDefinition")[0]!;
    assert.equal(crd.inputs.metadata?.name, "mistralsmalldeployments.serving.mistralsmall.dev");
    assert.deepEqual(crd.inputs, plain(crdManifests()[0]));
    assert.equal(
      await value(op.metricsUrl),
      "http://mistral-small-operator-metrics.msd-ops.svc:8080/metrics",
    );
    assert.equal(await value(op.namespace), "msd-ops");
  });

  test("the Deployment: two replicas, leader election in its namespace, restricted security", async () => {
    const op = new MistralSmallOperator("op2", { namespace: "ops2", skipAwait: true });
    const dep = byType(await declaredBy(op.objects.values(), "op2-"), "Deployment")[0]!;
    const spec = dep.inputs.spec as {
      replicas: number;
      template: {
        spec: {
          securityContext: { runAsNonRoot: boolean; seccompProfile: { type: string } };
          containers: {
            image: string;
            args: string[];
            securityContext: Record<string, unknown>;
            livenessProbe: { httpGet: { path: string } };
            readinessProbe: { httpGet: { path: string } };
          }[];
        };
      };
    };
    assert.equal(spec.replicas, 2);
    const c = spec.template.spec.containers[0]!;
    assert.match(c.image, /^ghcr\.io\/mistral-small-operator\/operator:\d+\.\d+\.\d+/);
    assert.ok(c.args.includes("--lease-namespace=ops2"));
    assert.equal(c.livenessProbe.httpGet.path, "/healthz");
    assert.equal(c.readinessProbe.httpGet.path, "/readyz");
    assert.equal(spec.template.spec.securityContext.runAsNonRoot, true);
    assert.equal(spec.template.spec.securityContext.seccompProfile.type, "RuntimeDefault");
    assert.equal(c.securityContext.readOnlyRootFilesystem, true);
    assert.equal(c.securityContext.allowPrivilegeEscalation, false);
    assert.deepEqual(c.securityContext.capabilities, { drop: ["ALL"] });
    assert.equal(dep.inputs.metadata?.annotations?.["pulumi.com/skipAwait"], "true");
  });

  test("options: existing namespace, no CRDs, one namespace watched, custom image", async () => {
    const op = new MistralSmallOperator("op3", {
      namespace: "existing",
      createNamespace: false,
      installCrds: false,
      watchNamespace: "team-a",
      replicas: 3,
      image: "registry.example/operator:dev",
    });
    const ds = await declaredBy(op.objects.values(), "op3-");
    assert.equal(byType(ds, "Namespace").length, 0);
    assert.equal(byType(ds, "CustomResourceDefinition").length, 0);
    const spec = byType(ds, "Deployment")[0]!.inputs.spec as {
      replicas: number;
      template: { spec: { containers: { image: string; args: string[] }[] } };
    };
    assert.equal(spec.replicas, 3);
    assert.equal(spec.template.spec.containers[0]!.image, "registry.example/operator:dev");
    assert.ok(spec.template.spec.containers[0]!.args.includes("--namespace=team-a"));
  });
});

describe("Inputs from other resources' Outputs", () => {
  test("the operator's namespace and image from Outputs reach every object", async () => {
    const ns = new k8s.core.v1.Namespace("shared-ns", { metadata: { name: "from-output" } });
    const op = new MistralSmallOperator("op4", {
      namespace: ns.metadata.name,
      createNamespace: false,
      installCrds: false,
      image: pulumi.output("registry.example/operator:from-output"),
      watchNamespace: pulumi.output("team-b"),
    });
    const ds = await declaredBy(op.objects.values(), "op4-");
    assert.ok(ds.length >= 8, `declared ${ds.length}`);
    assert.doesNotMatch(JSON.stringify(ds), /mso-placeholder/, "every stand-in was replaced");
    for (const d of ds.filter((x) => !x.type.includes(":ClusterRole"))) {
      assert.equal(d.inputs.metadata?.namespace, "from-output", d.type);
    }
    for (const b of [...byType(ds, "ClusterRoleBinding"), ...byType(ds, "RoleBinding")]) {
      assert.deepEqual(b.inputs.subjects, [
        { kind: "ServiceAccount", name: "mistral-small-operator", namespace: "from-output" },
      ]);
    }
    const c = (
      byType(ds, "Deployment")[0]!.inputs.spec as {
        template: { spec: { containers: { image: string; args: string[] }[] } };
      }
    ).template.spec.containers[0]!;
    assert.equal(c.image, "registry.example/operator:from-output");
    assert.ok(c.args.includes("--lease-namespace=from-output"), c.args.join(" "));
    assert.ok(c.args.includes("--namespace=team-b"), c.args.join(" "));
    assert.equal(
      await value(op.metricsUrl),
      "http://mistral-small-operator-metrics.from-output.svc:8080/metrics",
    );
  });

  test("a deployment's namespace and token Secret name from Outputs", async () => {
    const secret = new k8s.core.v1.Secret("hf", { metadata: { name: "hf-token-abc" } });
    const msd = new MistralSmallDeployment("llm-out", {
      namespace: pulumi.output("models-out"),
      spec: {
        gpu: { type: "a100-80gb" },
        model: { tokenSecretRef: { name: secret.metadata.name } },
      },
      waitForReady: false,
    });
    assert.equal(await value(msd.endpoint), "http://llm-out.models-out.svc:8000/v1");
    assert.equal(await value(msd.spec.apply((s) => s.model?.tokenSecretRef?.name)), "hf-token-abc");
    await value(msd.resource.urn);
    const d = declared.find((x) => x.type === MSD_TYPE && x.name === "llm-out")!;
    assert.equal(d.inputs.metadata?.namespace, "models-out");
    assert.deepEqual((d.inputs.spec as { model: unknown }).model, {
      tokenSecretRef: { name: "hf-token-abc" },
    });
  });

  test("a spec that is only known later is still validated, naming the field", async () => {
    const r = await runProgram(join(import.meta.dirname, "programs", "spec-from-output.ts"));
    assert.match(
      r.stdout,
      /validation: ValidationError: .*\n?.*spec\.gpu\.tensorParallelSize: must be one of 1, 2, 4, 8/,
    );
    // What `pulumi up` reports: the resource's spec failed, naming the field.
    assert.notEqual(r.code, 0);
    assert.match(
      r.stderr,
      /error serializing property "spec"[\s\S]*spec\.gpu\.tensorParallelSize: must be one of 1, 2, 4, 8/,
    );
  });
});

describe("MistralSmallDeployment", () => {
  test("declares the custom resource with the typed spec; outputs come from its status", async () => {
    const spec = {
      gpu: { type: "a100-80gb" as const },
      maxModelLen: 65536,
      nodePool: { provider: "static" as const },
    };
    const msd = new MistralSmallDeployment("llm", { namespace: "models", spec });
    assert.equal(await value(msd.endpoint), "http://llm.models.svc:8000/v1");
    assert.equal(await value(msd.ready), true);
    assert.equal(await value(msd.readyReason), "Available");
    assert.equal((await value(msd.status))?.plan?.tensorParallelSize, 2);
    const d = declared.find((x) => x.type === MSD_TYPE && x.name === "llm")!;
    assert.equal(d.inputs.apiVersion, "serving.mistralsmall.dev/v1alpha1");
    assert.equal(d.inputs.kind, "MistralSmallDeployment");
    assert.deepEqual(d.inputs.spec, spec);
    assert.deepEqual(d.inputs.metadata, {
      name: "llm",
      namespace: "models",
      annotations: { "pulumi.com/waitFor": "condition=Ready", "pulumi.com/timeoutSeconds": "5400" },
    });
  });

  test("without waiting, the endpoint is the Service URL the operator will create", async () => {
    const msd = new MistralSmallDeployment("later", {
      name: "not-yet",
      spec: { gpu: { type: "a100-40gb", tensorParallelSize: 8 }, maxModelLen: 262144 },
      waitForReady: false,
    });
    assert.equal(await value(msd.endpoint), "http://not-yet.default.svc:8000/v1");
    assert.equal(await value(msd.ready), false);
    const d = declared.find((x) => x.type === MSD_TYPE && x.name === "later")!;
    assert.equal(d.inputs.metadata?.annotations, undefined);
  });

  test("a spec the operator would refuse fails when declared, with the field's path", () => {
    assert.throws(
      () =>
        new MistralSmallDeployment("bad", {
          // Values tsc cannot see (e.g. read from configuration) are checked at run time.
          spec: JSON.parse('{"gpu":{"type":"a100-80gb","tensorParallelSize":3}}') as {
            gpu: { type: "a100-80gb" };
          },
        }),
      /spec\.gpu\.tensorParallelSize: must be one of 1, 2, 4, 8/,
    );
    assert.throws(
      () => new MistralSmallDeployment("Bad_Name", { spec: { gpu: { type: "a100-80gb" } } }),
      /metadata\.name/,
    );
  });
});

/**
 * Never called: `tsc -p infra` (npm run typecheck --prefix infra) fails if any of these
 * compiles, i.e. if the spec were not typed from the operator's schema.
 */
export function specTypeErrors(): void {
  // @ts-expect-error misspelt field
  new MistralSmallDeployment("x", { spec: { gpu: { type: "a100-80gb" }, maxModelLength: 1 } });
  // @ts-expect-error unknown GPU type
  new MistralSmallDeployment("x", { spec: { gpu: { type: "a100-16gb" } } });
  // @ts-expect-error wrong type
  new MistralSmallDeployment("x", { spec: { gpu: { type: "a100-80gb" }, replicas: "2" } });
  // @ts-expect-error gpu is required
  new MistralSmallDeployment("x", { spec: { maxModelLen: 4096 } });
}
