/**
 * The CustomResourceDefinition, generated from the zod schema. zod's JSON Schema
 * output is close to OpenAPI v3; Kubernetes wants a *structural* schema, so the
 * differences are mended here in one walk.
 */
import { z } from "zod";
import { OPERATOR_NAME } from "../util/identity.ts";
import { isPlainObject, sortKeys, type Json } from "../util/json.ts";
import {
  GROUP,
  KIND,
  METADATA_NAME_RULES,
  PLURAL,
  SHORT_NAMES,
  SINGULAR,
  SpecSchema,
  StatusSchema,
  VERSION,
} from "./schema.ts";

const isObject = isPlainObject;

/** JSON Schema 2020-12 (from zod) -> Kubernetes structural OpenAPI v3. */
export function toStructural(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(toStructural);
  if (!isObject(node)) return node;
  const out: Json = {};
  for (const [key, value] of Object.entries(node)) {
    if (key === "$schema" || key === "propertyNames") continue;
    // Structural schemas prune unknown fields; `false` is not allowed here.
    if (key === "additionalProperties" && value === false) continue;
    if (key === "exclusiveMinimum" && typeof value === "number") {
      out.minimum = value;
      out.exclusiveMinimum = true;
      continue;
    }
    if (key === "exclusiveMaximum" && typeof value === "number") {
      out.maximum = value;
      out.exclusiveMaximum = true;
      continue;
    }
    out[key] = toStructural(value);
  }
  if (
    out.type === "number" &&
    Array.isArray(out.enum) &&
    out.enum.every((v) => Number.isInteger(v))
  ) {
    out.type = "integer";
  }
  return out;
}

/** A default value with the defaults of its own fields filled in, recursively. */
function materialize(node: Json, value: unknown): unknown {
  if (!isObject(value) || !isObject(node.properties)) return value;
  const out: Json = { ...value };
  for (const [key, prop] of Object.entries(node.properties)) {
    if (!isObject(prop)) continue;
    if (out[key] === undefined && prop.default !== undefined)
      out[key] = materialize(prop, prop.default);
    else if (out[key] !== undefined) out[key] = materialize(prop, out[key]);
  }
  return out;
}

/**
 * The API server checks each `default` against the CEL rules as written, without
 * applying nested defaults first; `default: {}` would fail `self.minReplicas <= ...`.
 * So object defaults are written out in full.
 */
export function expandDefaults(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(expandDefaults);
  if (!isObject(node)) return node;
  const out: Json = Object.fromEntries(
    Object.entries(node).map(([k, v]) => [k, expandDefaults(v)]),
  );
  if (out.type === "object" && isObject(out.default)) out.default = materialize(out, out.default);
  return out;
}

export function openApiOf(schema: z.ZodType, io: "input" | "output"): Json {
  return expandDefaults(
    toStructural(z.toJSONSchema(schema, { io, unrepresentable: "throw" })),
  ) as Json;
}

function statusSchema(): Json {
  const s = openApiOf(StatusSchema, "output");
  const props = s.properties as Json;
  const conditions = props.conditions as Json;
  conditions["x-kubernetes-list-type"] = "map";
  conditions["x-kubernetes-list-map-keys"] = ["type"];
  return s;
}

export function buildCrd(): Json {
  const spec = openApiOf(SpecSchema, "input");
  return sortKeys({
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: {
      name: `${PLURAL}.${GROUP}`,
      labels: { "app.kubernetes.io/part-of": OPERATOR_NAME },
    },
    spec: {
      group: GROUP,
      names: {
        kind: KIND,
        listKind: `${KIND}List`,
        plural: PLURAL,
        singular: SINGULAR,
        shortNames: [...SHORT_NAMES],
        categories: ["ai", "llm"],
      },
      scope: "Namespaced",
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          subresources: {
            status: {},
            scale: {
              specReplicasPath: ".spec.replicas",
              statusReplicasPath: ".status.replicas",
              labelSelectorPath: ".status.selector",
            },
          },
          additionalPrinterColumns: [
            {
              name: "Ready",
              type: "string",
              jsonPath: '.status.conditions[?(@.type=="Ready")].status',
            },
            { name: "Replicas", type: "integer", jsonPath: ".status.readyReplicas" },
            { name: "Desired", type: "integer", jsonPath: ".spec.replicas" },
            { name: "GPU", type: "string", jsonPath: ".spec.gpu.type" },
            { name: "TP", type: "integer", jsonPath: ".status.plan.tensorParallelSize" },
            { name: "Quantization", type: "string", jsonPath: ".spec.model.quantization" },
            { name: "Context", type: "integer", jsonPath: ".spec.maxModelLen" },
            {
              name: "Reason",
              type: "string",
              priority: 1,
              jsonPath: '.status.conditions[?(@.type=="Ready")].reason',
            },
            {
              name: "Endpoint",
              type: "string",
              priority: 1,
              jsonPath: ".status.endpoint",
            },
            { name: "Age", type: "date", jsonPath: ".metadata.creationTimestamp" },
          ],
          schema: {
            openAPIV3Schema: {
              type: "object",
              description:
                "MistralSmallDeployment runs Mistral Small 4 on vLLM: sized, scheduled on GPU nodes, autoscaled and explained in status.",
              required: ["spec"],
              "x-kubernetes-validations": METADATA_NAME_RULES.map((r) => ({ ...r })),
              properties: {
                apiVersion: { type: "string" },
                kind: { type: "string" },
                // The API's own 253-character bound, stated so the CEL name rules have a cost
                // the API server can estimate (structural schemas allow only name constraints here).
                metadata: {
                  type: "object",
                  // Both, or the API server substitutes unbounded strings for the estimate
                  // (WithTypeAndObjectMeta in apiextensions-apiserver's CEL model).
                  properties: {
                    name: { type: "string", maxLength: 253 },
                    generateName: { type: "string", maxLength: 253 },
                  },
                },
                spec,
                status: statusSchema(),
              },
            },
          },
        },
      ],
    },
  }) as Json;
}
