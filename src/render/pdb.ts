/** At most one replica voluntarily evicted at a time: each one takes minutes to come back. */
import type { V1PodDisruptionBudget } from "@kubernetes/client-node";
import type { MistralSmallDeployment } from "../api/schema.ts";
import { namespacedMeta, selectorLabels, workloadName } from "./names.ts";

export function renderPdb(msd: MistralSmallDeployment): V1PodDisruptionBudget {
  return {
    apiVersion: "policy/v1",
    kind: "PodDisruptionBudget",
    metadata: namespacedMeta(msd, workloadName(msd)),
    spec: {
      maxUnavailable: 1,
      selector: { matchLabels: selectorLabels(msd) },
      // A pod that never became ready holds nothing worth protecting; let drains proceed.
      unhealthyPodEvictionPolicy: "AlwaysAllow",
    },
  };
}
