/**
 * Writes infra/src/generated/: the operator's modules the Pulumi package needs, and the CRDs
 * as data (src/delivery/infra-vendor.ts). Part of `npm run gen`. `--check` writes nothing
 * and exits 1 when a file differs or is stale.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { REPO_ROOT } from "../src/delivery/chart.ts";
import { INFRA_GENERATED_DIR, infraVendorFiles } from "../src/delivery/infra-vendor.ts";

const check = process.argv.includes("--check");
const files = infraVendorFiles();
let stale = 0;
for (const [rel, content] of files) {
  const path = join(REPO_ROOT, rel);
  if (existsSync(path) && readFileSync(path, "utf8") === content) continue;
  stale++;
  if (check) {
    console.error(`${rel}: out of date`);
    continue;
  }
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, content);
  console.log(`wrote ${rel}`);
}
/** Every file under dir, repository-relative. */
function walk(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? walk(join(dir, e.name)) : [relative(REPO_ROOT, join(dir, e.name))],
  );
}
for (const rel of walk(join(REPO_ROOT, INFRA_GENERATED_DIR))) {
  if (files.has(rel)) continue;
  stale++;
  if (check) console.error(`${rel}: no longer vendored (stale)`);
  else {
    rmSync(join(REPO_ROOT, rel));
    console.log(`removed ${rel}`);
  }
}
if (check && stale > 0) {
  console.error("infra/src/generated drifted: run `npm run gen`");
  process.exitCode = 1;
}
