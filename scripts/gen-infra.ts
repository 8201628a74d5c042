/**
 * Writes infra/src/generated/ (not committed): the operator's modules the Pulumi package needs,
 * and the CRDs as data (src/delivery/infra-vendor.ts). infra's build, typecheck and test
 * scripts run it first; so does `npm run gen`.
 */
import { INFRA_GENERATED_DIR, infraVendorFiles } from "../src/delivery/infra-vendor.ts";
import { filesUnder, writeGenerated } from "./lib/generated.ts";

const files = infraVendorFiles();
writeGenerated({
  files,
  stale: filesUnder(INFRA_GENERATED_DIR).filter((rel) => !files.has(rel)),
  onDrift: "infra/src/generated is out of date: run `npm run gen`",
});
