/**
 * Stands in for a later operator release that changed a default in the pod template, so tests
 * can upgrade the operator without a second build of it.
 */
import type { V1Deployment } from "@kubernetes/client-node";
import { renderDesired, type Desired, type Manifest } from "../../src/render/index.ts";
import { TEMPLATE_HASH_ANNOTATION } from "../../src/render/names.ts";
import { templateHashOf } from "../../src/render/deployment.ts";

/** The new default: a longer grace period than the current release's 120 s. */
export const LATER_GRACE_SECONDS = 150;

/** What renderDesired would give if the release's default grace period were LATER_GRACE_SECONDS. */
export function withLaterDefault(desired: Desired): Desired {
  let templateHash = desired.templateHash;
  const objects = desired.objects.map((o): Manifest => {
    if (o.kind !== "Deployment") return o;
    const d = structuredClone(o) as Manifest & V1Deployment;
    const template = d.spec!.template;
    template.spec!.terminationGracePeriodSeconds = LATER_GRACE_SECONDS;
    templateHash = templateHashOf(template);
    template.metadata!.annotations![TEMPLATE_HASH_ANNOTATION] = templateHash;
    d.metadata.annotations = {
      ...d.metadata.annotations,
      [TEMPLATE_HASH_ANNOTATION]: templateHash,
    };
    return d;
  });
  return { objects, templateHash };
}

export const renderLaterRelease: typeof renderDesired = (msd, plan) =>
  withLaterDefault(renderDesired(msd, plan));
