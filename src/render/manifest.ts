import type { KubernetesObject } from "@kubernetes/client-node";

/** A rendered object: what the renderer returns and the reconciler applies. */
export type Manifest = KubernetesObject & {
  apiVersion: string;
  kind: string;
  metadata: { name: string };
};
