/** Names and labels of the objects one MistralSmallDeployment owns. */
import { createHash } from "node:crypto";
import { API_VERSION, GROUP, KIND, type MistralSmallDeployment } from "../api/schema.ts";
import type { V1OwnerReference } from "@kubernetes/client-node";

import { MODEL_SERVER_APP, OPERATOR_NAME } from "../util/identity.ts";
import { apiVersionOf, type ApiVersionOf, type ResourceType } from "../kube/resources.ts";

export { MODEL_SERVER_APP, OPERATOR_NAME };
export const FIELD_MANAGER = OPERATOR_NAME;
export const TEMPLATE_HASH_ANNOTATION = `${GROUP}/template-hash`;
export const OWNER_NAME_LABEL = `${GROUP}/owner-name`;
export const OWNER_NAMESPACE_LABEL = `${GROUP}/owner-namespace`;
export const OWNER_UID_LABEL = `${GROUP}/owner-uid`;

export function shortHash(value: string, length = 10): string {
  return createHash("sha256").update(value).digest("hex").slice(0, length);
}

export function workloadName(msd: MistralSmallDeployment): string {
  return msd.metadata.name;
}

/** Cluster-scoped, so the namespace goes into the name; kept within a 63-char label value. */
export function nodePoolName(msd: MistralSmallDeployment): string {
  const full = `msd-${msd.metadata.namespace}-${msd.metadata.name}`;
  if (full.length <= 63) return full;
  return `${full.slice(0, 52)}-${shortHash(full)}`;
}

export function selectorLabels(msd: {
  readonly metadata: { readonly name: string };
}): Record<string, string> {
  return {
    "app.kubernetes.io/instance": msd.metadata.name,
    "app.kubernetes.io/name": MODEL_SERVER_APP,
  };
}

export function commonLabels(msd: MistralSmallDeployment): Record<string, string> {
  return {
    ...selectorLabels(msd),
    "app.kubernetes.io/component": "inference-server",
    "app.kubernetes.io/managed-by": OPERATOR_NAME,
    "app.kubernetes.io/part-of": "mistral-small-4",
  };
}

export function labelSelectorString(msd: MistralSmallDeployment): string {
  return Object.entries(selectorLabels(msd))
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k}=${v}`)
    .join(",");
}

/** Owner reference for namespaced objects; absent until the object has a uid. */
export function ownerReferences(msd: MistralSmallDeployment): V1OwnerReference[] | undefined {
  if (msd.metadata.uid === undefined) return undefined;
  return [
    {
      apiVersion: API_VERSION,
      kind: KIND,
      name: msd.metadata.name,
      uid: msd.metadata.uid,
      controller: true,
      blockOwnerDeletion: true,
    },
  ];
}

type WorkloadMeta = ReturnType<typeof namespacedMeta>;

export function namespacedMeta(msd: MistralSmallDeployment, name: string) {
  const owners = ownerReferences(msd);
  return {
    name,
    namespace: msd.metadata.namespace,
    labels: commonLabels(msd),
    ...(owners === undefined ? {} : { ownerReferences: owners }),
  };
}

/** An object of one API type named like the workload, in the resource's namespace, owned by it. */
export function workloadObject<R extends ResourceType, S>(
  msd: MistralSmallDeployment,
  type: R,
  spec: S,
): { apiVersion: ApiVersionOf<R>; kind: R["kind"]; metadata: WorkloadMeta; spec: S } {
  return {
    apiVersion: apiVersionOf(type),
    kind: type.kind,
    metadata: namespacedMeta(msd, workloadName(msd)),
    spec,
  };
}

export function serviceUrl(msd: MistralSmallDeployment, port: number): string {
  return `http://${workloadName(msd)}.${msd.metadata.namespace}.svc:${port}/v1`;
}
