import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { parse } from "yaml";
import { CRD_PATH, renderCrdFile } from "../../src/api/crd-file.ts";
import { parseSpec, ValidationError, type FieldProblem } from "../../src/api/validate.ts";
import { assertUpToDate } from "../support/generated.ts";

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function obj(v: unknown, what: string): Json {
  assert.ok(isObject(v), `${what} must be an object, got ${JSON.stringify(v)}`);
  return v;
}

// Parsed from the YAML text, so the checks also cover what the YAML serialisation kept.
const crd = obj(parse(renderCrdFile()), "CRD");
const crdSpec = obj(crd.spec, "spec");
const versions = crdSpec.versions as Json[];
const version = obj(versions[0], "versions[0]");
const root = obj(obj(version.schema, "schema").openAPIV3Schema, "openAPIV3Schema");
const rootProps = obj(root.properties, "openAPIV3Schema.properties");
const specSchema = obj(rootProps.spec, "spec schema");
const statusSchema = obj(rootProps.status, "status schema");

test("the committed CRD is what the schema generates (run `npm run gen` on failure)", () => {
  const committed = readFileSync(CRD_PATH, "utf8");
  assertUpToDate(
    committed,
    renderCrdFile(),
    `${CRD_PATH} is out of date with src/api/schema.ts: run \`npm run gen\` and commit the result.`,
  );
});

describe("CRD identity", () => {
  test("group, names, scope and the single served storage version", () => {
    assert.equal(crd.apiVersion, "apiextensions.k8s.io/v1");
    assert.equal(crd.kind, "CustomResourceDefinition");
    assert.equal(
      obj(crd.metadata, "metadata").name,
      "mistralsmalldeployments.serving.mistralsmall.dev",
    );
    assert.equal(crdSpec.group, "serving.mistralsmall.dev");
    assert.equal(crdSpec.scope, "Namespaced");
    const names = obj(crdSpec.names, "names");
    assert.equal(names.kind, "MistralSmallDeployment");
    assert.equal(names.listKind, "MistralSmallDeploymentList");
    assert.equal(names.plural, "mistralsmalldeployments");
    assert.equal(names.singular, "mistralsmalldeployment");
    assert.deepEqual(names.shortNames, ["msd"]);
    assert.equal(versions.length, 1);
    assert.equal(version.name, "v1alpha1");
    assert.equal(version.served, true);
    assert.equal(version.storage, true);
  });

  test("status and scale subresources", () => {
    const sub = obj(version.subresources, "subresources");
    assert.deepEqual(sub.status, {});
    const scale = obj(sub.scale, "scale");
    assert.equal(scale.specReplicasPath, ".spec.replicas");
    assert.equal(scale.statusReplicasPath, ".status.replicas");
    assert.equal(scale.labelSelectorPath, ".status.selector");
    // The paths must exist in the schema with the types the scale subresource needs.
    const props = obj(specSchema.properties, "spec.properties");
    assert.equal(obj(props.replicas, "replicas").type, "integer");
    const statusProps = obj(statusSchema.properties, "status.properties");
    assert.equal(obj(statusProps.replicas, "status.replicas").type, "integer");
    assert.equal(obj(statusProps.selector, "status.selector").type, "string");
  });

  /** Follows a printer-column JSONPath through the schema; filters step into array items. */
  function resolveJsonPath(path: string): Json | undefined {
    const steps = path
      .replace(/\[\?\(.*?\)\]/g, ".[]")
      .split(".")
      .filter((s) => s !== "");
    let node: Json | undefined = root;
    for (const step of steps) {
      if (node === undefined) return undefined;
      if (step === "[]") {
        node = isObject(node.items) ? node.items : undefined;
        continue;
      }
      if (step === "metadata" && node === root) return { type: "object" };
      const props: unknown = node.properties;
      node = isObject(props) && isObject(props[step]) ? props[step] : undefined;
    }
    return node;
  }

  test("printer columns", () => {
    const columns = version.additionalPrinterColumns as Json[];
    const byName = new Map(columns.map((c) => [c.name as string, c]));
    const expected: [string, string, string][] = [
      ["Ready", "string", '.status.conditions[?(@.type=="Ready")].status'],
      ["Replicas", "integer", ".status.readyReplicas"],
      ["GPU", "string", ".spec.gpu.type"],
      ["TP", "integer", ".status.plan.tensorParallelSize"],
      ["Quantization", "string", ".spec.model.quantization"],
      ["Context", "integer", ".spec.maxModelLen"],
      ["Age", "date", ".metadata.creationTimestamp"],
    ];
    for (const [name, type, jsonPath] of expected) {
      const c = byName.get(name);
      assert.ok(c, `printer column ${name} missing`);
      assert.equal(c.type, type, `${name} type`);
      assert.equal(c.jsonPath, jsonPath, `${name} jsonPath`);
    }
    assert.equal(columns.at(-1)!.name, "Age", "Age is conventionally the last column");
    // Every column must point at a field the schema has, of a matching type.
    for (const c of columns) {
      const path = c.jsonPath as string;
      if (path.startsWith(".metadata.")) continue;
      const field = resolveJsonPath(path);
      assert.ok(field, `column ${String(c.name)}: ${path} is not in the schema`);
      const want = c.type === "date" ? "string" : c.type;
      assert.equal(
        field.type,
        want,
        `column ${String(c.name)}: ${path} has type ${String(field.type)}`,
      );
    }
  });
});

describe("structural schema", () => {
  /** Visits every schema node under `node`, with a readable path. */
  function walk(node: unknown, path: string, visit: (n: Json, path: string) => void): void {
    if (!isObject(node)) return;
    visit(node, path);
    if (isObject(node.properties)) {
      for (const [k, v] of Object.entries(node.properties)) walk(v, `${path}.${k}`, visit);
    }
    if (isObject(node.items)) walk(node.items, `${path}[]`, visit);
    if (isObject(node.additionalProperties)) {
      walk(node.additionalProperties, `${path}{}`, visit);
    }
  }

  test("every spec property has a type and a description (kubectl explain)", () => {
    const missing: string[] = [];
    let properties = 0;
    walk(specSchema, "spec", (n, path) => {
      if (typeof n.type !== "string") missing.push(`${path}: no type`);
      if (!isObject(n.properties)) return;
      for (const [k, v] of Object.entries(n.properties)) {
        properties += 1;
        const child = obj(v, `${path}.${k}`);
        if (typeof child.description !== "string" || child.description.trim() === "") {
          missing.push(`${path}.${k}: no description`);
        }
      }
    });
    assert.deepEqual(missing, []);
    // Guard against a walk that silently finds nothing.
    assert.ok(properties > 50, `only ${properties} spec properties walked`);
  });

  test("every schema node (spec and status) has a type; objects list properties or a map type", () => {
    const problems: string[] = [];
    walk(root, "", (n, path) => {
      if (typeof n.type !== "string") problems.push(`${path || "<root>"}: no type`);
      for (const k of ["anyOf", "oneOf", "allOf", "not"]) {
        if (k in n) problems.push(`${path}: ${k} needs care in a structural schema`);
      }
      if (isObject(n.properties) && "additionalProperties" in n) {
        problems.push(`${path}: both properties and additionalProperties`);
      }
      if (n.type === "array" && !isObject(n.items)) problems.push(`${path}: array without items`);
    });
    assert.deepEqual(problems, []);
  });

  test("no additionalProperties: false, $schema, propertyNames or JSON-Schema-2020 keywords", () => {
    const text = renderCrdFile();
    const forbidden: string[] = [];
    const visitAny = (v: unknown, path: string): void => {
      if (Array.isArray(v)) v.forEach((x, i) => visitAny(x, `${path}[${i}]`));
      if (!isObject(v)) return;
      for (const [k, x] of Object.entries(v)) {
        if (k === "additionalProperties" && x === false) forbidden.push(`${path}.${k}: false`);
        if (["$schema", "$defs", "$ref", "propertyNames", "const"].includes(k)) {
          forbidden.push(`${path}.${k}`);
        }
        if ((k === "exclusiveMinimum" || k === "exclusiveMaximum") && typeof x !== "boolean") {
          forbidden.push(`${path}.${k}: ${JSON.stringify(x)} (OpenAPI v3 wants a boolean)`);
        }
        visitAny(x, `${path}.${k}`);
      }
    };
    visitAny(crd, "");
    assert.deepEqual(forbidden, []);
    assert.doesNotMatch(text, /additionalProperties: false/);
    assert.doesNotMatch(text, /\$schema/);
  });

  test("conditions is a map list keyed by type", () => {
    const conditions = obj(obj(statusSchema.properties, "status.properties").conditions, "cond");
    assert.equal(conditions["x-kubernetes-list-type"], "map");
    assert.deepEqual(conditions["x-kubernetes-list-map-keys"], ["type"]);
    // A map key must be required in the item schema.
    const items = obj(conditions.items, "conditions.items");
    assert.ok((items.required as string[]).includes("type"));
  });

  test("enum-of-integers fields are typed integer, and spec.gpu is required", () => {
    const gpu = obj(obj(specSchema.properties, "spec.properties").gpu, "gpu");
    const tp = obj(obj(gpu.properties, "gpu.properties").tensorParallelSize, "tp");
    assert.equal(tp.type, "integer");
    assert.deepEqual(tp.enum, [1, 2, 4, 8]);
    assert.deepEqual(specSchema.required, ["gpu"]);
    assert.deepEqual(root.required, ["spec"]);
  });
});

describe("CEL rules and zod say the same thing", () => {
  interface CelRule {
    readonly at: string;
    readonly rule: string;
    readonly message: string;
    readonly fieldPath?: string;
  }

  const rules: CelRule[] = [];
  const collect = (node: unknown, path: string): void => {
    if (!isObject(node)) return;
    const v = node["x-kubernetes-validations"];
    if (Array.isArray(v)) {
      for (const r of v as Json[]) {
        rules.push({
          at: path,
          rule: r.rule as string,
          message: r.message as string,
          ...(typeof r.fieldPath === "string" ? { fieldPath: r.fieldPath } : {}),
        });
      }
    }
    if (isObject(node.properties)) {
      for (const [k, child] of Object.entries(node.properties)) collect(child, `${path}.${k}`);
    }
    if (isObject(node.items)) collect(node.items, `${path}[]`);
  };
  collect(specSchema, "spec");

  /**
   * One input per rule, each breaking exactly the rule it is written for: `breaks` is all it
   * adds to a valid spec on H100s.
   */
  const crafted: readonly { readonly why: string; readonly spec: Json }[] = (
    [
      {
        why: "existing claim with a storage class",
        breaks: { model: { cache: { existingClaim: "c", storageClassName: "s" } } },
      },
      {
        why: "bf16 without a checkpoint",
        breaks: { model: { quantization: "bf16" } },
      },
      {
        why: "extraArgs with a managed flag",
        breaks: { engine: { extraArgs: ["--port=9000"] } },
      },
      {
        why: "minReplicas above maxReplicas",
        breaks: { autoscaling: { minReplicas: 3, maxReplicas: 2 } },
      },
      {
        why: "minReplicas 0 without scale to zero",
        breaks: { autoscaling: { minReplicas: 0 } },
      },
      {
        why: "karpenter provider without karpenter settings",
        breaks: { nodePool: { provider: "karpenter" } },
      },
      {
        why: "karpenter settings with the static provider",
        breaks: { nodePool: { karpenter: { nodeClassRef: { name: "n" } } } },
      },
      {
        why: "static settings with the karpenter provider",
        breaks: {
          nodePool: {
            provider: "karpenter",
            karpenter: { nodeClassRef: { name: "n" } },
            static: { nodeSelector: { pool: "gpu" } },
          },
        },
      },
      {
        why: "a pod node selector overriding the NodePool pin",
        breaks: { pod: { nodeSelector: { "karpenter.sh/nodepool": "x" } } },
      },
      {
        why: "a CUDA version the image's tag contradicts",
        breaks: { engine: { image: "vllm/vllm-openai:v0.24.0", cudaVersion: "12.9" } },
      },
      {
        why: "replicas outside the autoscaling range",
        breaks: { replicas: 7, autoscaling: { enabled: true } },
      },
      {
        why: "a model cache of size zero",
        breaks: { model: { cache: { size: "0Gi" } } },
      },
      {
        why: "cpu below the minimum",
        breaks: { engine: { resources: { cpu: "500m" } } },
      },
      {
        why: "memory below the minimum",
        breaks: { engine: { resources: { memory: "1" } } },
      },
      {
        why: "an env variable the operator manages",
        breaks: { pod: { env: [{ name: "HF_HOME", value: "/x" }] } },
      },
      {
        why: "a pod label the operator manages",
        breaks: { pod: { labels: { "app.kubernetes.io/name": "x" } } },
      },
      {
        why: "a pod annotation the operator manages",
        breaks: { pod: { annotations: { "karpenter.sh/do-not-disrupt": "false" } } },
      },
      {
        why: "minDomains with ScheduleAnyway",
        breaks: { pod: { topologySpreadConstraints: [{ topologyKey: "zone", minDomains: 2 }] } },
      },
      {
        why: "an env entry with neither value nor valueFrom",
        breaks: { pod: { env: [{ name: "A" }] } },
      },
      {
        why: "an env valueFrom with two sources",
        breaks: {
          pod: {
            env: [
              {
                name: "A",
                valueFrom: {
                  secretKeyRef: { name: "s", key: "k" },
                  configMapKeyRef: { name: "c", key: "k" },
                },
              },
            ],
          },
        },
      },
      {
        why: "a NetworkPolicy peer with no selector",
        breaks: { access: { networkPolicy: { apiFrom: [{}] } } },
      },
      {
        why: "an envFrom entry with no source",
        breaks: { pod: { envFrom: [{ prefix: "A_" }] } },
      },
      {
        why: "two weight sources at once",
        breaks: {
          model: {
            format: "hf",
            source: { pvc: { claimName: "w" }, objectStorage: { uri: "s3://bucket/m" } },
          },
        },
      },
      {
        why: "a Hub revision with weights from a claim",
        breaks: { model: { revision: "main", source: { pvc: { claimName: "w" } } } },
      },
      {
        why: "object storage with Mistral's consolidated format",
        breaks: { model: { source: { objectStorage: { uri: "s3://bucket/m" } } } },
      },
      {
        why: "a cache claim to download into with weights from an image",
        breaks: {
          model: { cache: { existingClaim: "c" }, source: { image: { reference: "r.io/w:1" } } },
        },
      },
      {
        why: "speculative decoding with weights from a claim",
        breaks: {
          model: { source: { pvc: { claimName: "w" } } },
          engine: { speculative: { enabled: true } },
        },
      },
    ] satisfies readonly { why: string; breaks: Json }[]
  ).map(({ why, breaks }) => ({ why, spec: { gpu: { type: "h100-80gb" }, ...breaks } }));

  function zodProblems(spec: Json): readonly FieldProblem[] {
    try {
      parseSpec(spec);
    } catch (err) {
      assert.ok(err instanceof ValidationError);
      return err.problems;
    }
    return [];
  }

  const produced = crafted.map((c) => ({ ...c, problems: zodProblems(c.spec) }));

  test("the CRD carries one CEL rule per cross-field rule", () => {
    assert.equal(rules.length, crafted.length, JSON.stringify(rules, null, 2));
    for (const r of rules) {
      assert.ok(r.rule.length > 0 && r.message.length > 0);
      assert.ok(r.fieldPath?.startsWith("."), `rule at ${r.at} should point at a field`);
    }
  });

  for (const c of produced) {
    test(`zod flags exactly one problem for: ${c.why}`, () => {
      assert.equal(c.problems.length, 1, JSON.stringify(c.problems));
    });
  }

  test("every CEL rule's message is what zod reports, at the same field", () => {
    const unmatched: string[] = [];
    for (const r of rules) {
      const path = `${r.at}${r.fieldPath ?? ""}`;
      // zod numbers array items (env.0.value) where the CRD has items (env[].value).
      const hit = produced.find((c) =>
        c.problems.some(
          (p) => p.message === r.message && p.path.replace(/\.[0-9]+(?=\.|$)/g, "[]") === path,
        ),
      );
      if (hit === undefined) unmatched.push(`${path}: ${r.message}`);
    }
    assert.deepEqual(unmatched, []);
  });

  test("every cross-field message zod produces is in the CRD", () => {
    const messages = new Set(rules.map((r) => r.message));
    for (const c of produced) {
      for (const p of c.problems) {
        assert.ok(messages.has(p.message), `zod message not in the CRD: ${p.path}: ${p.message}`);
      }
    }
  });

  test("each rule's field path names a property of the object it sits on", () => {
    for (const r of rules) {
      let node: Json = specSchema;
      for (const step of r.at.split(".").slice(1)) {
        const name = step.replace(/\[\]$/, "");
        node = obj(obj(node.properties, `${r.at} properties`)[name], `${r.at}.${name}`);
        if (step.endsWith("[]")) node = obj(node.items, `${r.at}.${name} items`);
      }
      const field = r.fieldPath!.slice(1);
      assert.ok(
        isObject(node.properties) && field in node.properties,
        `${r.at}: fieldPath ${r.fieldPath} is not a property`,
      );
    }
  });

  test("the extraArgs CEL regex is the one zod applies", () => {
    const rule = rules.find((r) => r.fieldPath === ".extraArgs");
    assert.ok(rule);
    const m = /matches\('(.*)'\)\)$/.exec(rule.rule);
    assert.ok(m, `unexpected extraArgs rule: ${rule.rule}`);
    const re = new RegExp(m[1]!);
    for (const arg of ["--port=9000", "--tensor-parallel-size", "--max-model-len=1"]) {
      assert.ok(re.test(arg), arg);
      assert.equal(
        zodProblems({ gpu: { type: "h100-80gb" }, engine: { extraArgs: [arg] } }).length,
        1,
      );
    }
    for (const arg of ["--enforce-eager", "--portal", "x--port", "--max-model-len-x"]) {
      assert.ok(!re.test(arg), arg);
      assert.deepEqual(
        zodProblems({ gpu: { type: "h100-80gb" }, engine: { extraArgs: [arg] } }),
        [],
      );
    }
  });
});
