/** The model cache claim, unless the user brought an existing one. */
import type { V1PersistentVolumeClaim } from "@kubernetes/client-node";
import type { MistralSmallDeployment } from "../api/schema.ts";
import { cacheClaimName, namespacedMeta } from "./names.ts";

export function renderCacheClaim(msd: MistralSmallDeployment): V1PersistentVolumeClaim | undefined {
  const cache = msd.spec.model.cache;
  if (cache.existingClaim !== undefined) return undefined;
  return {
    apiVersion: "v1",
    kind: "PersistentVolumeClaim",
    metadata: namespacedMeta(msd, cacheClaimName(msd)),
    spec: {
      accessModes: [cache.accessMode],
      resources: { requests: { storage: cache.size } },
      ...(cache.storageClassName === undefined ? {} : { storageClassName: cache.storageClassName }),
    },
  };
}
