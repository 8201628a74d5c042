/**
 * The publishable package: `npm pack` (which builds dist/ through prepack) holds compiled JS
 * and .d.ts for its entry point, and everything they import — nothing outside infra/. The
 * packed files are extracted to a temporary folder and loaded from there, so an import of a
 * file that is not packed (or of ../../src) fails this test.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile, execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, normalize } from "node:path";

const INFRA = join(import.meta.dirname, "..");

interface PackResult {
  filename: string;
  files: { path: string }[];
}

/** Relative imports of a compiled module: what must be inside the tarball too. */
function relativeImports(text: string): string[] {
  return [...text.matchAll(/(?:import|export)\s[^;]*?from\s+"(\.[^"]+)"/gs)].map((m) => m[1]!);
}

test("npm pack holds the compiled entry point, its types, and every file it imports", async () => {
  const dir = mkdtempSync(join(tmpdir(), "msd-infra-pack-"));
  try {
    const out = execFileSync("npm", ["pack", "--json", "--pack-destination", dir], {
      cwd: INFRA,
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
    });
    // prepack's build logs go to stdout before the JSON.
    const [pack] = JSON.parse(out.slice(out.indexOf("\n[") + 1)) as PackResult[];
    assert.ok(pack, "npm pack reported its tarball");
    const files = new Set(pack.files.map((f) => f.path));
    const pkg = JSON.parse(readFileSync(join(INFRA, "package.json"), "utf8")) as {
      main: string;
      types: string;
      exports: Record<string, { types: string; import: string } | string>;
    };
    for (const f of [pkg.main, pkg.types, "package.json"]) assert.ok(files.has(f), `${f} packed`);
    assert.ok(![...files].some((f) => f.endsWith(".ts") && !f.endsWith(".d.ts")), "no TS sources");
    assert.ok(
      ![...files].some((f) => f.startsWith("test/") || f === "index.js"),
      "no tests, no example program",
    );

    execFileSync("tar", ["-xzf", join(dir, pack.filename), "-C", dir]);
    const root = join(dir, "package");
    for (const f of files) {
      if (!f.endsWith(".js") && !f.endsWith(".d.ts")) continue;
      for (const spec of relativeImports(readFileSync(join(root, f), "utf8"))) {
        const target = normalize(join(dirname(f), spec));
        assert.ok(!target.startsWith(".."), `${f} imports ${spec}, outside the package`);
        const candidates = f.endsWith(".d.ts")
          ? [target, target.replace(/\.js$/, ".d.ts"), target.replace(/\.ts$/, ".d.ts")]
          : [target];
        assert.ok(
          candidates.some((c) => files.has(c)),
          `${f} imports ${spec}, which is not packed`,
        );
      }
    }

    // Loaded from the extracted tarball, with only the declared dependencies installed.
    symlinkSync(join(INFRA, "node_modules"), join(root, "node_modules"), "dir");
    const program = join(dir, "program.mjs");
    writeFileSync(
      program,
      `import * as pulumi from "${join(root, "node_modules", "@pulumi", "pulumi", "index.js")}";
pulumi.runtime.setMocks({
  newResource: (a) => ({ id: a.name + "-id", state: a.inputs }),
  call: (a) => a.inputs,
}, "p", "s", false);
const m = await import(${JSON.stringify(join(root, pkg.main))});
const op = new m.MistralSmallOperator("op", {});
const d = new m.MistralSmallDeployment("llm", { spec: { gpu: { type: "a100-80gb" } }, waitForReady: false });
await new Promise((r) => pulumi.all([d.resource.urn, ...[...op.objects.values()].map((o) => o.urn)]).apply(r));
console.log(JSON.stringify({ objects: op.objects.size, crds: m.crdManifests().length }));
`,
    );
    const r = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
      execFile(process.execPath, [program], { cwd: root }, (err, stdout, stderr) =>
        resolve({ code: err === null ? 0 : 1, stdout, stderr }),
      ),
    );
    assert.equal(r.code, 0, r.stderr);
    const got = JSON.parse(r.stdout.trim().split("\n").pop()!) as { objects: number; crds: number };
    assert.equal(got.crds, 1);
    assert.ok(got.objects >= 10, `declared ${got.objects} objects`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("the package's version is the operator's: its default image is the released one", () => {
  const infra = JSON.parse(readFileSync(join(INFRA, "package.json"), "utf8")) as {
    version: string;
  };
  const root = JSON.parse(readFileSync(join(INFRA, "..", "package.json"), "utf8")) as {
    version: string;
  };
  assert.equal(infra.version, root.version);
});
