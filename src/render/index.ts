/** spec + plan -> every object the operator owns, in a fixed order. Pure. */
import type { KubernetesObject } from "@kubernetes/client-node";
import type { MistralSmallDeployment } from "../api/schema.ts";
import type { Plan } from "../planner/plan.ts";
import { renderDeployment } from "./deployment.ts";
import { renderNodePool } from "./nodepool.ts";
import { renderPdb } from "./pdb.ts";
import { renderCacheClaim } from "./pvc.ts";
import { renderService } from "./service.ts";
import { renderHpa, renderScaledObject } from "./autoscaler.ts";

export type Manifest = KubernetesObject & {
  apiVersion: string;
  kind: string;
  metadata: { name: string };
};

export function renderAll(msd: MistralSmallDeployment, plan: Plan): Manifest[] {
  const objects = [
    renderNodePool(msd, plan),
    renderCacheClaim(msd),
    renderService(msd),
    renderPdb(msd),
    renderDeployment(msd, plan, msd.spec.replicas),
    renderHpa(msd, plan),
    renderScaledObject(msd, plan),
  ];
  return objects.filter((o): o is NonNullable<typeof o> => o !== undefined) as Manifest[];
}
