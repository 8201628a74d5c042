/** Regenerates crds/ from the zod schema. `npm run gen` runs it; a test fails on drift. */
import { writeFileSync } from "node:fs";
import { renderCrdFile, CRD_PATH } from "../src/api/crd-file.ts";

writeFileSync(CRD_PATH, renderCrdFile());
console.log(`wrote ${CRD_PATH}`);
