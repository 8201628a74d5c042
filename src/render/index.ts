/** spec + plan -> every object the operator owns, in a fixed order. Pure. */
import type { MistralSmallDeployment } from "../api/schema.ts";
import type { Plan } from "../planner/plan.ts";
import { podTemplateHash } from "./deployment.ts";
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
  return { objects: renderAll(msd, plan), templateHash: podTemplateHash(msd, plan) };
}
