/**
 * For teams that already run an autoscaler: `mode: hpa` emits an autoscaling/v2
 * HorizontalPodAutoscaler, `mode: keda` a KEDA ScaledObject. Both scale the
 * MistralSmallDeployment through its scale subresource (so the operator stays the
 * only writer of the Deployment) on the same vLLM signal as the builtin mode:
 * generation tokens/s per replica against the same target.
 */
import { API_VERSION, KIND, type MistralSmallDeployment } from "../api/schema.ts";
import type { Plan } from "../planner/plan.ts";
import { scalingModel } from "../autoscale/model.ts";
import { namespacedMeta, workloadName } from "./names.ts";

export const DEFAULT_PROMETHEUS_URL = "http://prometheus-operated.monitoring.svc:9090";
/** The per-pod metric a Prometheus adapter rule exposes: rate(vllm:generation_tokens_total[1m]). */
export const HPA_POD_METRIC = "vllm_generation_tokens_per_second";

/** The per-replica target, from the same scaling model the builtin autoscaler sizes with. */
const targetTokensPerSecond = (msd: MistralSmallDeployment, plan: Plan): number =>
  scalingModel(msd.spec, plan).targetTokensPerSecond;

function behavior(msd: MistralSmallDeployment) {
  const { scaleUp, scaleDown } = msd.spec.autoscaling;
  return {
    scaleUp: {
      stabilizationWindowSeconds: scaleUp.stabilizationWindowSeconds,
      policies: [
        { type: "Pods", value: scaleUp.maxReplicasPerStep, periodSeconds: scaleUp.periodSeconds },
      ],
    },
    scaleDown: {
      stabilizationWindowSeconds: scaleDown.stabilizationWindowSeconds,
      policies: [
        {
          type: "Pods",
          value: scaleDown.maxReplicasPerStep,
          periodSeconds: scaleDown.periodSeconds,
        },
      ],
    },
  };
}

const scaleTargetRef = (msd: MistralSmallDeployment) => ({
  apiVersion: API_VERSION,
  kind: KIND,
  name: msd.metadata.name,
});

export function renderHpa(msd: MistralSmallDeployment, plan: Plan) {
  const a = msd.spec.autoscaling;
  if (!a.enabled || a.mode !== "hpa") return undefined;
  return {
    apiVersion: "autoscaling/v2",
    kind: "HorizontalPodAutoscaler",
    metadata: namespacedMeta(msd, workloadName(msd)),
    spec: {
      scaleTargetRef: scaleTargetRef(msd),
      minReplicas: Math.max(1, a.minReplicas),
      maxReplicas: a.maxReplicas,
      metrics: [
        {
          type: "Pods",
          pods: {
            metric: { name: HPA_POD_METRIC },
            target: {
              type: "AverageValue",
              averageValue: String(targetTokensPerSecond(msd, plan)),
            },
          },
        },
      ],
      behavior: behavior(msd),
    },
  };
}

export function renderScaledObject(msd: MistralSmallDeployment, plan: Plan) {
  const a = msd.spec.autoscaling;
  if (!a.enabled || a.mode !== "keda") return undefined;
  const model = msd.spec.model.servedModelName;
  const selector = `namespace="${msd.metadata.namespace}",model_name="${model}"`;
  return {
    apiVersion: "keda.sh/v1alpha1",
    kind: "ScaledObject",
    metadata: namespacedMeta(msd, workloadName(msd)),
    spec: {
      scaleTargetRef: scaleTargetRef(msd),
      minReplicaCount: a.minReplicas,
      maxReplicaCount: a.maxReplicas,
      pollingInterval: 15,
      cooldownPeriod: a.scaleDown.stabilizationWindowSeconds,
      advanced: { horizontalPodAutoscalerConfig: { behavior: behavior(msd) } },
      triggers: [
        {
          type: "prometheus",
          name: "generation-tokens",
          metadata: {
            serverAddress: a.prometheusUrl ?? DEFAULT_PROMETHEUS_URL,
            // Total generation throughput; KEDA divides by the threshold per replica.
            query: `sum(rate(vllm:generation_tokens_total{${selector}}[1m]))`,
            threshold: String(targetTokensPerSecond(msd, plan)),
          },
        },
        {
          type: "prometheus",
          name: "queue",
          metadata: {
            serverAddress: a.prometheusUrl ?? DEFAULT_PROMETHEUS_URL,
            // Waiting requests: a backlog scales up even before throughput shows it.
            query: `sum(vllm:num_requests_waiting{${selector}})`,
            threshold: String(Math.max(1, Math.round(plan.maxNumSeqs / 4))),
          },
        },
      ],
    },
  };
}
