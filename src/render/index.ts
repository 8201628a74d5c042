/** spec + plan -> every object the operator owns, in a fixed order. Pure. */
import type { MistralSmallDeployment } from "../api/schema.ts";
import type { Plan } from "../planner/plan.ts";
import type { V1Deployment } from "@kubernetes/client-node";
import { RESOURCES } from "../kube/resources.ts";
import { TEMPLATE_HASH_ANNOTATION } from "./names.ts";
import type { Manifest } from "./manifest.ts";
import { OWNED_KINDS } from "./owned.ts";

export type { Manifest };

export function renderAll(msd: MistralSmallDeployment, plan: Plan): Manifest[] {
  return OWNED_KINDS.flatMap((k) => {
    const o = k.render(msd, plan);
    return o === undefined ? [] : [o as Manifest];
  });
}

export interface Desired {
  readonly objects: readonly Manifest[];
  /** The pod template hash the Deployment carries: a rollout is done when it is live. */
  readonly templateHash: string;
}

/** What the reconciler applies: the objects and the pod-template hash they name. */
export function renderDesired(msd: MistralSmallDeployment, plan: Plan): Desired {
  const objects = renderAll(msd, plan);
  const deployment = objects.find(
    (o): o is Manifest & V1Deployment => o.kind === RESOURCES.deployment.kind,
  );
  // The hash the renderer put on the template it rendered, not a second render of it.
  const templateHash = deployment?.spec?.template.metadata?.annotations?.[TEMPLATE_HASH_ANNOTATION];
  if (templateHash === undefined) throw new Error("renderAll rendered no hashed pod template");
  return { objects, templateHash };
}
