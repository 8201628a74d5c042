/**
 * The Helm chart's values as a zod schema: the single source of values.schema.json (which
 * Helm checks on every install and upgrade), the same rule as the CRD from src/api/schema.ts.
 * scripts/gen-chart.ts writes it; test/unit/delivery.test.ts fails when it drifts and checks
 * that values.yaml conforms and documents every value.
 */
import { z } from "zod";
import { LOG_LEVELS } from "../util/identity.ts";

/** A Kubernetes quantity as a values file spells it: "100m", "512Mi", or a bare integer. */
const QUANTITY_PATTERN = "^[0-9]+(\\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$";
const DNS_LABEL_PATTERN = "^([a-z0-9]([-a-z0-9]*[a-z0-9])?)?$";

/**
 * One JSON Schema node for both spellings, so Helm's error names the pattern
 * (`'lots' does not match ...`) instead of an opaque anyOf failure.
 */
const quantity = z
  .union([z.string().regex(new RegExp(QUANTITY_PATTERN)), z.number().int()])
  .meta({ id: "quantity" });
const stringMap = z.record(z.string(), z.string()).meta({ id: "stringMap" });
const dnsLabel = z.string().max(63).regex(new RegExp(DNS_LABEL_PATTERN)).meta({ id: "dnsLabel" });
const duration = z
  .string()
  .regex(/^[0-9]+(ms|s|m|h)$/)
  .meta({ id: "duration" });
/** Kubernetes objects the chart passes through untouched (tolerations, affinity, env). */
const looseObject = z.looseObject({});
const named = z.looseObject({ name: z.string().min(1) });
/** An int-or-percent of a PodDisruptionBudget: 1 or "50%". */
const intOrPercent = z.union([z.number().int().min(0), z.string().regex(/^[0-9]+%$/)]);

export const chartValuesSchema = z
  .strictObject({
    global: z
      .looseObject({})
      .optional()
      .describe("Values Helm passes down to every chart of an umbrella chart."),
    crds: z
      .strictObject({
        enabled: z
          .boolean()
          .describe(
            "Install and upgrade the MistralSmallDeployment CRD with the chart (templates/crds.yaml).",
          ),
        keep: z
          .boolean()
          .describe(
            "Annotate the CRD helm.sh/resource-policy: keep, so helm uninstall (or crds.enabled=false) never deletes it and every MistralSmallDeployment with it.",
          ),
      })
      .describe(
        "The CRD, as cert-manager ships its CRDs: a template behind crds.enabled, kept by crds.keep.",
      ),
    replicaCount: z
      .number()
      .int()
      .min(0)
      .max(10)
      .describe("Operator pods; one leads, the others stand by (0 pauses the operator)."),
    podDisruptionBudget: z
      .strictObject({
        enabled: z.boolean(),
        minAvailable: intOrPercent.optional(),
        maxUnavailable: intOrPercent.optional(),
      })
      .describe(
        "PodDisruptionBudget of the operator pods: a node drain evicts at most maxUnavailable of them at once; minAvailable, when set, replaces maxUnavailable.",
      ),
    image: z.strictObject({
      repository: z.string().min(1),
      tag: z.string().optional(),
      digest: z
        .string()
        .regex(/^(sha256:[a-f0-9]{64})?$/)
        .optional(),
      pullPolicy: z.enum(["Always", "IfNotPresent", "Never"]),
    }),
    imagePullSecrets: z.array(named),
    nameOverride: dnsLabel,
    fullnameOverride: dnsLabel,
    serviceAccount: z.strictObject({
      create: z.boolean(),
      name: z.string(),
      annotations: stringMap,
    }),
    rbac: z.strictObject({ create: z.boolean() }),
    leaderElection: z.strictObject({
      leaseDurationSeconds: z
        .number()
        .int()
        .min(4)
        .max(300)
        .describe("Seconds a leader's Lease lasts without renewal."),
    }),
    watchNamespaces: z
      .array(dnsLabel.min(1))
      .meta({ uniqueItems: true })
      .describe(
        "Namespaced install mode: watch only these namespaces, with a Role in each instead of a ClusterRole.",
      ),
    watchNamespace: dnsLabel.describe(
      "Watch this namespace only (same as a one-item watchNamespaces); empty watches all namespaces.",
    ),
    metrics: z.strictObject({
      port: z.number().int().min(1024).max(65535),
      service: z.strictObject({
        port: z.number().int().min(1).max(65535),
        annotations: stringMap,
      }),
    }),
    logLevel: z.enum(LOG_LEVELS).describe("The operator's log level (msd run --log-level)."),
    grafanaDashboard: z
      .strictObject({
        enabled: z.boolean(),
        namespace: dnsLabel,
        labels: stringMap,
        annotations: stringMap,
      })
      .describe(
        'A ConfigMap with the Grafana dashboard, labelled grafana_dashboard: "1" for Grafana\'s dashboard sidecar.',
      ),
    serviceMonitor: z.strictObject({
      enabled: z.boolean(),
      namespace: dnsLabel,
      labels: stringMap,
      interval: duration,
      scrapeTimeout: duration,
    }),
    resources: z.strictObject({
      requests: z.record(z.string(), quantity).optional(),
      limits: z.record(z.string(), quantity).optional(),
    }),
    securityContext: z
      .strictObject({
        runAsUser: z.number().int().min(1),
        runAsGroup: z.number().int().min(1),
      })
      .describe(
        "Only the numeric non-root user and group: the rest of the restricted profile is fixed.",
      ),
    podAnnotations: stringMap,
    podLabels: stringMap,
    priorityClassName: z.string(),
    nodeSelector: stringMap,
    tolerations: z.array(looseObject),
    affinity: looseObject,
    topologySpreadConstraints: z.array(looseObject),
    extraEnv: z.array(named),
  })
  .partial()
  .describe("mistral-small-operator values");

export type ChartValues = z.infer<typeof chartValuesSchema>;

type Json = Record<string, unknown>;

/** values.schema.json: draft-07 (what Helm's validator reads), shared shapes as definitions. */
export function valuesJsonSchema(): Json {
  const schema = z.toJSONSchema(chartValuesSchema, {
    target: "draft-07",
    io: "input",
    unrepresentable: "throw",
    override: ({ jsonSchema }) => {
      const node = jsonSchema as Json;
      // z.number().int() states the safe-integer bounds; they say nothing to a reader.
      if (node.maximum === Number.MAX_SAFE_INTEGER) delete node.maximum;
      if (node.minimum === Number.MIN_SAFE_INTEGER) delete node.minimum;
      // A loose object (affinity, a toleration) is any object: no empty property list.
      const props = node.properties as Json | undefined;
      if (
        props !== undefined &&
        Object.keys(props).length === 0 &&
        node.additionalProperties !== false
      ) {
        delete node.properties;
        delete node.additionalProperties;
      }
      // The quantity union as one node: a string matching the pattern, or an integer.
      const anyOf = node.anyOf as Json[] | undefined;
      if (anyOf?.some((a) => a.pattern === QUANTITY_PATTERN) === true) {
        delete node.anyOf;
        node.type = ["string", "integer"];
        node.pattern = QUANTITY_PATTERN;
      }
    },
  }) as Json;
  return {
    $schema: "https://json-schema.org/draft-07/schema#",
    title: "mistral-small-operator values",
    ...Object.fromEntries(
      Object.entries(schema).filter(([k]) => k !== "$schema" && k !== "description"),
    ),
  };
}

export function valuesJsonSchemaFile(): string {
  return `${JSON.stringify(valuesJsonSchema(), null, 2)}\n`;
}
