/** At most one replica voluntarily evicted at a time: each one takes minutes to come back. */
import type { V1PodDisruptionBudget } from "@kubernetes/client-node";
import type { MistralSmallDeployment } from "../api/schema.ts";
import { selectorLabels, workloadObject } from "./names.ts";
import { RESOURCES } from "../kube/resources.ts";

export function renderPdb(msd: MistralSmallDeployment): V1PodDisruptionBudget {
  return workloadObject(msd, RESOURCES.pdb, {
    maxUnavailable: 1,
    selector: { matchLabels: selectorLabels(msd) },
    // A pod that never became ready holds nothing worth protecting; let drains proceed.
    unhealthyPodEvictionPolicy: "AlwaysAllow",
  });
}
