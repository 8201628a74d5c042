/** `autoscaling.mode: hpa`: an autoscaling/v2 HorizontalPodAutoscaler on the scale subresource. */
import type { MistralSmallDeployment } from "../api/schema.ts";
import type { Plan } from "../planner/plan.ts";
import { namespacedMeta, workloadName } from "./names.ts";
import { behavior, scaleTargetRef, targetTokensPerSecond } from "./scale-target.ts";

/** The per-pod metric a Prometheus adapter rule exposes: rate(vllm:generation_tokens_total[1m]). */
export const HPA_POD_METRIC = "vllm_generation_tokens_per_second";

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
