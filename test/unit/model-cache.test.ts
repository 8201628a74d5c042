/**
 * The model cache: what each weight source and storage mode renders (claim, loader Job, the vLLM
 * pod's volume, env and arguments), and the pure decisions of src/controller/model-cache.ts.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { describe, test } from "node:test";
import type { V1Deployment, V1Job, V1PersistentVolumeClaim } from "@kubernetes/client-node";
import { parseResource } from "../../src/api/validate.ts";
import type { MistralSmallDeployment } from "../../src/api/schema.ts";
import { plan as planFor } from "../../src/planner/plan.ts";
import { renderAll, type Manifest } from "../../src/render/index.ts";
import { LOADER_SCRIPT } from "../../src/render/loader-script.ts";
import { cacheIdentity } from "../../src/render/model-cache.ts";
import { EAGLE_DRAFT } from "../../src/engine/command.ts";
import {
  comparableForApply,
  fieldManagerFor,
  gateWorkload,
  observeCache,
  type CachePhase,
} from "../../src/controller/model-cache.ts";
import type { KubeObject } from "../../src/kube/client.ts";
import {
  computeStatus,
  type DeploymentView,
  type Observation,
} from "../../src/controller/status.ts";

const UID = "0b6f3c1e-3c4e-4d7f-9a43-0d5e3b6f2a10";

function resource(spec: Record<string, unknown>, name = "small", uid = UID) {
  return parseResource({
    apiVersion: "serving.mistralsmall.dev/v1alpha1",
    kind: "MistralSmallDeployment",
    metadata: { name, namespace: "inference", uid },
    spec: { gpu: { type: "h100-80gb" }, ...spec },
  });
}

function render(msd: MistralSmallDeployment) {
  const p = planFor(msd.spec);
  assert.ok(p.feasible, p.reasons.join("; "));
  const objects = renderAll(msd, p);
  const find = <T>(kind: string) => objects.find((o) => o.kind === kind) as T | undefined;
  const deployment = find<V1Deployment>("Deployment")!;
  const pod = deployment.spec!.template.spec!;
  return {
    plan: p,
    objects,
    claim: find<V1PersistentVolumeClaim>("PersistentVolumeClaim"),
    job: find<V1Job>("Job"),
    pod,
    container: pod.containers[0]!,
    env: (name: string) => pod.containers[0]!.env!.find((e) => e.name === name),
  };
}

const TOKEN = { tokenSecretRef: { name: "hf-token", key: "token" } };

describe("Hub source (default): a shared claim filled by a loader Job", () => {
  const r = render(resource({ model: { ...TOKEN, revision: "v1" } }));
  const job = r.job!;
  const loaderPod = job.spec!.template.spec!;
  const loader = loaderPod.containers[0]!;
  const loaderEnv = (name: string) => loader.env!.find((e) => e.name === name);

  test("one claim, ReadWriteOnce by default, named after the checkpoint and revision", () => {
    assert.deepEqual(r.claim!.spec!.accessModes, ["ReadWriteOnce"]);
    const id = cacheIdentity(resource({ model: { ...TOKEN, revision: "v1" } }), r.plan);
    assert.equal(r.claim!.metadata!.name, `model-cache-${id.key}`);
    assert.deepEqual(id.repos, [r.plan.checkpoint]);
  });

  test("the Job runs hf download from the vLLM image, with no GPU and no GPU toleration", () => {
    assert.equal(loader.image, r.plan.engine.image);
    assert.deepEqual(loader.command!.slice(0, 2), ["python3", "-c"]);
    assert.match(loader.command![2]!, /"hf", "download", repo, "--revision", revision/);
    assert.equal(JSON.stringify(loader.resources).includes("nvidia.com/gpu"), false);
    assert.equal(loaderPod.tolerations, undefined);
    assert.equal(loaderPod.restartPolicy, "Never");
    assert.equal(loaderPod.automountServiceAccountToken, false);
  });

  test("the token comes from the Secret the vLLM pods use", () => {
    assert.deepEqual(loaderEnv("HF_TOKEN")?.valueFrom, r.env("HF_TOKEN")?.valueFrom);
    assert.deepEqual(loaderEnv("HF_TOKEN")?.valueFrom, {
      secretKeyRef: { name: "hf-token", key: "token" },
    });
    assert.match(loaderEnv("MSD_TOKEN_HINT")!.value!, /Secret hf-token, key token/);
  });

  test("retries: backoffLimit for transient failures, FailJob at once on exit code 2", () => {
    assert.equal(job.spec!.backoffLimit, 4);
    const rule = job.spec!.podFailurePolicy!.rules[0]!;
    assert.equal(rule.action, "FailJob");
    assert.deepEqual(rule.onExitCodes, { containerName: "loader", operator: "In", values: [2] });
    assert.equal(loader.terminationMessagePolicy, "FallbackToLogsOnError");
  });

  test("the loader writes, the vLLM pods read the same directory, offline", () => {
    const id = cacheIdentity(resource({ model: { ...TOKEN, revision: "v1" } }), r.plan);
    assert.equal(loaderEnv("HF_HOME")?.value, id.hfHome);
    assert.equal(r.env("HF_HOME")?.value, id.hfHome);
    assert.equal(r.env("HF_HUB_OFFLINE")?.value, "1");
    assert.equal(loaderEnv("MSD_REVISION")?.value, "v1");
    const podMount = r.container.volumeMounts!.find((m) => m.name === "model-cache")!;
    assert.equal(podMount.readOnly, true);
    const loaderMount = loader.volumeMounts!.find((m) => m.name === "model-cache")!;
    assert.equal(loaderMount.readOnly, undefined, "the loader writes");
    assert.equal(
      loaderPod.volumes!.find((v) => v.name === "model-cache")!.persistentVolumeClaim!.claimName,
      r.claim!.metadata!.name,
    );
    // vLLM still names the Hub checkpoint and revision: huggingface_hub resolves them offline.
    assert.equal(r.container.args![0], r.plan.checkpoint);
    assert.ok(r.container.args!.join(" ").includes("--revision v1"));
  });

  test("only the checkpoint's own layout is downloaded", () => {
    assert.equal(
      loaderEnv("MSD_EXCLUDE")?.value,
      "model-*.safetensors model.safetensors.index.json",
    );
    const hf = render(resource({ model: { name: "someone/ckpt", format: "hf" } }));
    const env = hf.job!.spec!.template.spec!.containers[0]!.env!;
    assert.equal(
      env.find((e) => e.name === "MSD_EXCLUDE")?.value,
      "consolidated*.safetensors consolidated.safetensors.index.json",
    );
  });

  test("ReadWriteOnce: the replicas go to the node that mounts the claim", () => {
    const term = r.pod.affinity!.podAffinity!.requiredDuringSchedulingIgnoredDuringExecution![0]!;
    assert.equal(term.topologyKey, "kubernetes.io/hostname");
    assert.deepEqual(term.labelSelector!.matchLabels, {
      "app.kubernetes.io/instance": "small",
      "app.kubernetes.io/name": "mistral-small",
    });
    // The GPU node affinity is kept next to it.
    assert.ok(r.pod.affinity!.nodeAffinity!.requiredDuringSchedulingIgnoredDuringExecution);
  });

  test("ReadWriteMany: no co-location", () => {
    const rwx = render(resource({ model: { cache: { accessMode: "ReadWriteMany" } } }));
    assert.deepEqual(rwx.claim!.spec!.accessModes, ["ReadWriteMany"]);
    assert.equal(rwx.pod.affinity!.podAffinity, undefined);
  });

  test("the loader's node selector goes on the loader pod only", () => {
    const sel = render(
      resource({ model: { cache: { loader: { nodeSelector: { pool: "cpu" } } } } }),
    );
    assert.deepEqual(sel.job!.spec!.template.spec!.nodeSelector, { pool: "cpu" });
    assert.equal(sel.pod.nodeSelector?.pool, undefined);
  });

  test("speculative decoding downloads the EAGLE draft into the same cache", () => {
    const s = render(resource({ engine: { speculative: { enabled: true } } }));
    const repos = s.job!.spec!.template.spec!.containers[0]!.env!.find(
      (e) => e.name === "MSD_REPOS",
    )!.value!;
    assert.equal(repos, `${s.plan.checkpoint} ${EAGLE_DRAFT}`);
  });

  test("the loader program is valid Python", () => {
    execFileSync("python3", ["-c", "import sys; compile(sys.stdin.read(), 'loader', 'exec')"], {
      input: LOADER_SCRIPT,
    });
  });
});

describe("sharing: one cache per checkpoint and revision", () => {
  const a = render(resource({ model: TOKEN }, "a", "11111111-1111-1111-1111-111111111111"));
  const b = render(resource({ model: TOKEN }, "b", "22222222-2222-2222-2222-222222222222"));
  const c = render(
    resource({ model: { ...TOKEN, revision: "v2" } }, "a", "11111111-1111-1111-1111-111111111111"),
  );

  test("two resources with the same checkpoint render the same claim and Job", () => {
    assert.equal(a.claim!.metadata!.name, b.claim!.metadata!.name);
    assert.equal(a.job!.metadata!.name, b.job!.metadata!.name);
    assert.deepEqual(a.job!.spec, b.job!.spec, "the same Job, whoever applies it");
  });

  test("each names itself as a non-controller owner and applies with its own field manager", () => {
    const ref = (o: Manifest) =>
      (o.metadata as { ownerReferences: { uid: string; controller: boolean }[] }).ownerReferences;
    assert.deepEqual(
      ref(a.claim as Manifest).map((o) => [o.uid, o.controller]),
      [["11111111-1111-1111-1111-111111111111", false]],
    );
    assert.equal(
      fieldManagerFor(a.claim as Manifest),
      "mistral-small-operator/11111111-1111-1111-1111-111111111111",
    );
    assert.notEqual(fieldManagerFor(a.job as Manifest), fieldManagerFor(b.job as Manifest));
    const dep = a.objects.find((o) => o.kind === "Deployment")!;
    assert.equal(fieldManagerFor(dep), "mistral-small-operator");
  });

  test("a new revision is a new claim and a new Job", () => {
    assert.notEqual(c.claim!.metadata!.name, a.claim!.metadata!.name);
    assert.notEqual(c.job!.metadata!.name, a.job!.metadata!.name);
  });

  test("another owner's reference on the live object is no reason to apply again", () => {
    const mine = a.claim as Manifest;
    const refs = (mine.metadata as { ownerReferences: object[] }).ownerReferences;
    const other = { ...refs[0], uid: "22222222-2222-2222-2222-222222222222", name: "b" };
    const live = {
      ...mine,
      metadata: { ...mine.metadata, ownerReferences: [other, ...refs] },
    } as unknown as KubeObject;
    const cmp = comparableForApply(mine, live);
    assert.deepEqual((cmp.metadata as { ownerReferences: object[] }).ownerReferences, [
      other,
      ...refs,
    ]);
    const without = { ...live, metadata: { ...live.metadata, ownerReferences: [other] } };
    assert.equal(comparableForApply(mine, without as KubeObject), mine, "ours missing: apply");
  });
});

describe("existingClaim: the loader fills the user's claim", () => {
  const r = render(resource({ model: { cache: { existingClaim: "shared-weights" } } }));
  test("no claim is created; the Job and the pods mount the existing one", () => {
    assert.equal(r.claim, undefined);
    const loaderVol = r.job!.spec!.template.spec!.volumes!.find((v) => v.name === "model-cache")!;
    assert.equal(loaderVol.persistentVolumeClaim!.claimName, "shared-weights");
    const podVol = r.pod.volumes!.find((v) => v.name === "model-cache")!;
    assert.equal(podVol.persistentVolumeClaim!.claimName, "shared-weights");
    assert.equal(r.pod.affinity!.podAffinity, undefined, "its access mode is the user's");
  });
});

function noCacheObjects(r: ReturnType<typeof render>) {
  assert.equal(r.claim, undefined);
  assert.equal(r.job, undefined);
  assert.ok(!r.container.args!.includes("--revision"));
  assert.equal(r.env("HF_HUB_OFFLINE")?.value, "1");
}

describe("sources read in place: no claim, no Job", () => {
  test("pvc: the claim is mounted read-only and vLLM loads the directory", () => {
    const r = render(
      resource({ model: { source: { pvc: { claimName: "weights", path: "ms4/fp8" } } } }),
    );
    noCacheObjects(r);
    const vol = r.pod.volumes!.find((v) => v.name === "model-cache")!;
    assert.deepEqual(vol.persistentVolumeClaim, { claimName: "weights", readOnly: true });
    assert.equal(r.container.args![0], "/models/ms4/fp8");
    assert.equal(r.pod.affinity!.podAffinity, undefined);
  });

  test("objectStorage: runai_streamer reads the bucket; the Secret becomes env", () => {
    const r = render(
      resource({
        model: {
          format: "hf",
          source: {
            objectStorage: { uri: "s3://models/ms4", credentialsSecretRef: { name: "s3" } },
          },
        },
      }),
    );
    noCacheObjects(r);
    const args = r.container.args!;
    assert.equal(args[0], "s3://models/ms4");
    const lf = args.filter((a) => a === "--load-format");
    assert.equal(lf.length, 1, "one --load-format");
    assert.equal(args[args.indexOf("--load-format") + 1], "runai_streamer");
    assert.deepEqual(r.container.envFrom![0], { secretRef: { name: "s3" } });
    assert.equal(
      r.pod.volumes!.find((v) => v.name === "model-cache"),
      undefined,
    );
  });

  test("image: an image volume mounted read-only", () => {
    const r = render(
      resource({ model: { source: { image: { reference: "registry.example/ms4:fp8" } } } }),
    );
    noCacheObjects(r);
    const vol = r.pod.volumes!.find((v) => v.name === "model-cache")!;
    assert.deepEqual(vol.image, {
      reference: "registry.example/ms4:fp8",
      pullPolicy: "IfNotPresent",
    });
    assert.equal(r.container.args![0], "/models");
  });
});

describe("cache phase from the loader Job and its pods", () => {
  const base = { source: "hub" as const, revision: "main", expectedBytes: 125e9 };
  const job = (conditions: { type: string; status: string; reason?: string }[] = []) => ({
    metadata: { name: "model-loader-x" },
    status: { conditions },
  });
  const pod = (state: object, phase: string, created = "2026-01-01T00:00:00Z") => ({
    metadata: { name: `p-${created}`, creationTimestamp: created },
    status: { phase, containerStatuses: [{ name: "loader", state }] },
  });

  test("no Job yet: Pending", () => {
    assert.equal(observeCache({ ...base, job: undefined, pods: [] }).phase, "Pending");
  });

  test("a running loader: Downloading since its start, with the expected size", () => {
    const p = observeCache({
      ...base,
      job: job(),
      pods: [pod({ running: { startedAt: "2026-01-01T00:01:00Z" } }, "Running")],
    });
    assert.deepEqual(p, {
      phase: "Downloading",
      since: "2026-01-01T00:01:00Z",
      expectedBytes: 125e9,
    });
  });

  test("Complete: size and commit from the loader's termination message", () => {
    const msg = JSON.stringify({ phase: "Complete", bytes: 124e9, commit: "abc123" });
    const p = observeCache({
      ...base,
      job: job([{ type: "Complete", status: "True" }]),
      pods: [pod({ terminated: { exitCode: 0, message: msg } }, "Succeeded")],
    });
    assert.deepEqual(p, { phase: "Complete", revision: "main", bytes: 124e9, commit: "abc123" });
  });

  test("Failed: the loader's reason, from the newest pod", () => {
    const msg = JSON.stringify({ phase: "Failed", reason: "Unauthorized", message: "401 x" });
    const p = observeCache({
      ...base,
      job: job([{ type: "Failed", status: "True", reason: "PodFailurePolicy" }]),
      pods: [
        pod({ terminated: { exitCode: 1, message: "old" } }, "Failed", "2026-01-01T00:00:00Z"),
        pod({ terminated: { exitCode: 2, message: msg } }, "Failed", "2026-01-01T00:05:00Z"),
      ],
    });
    assert.deepEqual(p, {
      phase: "Failed",
      reason: "Unauthorized",
      message: "loader Job model-loader-x: 401 x",
    });
  });

  test("Failed without a verdict: the log tail or the Job's own reason", () => {
    const p = observeCache({
      ...base,
      job: job([{ type: "Failed", status: "True", reason: "BackoffLimitExceeded" }]),
      pods: [],
    });
    assert.equal(p.phase, "Failed");
    assert.match((p as { message: string }).message, /BackoffLimitExceeded/);
  });

  test("a source read in place needs no Job", () => {
    assert.deepEqual(observeCache({ ...base, source: "pvc", job: undefined, pods: [] }), {
      phase: "InPlace",
      source: "pvc",
    });
  });
});

describe("the gate and the ModelCached condition", () => {
  const objects = [{ kind: "Job" }, { kind: "Deployment" }, { kind: "Service" }].map((o) => ({
    apiVersion: "v1",
    ...o,
    metadata: { name: "x" },
  })) as Manifest[];
  const complete: CachePhase = { phase: "Complete", revision: "main", bytes: 1.25e11 };
  const failed: CachePhase = {
    phase: "Failed",
    reason: "Forbidden",
    message: "loader Job j: 403 gated. Check the token in Secret hf-token",
  };

  test("no Deployment until the cache is complete", () => {
    const kinds = (p: CachePhase) => gateWorkload(objects, p).map((o) => o.kind);
    assert.deepEqual(kinds({ phase: "Pending", message: "m" }), ["Job", "Service"]);
    assert.deepEqual(kinds({ phase: "Downloading", expectedBytes: 1 }), ["Job", "Service"]);
    assert.deepEqual(kinds(failed), ["Job", "Service"]);
    assert.deepEqual(kinds(complete), ["Job", "Deployment", "Service"]);
    assert.deepEqual(kinds({ phase: "InPlace", source: "image" }), [
      "Job",
      "Deployment",
      "Service",
    ]);
  });

  /** What status is computed from while the cache is filled: no pods yet, no Deployment. */
  const observing = (cache: CachePhase, deployment?: DeploymentView): Observation => ({
    generation: 3,
    desiredReplicas: 1,
    pods: [],
    selector: "",
    endpoint: "",
    cache,
    ...(deployment === undefined ? {} : { deployment }),
  });

  test("Complete: ModelCached True with size and revision", () => {
    const s = computeStatus(observing(complete), undefined, "t1");
    const c = s.conditions!.find((x) => x.type === "ModelCached")!;
    assert.equal(c.status, "True");
    assert.equal(c.reason, "Complete");
    assert.match(c.message, /revision main is in the cache: 125\.0 GB/);
    assert.equal(s.conditions!.find((x) => x.type === "Ready")!.reason, "ModelLoading");
  });

  test("Failed: the reason on ModelCached and on Ready while no Deployment exists", () => {
    const s = computeStatus(observing(failed), undefined, "t1");
    const c = s.conditions!.find((x) => x.type === "ModelCached")!;
    assert.equal(c.status, "False");
    assert.equal(c.reason, "LoaderForbidden");
    assert.match(c.message, /403 gated\. Check the token in Secret hf-token/);
    const ready = s.conditions!.find((x) => x.type === "Ready")!;
    assert.deepEqual([ready.status, ready.reason], ["False", "LoaderForbidden"]);
  });

  test("a revision change downloading while the old Deployment serves leaves Ready alone", () => {
    const s = computeStatus(
      observing(
        { phase: "Downloading", expectedBytes: 1e9 },
        { metadata: { generation: 1 }, status: { readyReplicas: 0 } },
      ),
      undefined,
      "t1",
    );
    assert.equal(s.conditions!.find((x) => x.type === "Ready")!.reason, "ModelLoading");
    assert.equal(s.conditions!.find((x) => x.type === "ModelCached")!.reason, "Downloading");
  });

  test("the transition time is kept while the status stays", () => {
    const first = computeStatus(observing(complete), undefined, "t1");
    const again = computeStatus(observing(complete), first, "t9");
    const t = (s: typeof first) =>
      s.conditions!.find((x) => x.type === "ModelCached")!.lastTransitionTime;
    assert.equal(t(again), "t1");
  });
});
