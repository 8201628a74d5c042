/**
 * Writes test/golden/pod-templates/<example>.yaml: the vLLM pod template (and its hash) the
 * operator renders for every file in examples/ (src/delivery/golden.ts). Part of `npm run gen`.
 * `--check` writes nothing and exits 1 when a file differs (what test/unit/golden.test.ts does).
 */
import { GOLDEN_DIR, goldenTemplates } from "../src/delivery/golden.ts";
import { filesUnder, writeGenerated } from "./lib/generated.ts";

const golden = goldenTemplates();
const files = new Map(golden.map((g) => [g.file, g.content]));
const hashes = new Map(golden.map((g) => [g.file, g.hash]));
writeGenerated({
  files,
  // The golden file of a removed example goes too.
  stale: filesUnder(GOLDEN_DIR).filter((rel) => !files.has(rel)),
  describe: (rel) => `template-hash ${hashes.get(rel) ?? "?"}`,
  onDrift: "golden pod templates differ: run `npm run gen` if the change is intended",
});
