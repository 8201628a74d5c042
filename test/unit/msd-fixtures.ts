/** Shared by the unit tests that parse a resource and render its pod. */
import assert from "node:assert/strict";
import type { V1Deployment } from "@kubernetes/client-node";
import { API_VERSION, KIND, type MistralSmallDeployment } from "../../src/api/schema.ts";
import { plan } from "../../src/planner/plan.ts";
import { renderAll } from "../../src/render/index.ts";

export type Raw = Record<string, unknown>;

/** A raw resource `small` in `ml` on A100-80GB, its spec merged with `spec`. */
export function resource(spec: Raw = {}): Raw {
  return {
    apiVersion: API_VERSION,
    kind: KIND,
    metadata: { name: "small", namespace: "ml" },
    spec: { gpu: { type: "a100-80gb" }, ...spec },
  };
}

/** The Deployment rendered for a feasible resource (the test fails if the plan is not). */
export function deploymentOf(msd: MistralSmallDeployment): V1Deployment {
  const p = plan(msd.spec);
  assert.ok(p.feasible, p.reasons.join("; "));
  const d = renderAll(msd, p).find((o) => o.kind === "Deployment");
  assert.ok(d !== undefined);
  return d as unknown as V1Deployment;
}

/**
 * The kinds renderAll emits, in order, for a resource on a static node pool with the default
 * model cache, network policy and budget; a Karpenter pool puts its NodePool first.
 */
export const RENDERED_KINDS = [
  "PersistentVolumeClaim",
  "Job",
  "Service",
  "NetworkPolicy",
  "PodDisruptionBudget",
  "Deployment",
] as const;
