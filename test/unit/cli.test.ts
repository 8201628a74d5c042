import { test, describe, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseAllDocuments } from "yaml";
import { CRD_PATH, renderCrdFile } from "../../src/api/crd-file.ts";
import { parseResource, ValidationError } from "../../src/api/validate.ts";
import { RENDERED_KINDS } from "./msd-fixtures.ts";

const REPO = fileURLToPath(new URL("../../", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "msd-cli-"));
after(() => rmSync(dir, { recursive: true, force: true }));

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function msd(args: readonly string[], input?: string): Run {
  const r = spawnSync(process.execPath, ["bin/msd.js", ...args], {
    cwd: REPO,
    encoding: "utf8",
    input,
    timeout: 30_000,
  });
  assert.equal(r.error, undefined, String(r.error));
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

const FEASIBLE = `apiVersion: serving.mistralsmall.dev/v1alpha1
kind: MistralSmallDeployment
metadata:
  name: small
  namespace: ml
spec:
  gpu:
    type: a100-80gb
  maxModelLen: 65536
`;

// FP8 weights alone (56.3 GiB per GPU) exceed an A100-40GB at TP=2.
const INFEASIBLE = `apiVersion: serving.mistralsmall.dev/v1alpha1
kind: MistralSmallDeployment
metadata:
  name: small
spec:
  gpu:
    type: a100-40gb
    tensorParallelSize: 2
`;

const INVALID_DOC = {
  apiVersion: "serving.mistralsmall.dev/v1",
  kind: "MistralSmallDeployment",
  metadata: { name: "Small" },
  spec: {
    gpu: { type: "a100-80gb", tensorParallelSize: 3 },
    maxModelLen: 300000,
    model: { quantization: "bf16" },
    engine: { extraArgs: ["--max-model-len=4096"] },
  },
};

const feasiblePath = file("feasible.yaml", FEASIBLE);
const infeasiblePath = file("infeasible.yaml", INFEASIBLE);
// JSON is YAML: the CLI reads either.
const invalidPath = file("invalid.json", JSON.stringify(INVALID_DOC));

const PLAN_KEYS = [
  "feasible",
  "tensorParallelSize",
  "gpusPerReplica",
  "gpuType",
  "quantization",
  "maxModelLen",
  "weightBytesPerGpu",
  "kvCacheBytesPerToken",
  "kvCacheBytesPerGpu",
  "kvCacheTokensPerReplica",
  "reasons",
  "vllmArgs",
];

describe("msd plan", () => {
  let feasibleJson: Record<string, unknown> | undefined;

  test("-o json on a feasible resource: exit 0 and the plan as JSON", () => {
    const r = msd(["plan", "-f", feasiblePath, "-o", "json"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, "");
    const json = JSON.parse(r.stdout) as Record<string, unknown>;
    for (const k of PLAN_KEYS) assert.ok(k in json, `missing ${k}`);
    assert.equal(json.feasible, true);
    assert.equal(json.gpuType, "a100-80gb");
    assert.equal(json.quantization, "fp8");
    assert.equal(json.maxModelLen, 65536);
    assert.equal(json.tensorParallelSize, 2);
    assert.equal(json.gpusPerReplica, 2);
    assert.equal(json.kvCacheBytesPerToken, 23040);
    assert.equal(
      json.kvCacheTokensPerReplica,
      Math.floor((json.kvCacheBytesPerGpu as number) / 23040),
    );
    assert.deepEqual(json.reasons, []);
    const args = json.vllmArgs as string[];
    assert.equal(args[args.indexOf("--tensor-parallel-size") + 1], "2");
    assert.equal(args[args.indexOf("--max-model-len") + 1], "65536");
    feasibleJson = json;
  });

  test("reads the resource from stdin with -f -", () => {
    const r = msd(["plan", "-f", "-", "-o", "json"], FEASIBLE);
    assert.equal(r.code, 0, r.stderr);
    const json = JSON.parse(r.stdout) as Record<string, unknown>;
    assert.equal(json.tensorParallelSize, 2);
    if (feasibleJson !== undefined) assert.deepEqual(json, feasibleJson);
  });

  test("an infeasible resource: exit 3 with the reasons", () => {
    const r = msd(["plan", "-f", infeasiblePath, "-o", "json"]);
    assert.equal(r.code, 3, r.stderr);
    const json = JSON.parse(r.stdout) as { feasible: boolean; reasons: string[] };
    assert.equal(json.feasible, false);
    assert.equal(json.reasons.length, 1);
    assert.ok(json.reasons[0]!.includes("56.3 GiB per GPU at TP=2"), json.reasons[0]);
  });

  test("an invalid resource: exit 2 with every problem on stderr", () => {
    // The expected problems, from the same validator the CLI uses.
    let expected: readonly { path: string; message: string }[] = [];
    try {
      parseResource(INVALID_DOC);
    } catch (err) {
      assert.ok(err instanceof ValidationError);
      expected = err.problems;
    }
    assert.ok(expected.length >= 5, `expected many problems, got ${expected.length}`);

    const r = msd(["plan", "-f", invalidPath]);
    assert.equal(r.code, 2);
    assert.equal(r.stdout, "");
    for (const p of expected) {
      assert.ok(
        r.stderr.includes(`- ${p.path}: ${p.message}`),
        `stderr lacks ${p.path}: ${r.stderr}`,
      );
    }
    for (const path of [
      "apiVersion",
      "metadata.name",
      "spec.gpu.tensorParallelSize",
      "spec.maxModelLen",
      "spec.engine.extraArgs",
    ]) {
      assert.ok(r.stderr.includes(`- ${path}: `), `stderr lacks ${path}`);
    }
  });

  test("table output (the default)", () => {
    const r = msd(["plan", "-f", feasiblePath]);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trimEnd().split("\n");
    assert.match(lines[0]!, /^feasible\s+yes$/);
    assert.ok(
      lines.some((l) => /^gpu\s+a100-80gb x 2 per replica$/.test(l)),
      r.stdout,
    );
    assert.ok(
      lines.some((l) => /^tensor parallel\s+2 \(auto\)$/.test(l)),
      r.stdout,
    );
    assert.ok(
      lines.some((l) => /^context cap\s+65536 tokens$/.test(l)),
      r.stdout,
    );
    assert.ok(
      lines.some((l) => /^note: /.test(l)),
      "A100 notes are shown",
    );
    assert.match(
      lines.at(-1)!,
      /^vllm serve mistralai\/Mistral-Small-4-119B-2603 .*--tensor-parallel-size 2 /,
    );
  });
});

describe("msd render", () => {
  test("a feasible resource: exit 0 and a YAML stream of the objects", () => {
    const r = msd(["render", "-f", feasiblePath]);
    assert.equal(r.code, 0, r.stderr);
    const docs = parseAllDocuments(r.stdout);
    assert.ok(Array.isArray(docs));
    for (const d of docs) assert.deepEqual(d.errors, []);
    const objects = docs.map((d) => d.toJS() as { kind: string; metadata: { name: string } });
    assert.deepEqual(
      objects.map((o) => o.kind),
      RENDERED_KINDS,
    );
    const deployment = objects[RENDERED_KINDS.indexOf("Deployment")] as unknown as {
      metadata: { namespace: string };
      spec: {
        template: { spec: { containers: { resources: { limits: Record<string, string> } }[] } };
      };
    };
    assert.equal(deployment.metadata.namespace, "ml");
    assert.equal(
      deployment.spec.template.spec.containers[0]!.resources.limits["nvidia.com/gpu"],
      "2",
    );
  });

  test("an infeasible resource: exit 3, reasons on stderr, nothing on stdout", () => {
    const r = msd(["render", "-f", infeasiblePath]);
    assert.equal(r.code, 3);
    assert.equal(r.stdout, "");
    assert.match(r.stderr, /^infeasible plan:\n {2}- FP8 weights need 56\.3 GiB per GPU at TP=2/);
  });
});

describe("msd crd and usage errors", () => {
  test("crd prints the committed CRD", () => {
    const r = msd(["crd"]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.stdout === renderCrdFile(), "`msd crd` differs from what the schema generates");
    assert.ok(
      r.stdout === readFileSync(CRD_PATH, "utf8"),
      "`msd crd` differs from the committed CRD: run `npm run gen`",
    );
  });

  test("an unknown command: exit 2 with usage", () => {
    const r = msd(["deploy", "-f", feasiblePath]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^unknown command deploy\n/);
    assert.match(r.stderr, /usage: msd <command>/);
    assert.equal(r.stdout, "");
  });

  test("plan without -f: exit 2", () => {
    const r = msd(["plan", "-o", "json"]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /-f FILE is required/);
    assert.equal(r.stdout, "");
  });

  test("a file that does not exist: exit 2 naming it", () => {
    const missing = join(dir, "missing.yaml");
    const r = msd(["render", "-f", missing]);
    assert.equal(r.code, 2);
    assert.ok(r.stderr.includes(`- -f: cannot read ${missing}`), r.stderr);
  });
});

describe("msd plan reads YAML as kubectl does and applies the API server's size limits", () => {
  test("unquoted yes is a boolean (YAML 1.1, as sigs.k8s.io/yaml reads it)", () => {
    const f = file(
      "yes.yaml",
      `${FEASIBLE}  autoscaling:\n    enabled: yes\n    minReplicas: 1\n    maxReplicas: 3\n`,
    );
    const r = msd(["plan", "-f", f, "-o", "json"]);
    assert.equal(r.code, 0, r.stderr);
  });

  test('a quoted "yes" is still a string and refused where a boolean is required', () => {
    const f = file("quoted-yes.yaml", `${FEASIBLE}  autoscaling:\n    enabled: "yes"\n`);
    const r = msd(["plan", "-f", f]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /spec\.autoscaling\.enabled/);
  });

  test("1:30 is a string, not base-60 90 (go-yaml v2 has no sexagesimal numbers)", async () => {
    const { parseKubectlYaml } = await import("../../src/cli/io.ts");
    assert.deepEqual(parseKubectlYaml("a: 1:30\nb: 0777\nc: off\n", "t"), {
      a: "1:30",
      b: 511,
      c: false,
    });
  });

  test("annotations over 256 KiB in total: exit 2, as the API server refuses them", () => {
    const big = "x".repeat(1024 * 1024);
    const f = file(
      "big-annotation.yaml",
      FEASIBLE.replace("  namespace: ml\n", `  namespace: ml\n  annotations:\n    note: ${big}\n`),
    );
    const r = msd(["plan", "-f", f]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /metadata\.annotations: may not be more than 262144 bytes in total/);
  });

  test("an object over etcd's 1.5 MiB: exit 2 naming the limit", () => {
    const huge = `${FEASIBLE}  model:\n    servedModelName: ${"y".repeat(2 * 1024 * 1024)}\n`;
    const r = msd(["plan", "-f", file("huge.yaml", huge)]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /stores at most 1572864/);
  });

  test("a bad label key or value: exit 2 naming the label", () => {
    const f = file(
      "bad-label.yaml",
      FEASIBLE.replace("  namespace: ml\n", '  namespace: ml\n  labels:\n    "bad key!": "é"\n'),
    );
    const r = msd(["plan", "-f", f]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /metadata\.labels\["bad key!"\]: key the name must be/);
    assert.match(r.stderr, /metadata\.labels\["bad key!"\]: must be at most 63 characters/);
  });
});
