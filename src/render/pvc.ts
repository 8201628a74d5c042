/**
 * The model cache claim of a Hub checkpoint: one per (checkpoint, revision, format) and shared
 * (see ./model-cache.ts). None when the user brought a claim (cache.existingClaim) or the
 * weights are read in place (model.source).
 */
import type { V1PersistentVolumeClaim } from "@kubernetes/client-node";
import type { MistralSmallDeployment } from "../api/schema.ts";
import type { Plan } from "../planner/plan.ts";
import { cacheIdentity, sharedMeta, weightSource } from "./model-cache.ts";

export function renderCacheClaim(
  msd: MistralSmallDeployment,
  plan: Plan,
): V1PersistentVolumeClaim | undefined {
  const cache = msd.spec.model.cache;
  if (weightSource(msd) !== "hub") return undefined;
  const id = cacheIdentity(msd, plan);
  if (!id.ownClaim) return undefined;
  return {
    apiVersion: "v1",
    kind: "PersistentVolumeClaim",
    metadata: sharedMeta(msd, id.claimName, id.key),
    spec: {
      accessModes: [cache.accessMode],
      resources: { requests: { storage: cache.size } },
      ...(cache.storageClassName === undefined ? {} : { storageClassName: cache.storageClassName }),
    },
  };
}
