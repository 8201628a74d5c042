/**
 * The Pulumi package (infra/) runs on copies of the operator's modules and CRDs
 * (infra/src/generated, written by scripts/gen-infra.ts before infra is built or tested, never
 * committed), and infra/src imports nothing from outside infra/.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { join, relative } from "node:path";
import { REPO_ROOT } from "../../src/delivery/chart.ts";
import {
  INFRA_GENERATED_DIR,
  VENDORED_ENTRIES,
  infraVendorFiles,
  vendoredClosure,
} from "../../src/delivery/infra-vendor.ts";

function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)],
  );
}

test("gen-infra writes exactly the vendored files, each one byte-stable", () => {
  const first = infraVendorFiles();
  const again = infraVendorFiles();
  assert.deepEqual([...again.keys()].sort(), [...first.keys()].sort());
  for (const [rel, content] of first) {
    assert.ok(rel.startsWith(INFRA_GENERATED_DIR), rel);
    assert.equal(again.get(rel), content, rel);
  }
});

test("the vendored closure holds the entries and the engine data they read", () => {
  const closure = vendoredClosure();
  for (const e of VENDORED_ENTRIES) assert.ok(closure.includes(e), e);
  assert.ok(
    closure.some((f) => f.endsWith(".json")),
    "the vLLM flag fixtures",
  );
  assert.ok(!closure.some((f) => f.startsWith("src/controller/reconcile")), "not the controller");
});

test("infra/src imports nothing from outside infra/", () => {
  for (const f of walk(join(REPO_ROOT, "infra", "src")).filter((x) => x.endsWith(".ts"))) {
    const text = readFileSync(f, "utf8");
    for (const m of text.matchAll(/(?:import|export)\s[^;]*?from\s+"(\.[^"]+)"/gs)) {
      const target = relative(join(REPO_ROOT, "infra"), join(f, "..", m[1]!));
      assert.ok(!target.startsWith(".."), `${relative(REPO_ROOT, f)} imports ${m[1]}`);
    }
  }
});

test("the infra package's version is the operator's (its default image tag)", () => {
  const read = (p: string) =>
    (JSON.parse(readFileSync(join(REPO_ROOT, p), "utf8")) as { version: string }).version;
  assert.equal(read("infra/package.json"), read("package.json"));
});
