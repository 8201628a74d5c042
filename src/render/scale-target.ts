/**
 * What the HPA and the KEDA ScaledObject share, for teams that already run an autoscaler: both
 * scale the MistralSmallDeployment through its scale subresource (so the operator stays the only
 * writer of the Deployment) on the same vLLM signal as the builtin mode, generation tokens/s per
 * replica, against the same target and with the same step limits.
 */
import { API_VERSION, KIND, type MistralSmallDeployment } from "../api/schema.ts";
import type { ResourceType } from "../kube/resources.ts";
import { workloadObject } from "./names.ts";
import type { Plan } from "../planner/plan.ts";
import { scalingModel } from "../autoscale/model.ts";

/** The per-replica target, from the same scaling model the builtin autoscaler sizes with. */
export const targetTokensPerSecond = (msd: MistralSmallDeployment, plan: Plan): number =>
  scalingModel(msd.spec, plan).targetTokensPerSecond;

export function behavior(msd: MistralSmallDeployment) {
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

export const scaleTargetRef = (msd: MistralSmallDeployment) => ({
  apiVersion: API_VERSION,
  kind: KIND,
  name: msd.metadata.name,
});

type Autoscaling = MistralSmallDeployment["spec"]["autoscaling"];

/**
 * The scaler object of one autoscaling mode, or undefined when the spec asks for another: named
 * like the workload, aimed at the resource's scale subresource, its own spec fields after.
 */
export function scalerFor<R extends ResourceType, S extends object>(
  msd: MistralSmallDeployment,
  mode: Autoscaling["mode"],
  type: R,
  spec: (a: Autoscaling) => S,
) {
  const a = msd.spec.autoscaling;
  if (!a.enabled || a.mode !== mode) return undefined;
  return workloadObject(msd, type, { scaleTargetRef: scaleTargetRef(msd), ...spec(a) });
}
