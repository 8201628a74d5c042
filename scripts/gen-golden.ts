/**
 * Writes test/golden/pod-templates/<example>.yaml: the vLLM pod template (and its hash) the
 * operator renders for every file in examples/ (src/delivery/golden.ts). Part of `npm run gen`.
 * `--check` writes nothing and exits 1 when a file differs (what test/unit/golden.test.ts does).
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { REPO_ROOT } from "../src/delivery/chart.ts";
import { GOLDEN_DIR, goldenTemplates } from "../src/delivery/golden.ts";

const check = process.argv.includes("--check");
const dir = join(REPO_ROOT, GOLDEN_DIR);
const golden = goldenTemplates();
let stale = 0;
for (const g of golden) {
  const path = join(REPO_ROOT, g.file);
  const before = existsSync(path) ? readFileSync(path, "utf8") : undefined;
  if (before === g.content) continue;
  stale++;
  if (check) {
    console.error(`${g.file}: differs (template-hash now ${g.hash})`);
    continue;
  }
  mkdirSync(dir, { recursive: true });
  writeFileSync(path, g.content);
  console.log(`wrote ${g.file} (template-hash ${g.hash})`);
}
// The golden file of a removed example goes too.
const wanted = new Set(golden.map((g) => g.file));
for (const f of existsSync(dir) ? readdirSync(dir) : []) {
  const rel = join(GOLDEN_DIR, f);
  if (wanted.has(rel)) continue;
  stale++;
  if (check) console.error(`${rel}: no such example (stale)`);
  else {
    rmSync(join(REPO_ROOT, rel));
    console.log(`removed ${rel}`);
  }
}
if (check && stale > 0) {
  console.error("golden pod templates differ: run `npm run gen` if the change is intended");
  process.exitCode = 1;
}
