/** `autoscaling.mode: keda`: a KEDA ScaledObject with Prometheus triggers on the scale subresource. */
import type { MistralSmallDeployment } from "../api/schema.ts";
import type { Plan } from "../planner/plan.ts";
import { RESOURCES } from "../kube/resources.ts";
import { behavior, scalerFor, targetTokensPerSecond } from "./scale-target.ts";

export const DEFAULT_PROMETHEUS_URL = "http://prometheus-operated.monitoring.svc:9090";

export function renderScaledObject(msd: MistralSmallDeployment, plan: Plan) {
  const model = msd.spec.model.servedModelName;
  const selector = `namespace="${msd.metadata.namespace}",model_name="${model}"`;
  return scalerFor(msd, "keda", RESOURCES.scaledObject, (a) => ({
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
  }));
}
