/** The vLLM Deployment: one pod per replica, TP GPUs each. */
import type { V1Deployment, V1EnvVar, V1PodTemplateSpec } from "@kubernetes/client-node";
import type { MistralSmallDeployment } from "../api/schema.ts";
import type { Plan } from "../planner/plan.ts";
import { VLLM_PORT } from "../engine/command.ts";
import {
  TEMPLATE_HASH_ANNOTATION,
  cacheClaimName,
  commonLabels,
  namespacedMeta,
  selectorLabels,
  shortHash,
  workloadName,
} from "./names.ts";
import { GPU_RESOURCE, gpuAffinity, gpuTolerations, nodeSelector } from "./scheduling.ts";
import { sortKeys } from "../api/crd.ts";
import { hardenPodSpec } from "./security.ts";

export const MODEL_CACHE_PATH = "/models";
/** Startup budget: period x failures = 90 minutes for download plus weight load. */
export const STARTUP_PROBE = { periodSeconds: 10, failureThreshold: 540 } as const;
export const TERMINATION_GRACE_SECONDS = 120;
export const PRESTOP_SLEEP_SECONDS = 20;
/**
 * The pod runs as this UID, which the official image has no passwd entry for. torch >= 2.11
 * calls getpass.getuser() while `import vllm` runs, which reads USER/LOGNAME before the
 * passwd database: without them every pod dies with KeyError (vllm#44548).
 */
const RUN_AS = 1000;
const RUN_AS_USER = "vllm";
/** HOME and every cache under it live on an emptyDir: the root filesystem stays read-only. */
export const HOME_PATH = "/home/vllm";

/**
 * Where vLLM and the libraries under it write, each pointed at a writable volume. The root
 * filesystem is read-only, so a path missing here fails loudly instead of filling the image.
 */
export const WRITABLE_PATHS: readonly {
  readonly env?: string;
  readonly path: string;
  readonly what: string;
}[] = [
  {
    env: "HOME",
    path: HOME_PATH,
    what: "home; default parent of ~/.cache, ~/.triton, ~/.config/vllm, ~/.nv",
  },
  {
    env: "XDG_CACHE_HOME",
    path: `${HOME_PATH}/.cache`,
    what: "torch hub, FlashInfer JIT and outlines caches",
  },
  { env: "TRITON_CACHE_DIR", path: `${HOME_PATH}/.triton/cache`, what: "compiled Triton kernels" },
  {
    env: "TORCHINDUCTOR_CACHE_DIR",
    path: `${HOME_PATH}/.cache/torchinductor`,
    what: "torch.compile (inductor) output",
  },
  {
    env: "FLASHINFER_WORKSPACE_BASE",
    path: HOME_PATH,
    what: "FlashInfer's JIT workspace (~/.cache/flashinfer)",
  },
  {
    env: "VLLM_CACHE_ROOT",
    path: `${MODEL_CACHE_PATH}/vllm`,
    what: "vLLM's torch.compile cache, kept across restarts on the model cache",
  },
  {
    env: "HF_HOME",
    path: `${MODEL_CACHE_PATH}/huggingface`,
    what: "downloaded weights (huggingface_hub)",
  },
  { path: "/tmp", what: "inductor temp files, vLLM's ZMQ IPC sockets, tempfile" },
  { path: "/dev/shm", what: "NCCL and multiprocessing shared memory" },
];

function env(msd: MistralSmallDeployment): V1EnvVar[] {
  const vars: V1EnvVar[] = [
    { name: "USER", value: RUN_AS_USER },
    { name: "LOGNAME", value: RUN_AS_USER },
    ...WRITABLE_PATHS.flatMap((w) => (w.env === undefined ? [] : [{ name: w.env, value: w.path }])),
    { name: "VLLM_NO_USAGE_STATS", value: "1" },
    { name: "DO_NOT_TRACK", value: "1" },
  ];
  const ref = msd.spec.model.tokenSecretRef;
  if (ref !== undefined) {
    vars.push({ name: "HF_TOKEN", valueFrom: { secretKeyRef: { name: ref.name, key: ref.key } } });
  }
  // vLLM reads VLLM_API_KEY as --api-key: the key stays in the Secret, never in the resource.
  const apiKey = msd.spec.access.apiKeySecretRef;
  if (apiKey !== undefined) {
    vars.push({
      name: "VLLM_API_KEY",
      valueFrom: { secretKeyRef: { name: apiKey.name, key: apiKey.key } },
    });
  }
  return vars;
}

function podTemplate(msd: MistralSmallDeployment, plan: Plan): V1PodTemplateSpec {
  const gpus = String(plan.gpusPerReplica);
  const cpu = msd.spec.engine.resources?.cpu ?? String(4 * plan.gpusPerReplica);
  const memory = msd.spec.engine.resources?.memory ?? `${48 * plan.gpusPerReplica}Gi`;
  const probe = (periodSeconds: number, failureThreshold: number, timeoutSeconds: number) => ({
    httpGet: { path: "/health", port: "http" },
    periodSeconds,
    failureThreshold,
    timeoutSeconds,
  });
  const template: V1PodTemplateSpec = {
    metadata: {
      labels: commonLabels(msd),
      annotations: {
        // vLLM pods take many minutes to load: keep Karpenter from disrupting them.
        "karpenter.sh/do-not-disrupt": "true",
      },
    },
    spec: {
      // A Service called `vllm` would inject VLLM_PORT and break vLLM's config.
      enableServiceLinks: false,
      terminationGracePeriodSeconds: TERMINATION_GRACE_SECONDS,
      securityContext: {
        runAsNonRoot: true,
        runAsUser: RUN_AS,
        runAsGroup: RUN_AS,
        fsGroup: RUN_AS,
        seccompProfile: { type: "RuntimeDefault" },
      },
      ...(Object.keys(nodeSelector(msd)).length === 0 ? {} : { nodeSelector: nodeSelector(msd) }),
      affinity: gpuAffinity(msd),
      tolerations: gpuTolerations(msd),
      containers: [
        {
          name: "vllm",
          image: plan.engine.image,
          command: ["vllm", "serve"],
          args: [...plan.vllmArgs],
          env: env(msd),
          ports: [{ name: "http", containerPort: VLLM_PORT, protocol: "TCP" }],
          resources: {
            requests: { cpu, memory, [GPU_RESOURCE]: gpus },
            limits: { memory, [GPU_RESOURCE]: gpus },
          },
          startupProbe: probe(STARTUP_PROBE.periodSeconds, STARTUP_PROBE.failureThreshold, 5),
          readinessProbe: probe(5, 3, 3),
          livenessProbe: probe(10, 6, 5),
          lifecycle: { preStop: { exec: { command: ["sleep", String(PRESTOP_SLEEP_SECONDS)] } } },
          securityContext: {
            allowPrivilegeEscalation: false,
            readOnlyRootFilesystem: true,
            capabilities: { drop: ["ALL"] },
          },
          volumeMounts: [
            { name: "dshm", mountPath: "/dev/shm" },
            { name: "model-cache", mountPath: MODEL_CACHE_PATH },
            { name: "tmp", mountPath: "/tmp" },
            { name: "home", mountPath: HOME_PATH },
          ],
        },
      ],
      volumes: [
        // NCCL between TP ranks goes through shared memory.
        {
          name: "dshm",
          emptyDir: { medium: "Memory", sizeLimit: plan.gpusPerReplica > 1 ? "16Gi" : "2Gi" },
        },
        { name: "model-cache", persistentVolumeClaim: { claimName: cacheClaimName(msd) } },
        { name: "tmp", emptyDir: {} },
        // Bounded so a runaway kernel cache evicts the pod instead of filling the node (not measured on a GPU).
        { name: "home", emptyDir: { sizeLimit: "8Gi" } },
      ],
    },
  };
  // Own every security-relevant field (host namespaces, privileged, capabilities, token
  // automount) so that a hand edit of one is drift the next reconcile reverts.
  template.spec = hardenPodSpec(template.spec!);
  // The hash names this exact template: equal plans give equal hashes, any change rolls out.
  const hash = shortHash(JSON.stringify(sortKeys(template)));
  template.metadata!.annotations![TEMPLATE_HASH_ANNOTATION] = hash;
  return template;
}

export function renderDeployment(
  msd: MistralSmallDeployment,
  plan: Plan,
  replicas: number,
): V1Deployment {
  const template = podTemplate(msd, plan);
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: {
      ...namespacedMeta(msd, workloadName(msd)),
      annotations: {
        [TEMPLATE_HASH_ANNOTATION]: template.metadata!.annotations![TEMPLATE_HASH_ANNOTATION]!,
      },
    },
    spec: {
      replicas,
      selector: { matchLabels: selectorLabels(msd) },
      // Replace one replica at a time without asking for GPUs beyond the replica count.
      strategy: { type: "RollingUpdate", rollingUpdate: { maxSurge: 0, maxUnavailable: 1 } },
      progressDeadlineSeconds: STARTUP_PROBE.periodSeconds * STARTUP_PROBE.failureThreshold + 600,
      revisionHistoryLimit: 3,
      template,
    },
  };
}
