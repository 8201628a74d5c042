/** `autoscaling.mode: hpa`: an autoscaling/v2 HorizontalPodAutoscaler on the scale subresource. */
import type { MistralSmallDeployment } from "../api/schema.ts";
import type { Plan } from "../planner/plan.ts";
import { RESOURCES } from "../kube/resources.ts";
import { behavior, scalerFor, targetTokensPerSecond } from "./scale-target.ts";

/** The per-pod metric a Prometheus adapter rule exposes: rate(vllm:generation_tokens_total[1m]). */
export const HPA_POD_METRIC = "vllm_generation_tokens_per_second";

export function renderHpa(msd: MistralSmallDeployment, plan: Plan) {
  return scalerFor(msd, "hpa", RESOURCES.hpa, (a) => ({
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
  }));
}
