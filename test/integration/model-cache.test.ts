/**
 * The model cache on the local control plane (real kube-apiserver, controller-manager with the
 * Job and garbage-collector controllers, scheduler, KWOK). KWOK plays the loader's pod: two
 * Stages of this test end it the way the loader script does, with its JSON verdict as the
 * termination message and its exit code (0, or 2 for a repository that does not exist).
 */
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { parseResource } from "../../src/api/validate.ts";
import { plan as planFor } from "../../src/planner/plan.ts";
import { renderAll } from "../../src/render/index.ts";
import { FIELD_MANAGER } from "../../src/render/names.ts";
import { CACHE_KEY_LABEL } from "../../src/render/model-cache.ts";
import { RESOURCES, resourceFor, type KubeObject } from "../../src/kube/client.ts";
import { eventually, type TestCluster } from "./cluster.ts";
import {
  condition,
  msdYaml,
  startOperatorBed,
  type Msd,
  type OperatorBed,
} from "./operator-harness.ts";

const MISSING = "nobody/missing-model";
const BYTES = 124_000_000_000;

/** The loader's verdicts, as the script writes them (src/render/loader-script.ts). */
function stages(): string {
  const verdict = (v: object) => JSON.stringify(JSON.stringify(v));
  const stage = (
    name: string,
    op: "In" | "NotIn",
    code: number,
    message: string,
    phase: string,
  ) => `
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: ${name}
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: '.metadata.labels["app.kubernetes.io/component"]'
      operator: 'In'
      values: ['model-loader']
    - key: '.metadata.annotations["serving.mistralsmall.dev/checkpoint"]'
      operator: '${op}'
      values: ['${MISSING}']
    - key: '.metadata.deletionTimestamp'
      operator: 'DoesNotExist'
    - key: '.status.phase'
      operator: 'In'
      values: ['Running']
  # Above kwok's own pod-complete (weight 0), which would end it without a message.
  weight: 10000
  delay:
    durationMilliseconds: 3000
  next:
    statusTemplate: |
      {{ $now := Now }}
      containerStatuses:
      {{ range $index, $item := .spec.containers }}
      - image: {{ $item.image | Quote }}
        name: {{ $item.name | Quote }}
        ready: false
        restartCount: 0
        started: false
        state:
          terminated:
            exitCode: ${code}
            finishedAt: {{ $now | Quote }}
            reason: ${code === 0 ? "Completed" : "Error"}
            message: ${message}
            startedAt: {{ $now | Quote }}
      {{ end }}
      phase: ${phase}
`;
  return [
    stage(
      "msd-loader-completes",
      "NotIn",
      0,
      verdict({ phase: "Complete", bytes: BYTES, revision: "main", commit: "0123abcd" }),
      "Succeeded",
    ),
    stage(
      "msd-loader-not-found",
      "In",
      2,
      verdict({
        phase: "Failed",
        reason: "NotFound",
        message: `404 repository ${MISSING} not found`,
      }),
      "Failed",
    ),
  ].join("---\n");
}

type Job = KubeObject & {
  metadata: { creationTimestamp?: string };
  status?: { completionTime?: string; conditions?: { type: string; status: string }[] };
};

describe("model cache", { timeout: 600_000 }, () => {
  let c: TestCluster;
  let bed: OperatorBed | undefined;
  const ns = "default";

  before(async () => {
    const dir = mkdtempSync(join(tmpdir(), "msd-stages-"));
    const file = join(dir, "loader-stages.yaml");
    writeFileSync(file, stages());
    bed = await startOperatorBed({
      cluster: { extraKwokStages: [file] },
      operator: { resyncMs: 3000 },
    });
    c = bed.c;
  });
  after(() => bed?.stop());

  const getMsd = (name: string) =>
    c.client.get<Msd>(RESOURCES.msd, name, ns).catch(() => undefined);
  const jobs = async () => (await c.client.list<Job>(RESOURCES.job, { namespace: ns })).items;
  const deployment = (name: string) =>
    c.client
      .get<
        KubeObject & { metadata: { creationTimestamp?: string } }
      >(RESOURCES.deployment, name, ns)
      .catch(() => undefined);
  const apply = async (name: string, spec: object) => {
    const r = await c.kubectl(["apply", "-f", "-"], msdYaml(name, spec, ns));
    assert.equal(r.code, 0, r.stderr);
  };
  const spec = (model: object = {}) => ({ gpu: { type: "a100-80gb" }, replicas: 1, model });
  const owners = (o: KubeObject) => (o.metadata.ownerReferences ?? []).map((r) => r.name).sort();
  const complete = (j: Job) =>
    j.status?.conditions?.some((x) => x.type === "Complete" && x.status === "True") === true;

  let firstJob: Job;

  test("the loader Job comes first and alone; the Deployment only once it is complete", async () => {
    await apply("a", spec());
    firstJob = await eventually("the loader Job", async () => (await jobs())[0]);
    // The Job exists, its pod is still being played by KWOK (3 s): no Deployment yet.
    assert.equal(await deployment("a"), undefined, "no Deployment while the cache is filling");
    const pending = await eventually("ModelCached False", async () => {
      const m = await getMsd("a");
      const mc = condition(m, "ModelCached");
      return mc?.status === "False" ? m : undefined;
    });
    assert.match(condition(pending, "ModelCached")!.reason, /^(Pending|Downloading)$/);
    assert.equal(condition(pending, "Ready")?.status, "False");

    const dep = await eventually("the Deployment", () => deployment("a"), 90_000);
    const done = (await jobs()).find((j) => j.metadata.name === firstJob.metadata.name)!;
    assert.ok(complete(done), "the Job is complete");
    assert.ok(
      Date.parse(dep.metadata.creationTimestamp!) >= Date.parse(done.status!.completionTime!),
      `Deployment created ${dep.metadata.creationTimestamp}, cache complete ${done.status!.completionTime}`,
    );
    const cached = await eventually("ModelCached True", async () => {
      const m = await getMsd("a");
      return condition(m, "ModelCached")?.status === "True" ? m : undefined;
    });
    assert.match(
      condition(cached, "ModelCached")!.message,
      /revision main \(commit 0123abcd\).*124\.0 GB/,
    );
    // The claim: ReadWriteOnce, named by the cache key, owned by a (not as controller).
    const key = firstJob.metadata.labels![CACHE_KEY_LABEL]!;
    const claim = await c.client.get<KubeObject & { spec: { accessModes: string[] } }>(
      RESOURCES.pvc,
      `model-cache-${key}`,
      ns,
    );
    assert.deepEqual(claim.spec.accessModes, ["ReadWriteOnce"]);
    assert.deepEqual(owners(claim), ["a"]);
    assert.equal(claim.metadata.ownerReferences![0]!.controller, false);
  });

  test("a second resource with the same checkpoint reuses the cache", async () => {
    await apply("b", spec());
    await eventually("b's Deployment", () => deployment("b"), 60_000);
    const all = await jobs();
    assert.equal(all.length, 1, `one loader Job: ${all.map((j) => j.metadata.name).join(", ")}`);
    await eventually("the Job names both owners", async () => {
      const j = (await jobs())[0]!;
      return owners(j).join() === "a,b" ? j : undefined;
    });
    const claim = await c.client.get<KubeObject>(
      RESOURCES.pvc,
      `model-cache-${firstJob.metadata.labels![CACHE_KEY_LABEL]}`,
      ns,
    );
    assert.deepEqual(owners(claim), ["a", "b"]);
  });

  test("a revision change fills a new cache; the old one is released, not deleted, while b uses it", async () => {
    await apply("a", spec({ revision: "v2" }));
    const fresh = await eventually("a second loader Job", async () =>
      (await jobs()).find((j) => j.metadata.name !== firstJob.metadata.name),
    );
    assert.notEqual(
      fresh.metadata.labels![CACHE_KEY_LABEL],
      firstJob.metadata.labels![CACHE_KEY_LABEL],
    );
    await eventually("a's reference leaves the old Job", async () => {
      const old = (await jobs()).find((j) => j.metadata.name === firstJob.metadata.name);
      return old !== undefined && owners(old).join() === "b";
    });
    await eventually(
      "a rolls out revision v2 from its complete cache",
      async () => {
        const d = await c.client.get<
          KubeObject & { spec: { template: { spec: { containers: { args: string[] }[] } } } }
        >(RESOURCES.deployment, "a", ns);
        return d.spec.template.spec.containers[0]!.args.join(" ").includes("--revision v2");
      },
      90_000,
    );
    const claims = (await c.client.list<KubeObject>(RESOURCES.pvc, { namespace: ns })).items.filter(
      (p) => p.metadata.labels?.[CACHE_KEY_LABEL] !== undefined,
    );
    assert.equal(claims.length, 2, "one claim per revision");
  });

  test("a failed loader shows its reason and creates no vLLM pod", async () => {
    await apply("broken", spec({ name: MISSING, quantization: "bf16", format: "hf" }));
    const failed = await eventually(
      "ModelCached LoaderNotFound",
      async () => {
        const m = await getMsd("broken");
        return condition(m, "ModelCached")?.reason === "LoaderNotFound" ? m : undefined;
      },
      90_000,
    );
    assert.match(
      condition(failed, "ModelCached")!.message,
      /404 repository nobody\/missing-model not found/,
    );
    assert.match(condition(failed, "ModelCached")!.message, /spec\.model\.name/);
    assert.equal(condition(failed, "Ready")!.reason, "LoaderNotFound");
    // Give the operator a few passes: still nothing for the GPUs.
    await new Promise((r) => setTimeout(r, 4000));
    assert.equal(await deployment("broken"), undefined);
    const pods = (await c.client.list<KubeObject>(RESOURCES.pod, { namespace: ns })).items.filter(
      (p) => p.metadata.labels?.["app.kubernetes.io/instance"] === "broken",
    );
    assert.deepEqual(pods, []);
  });

  test("deleting the resources deletes the caches with their last owner", async () => {
    for (const name of ["a", "b", "broken"]) {
      const r = await c.kubectl(["delete", "msd", name, "-n", ns, "--wait=true"]);
      assert.equal(r.code, 0, r.stderr);
    }
    await eventually(
      "no loader Job and no cache claim left",
      async () => {
        const left = [
          ...(await jobs()),
          ...(await c.client.list<KubeObject>(RESOURCES.pvc, { namespace: ns })).items.filter(
            (p) => p.metadata.labels?.[CACHE_KEY_LABEL] !== undefined,
          ),
        ].filter((o) => o.metadata.deletionTimestamp === undefined);
        return left.length === 0;
      },
      90_000,
    );
  });

  test("every object of every source and storage mode passes a server-side dry run", async () => {
    const variants: Record<string, object> = {
      hubRwo: {},
      hubRwx: { cache: { accessMode: "ReadWriteMany", loader: { nodeSelector: { pool: "cpu" } } } },
      existingClaim: { cache: { existingClaim: "weights" }, revision: "v1" },
      pvc: { source: { pvc: { claimName: "weights", path: "ms4" } } },
      objectStorage: {
        format: "hf",
        source: { objectStorage: { uri: "s3://models/ms4", credentialsSecretRef: { name: "s3" } } },
      },
      image: { source: { image: { reference: "registry.example/ms4:fp8" } } },
    };
    const failures: string[] = [];
    for (const [name, model] of Object.entries(variants)) {
      const msd = parseResource({
        apiVersion: "serving.mistralsmall.dev/v1alpha1",
        kind: "MistralSmallDeployment",
        metadata: {
          name: `dry-${name.toLowerCase()}`,
          namespace: ns,
          uid: "00000000-0000-0000-0000-000000000001",
        },
        spec: { gpu: { type: "a100-80gb" }, model },
      });
      const objects = renderAll(msd, planFor(msd.spec));
      for (const o of objects) {
        if (o.kind === "NodePool") continue;
        await c.client
          .apply(resourceFor(o.apiVersion, o.kind), o as unknown as KubeObject, FIELD_MANAGER, {
            dryRun: true,
          })
          .catch((err: unknown) => failures.push(`${name} ${o.kind}: ${String(err)}`));
      }
    }
    assert.deepEqual(failures, []);
  });
});
