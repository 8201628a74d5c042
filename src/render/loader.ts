/**
 * The loader Job: fills the model cache with one checkpoint revision before any vLLM pod exists.
 * It runs the vLLM image's own huggingface_hub (src/render/loader-script.ts) on a CPU node, with
 * the token from the Secret the vLLM pods use. Shared by every resource that loads the same
 * files (see ./model-cache.ts), and kept once complete: it is the record that the cache is.
 */
import type { V1EnvVar, V1Job, V1PodSpec } from "@kubernetes/client-node";
import type { MistralSmallDeployment } from "../api/schema.ts";
import type { Plan } from "../planner/plan.ts";
import { sortKeys } from "../util/json.ts";
import { HOME_PATH, MODEL_CACHE_PATH, RUN_AS_USER, SECRET_ENV, podSecurityContext } from "./env.ts";
import { LOADER_EXIT, LOADER_SCRIPT } from "./loader-script.ts";
import {
  CACHE_KEY_LABEL,
  CHECKPOINT_ANNOTATION,
  REVISION_ANNOTATION,
  cacheIdentity,
  excludePatterns,
  sharedMeta,
  weightSource,
  type CacheIdentity,
} from "./model-cache.ts";
import { OPERATOR_NAME, shortHash } from "./names.ts";

export const LOADER_CONTAINER = "loader";
/** Pod retries on a transient failure; the Job controller waits 10 s, 20 s, 40 s ... between. */
export const LOADER_BACKOFF_LIMIT = 4;

function tokenHint(msd: MistralSmallDeployment): string {
  const ref = msd.spec.model.tokenSecretRef;
  return ref === undefined
    ? "No token is set: create a Secret with a Hugging Face token that has accepted the model's terms and name it in spec.model.tokenSecretRef."
    : `Check the token in Secret ${ref.name}, key ${ref.key} (spec.model.tokenSecretRef): it must be valid and its account must have access to the repository.`;
}

function loaderEnv(msd: MistralSmallDeployment, id: CacheIdentity): V1EnvVar[] {
  const ref = msd.spec.model.tokenSecretRef;
  return [
    { name: "USER", value: RUN_AS_USER },
    { name: "LOGNAME", value: RUN_AS_USER },
    { name: "HOME", value: HOME_PATH },
    { name: "HF_HOME", value: id.hfHome },
    { name: "HF_HUB_DISABLE_TELEMETRY", value: "1" },
    { name: "MSD_REPOS", value: id.repos.join(" ") },
    { name: "MSD_REVISION", value: id.revision },
    { name: "MSD_EXCLUDE", value: excludePatterns(id.format).join(" ") },
    { name: "MSD_TOKEN_HINT", value: tokenHint(msd) },
    ...(ref === undefined
      ? []
      : [
          {
            name: SECRET_ENV.hfToken,
            valueFrom: { secretKeyRef: { name: ref.name, key: ref.key } },
          },
        ]),
  ];
}

function loaderPodSpec(msd: MistralSmallDeployment, plan: Plan, id: CacheIdentity): V1PodSpec {
  const p = msd.spec.pod;
  const nodeSelector = msd.spec.model.cache.loader.nodeSelector;
  return {
    restartPolicy: "Never",
    automountServiceAccountToken: false,
    enableServiceLinks: false,
    securityContext: podSecurityContext(),
    ...(nodeSelector === undefined ? {} : { nodeSelector: { ...nodeSelector } }),
    // A download needs no GPU: keep it off GPU nodes where another node will do.
    affinity: {
      nodeAffinity: {
        preferredDuringSchedulingIgnoredDuringExecution: [
          {
            weight: 100,
            preference: {
              // GPU Operator / GFD, GKE and Karpenter-on-AWS labels of a GPU node.
              matchExpressions: [
                "nvidia.com/gpu.present",
                "nvidia.com/gpu.product",
                "cloud.google.com/gke-accelerator",
                "karpenter.k8s.aws/instance-gpu-count",
              ].map((key) => ({ key, operator: "DoesNotExist" })),
            },
          },
        ],
      },
    },
    ...(p.imagePullSecrets === undefined
      ? {}
      : { imagePullSecrets: p.imagePullSecrets.map((s) => ({ name: s.name })) }),
    ...(p.serviceAccountName === undefined ? {} : { serviceAccountName: p.serviceAccountName }),
    containers: [
      {
        name: LOADER_CONTAINER,
        image: plan.engine.image,
        command: ["python3", "-c", LOADER_SCRIPT],
        env: loaderEnv(msd, id),
        resources: {
          requests: { cpu: "2", memory: "4Gi" },
          limits: { memory: "8Gi" },
        },
        terminationMessagePath: "/dev/termination-log",
        // The script writes its verdict there; a crash before it leaves the log's tail instead.
        terminationMessagePolicy: "FallbackToLogsOnError",
        securityContext: {
          allowPrivilegeEscalation: false,
          readOnlyRootFilesystem: true,
          capabilities: { drop: ["ALL"] },
        },
        volumeMounts: [
          { name: "model-cache", mountPath: MODEL_CACHE_PATH },
          { name: "tmp", mountPath: "/tmp" },
          { name: "home", mountPath: HOME_PATH },
        ],
      },
    ],
    volumes: [
      { name: "model-cache", persistentVolumeClaim: { claimName: id.claimName } },
      { name: "tmp", emptyDir: {} },
      { name: "home", emptyDir: { sizeLimit: "4Gi" } },
    ],
  };
}

/** The Job's name: the cache key plus a hash of its template (a Job's template is immutable). */
export function loaderJobName(id: CacheIdentity, spec: V1PodSpec): string {
  return `model-loader-${id.key}-${shortHash(JSON.stringify(sortKeys(spec)), 6)}`;
}

export function renderLoaderJob(msd: MistralSmallDeployment, plan: Plan): V1Job | undefined {
  if (weightSource(msd) !== "hub") return undefined;
  const id = cacheIdentity(msd, plan);
  const spec = loaderPodSpec(msd, plan, id);
  const name = loaderJobName(id, spec);
  return {
    apiVersion: "batch/v1",
    kind: "Job",
    metadata: {
      ...sharedMeta(msd, name, id.key),
      annotations: {
        [CHECKPOINT_ANNOTATION]: id.repos.join(","),
        [REVISION_ANNOTATION]: id.revision,
      },
    },
    spec: {
      backoffLimit: LOADER_BACKOFF_LIMIT,
      podFailurePolicy: {
        rules: [
          {
            // 401, 403, 404 and a full disk do not heal by retrying.
            action: "FailJob",
            onExitCodes: {
              containerName: LOADER_CONTAINER,
              operator: "In",
              values: [LOADER_EXIT.permanent],
            },
          },
          // A node drained or preempted under the loader is not the loader's failure.
          { action: "Ignore", onPodConditions: [{ type: "DisruptionTarget", status: "True" }] },
        ],
      },
      template: {
        metadata: {
          labels: {
            "app.kubernetes.io/name": "mistral-small-model-loader",
            "app.kubernetes.io/component": "model-loader",
            "app.kubernetes.io/managed-by": OPERATOR_NAME,
            [CACHE_KEY_LABEL]: id.key,
          },
          annotations: {
            [CHECKPOINT_ANNOTATION]: id.repos.join(","),
            [REVISION_ANNOTATION]: id.revision,
          },
        },
        spec,
      },
    },
  };
}
