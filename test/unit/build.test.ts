/**
 * `npm run build` compiles src/ to dist/src/, and bin/msd.js then prefers the compiled CLI.
 * Paths to repository files (scripts/, crds/) must still resolve from there (issue 17, item 8).
 * The build goes to a scratch directory laid out like the repository (dist/ and bin/ next to each
 * other under one parent inside the checkout), so the real dist/ is never touched.
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const REPO = fileURLToPath(new URL("../../", import.meta.url));
mkdirSync(join(REPO, ".tmp"), { recursive: true });
const scratch = mkdtempSync(join(REPO, ".tmp", "build-test-"));
after(() => rmSync(scratch, { recursive: true, force: true }));

function node(args: readonly string[]) {
  const r = spawnSync(process.execPath, args, { cwd: REPO, encoding: "utf8", timeout: 120_000 });
  assert.equal(r.error, undefined, String(r.error));
  return r;
}

test("the compiled CLI finds the build script and the CRD in the repository, not in dist/", () => {
  const tsc = node([
    join(REPO, "node_modules", "typescript", "bin", "tsc"),
    "-p",
    "tsconfig.build.json",
    "--outDir",
    join(scratch, "dist"),
  ]);
  assert.equal(tsc.status, 0, tsc.stdout + tsc.stderr);
  // The simulator and benchmarks stay out of what the image carries: nothing in src/ imports
  // bench/ (tsc would compile an imported file into dist/ although it is outside "include").
  assert.equal(existsSync(join(scratch, "dist", "bench")), false, "dist/ carries bench/");
  assert.ok(existsSync(join(scratch, "dist", "src", "autoscale", "pipeline.js")));
  mkdirSync(join(scratch, "bin"));
  copyFileSync(join(REPO, "bin", "msd.js"), join(scratch, "bin", "msd.js"));

  const probe = node([
    "--input-type=module",
    "-e",
    `const b = await import(${JSON.stringify(join(scratch, "dist/src/cluster/binaries.js"))});
     const c = await import(${JSON.stringify(join(scratch, "dist/src/api/crd-file.js"))});
     console.log(JSON.stringify({ script: b.BUILD_SCRIPT, crd: c.CRD_PATH }));`,
  ]);
  assert.equal(probe.status, 0, probe.stderr);
  const paths = JSON.parse(probe.stdout) as { script: string; crd: string };
  assert.equal(paths.script, join(REPO, "scripts", "build-controlplane.sh"));
  assert.ok(existsSync(paths.script), `${paths.script} does not exist`);
  assert.equal(
    paths.crd,
    join(REPO, "crds", "serving.mistralsmall.dev_mistralsmalldeployments.yaml"),
  );

  // bin/msd.js runs the compiled entry when dist/ sits next to it; its CRD is the committed one.
  const crd = node([join(scratch, "bin", "msd.js"), "crd"]);
  assert.equal(crd.status, 0, crd.stderr);
  assert.equal(crd.stdout, readFileSync(paths.crd, "utf8"));
});
