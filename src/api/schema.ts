/**
 * The MistralSmallDeployment API. This file is the single source of truth: the
 * TypeScript types, the CRD's OpenAPI schema (descriptions, defaults, CEL rules)
 * and the CLI's validation messages are all derived from it.
 */
import { z } from "zod";
import { GPU_TYPES, TP_CHOICES } from "../catalog/gpus.ts";
import { MODEL, QUANTIZATIONS, QUANTIZATIONS_WITHOUT_CHECKPOINT } from "../catalog/model.ts";
import { withRules } from "./rules.ts";
import { MANAGED_FLAGS, managedFlagRegex } from "../engine/command.ts";
import { NEWEST, RELEASES } from "../engine/releases.ts";
import { CUDA_VERSIONS } from "../engine/types.ts";
import { MANAGED_ENV } from "../render/env.ts";
import {
  CONFIG_MAP_KEY_PATTERN,
  LABEL_VALUE_PATTERN,
  QUALIFIED_NAME_PATTERN,
  quantityValue,
} from "./k8s-syntax.ts";

/** "a, b and c": catalog values in a description or message. */
function listOf(items: readonly (string | number)[], conjunction: "and" | "or"): string {
  if (items.length <= 1) return items.join("");
  return `${items.slice(0, -1).join(", ")} ${conjunction} ${items[items.length - 1]}`;
}

const WITH_CHECKPOINT = QUANTIZATIONS.filter((q) => !QUANTIZATIONS_WITHOUT_CHECKPOINT.includes(q));

export const GROUP = "serving.mistralsmall.dev";
export const VERSION = "v1alpha1";
export const API_VERSION = `${GROUP}/${VERSION}`;
export const KIND = "MistralSmallDeployment";
export const PLURAL = "mistralsmalldeployments";
export const SINGULAR = "mistralsmalldeployment";
export const SHORT_NAMES = ["msd"] as const;

/**
 * metadata.name: it names the Deployment, the Service (a DNS-1035 label) and prefixes the other
 * objects, so it is checked at admission (CEL on the root) and by the CLI (with the actual length).
 */
export const NAME_MAX_LENGTH = 52;
export const NAME_PATTERN = "^[a-z]([-a-z0-9]*[a-z0-9])?$";
export const METADATA_NAME_RULES = [
  {
    rule: `size(self.metadata.name) <= ${NAME_MAX_LENGTH}`,
    // A static message: a messageExpression with string(size(...)) exceeds the CEL cost budget;
    // `msd plan` and the operator's status give the actual length.
    message: `metadata.name must be at most ${NAME_MAX_LENGTH} characters (room for the suffixes of owned objects)`,
  },
  {
    rule: `self.metadata.name.matches('${NAME_PATTERN}')`,
    message:
      "metadata.name must be a DNS-1035 label: lowercase letters, digits and '-', starting with a letter (it names a Service)",
  },
] as const;

const quantity = (what: string) =>
  z
    .string()
    .regex(
      /^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|k|M|G|T|P|m)?$/,
      `must be a Kubernetes quantity such as 300Gi (${what})`,
    );

const dnsLabel = z
  .string()
  .min(1)
  .max(253)
  .regex(
    /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/,
    "must be a lowercase DNS name: letters, digits, '-' and '.'",
  );

/** A key of a Secret in the resource's namespace; the operator only names it, never reads it. */
const secretKeyRef = (defaultKey: string, holding: string, description: string) =>
  z
    .object({
      name: dnsLabel.describe("Name of a Secret in the same namespace."),
      key: z
        .string()
        .min(1)
        .max(253)
        .regex(
          new RegExp(CONFIG_MAP_KEY_PATTERN),
          "must be a Secret key: letters, digits, '-', '_', '.'",
        )
        .default(defaultKey)
        .describe(`Key in the Secret holding ${holding}.`),
    })
    .strict()
    .describe(description);

export const SecretKeyRefSchema = secretKeyRef(
  "HF_TOKEN",
  "the token",
  "Secret holding a Hugging Face token, passed to vLLM as HF_TOKEN.",
);

export const ModelCacheSchema = withRules(
  z
    .object({
      existingClaim: dnsLabel
        .optional()
        .describe(
          "Use this existing PersistentVolumeClaim for the model cache instead of creating one. Never deleted by the operator.",
        ),
      size: quantity("model cache size")
        .default("400Gi")
        .describe(
          "Size of the PersistentVolumeClaim the operator creates (one checkpoint is about 125 GB; the repository holds two formats).",
        ),
      storageClassName: z
        .string()
        .optional()
        .describe("StorageClass of the created claim; the cluster default when omitted."),
      accessMode: z
        .enum(["ReadWriteOnce", "ReadWriteMany"])
        .default("ReadWriteOnce")
        .describe(
          "Access mode of the created claim. ReadWriteOnce (default, what every block-storage class provides): the loader Job fills it, then all replicas run on the node that mounts it. ReadWriteMany (EFS, Filestore, NFS classes): replicas on any node share it.",
        ),
      loader: z
        .object({
          nodeSelector: z
            .record(z.string().min(1).max(317), z.string().max(63))
            .optional()
            .describe(
              "Node labels the loader Job's pod must match (a CPU pool); it requests no GPU and tolerates no GPU taint either way.",
            ),
        })
        .strict()
        .prefault({})
        .describe("The Job that downloads the checkpoint into the cache before any vLLM pod."),
    })
    .strict()
    .describe("Where downloaded weights are kept (mounted at HF_HOME)."),
  [
    {
      cel: "!has(self.existingClaim) || !has(self.storageClassName)",
      message:
        "storageClassName applies only to a claim the operator creates; remove it or existingClaim",
      field: "storageClassName",
      holds: (c) => c.existingClaim === undefined || c.storageClassName === undefined,
    },
    {
      // Kubernetes refuses a claim of size 0; refuse it here rather than half-apply.
      cel: "!isQuantity(self.size) || quantity(self.size).isGreaterThan(quantity('0'))",
      message: "size must be greater than zero",
      field: "size",
      holds: (c) => !(quantityValue(c.size) <= 0),
    },
  ],
);

/** A directory inside a volume: relative, and no segment starts with '.' (so no '..'). */
const RELATIVE_PATH = /^([A-Za-z0-9_][A-Za-z0-9._-]*(\/[A-Za-z0-9_][A-Za-z0-9._-]*)*)?$/;
const RELATIVE_PATH_MESSAGE =
  "must be a relative path of letters, digits, '.', '_' and '-', no segment starting with '.'";

/**
 * Where the weights come from. None set: the Hugging Face Hub, through the model cache and its
 * loader Job. Each other source is read in place and needs no Job.
 */
/** The sources read where they are, as the keys of spec.model.source (the Hub when none is set). */
export const IN_PLACE_SOURCES = ["pvc", "objectStorage", "image"] as const;
export type InPlaceSource = (typeof IN_PLACE_SOURCES)[number];

export const ModelSourceSchema = withRules(
  z
    .object({
      pvc: z
        .object({
          claimName: dnsLabel.describe("PersistentVolumeClaim in the same namespace."),
          path: z
            .string()
            .max(512)
            .regex(RELATIVE_PATH, RELATIVE_PATH_MESSAGE)
            .default("")
            .describe("Directory in the claim holding the checkpoint (config and safetensors)."),
        })
        .strict()
        .optional()
        .describe("A claim that already holds the weights: mounted read-only, no download."),
      objectStorage: z
        .object({
          uri: z
            .string()
            .max(1024)
            .regex(
              /^(s3|gs):\/\/[a-z0-9][a-z0-9._-]{1,62}\/.+$/,
              "must be s3://bucket/path or gs://bucket/path",
            )
            .describe("Directory of an HF-format checkpoint in S3 (or S3-compatible) or GCS."),
          credentialsSecretRef: z
            .object({ name: dnsLabel.describe("Secret in the same namespace.") })
            .strict()
            .optional()
            .describe(
              "Secret whose keys become the pod's environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT_URL ...); omit for workload identity through spec.pod.serviceAccountName.",
            ),
        })
        .strict()
        .optional()
        .describe(
          "Stream the weights from object storage into the GPUs with vLLM's runai_streamer load format: no cache, no Job.",
        ),
      image: z
        .object({
          reference: z
            .string()
            .min(1)
            .max(512)
            .regex(/^[a-z0-9][^\s]*$/, "must be an OCI image reference")
            .describe("OCI image (or artifact) whose files are the checkpoint."),
          pullPolicy: z
            .enum(["Always", "IfNotPresent"])
            .default("IfNotPresent")
            .describe("Image pull policy of the volume."),
          path: z
            .string()
            .max(512)
            .regex(RELATIVE_PATH, RELATIVE_PATH_MESSAGE)
            .default("")
            .describe("Directory in the image holding the checkpoint."),
        })
        .strict()
        .optional()
        .describe(
          "Mount an OCI image as a read-only volume (Kubernetes image volumes, GA in 1.36): no cache, no Job.",
        ),
    })
    .strict()
    .describe(
      "Where the weights come from; the Hugging Face Hub through the model cache when none is set.",
    ),
  [
    {
      cel: `[${IN_PLACE_SOURCES.map((k) => `has(self.${k})`).join(", ")}].filter(x, x).size() <= 1`,
      message: "set at most one of source.pvc, source.objectStorage and source.image",
      field: "pvc",
      holds: (s) => IN_PLACE_SOURCES.filter((k) => s[k] !== undefined).length <= 1,
    },
  ],
);

export type ModelSource = z.output<typeof ModelSourceSchema>;

/** The source read where it is (a claim, a bucket, an image: no cache, no loader Job), if any. */
export function inPlaceSourceOf(s: ModelSource): InPlaceSource | undefined {
  return IN_PLACE_SOURCES.find((k) => s[k] !== undefined);
}

export function inPlaceSource(s: ModelSource): boolean {
  return inPlaceSourceOf(s) !== undefined;
}

/** CEL for "the model source at `path` is read in place", the rules' twin of inPlaceSource. */
function inPlaceCel(path: string): string {
  return `(${IN_PLACE_SOURCES.map((k) => `has(${path}.${k})`).join(" || ")})`;
}

export const ModelSchema = withRules(
  z
    .object({
      quantization: z
        .enum(QUANTIZATIONS)
        .default("fp8")
        .describe(
          `Weight format (default fp8). ${listOf(WITH_CHECKPOINT, "and")} have official checkpoints; ${listOf(QUANTIZATIONS_WITHOUT_CHECKPOINT, "and")} need model.name.`,
        ),
      name: z
        .string()
        .min(1)
        .max(256)
        .regex(/^[A-Za-z0-9._-]+\/[A-Za-z0-9._-]+$/, "must be a Hugging Face repo id: owner/name")
        .optional()
        .describe(
          "Checkpoint repository (owner/name) overriding the official one for the quantization.",
        ),
      revision: z
        .string()
        .min(1)
        .max(128)
        .optional()
        .describe("Branch, tag or commit of the checkpoint to load."),
      servedModelName: z
        .string()
        .min(1)
        .max(128)
        .regex(/^[A-Za-z0-9._/-]+$/, "may contain letters, digits, '.', '_', '/' and '-'")
        .default(MODEL.defaultServedModelName)
        .describe("Model id clients send to the OpenAI API, and the model_name metric label."),
      format: z
        .enum(["mistral", "hf"])
        .optional()
        .describe(
          "Checkpoint layout. mistral: Mistral's consolidated format (params.json, consolidated*.safetensors, tekken.json), loaded with vLLM's mistral tokenizer, config and load formats; hf: Hugging Face format (config.json, model-*.safetensors). Defaults to mistral for the official checkpoints and hf for model.name.",
        ),
      tokenSecretRef: SecretKeyRefSchema.optional(),
      cache: ModelCacheSchema.prefault({}),
      source: ModelSourceSchema.prefault({}),
    })
    .strict()
    .describe("Which checkpoint to serve and where its weights come from."),
  [
    {
      cel: `!has(self.revision) || !${inPlaceCel("self.source")}`,
      message:
        "revision picks a Hugging Face Hub revision; a pvc, objectStorage or image source serves the files it holds: remove revision",
      field: "revision",
      holds: (m) => m.revision === undefined || !inPlaceSource(m.source),
    },
    {
      cel: "!has(self.source.objectStorage) || (has(self.format) && self.format == 'hf')",
      message:
        "source.objectStorage streams with vLLM's runai_streamer load format, which reads Hugging Face layout safetensors, not Mistral's consolidated format (--load-format mistral): set format hf",
      field: "format",
      holds: (m) => m.source.objectStorage === undefined || m.format === "hf",
    },
    {
      cel: `!has(self.cache.existingClaim) || !${inPlaceCel("self.source")}`,
      message:
        "cache.existingClaim is the claim the loader downloads into; with a pvc, objectStorage or image source nothing is downloaded: remove it (source.pvc.claimName names a claim that already holds the weights)",
      field: "cache",
      holds: (m) => m.cache.existingClaim === undefined || !inPlaceSource(m.source),
    },
    {
      cel: `!(self.quantization in [${QUANTIZATIONS_WITHOUT_CHECKPOINT.map((q) => `'${q}'`).join(", ")}]) || has(self.name)`,
      message: `quantization ${listOf(QUANTIZATIONS_WITHOUT_CHECKPOINT, "and")} have no official checkpoint: set model.name to a repository that holds one`,
      field: "name",
      holds: (m) =>
        !QUANTIZATIONS_WITHOUT_CHECKPOINT.includes(m.quantization) || m.name !== undefined,
    },
  ],
);

export const GpuSchema = z
  .object({
    type: z
      .enum(GPU_TYPES)
      .describe(`GPU model every replica runs on: ${listOf(GPU_TYPES, "or")}.`),
    tensorParallelSize: z
      .literal(TP_CHOICES)
      .optional()
      .describe(
        `GPUs per replica (tensor parallelism): ${listOf(TP_CHOICES, "or")}. Chosen by the planner when omitted.`,
      ),
  })
  .strict()
  .describe("The GPU type and how many GPUs each replica spans.");

export const CapabilitiesSchema = z
  .object({
    reasoning: z
      .boolean()
      .optional()
      .describe(
        "Enable the mistral reasoning parser (reasoning_effort per request). It needs Mistral's tokenizer: on by default for model.format mistral, off for hf.",
      ),
    toolCalling: z
      .boolean()
      .default(true)
      .describe("Enable automatic tool choice with the mistral tool-call parser."),
    vision: z
      .object({
        enabled: z.boolean().default(true).describe("Accept images in prompts."),
        maxImagesPerPrompt: z
          .number()
          .int()
          .min(1)
          .max(16)
          .default(4)
          .describe("Largest number of images one prompt may carry."),
      })
      .strict()
      .prefault({})
      .describe("Image input."),
  })
  .strict()
  .describe("Model features switched on in vLLM.");

/** Below these vLLM cannot start: its API server and one worker per GPU, CUDA and Python. */
export const MIN_CPU = "2";
export const MIN_MEMORY = "16Gi";

export const ResourcesSchema = withRules(
  z
    .object({
      cpu: quantity("cpu")
        .optional()
        .describe(`CPU request per replica, at least ${MIN_CPU}; 4 per GPU when omitted.`),
      memory: quantity("memory")
        .optional()
        .describe(
          `Memory request and limit per replica, at least ${MIN_MEMORY}; 48Gi per GPU when omitted.`,
        ),
    })
    .strict()
    .describe("Host resources of each vLLM pod besides the GPUs."),
  [
    {
      cel: `!has(self.cpu) || !isQuantity(self.cpu) || quantity(self.cpu).compareTo(quantity('${MIN_CPU}')) >= 0`,
      message: `cpu must be at least ${MIN_CPU}: vLLM runs an API server and one worker per GPU`,
      field: "cpu",
      holds: (r) => r.cpu === undefined || !(quantityValue(r.cpu) < quantityValue(MIN_CPU)),
    },
    {
      cel: `!has(self.memory) || !isQuantity(self.memory) || quantity(self.memory).compareTo(quantity('${MIN_MEMORY}')) >= 0`,
      message: `memory must be at least ${MIN_MEMORY}: vLLM, CUDA and Python need it before any weights`,
      field: "memory",
      holds: (r) =>
        r.memory === undefined || !(quantityValue(r.memory) < quantityValue(MIN_MEMORY)),
    },
  ],
);

/** One regex, used verbatim by CEL's matches() and by JavaScript: every spelling of every managed flag. */
const MANAGED_FLAG_RE = managedFlagRegex(RELEASES);

export const EngineSchema = withRules(
  z
    .object({
      image: z
        .string()
        .min(1)
        .optional()
        .describe(
          `vLLM container image. Default: ${NEWEST.images["13.0"]} (CUDA 13.0: needs an NVIDIA driver that supports CUDA 13), or ${NEWEST.images["12.9"]} with cudaVersion 12.9. The release is read from the tag; a tag it cannot read (a digest, a private build) runs with the newest engine contract and an EngineVerified=False condition.`,
        ),
      cudaVersion: z
        .enum(CUDA_VERSIONS)
        .optional()
        .describe(
          "CUDA build of the default image: 13.0 (default) or 12.9 for nodes whose driver predates CUDA 13. Must agree with engine.image when both are set.",
        ),
      gpuMemoryUtilization: z
        .number()
        .min(0.5)
        .max(0.98)
        .default(0.9)
        .describe("Share of each GPU's memory vLLM may use, from 0.5 to 0.98."),
      maxNumSeqs: z
        .number()
        .int()
        .min(1)
        .max(1024)
        .optional()
        .describe(
          "Most sequences batched at once; 64 on A100/L40S and 128 on Hopper when omitted.",
        ),
      maxNumBatchedTokens: z
        .number()
        .int()
        .min(512)
        .max(131072)
        .optional()
        .describe("Token budget of one scheduler step; 8192 on A100/L40S, 16384 on Hopper."),
      kvCacheDtype: z
        .enum(["auto", "fp8"])
        .default("auto")
        .describe(
          "KV cache precision. fp8 halves the cache; refused where the pinned vLLM has no MLA backend that runs it for this model (see msd plan).",
        ),
      speculative: z
        .object({
          enabled: z
            .boolean()
            .default(false)
            .describe(
              "Speculative decoding with Mistral's official EAGLE draft (mistralai/Mistral-Small-4-119B-2603-eagle); the planner counts its weights.",
            ),
          numSpeculativeTokens: z
            .number()
            .int()
            .min(1)
            .max(8)
            .default(3)
            .describe("Tokens the draft proposes per step (the vLLM recipe uses 3)."),
        })
        .strict()
        .prefault({})
        .describe("Speculative decoding (off by default)."),
      extraArgs: z
        .array(z.string().max(1024))
        .max(64)
        .default([])
        .describe(
          "Extra vLLM flags appended last. Flags the operator sets from the plan are refused.",
        ),
      resources: ResourcesSchema.optional(),
    })
    .strict()
    .describe("vLLM engine settings."),
  [
    {
      cel: `self.extraArgs.all(a, !a.matches('${MANAGED_FLAG_RE}'))`,
      message: `extraArgs must not set flags the operator manages, in any spelling vLLM accepts (${Object.keys(MANAGED_FLAGS).join(", ")}); use the matching spec field`,
      field: "extraArgs",
      holds: (e) => e.extraArgs.every((a) => !new RegExp(MANAGED_FLAG_RE).test(a)),
    },
    {
      cel: "!has(self.image) || !has(self.cudaVersion) || self.image.endsWith('-cu129') == (self.cudaVersion == '12.9')",
      message:
        "engine.cudaVersion contradicts the CUDA build in engine.image's tag; set one of them",
      field: "cudaVersion",
      holds: (e) =>
        e.image === undefined ||
        e.cudaVersion === undefined ||
        e.image.endsWith("-cu129") === (e.cudaVersion === "12.9"),
    },
  ],
);

export const ScalingBehaviourSchema = (defaults: { window: number; step: number }, what: string) =>
  z
    .object({
      stabilizationWindowSeconds: z
        .number()
        .int()
        .min(0)
        .max(7200)
        .default(defaults.window)
        .describe(`Seconds a ${what} recommendation must hold before it is acted on.`),
      maxReplicasPerStep: z
        .number()
        .int()
        .min(1)
        .max(100)
        .default(defaults.step)
        .describe(`Most replicas added or removed in one ${what} step.`),
      periodSeconds: z
        .number()
        .int()
        .min(1)
        .max(3600)
        .default(60)
        .describe(`Least time between two ${what} steps.`),
    })
    .strict()
    .prefault({})
    .describe(`How fast to ${what}.`);

export const AutoscalingSchema = withRules(
  z
    .object({
      enabled: z.boolean().default(false).describe("Scale replicas on throughput."),
      mode: z
        .enum(["builtin", "hpa", "keda"])
        .default("builtin")
        .describe(
          "builtin: the operator decides from vLLM metrics; hpa/keda: emit an HPA or KEDA ScaledObject instead.",
        ),
      minReplicas: z.number().int().min(0).max(1000).default(1).describe("Fewest replicas."),
      maxReplicas: z.number().int().min(1).max(1000).default(4).describe("Most replicas."),
      targetGenerationTokensPerSecond: z
        .number()
        .int()
        .min(1)
        .max(1000000)
        .optional()
        .describe(
          "Generation tokens/s one replica should carry; derived from the plan when omitted.",
        ),
      prometheusUrl: z
        .string()
        .regex(/^https?:\/\/[^\s]+$/, "must be an http(s) URL")
        .optional()
        .describe(
          "Prometheus that scrapes vLLM, for mode keda (default http://prometheus-operated.monitoring.svc:9090).",
        ),
      scaleToZero: z
        .boolean()
        .default(false)
        .describe(
          "Allow zero replicas when idle. Nothing holds requests meanwhile: the wake-up time is stated in status.",
        ),
      scaleUp: ScalingBehaviourSchema({ window: 0, step: 2 }, "scale up"),
      scaleDown: ScalingBehaviourSchema({ window: 300, step: 1 }, "scale down"),
    })
    .strict()
    .describe("Throughput autoscaling."),
  [
    {
      cel: "self.minReplicas <= self.maxReplicas",
      message: "minReplicas must be less than or equal to maxReplicas",
      field: "minReplicas",
      holds: (a) => a.minReplicas <= a.maxReplicas,
    },
    {
      cel: "self.minReplicas > 0 || self.scaleToZero",
      message:
        "minReplicas 0 needs scaleToZero: true (no request is held while there are no replicas)",
      field: "minReplicas",
      holds: (a) => a.minReplicas > 0 || a.scaleToZero,
    },
  ],
);

export const TolerationSchema = z
  .object({
    key: z
      .string()
      .max(317)
      .regex(new RegExp(QUALIFIED_NAME_PATTERN), "must be a label key: [prefix/]name")
      .optional()
      .describe("Taint key."),
    operator: z.enum(["Exists", "Equal"]).optional().describe("Exists or Equal."),
    value: z
      .string()
      .regex(new RegExp(LABEL_VALUE_PATTERN), "must be a label value (at most 63 characters)")
      .optional()
      .describe("Taint value for Equal."),
    effect: z
      .enum(["NoSchedule", "PreferNoSchedule", "NoExecute"])
      .optional()
      .describe("Taint effect."),
  })
  .strict()
  .describe("A toleration added to the vLLM pods.");

export const NodeClassRefSchema = z
  .object({
    group: z.string().min(1).default("karpenter.k8s.aws").describe("API group of the node class."),
    kind: z.string().min(1).default("EC2NodeClass").describe("Kind of the node class."),
    name: dnsLabel.describe("Name of the node class (cloud-specific node settings)."),
  })
  .strict()
  .describe("The cloud's node class Karpenter launches nodes from.");

export const KarpenterSchema = z
  .object({
    nodeClassRef: NodeClassRefSchema,
    capacityTypes: z
      .array(z.enum(["on-demand", "spot", "reserved"]))
      .min(1)
      .default(["on-demand"])
      .describe("Capacity types Karpenter may buy."),
    instanceTypes: z
      .array(z.string().min(1))
      .optional()
      .describe("Restrict to these instance types (e.g. p4de.24xlarge)."),
    consolidateAfter: z
      .string()
      .regex(/^(([0-9]+(s|m|h))+|Never)$/, "must be a duration such as 30m or Never")
      .default("30m")
      .describe("How long a node must stay empty before Karpenter removes it."),
    expireAfter: z
      .string()
      .regex(/^(([0-9]+(s|m|h))+|Never)$/, "must be a duration such as 720h or Never")
      .default("720h")
      .describe("Maximum node lifetime."),
  })
  .strict()
  .describe("A Karpenter karpenter.sh/v1 NodePool owned by this resource.");

export const StaticNodesSchema = z
  .object({
    nodeSelector: z
      .record(
        z.string().regex(new RegExp(QUALIFIED_NAME_PATTERN), "keys must be label keys"),
        z.string().regex(new RegExp(LABEL_VALUE_PATTERN), "must be a label value"),
      )
      .default({})
      .describe("Labels the existing GPU nodes carry (added to the GPU product affinity)."),
    tolerations: z.array(TolerationSchema).default([]).describe("Extra tolerations."),
  })
  .strict()
  .describe("Run on existing, already labelled GPU nodes.");

export const NodePoolSchema = withRules(
  z
    .object({
      provider: z
        .enum(["static", "karpenter"])
        .default("static")
        .describe("static: existing nodes; karpenter: a NodePool created for this deployment."),
      karpenter: KarpenterSchema.optional(),
      static: StaticNodesSchema.optional(),
    })
    .strict()
    .describe("Where the GPU nodes come from."),
  [
    {
      cel: "self.provider != 'karpenter' || has(self.karpenter)",
      message: "provider karpenter needs nodePool.karpenter (at least nodeClassRef.name)",
      field: "karpenter",
      holds: (n) => n.provider !== "karpenter" || n.karpenter !== undefined,
    },
    {
      cel: "self.provider == 'karpenter' || !has(self.karpenter)",
      message: "nodePool.karpenter is set but provider is not karpenter",
      field: "karpenter",
      holds: (n) => n.provider === "karpenter" || n.karpenter === undefined,
    },
    {
      cel: "self.provider == 'static' || !has(self.static)",
      message: "nodePool.static is set but provider is not static",
      field: "static",
      holds: (n) => n.provider === "static" || n.static === undefined,
    },
  ],
);

/**
 * Pod labels and annotations the operator sets (names.ts commonLabels, deployment.ts). A unit test
 * checks these lists against a rendered pod; they are spelled out here because names.ts imports
 * this module.
 */
export const MANAGED_POD_LABELS = [
  "app.kubernetes.io/instance",
  "app.kubernetes.io/name",
  "app.kubernetes.io/component",
  "app.kubernetes.io/managed-by",
  "app.kubernetes.io/part-of",
] as const;
export const MANAGED_POD_ANNOTATIONS = [
  `${GROUP}/template-hash`,
  "karpenter.sh/do-not-disrupt",
] as const;

/** A CEL list literal of strings. */
const celList = (items: readonly string[]) => `[${items.map((i) => `'${i}'`).join(", ")}]`;

/** Kubernetes' classic environment variable name (IsEnvVarName in apimachinery validation). */
const ENV_NAME_PATTERN = "^[-._a-zA-Z][-._a-zA-Z0-9]*$";

const envKeySelector = (kind: "Secret" | "ConfigMap") =>
  z
    .object({
      name: dnsLabel.describe(`Name of a ${kind} in the same namespace.`),
      key: z
        .string()
        .min(1)
        .max(253)
        .regex(new RegExp(CONFIG_MAP_KEY_PATTERN), `must be a ${kind} key`)
        .describe(`Key in the ${kind}.`),
      optional: z
        .boolean()
        .optional()
        .describe(`Start the pod even when the ${kind} or key is missing.`),
    })
    .strict()
    .describe(`A key of a ${kind}.`);

export const EnvVarSchema = withRules(
  z
    .object({
      name: z
        .string()
        .min(1)
        .max(253)
        .regex(new RegExp(ENV_NAME_PATTERN), "must be an environment variable name")
        .describe("Variable name. Names the operator sets are refused."),
      value: z.string().max(32768).optional().describe("Literal value."),
      valueFrom: z
        .object({
          secretKeyRef: envKeySelector("Secret").optional(),
          configMapKeyRef: envKeySelector("ConfigMap").optional(),
          fieldRef: z
            .object({
              fieldPath: z
                .string()
                .min(1)
                .max(256)
                .describe("Pod field, e.g. metadata.name or status.podIP."),
            })
            .strict()
            .optional()
            .describe("A field of the pod (the downward API)."),
        })
        .strict()
        .optional()
        .describe("Take the value from a Secret, a ConfigMap or the pod (exactly one)."),
    })
    .strict()
    .describe("An environment variable of the vLLM container."),
  [
    {
      cel: "has(self.value) != has(self.valueFrom)",
      message: "set exactly one of value and valueFrom",
      field: "value",
      holds: (e) => (e.value === undefined) !== (e.valueFrom === undefined),
    },
    {
      cel: "!has(self.valueFrom) || [has(self.valueFrom.secretKeyRef), has(self.valueFrom.configMapKeyRef), has(self.valueFrom.fieldRef)].filter(x, x).size() == 1",
      message: "valueFrom needs exactly one of secretKeyRef, configMapKeyRef and fieldRef",
      field: "valueFrom",
      holds: (e) =>
        e.valueFrom === undefined ||
        [e.valueFrom.secretKeyRef, e.valueFrom.configMapKeyRef, e.valueFrom.fieldRef].filter(
          (x) => x !== undefined,
        ).length === 1,
    },
  ],
);

const envSourceRef = (kind: "Secret" | "ConfigMap") =>
  z
    .object({
      name: dnsLabel.describe(`Name of a ${kind} in the same namespace.`),
      optional: z.boolean().optional().describe(`Start the pod even when the ${kind} is missing.`),
    })
    .strict()
    .describe(`Every key of a ${kind} becomes a variable.`);

export const EnvFromSchema = withRules(
  z
    .object({
      prefix: z
        .string()
        .max(253)
        .regex(/^[-._a-zA-Z][-._a-zA-Z0-9]*$|^$/, "must start an environment variable name")
        .optional()
        .describe("Prepended to every key."),
      secretRef: envSourceRef("Secret").optional(),
      configMapRef: envSourceRef("ConfigMap").optional(),
    })
    .strict()
    .describe(
      "A Secret or ConfigMap whose keys become variables. Variables the operator sets win over these (Kubernetes gives env precedence over envFrom).",
    ),
  [
    {
      cel: "has(self.secretRef) != has(self.configMapRef)",
      message: "set exactly one of secretRef and configMapRef",
      field: "secretRef",
      holds: (e) => (e.secretRef === undefined) !== (e.configMapRef === undefined),
    },
  ],
);

export const TopologySpreadSchema = z
  .object({
    maxSkew: z
      .number()
      .int()
      .min(1)
      .max(1000)
      .default(1)
      .describe("Largest allowed difference in pod count between two domains."),
    topologyKey: z
      .string()
      .max(317)
      .regex(new RegExp(QUALIFIED_NAME_PATTERN), "must be a label key: [prefix/]name")
      .describe("Node label that defines a domain, e.g. topology.kubernetes.io/zone."),
    whenUnsatisfiable: z
      .enum(["DoNotSchedule", "ScheduleAnyway"])
      .default("ScheduleAnyway")
      .describe(
        "DoNotSchedule keeps a pod pending rather than skew more; ScheduleAnyway only prefers balance.",
      ),
    minDomains: z
      .number()
      .int()
      .min(1)
      .max(1000)
      .optional()
      .describe("Count at least this many domains (needs DoNotSchedule)."),
  })
  .strict()
  .describe("Spread this deployment's pods (selected by its selector labels) across domains.");

const labelKey = z
  .string()
  .max(317)
  .regex(new RegExp(QUALIFIED_NAME_PATTERN), "keys must be label keys: [prefix/]name");

export const PodSchema = withRules(
  z
    .object({
      imagePullSecrets: z
        .array(
          z
            .object({ name: dnsLabel.describe("Name of a docker-registry Secret.") })
            .strict()
            .describe("A Secret of type kubernetes.io/dockerconfigjson in the same namespace."),
        )
        .max(16)
        .optional()
        .describe("Secrets the kubelet uses to pull engine.image from a private registry."),
      env: z
        .array(EnvVarSchema)
        .max(64)
        .optional()
        .describe("Extra environment variables of the vLLM container, after the operator's."),
      envFrom: z
        .array(EnvFromSchema)
        .max(16)
        .optional()
        .describe("Secrets and ConfigMaps whose keys become variables of the vLLM container."),
      serviceAccountName: dnsLabel
        .optional()
        .describe(
          "ServiceAccount the pods run as (e.g. for image pull credentials or cloud identity). Its API token is still not mounted.",
        ),
      priorityClassName: dnsLabel
        .optional()
        .describe("PriorityClass of the pods, so they may preempt lower-priority ones."),
      runtimeClassName: dnsLabel
        .optional()
        .describe(
          "RuntimeClass of the pods, e.g. nvidia where the NVIDIA runtime is not the default.",
        ),
      labels: z
        .record(
          labelKey,
          z.string().regex(new RegExp(LABEL_VALUE_PATTERN), "must be a label value"),
        )
        .optional()
        .describe(
          `Extra pod labels. The operator's own (${MANAGED_POD_LABELS.join(", ")}) are refused.`,
        ),
      annotations: z
        .record(labelKey, z.string().max(65536))
        .optional()
        .describe(
          `Extra pod annotations. The operator's own (${MANAGED_POD_ANNOTATIONS.join(", ")}) are refused.`,
        ),
      topologySpreadConstraints: z
        .array(TopologySpreadSchema)
        .max(8)
        .optional()
        .describe("Spread the pods over zones or nodes."),
      nodeSelector: z
        .record(
          z.string().regex(new RegExp(QUALIFIED_NAME_PATTERN), "keys must be label keys"),
          z.string().regex(new RegExp(LABEL_VALUE_PATTERN), "must be a label value"),
        )
        .optional()
        .describe(
          "Extra node labels the pods require, with either node-pool provider (added to the operator's own selector; karpenter.sh/nodepool is refused).",
        ),
      tolerations: z
        .array(TolerationSchema)
        .max(16)
        .optional()
        .describe("Extra tolerations of the pods, with either node-pool provider."),
    })
    .strict()
    .describe("Pod settings a platform adds around the vLLM container."),
  [
    {
      cel: "!has(self.nodeSelector) || !('karpenter.sh/nodepool' in self.nodeSelector)",
      message:
        "nodeSelector must not set karpenter.sh/nodepool: the operator pins the pods to their own NodePool",
      field: "nodeSelector",
      holds: (p) => !Object.keys(p.nodeSelector ?? {}).includes("karpenter.sh/nodepool"),
    },
    {
      cel: `!has(self.env) || self.env.all(e, !(e.name in ${celList(MANAGED_ENV)}))`,
      message: `env must not set variables the operator manages (${MANAGED_ENV.join(", ")}); use the matching spec field`,
      field: "env",
      holds: (p) => (p.env ?? []).every((e) => !MANAGED_ENV.includes(e.name)),
    },
    {
      cel: `!has(self.labels) || self.labels.all(k, !(k in ${celList(MANAGED_POD_LABELS)}))`,
      message: `labels must not set the operator's labels (${MANAGED_POD_LABELS.join(", ")}): the Deployment and Service select pods by them`,
      field: "labels",
      holds: (p) =>
        Object.keys(p.labels ?? {}).every(
          (k) => !(MANAGED_POD_LABELS as readonly string[]).includes(k),
        ),
    },
    {
      cel: `!has(self.annotations) || self.annotations.all(k, !(k in ${celList(MANAGED_POD_ANNOTATIONS)}))`,
      message: `annotations must not set the operator's annotations (${MANAGED_POD_ANNOTATIONS.join(", ")})`,
      field: "annotations",
      holds: (p) =>
        Object.keys(p.annotations ?? {}).every(
          (k) => !(MANAGED_POD_ANNOTATIONS as readonly string[]).includes(k),
        ),
    },
    {
      cel: "!has(self.topologySpreadConstraints) || self.topologySpreadConstraints.all(t, !has(t.minDomains) || t.whenUnsatisfiable == 'DoNotSchedule')",
      message: "topologySpreadConstraints: minDomains needs whenUnsatisfiable DoNotSchedule",
      field: "topologySpreadConstraints",
      holds: (p) =>
        (p.topologySpreadConstraints ?? []).every(
          (t) => t.minDomains === undefined || t.whenUnsatisfiable === "DoNotSchedule",
        ),
    },
  ],
);

const matchLabels = (what: string) =>
  z
    .record(
      z.string().regex(new RegExp(QUALIFIED_NAME_PATTERN), "keys must be label keys"),
      z.string().regex(new RegExp(LABEL_VALUE_PATTERN), "must be a label value"),
    )
    .describe(`Labels ${what} must carry (all of them).`);

export const PeerSchema = withRules(
  z
    .object({
      namespaceSelector: z
        .object({ matchLabels: matchLabels("the namespace") })
        .strict()
        .optional()
        .describe(
          "Namespaces allowed; with podSelector, only those pods in them. Omitted: this resource's namespace.",
        ),
      podSelector: z
        .object({ matchLabels: matchLabels("the pod") })
        .strict()
        .optional()
        .describe("Pods allowed. Omitted: every pod of the selected namespaces."),
    })
    .strict()
    .describe("Clients allowed to reach the API (a NetworkPolicy peer)."),
  [
    {
      cel: "has(self.namespaceSelector) || has(self.podSelector)",
      message: "a peer needs namespaceSelector, podSelector or both",
      field: "namespaceSelector",
      holds: (p) => p.namespaceSelector !== undefined || p.podSelector !== undefined,
    },
  ],
);

export const DEFAULT_MONITORING_NAMESPACE_LABELS = {
  "kubernetes.io/metadata.name": "monitoring",
} as const;

export const NetworkPolicySchema = z
  .object({
    enabled: z
      .boolean()
      .default(true)
      .describe(
        "Render a NetworkPolicy for the vLLM pods. Turn off on clusters without a policy engine, or to write your own.",
      ),
    apiFrom: z
      .array(PeerSchema)
      .max(16)
      .optional()
      .describe(
        "Who may reach the API port. Omitted: every pod in this resource's namespace (and nothing outside it).",
      ),
    metricsNamespaceSelector: z
      .object({ matchLabels: matchLabels("the monitoring namespace") })
      .strict()
      .prefault({ matchLabels: { ...DEFAULT_MONITORING_NAMESPACE_LABELS } })
      .describe(
        "Namespaces whose pods may scrape /metrics (Prometheus). vLLM serves /metrics on the API port, so they reach that port; the API key guards /v1.",
      ),
  })
  .strict()
  .describe("Ingress isolation of the vLLM pods.");

export const AccessSchema = z
  .object({
    networkPolicy: NetworkPolicySchema.prefault({}),
    apiKeySecretRef: secretKeyRef(
      "VLLM_API_KEY",
      "the API key",
      "Secret holding the API key clients must send as `Authorization: Bearer <key>` to /v1/*, passed to vLLM as VLLM_API_KEY. /health and /metrics stay open for probes and Prometheus. The operator never reads the Secret; a missing Secret or key shows in status as the kubelet reports it. No key: the API is open to whoever reaches the Service.",
    ).optional(),
  })
  .strict()
  .describe("Who may call the OpenAI-compatible API.");

/** prometheus-operator's Duration (pkg/apis/monitoring/v1/types.go). */
const PROMETHEUS_DURATION =
  /^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$/;

export const MonitoringSchema = z
  .object({
    podMonitor: z
      .object({
        enabled: z
          .boolean()
          .default(false)
          .describe(
            "Render a monitoring.coreos.com/v1 PodMonitor for the vLLM pods (needs the prometheus-operator CRDs).",
          ),
        interval: z
          .string()
          .min(1)
          .regex(PROMETHEUS_DURATION, "must be a Prometheus duration such as 30s")
          .default("30s")
          .describe("Scrape interval."),
        labels: z
          .record(
            z.string().regex(new RegExp(QUALIFIED_NAME_PATTERN), "keys must be label keys"),
            z.string().regex(new RegExp(LABEL_VALUE_PATTERN), "must be a label value"),
          )
          .optional()
          .describe(
            "Extra labels on the PodMonitor, for a Prometheus whose podMonitorSelector wants them (e.g. release: kube-prometheus-stack).",
          ),
      })
      .strict()
      .prefault({})
      .describe("A PodMonitor so that Prometheus scrapes vLLM's /metrics."),
  })
  .strict()
  .describe("Prometheus scraping of the vLLM pods.");

export const SpecSchema = withRules(
  z
    .object({
      model: ModelSchema.prefault({}),
      gpu: GpuSchema,
      maxModelLen: z
        .number()
        .int()
        .min(1024)
        .max(MODEL.maxContext)
        .default(32768)
        .describe("Context-length cap in tokens (prompt plus output), 1024 to 262144."),
      capabilities: CapabilitiesSchema.prefault({}),
      engine: EngineSchema.prefault({}),
      replicas: z
        .number()
        .int()
        .min(0)
        .max(1000)
        .default(1)
        .describe("Replicas when autoscaling is off (also the scale subresource)."),
      autoscaling: AutoscalingSchema.prefault({}),
      nodePool: NodePoolSchema.prefault({}),
      access: AccessSchema.prefault({}),
      pod: PodSchema.prefault({}),
      monitoring: MonitoringSchema.prefault({}),
    })
    .strict()
    .describe("Desired state of a Mistral Small 4 deployment."),
  [
    {
      cel: `!self.engine.speculative.enabled || !${inPlaceCel("self.model.source")}`,
      message:
        "engine.speculative loads the EAGLE draft from the Hugging Face Hub through the model cache; with a pvc, objectStorage or image source the pods run offline without it: disable speculative decoding or use the Hub source",
      field: "engine",
      holds: (s) => !s.engine.speculative.enabled || !inPlaceSource(s.model.source),
    },
    {
      cel: "!self.autoscaling.enabled || (self.replicas >= self.autoscaling.minReplicas && self.replicas <= self.autoscaling.maxReplicas)",
      message: "with autoscaling enabled, replicas must lie within [minReplicas, maxReplicas]",
      field: "replicas",
      holds: (s) =>
        !s.autoscaling.enabled ||
        (s.replicas >= s.autoscaling.minReplicas && s.replicas <= s.autoscaling.maxReplicas),
    },
  ],
);

export type Spec = z.output<typeof SpecSchema>;
/** What a user writes: every defaulted field optional. Pulumi args are typed from this. */
export type SpecInput = z.input<typeof SpecSchema>;

export const ConditionSchema = z
  .object({
    type: z
      .string()
      .describe(
        "Ready, Progressing, Degraded, EngineVerified, ModelCached, or TemplateUpdateAvailable (while a newer operator's pod template waits for the owner's opt-in).",
      ),
    status: z.enum(["True", "False", "Unknown"]),
    reason: z.string().describe("CamelCase reason from the operator's list."),
    message: z.string().describe("Human-readable detail, with numbers."),
    observedGeneration: z.number().int().optional(),
    lastTransitionTime: z.string().describe("RFC 3339 time of the last status change."),
  })
  .describe("A metav1.Condition.");

export const ScalingDecisionSchema = z
  .object({
    time: z.string(),
    from: z.number().int(),
    to: z.number().int(),
    reason: z.string(),
    metrics: z.record(z.string(), z.string()).optional(),
  })
  .describe("One autoscaling decision.");

export const StatusSchema = z
  .object({
    observedGeneration: z.number().int().optional(),
    conditions: z.array(ConditionSchema).optional(),
    replicas: z.number().int().optional().describe("Pods of this deployment."),
    readyReplicas: z.number().int().optional().describe("Pods serving."),
    selector: z.string().optional().describe("Label selector of the pods (scale subresource)."),
    endpoint: z
      .string()
      .optional()
      .describe(
        "In-cluster URL of the OpenAI-compatible API (base URL for OpenAI clients; see access for the model and key).",
      ),
    access: z
      .object({
        servedModelName: z.string().describe("The `model` clients send in each request."),
        authentication: z
          .enum(["none", "bearer"])
          .describe(
            "bearer: send `Authorization: Bearer <key>` with the key from apiKeySecretRef; none: the API is open.",
          ),
        apiKeySecretRef: z
          .object({ name: z.string(), key: z.string() })
          .optional()
          .describe("Where the key clients must send is kept (read it with kubectl get secret)."),
      })
      .optional()
      .describe("How clients call the endpoint."),
    plan: z
      .object({
        gpuType: z.string(),
        quantization: z.string(),
        tensorParallelSize: z.number().int(),
        gpusPerReplica: z.number().int(),
        maxModelLen: z.number().int(),
        kvCacheTokensPerReplica: z.number().int(),
        fullContextSequences: z.number().int(),
        vllmRelease: z
          .string()
          .optional()
          .describe("The vLLM release the command line was checked against."),
        image: z.string().optional().describe("The vLLM image."),
        attentionBackend: z.string().optional().describe("The MLA attention backend vLLM picks."),
        moeBackend: z.string().optional().describe("The fused-MoE backend vLLM runs."),
      })
      .optional()
      .describe("The sizing plan in brief."),
    scaling: z
      .object({
        desiredReplicas: z.number().int().optional(),
        wakeUpSeconds: z.number().int().optional(),
        lastDecisions: z.array(ScalingDecisionSchema).optional(),
      })
      .optional()
      .describe("Autoscaler state."),
  })
  .describe("Observed state, written by the operator.");

export type Status = z.output<typeof StatusSchema>;

export interface MistralSmallDeployment {
  apiVersion: typeof API_VERSION;
  kind: typeof KIND;
  metadata: {
    name: string;
    namespace: string;
    uid?: string;
    generation?: number;
    resourceVersion?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    finalizers?: string[];
    deletionTimestamp?: string;
  };
  spec: Spec;
  status?: Status;
}
