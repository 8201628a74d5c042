/** The vLLM Deployment: one pod per replica, TP GPUs each. */
import type {
  V1Affinity,
  V1Deployment,
  V1EnvFromSource,
  V1EnvVar,
  V1PodSpec,
  V1PodTemplateSpec,
} from "@kubernetes/client-node";
import type { MistralSmallDeployment } from "../api/schema.ts";
import type { Plan } from "../planner/plan.ts";
import { VLLM_PORT } from "../engine/command.ts";
import {
  TEMPLATE_HASH_ANNOTATION,
  commonLabels,
  namespacedMeta,
  selectorLabels,
  shortHash,
  workloadName,
} from "./names.ts";
import { GPU_RESOURCE, gpuAffinity, gpuTolerations, nodeSelector } from "./scheduling.ts";
import { sortKeys } from "../util/json.ts";
import { hardenPodSpec } from "./security.ts";
import { FIXED_ENV, HOME_PATH, SECRET_ENV, podSecurityContext } from "./env.ts";
import { sourceArgs, weightSource, weightsAccess, type WeightsAccess } from "./model-cache.ts";

export { HOME_PATH, MODEL_CACHE_PATH, MANAGED_ENV, WRITABLE_PATHS } from "./env.ts";

/** Startup budget: period x failures = 90 minutes of weight load (and compile) from the cache. */
export const STARTUP_PROBE = { periodSeconds: 10, failureThreshold: 540 } as const;
export const TERMINATION_GRACE_SECONDS = 120;
export const PRESTOP_SLEEP_SECONDS = 20;

function env(msd: MistralSmallDeployment, access: WeightsAccess): V1EnvVar[] {
  const vars: V1EnvVar[] = [...FIXED_ENV, ...access.env];
  const ref = msd.spec.model.tokenSecretRef;
  if (ref !== undefined) {
    vars.push({
      name: SECRET_ENV.hfToken,
      valueFrom: { secretKeyRef: { name: ref.name, key: ref.key } },
    });
  }
  // vLLM reads VLLM_API_KEY as --api-key: the key stays in the Secret, never in the resource.
  const apiKey = msd.spec.access.apiKeySecretRef;
  if (apiKey !== undefined) {
    vars.push({
      name: SECRET_ENV.apiKey,
      valueFrom: { secretKeyRef: { name: apiKey.name, key: apiKey.key } },
    });
  }
  // Appended after the operator's: admission refuses a name of MANAGED_ENV, so none overrides one.
  for (const e of msd.spec.pod.env ?? []) vars.push(structuredClone(e) as V1EnvVar);
  return vars;
}

/** Pod-level fields from spec.pod, each present only when set (an absent field stays unowned). */
function podSettings(msd: MistralSmallDeployment): Partial<V1PodSpec> {
  const p = msd.spec.pod;
  return {
    ...(p.imagePullSecrets === undefined
      ? {}
      : { imagePullSecrets: p.imagePullSecrets.map((s) => ({ name: s.name })) }),
    ...(p.serviceAccountName === undefined ? {} : { serviceAccountName: p.serviceAccountName }),
    ...(p.priorityClassName === undefined ? {} : { priorityClassName: p.priorityClassName }),
    ...(p.runtimeClassName === undefined ? {} : { runtimeClassName: p.runtimeClassName }),
    ...(p.topologySpreadConstraints === undefined
      ? {}
      : {
          topologySpreadConstraints: p.topologySpreadConstraints.map((t) => ({
            ...t,
            // Always this deployment's own pods: spreading them is what the field is for.
            labelSelector: { matchLabels: selectorLabels(msd) },
          })),
        }),
  };
}

/**
 * A ReadWriteOnce cache attaches to one node at a time: after the loader Job lets go of it,
 * every replica must run on the node that mounts it (the first replica may go anywhere: a pod
 * that matches its own affinity term is allowed on an empty cluster).
 */
function colocation(msd: MistralSmallDeployment): V1Affinity["podAffinity"] {
  // Our own claim (a Hub source, not an existing claim), created ReadWriteOnce.
  const { cache } = msd.spec.model;
  const rwoCache =
    weightSource(msd) === "hub" &&
    cache.existingClaim === undefined &&
    cache.accessMode === "ReadWriteOnce";
  if (!rwoCache) return undefined;
  return {
    requiredDuringSchedulingIgnoredDuringExecution: [
      {
        labelSelector: { matchLabels: selectorLabels(msd) },
        topologyKey: "kubernetes.io/hostname",
      },
    ],
  };
}

function podTemplate(msd: MistralSmallDeployment, plan: Plan): V1PodTemplateSpec {
  const access = weightsAccess(msd, plan);
  const podAffinity = colocation(msd);
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
      // The user's first: admission refuses the operator's keys, and ours win regardless.
      labels: { ...msd.spec.pod.labels, ...commonLabels(msd) },
      annotations: {
        ...msd.spec.pod.annotations,
        // vLLM pods take many minutes to load: keep Karpenter from disrupting them.
        "karpenter.sh/do-not-disrupt": "true",
      },
    },
    spec: {
      // A Service called `vllm` would inject VLLM_PORT and break vLLM's config.
      enableServiceLinks: false,
      terminationGracePeriodSeconds: TERMINATION_GRACE_SECONDS,
      securityContext: podSecurityContext(),
      ...(Object.keys(nodeSelector(msd)).length === 0 ? {} : { nodeSelector: nodeSelector(msd) }),
      affinity: { ...gpuAffinity(msd), ...(podAffinity === undefined ? {} : { podAffinity }) },
      tolerations: gpuTolerations(msd),
      ...podSettings(msd),
      containers: [
        {
          name: "vllm",
          image: plan.engine.image,
          command: ["vllm", "serve"],
          args: sourceArgs(plan.vllmArgs, access),
          env: env(msd, access),
          ...(msd.spec.pod.envFrom === undefined && access.envFrom.length === 0
            ? {}
            : {
                envFrom: [
                  ...access.envFrom,
                  ...((structuredClone(msd.spec.pod.envFrom) ?? []) as V1EnvFromSource[]),
                ],
              }),
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
            ...(access.mount === undefined ? [] : [access.mount]),
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
        ...(access.volume === undefined ? [] : [access.volume]),
        { name: "tmp", emptyDir: {} },
        // Bounded so a runaway kernel cache evicts the pod instead of filling the node (not measured on a GPU).
        { name: "home", emptyDir: { sizeLimit: "8Gi" } },
      ],
    },
  };
  // Own every security-relevant field (host namespaces, privileged, capabilities, token
  // automount) so that a hand edit of one is drift the next reconcile reverts.
  template.spec = hardenPodSpec(template.spec!);
  template.metadata!.annotations![TEMPLATE_HASH_ANNOTATION] = templateHashOf(template);
  return template;
}

/**
 * The hash naming a pod template: of the template without the hash annotation itself, so equal
 * plans give equal hashes and any change rolls out. The template pin checks records with it.
 */
export function templateHashOf(template: V1PodTemplateSpec): string {
  const copy = structuredClone(template);
  delete copy.metadata?.annotations?.[TEMPLATE_HASH_ANNOTATION];
  return shortHash(JSON.stringify(sortKeys(copy)));
}

/** The hash naming the pod template a plan renders: a rollout is done once it is live. */
export function podTemplateHash(msd: MistralSmallDeployment, plan: Plan): string {
  return podTemplate(msd, plan).metadata!.annotations![TEMPLATE_HASH_ANNOTATION]!;
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
