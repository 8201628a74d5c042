/** The vLLM Deployment: one pod per replica, TP GPUs each. */
import type { V1Deployment, V1EnvVar, V1PodTemplateSpec } from "@kubernetes/client-node";
import type { MistralSmallDeployment } from "../api/schema.ts";
import type { Plan } from "../planner/plan.ts";
import { VLLM_PORT } from "../planner/vllm-args.ts";
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
const RUN_AS = 1000;

function env(msd: MistralSmallDeployment): V1EnvVar[] {
  const vars: V1EnvVar[] = [
    { name: "HF_HOME", value: `${MODEL_CACHE_PATH}/huggingface` },
    { name: "HOME", value: "/tmp" },
    { name: "VLLM_CACHE_ROOT", value: `${MODEL_CACHE_PATH}/vllm` },
    { name: "VLLM_NO_USAGE_STATS", value: "1" },
    { name: "DO_NOT_TRACK", value: "1" },
  ];
  const ref = msd.spec.model.tokenSecretRef;
  if (ref !== undefined) {
    vars.push({ name: "HF_TOKEN", valueFrom: { secretKeyRef: { name: ref.name, key: ref.key } } });
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
          image: msd.spec.engine.image,
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
            capabilities: { drop: ["ALL"] },
          },
          volumeMounts: [
            { name: "dshm", mountPath: "/dev/shm" },
            { name: "model-cache", mountPath: MODEL_CACHE_PATH },
            { name: "tmp", mountPath: "/tmp" },
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
