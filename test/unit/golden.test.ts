/**
 * The vLLM pod template of every example is pinned by a golden file: an operator change that
 * alters one (a refactor, a new default, a new label) restarts running model servers, so it
 * fails here until someone decides it is intended and runs `npm run gen`.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import type { V1PodTemplateSpec } from "@kubernetes/client-node";
import { REPO_ROOT } from "../../src/delivery/chart.ts";
import { GOLDEN_DIR, exampleFiles, goldenTemplate } from "../../src/delivery/golden.ts";
import { TEMPLATE_HASH_ANNOTATION, shortHash } from "../../src/render/names.ts";
import { sortKeys } from "../../src/util/json.ts";

const REGENERATE =
  'If this change is intended (it rolls every such resource\'s vLLM pods, one at a time), run `npm run gen` and commit the golden file; see README "Changing the pod template".';

/** The first line that differs, to say what changed without a 300-line dump. */
function firstDifference(want: string, got: string): string {
  const a = want.split("\n");
  const b = got.split("\n");
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if (a[i] !== b[i])
      return `line ${i + 1}:\n  golden:   ${a[i] ?? "<end>"}\n  rendered: ${b[i] ?? "<end>"}`;
  }
  return "no difference";
}

test("every example has a golden pod template", () => {
  const examples = exampleFiles();
  assert.ok(examples.length >= 7, `examples found: ${examples.join(", ")}`);
  const golden = new Set(readdirSync(join(REPO_ROOT, GOLDEN_DIR)));
  for (const e of examples) {
    const g = goldenTemplate(e);
    assert.ok(existsSync(join(REPO_ROOT, g.file)), `${g.file} missing for ${e}. ${REGENERATE}`);
    golden.delete(g.file.slice(GOLDEN_DIR.length + 1));
  }
  assert.deepEqual([...golden], [], `golden files without an example: run \`npm run gen\``);
});

for (const example of exampleFiles()) {
  test(`the pod template of ${example} is unchanged`, () => {
    const g = goldenTemplate(example);
    const path = join(REPO_ROOT, g.file);
    const before = readFileSync(path, "utf8");
    const hashBefore = /template-hash (\w+)/.exec(before)?.[1];
    assert.equal(
      g.content,
      before,
      `${example}: the rendered vLLM pod template differs from ${g.file} (template-hash ${hashBefore} -> ${g.hash}).\n` +
        `${firstDifference(before, g.content)}\n${REGENERATE}`,
    );
  });
}

test("a golden file's hash is the hash of its own template: nothing outside the template restarts pods", () => {
  for (const example of exampleFiles()) {
    const g = goldenTemplate(example);
    const template = parse(readFileSync(join(REPO_ROOT, g.file), "utf8")) as V1PodTemplateSpec;
    const annotations = template.metadata!.annotations!;
    assert.equal(annotations[TEMPLATE_HASH_ANNOTATION], g.hash, example);
    delete annotations[TEMPLATE_HASH_ANNOTATION];
    assert.equal(shortHash(JSON.stringify(sortKeys(template))), g.hash, example);
  }
});

test("examples differ in their templates: the golden files are not all one template", () => {
  const hashes = new Set(exampleFiles().map((e) => goldenTemplate(e).hash));
  assert.equal(hashes.size, exampleFiles().length);
});
