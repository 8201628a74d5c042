/**
 * The model cache: where a checkpoint's files live, who fills it, and how the vLLM pods see it.
 *
 * A Hub checkpoint is downloaded once per (checkpoint, revision, format) by a loader Job into a
 * claim named after that identity, so every MistralSmallDeployment of the namespace asking for
 * the same files shares one claim and one Job. Both carry one non-controller owner reference per
 * resource using them: Kubernetes' garbage collector deletes them when the last one is gone, and
 * a resource that moves to another revision releases its reference (see
 * src/controller/model-cache.ts). A pvc, objectStorage or image source is read where it is.
 */
import type { V1Volume, V1VolumeMount, V1EnvFromSource, V1EnvVar } from "@kubernetes/client-node";
import { inPlaceSourceOf, type InPlaceSource, type MistralSmallDeployment } from "../api/schema.ts";
import { EAGLE_DRAFT } from "../engine/command.ts";
import type { Plan } from "../planner/plan.ts";
import { MODEL_CACHE_PATH } from "./env.ts";
import { OPERATOR_NAME, ownerReferences, shortHash } from "./names.ts";

export const CACHE_KEY_LABEL = "serving.mistralsmall.dev/model-cache";
export const CHECKPOINT_ANNOTATION = "serving.mistralsmall.dev/checkpoint";
export const REVISION_ANNOTATION = "serving.mistralsmall.dev/revision";
/** The revision huggingface_hub resolves when none is given. */
export const DEFAULT_REVISION = "main";

export type WeightSource = "hub" | InPlaceSource;

export function weightSource(msd: MistralSmallDeployment): WeightSource {
  return inPlaceSourceOf(msd.spec.model.source) ?? "hub";
}

/**
 * Files of the other layout are left out: the official repositories hold both Mistral's
 * consolidated*.safetensors and the Hugging Face model-*.safetensors (about 125 GB each).
 */
export function excludePatterns(format: "mistral" | "hf"): string[] {
  return format === "mistral"
    ? ["model-*.safetensors", "model.safetensors.index.json"]
    : ["consolidated*.safetensors", "consolidated.safetensors.index.json"];
}

export interface CacheIdentity {
  /** Repositories to download: the checkpoint, then the EAGLE draft when speculative is on. */
  readonly repos: readonly string[];
  /** Of the checkpoint; the draft is always its default branch. */
  readonly revision: string;
  readonly format: "mistral" | "hf";
  /** Names the files and their storage: equal for every resource that loads the same ones. */
  readonly key: string;
  readonly claimName: string;
  /** Whether the operator creates the claim (false: spec.model.cache.existingClaim). */
  readonly ownClaim: boolean;
  /** HF_HOME of the loader and of vLLM: one directory per key, so revisions never mix. */
  readonly hfHome: string;
}

export function cacheIdentity(msd: MistralSmallDeployment, plan: Plan): CacheIdentity {
  const repos = [plan.checkpoint, ...(msd.spec.engine.speculative.enabled ? [EAGLE_DRAFT] : [])];
  const revision = msd.spec.model.revision ?? DEFAULT_REVISION;
  const format = plan.engine.format;
  const existing = msd.spec.model.cache.existingClaim;
  // A claim's spec is immutable: resources asking for other storage get a cache of their own.
  const { size, storageClassName, accessMode } = msd.spec.model.cache;
  const storage = existing === undefined ? { size, storageClassName, accessMode } : { existing };
  const key = shortHash(JSON.stringify({ repos, revision, format, storage }));
  return {
    repos,
    revision,
    format,
    key,
    claimName: existing ?? `model-cache-${key}`,
    ownClaim: existing === undefined,
    hfHome: `${MODEL_CACHE_PATH}/${key}`,
  };
}

/** Metadata of an object shared by every resource loading the same files. */
export function sharedMeta(msd: MistralSmallDeployment, name: string, key: string) {
  const owners = ownerReferences(msd)?.map((o) => ({
    ...o,
    // Several resources own it: none is its controller, and none waits on it when deleted.
    controller: false,
    blockOwnerDeletion: false,
  }));
  return {
    name,
    namespace: msd.metadata.namespace,
    labels: {
      "app.kubernetes.io/name": "mistral-small-model-cache",
      "app.kubernetes.io/component": "model-cache",
      "app.kubernetes.io/managed-by": OPERATOR_NAME,
      "app.kubernetes.io/part-of": "mistral-small-4",
      [CACHE_KEY_LABEL]: key,
    },
    ...(owners === undefined ? {} : { ownerReferences: owners }),
  };
}

/** How the vLLM container reaches the weights: volume, mount, --model, env. */
export interface WeightsAccess {
  readonly volume: V1Volume | undefined;
  readonly mount: V1VolumeMount | undefined;
  /** Replaces the checkpoint (argv[0]) of vllm serve. */
  readonly model: string;
  readonly extraArgs: readonly string[];
  readonly env: readonly V1EnvVar[];
  readonly envFrom: readonly V1EnvFromSource[];
}

const WEIGHTS_VOLUME = "model-cache";
/** Every source with a volume mounts it here, read-only (a fresh object: renders are mutable). */
const weightsMount = (): V1VolumeMount => ({
  name: WEIGHTS_VOLUME,
  mountPath: MODEL_CACHE_PATH,
  readOnly: true,
});

function joinPath(base: string, rel: string): string {
  return rel === "" ? base : `${base}/${rel.replace(/\/+$/, "")}`;
}

export function weightsAccess(msd: MistralSmallDeployment, plan: Plan): WeightsAccess {
  const s = msd.spec.model.source;
  const offline: V1EnvVar = { name: "HF_HUB_OFFLINE", value: "1" };
  const none = { extraArgs: [], envFrom: [] };
  if (s.pvc !== undefined) {
    return {
      ...none,
      volume: {
        name: WEIGHTS_VOLUME,
        persistentVolumeClaim: { claimName: s.pvc.claimName, readOnly: true },
      },
      mount: weightsMount(),
      model: joinPath(MODEL_CACHE_PATH, s.pvc.path),
      env: [offline],
    };
  }
  if (s.image !== undefined) {
    return {
      ...none,
      // Kubernetes image volumes (KEP-4639): GA and always on in 1.36, beta and on since 1.35.
      volume: {
        name: WEIGHTS_VOLUME,
        image: { reference: s.image.reference, pullPolicy: s.image.pullPolicy },
      },
      mount: weightsMount(),
      model: joinPath(MODEL_CACHE_PATH, s.image.path),
      env: [offline],
    };
  }
  if (s.objectStorage !== undefined) {
    const ref = s.objectStorage.credentialsSecretRef;
    return {
      volume: undefined,
      mount: undefined,
      model: s.objectStorage.uri,
      // vLLM v0.24.0's RunaiModelStreamerLoader reads s3://, gs:// (and az://) directories.
      extraArgs: ["--load-format", "runai_streamer"],
      env: [offline],
      envFrom: ref === undefined ? [] : [{ secretRef: { name: ref.name } }],
    };
  }
  const id = cacheIdentity(msd, plan);
  return {
    volume: {
      name: WEIGHTS_VOLUME,
      persistentVolumeClaim: { claimName: id.claimName, readOnly: true },
    },
    mount: weightsMount(),
    model: plan.checkpoint,
    extraArgs: [],
    // The loader filled HF_HOME: vLLM resolves the revision from its refs, never from the Hub.
    env: [{ name: "HF_HOME", value: id.hfHome }, offline],
    envFrom: [],
  };
}

/**
 * vllm serve's arguments for the source: the checkpoint (argv[0]) becomes the local path or
 * bucket, and the source's own flags follow. Nothing else needs removing: the schema refuses
 * `revision` with a source read in place and `format: mistral` (--load-format) with
 * objectStorage, and extraArgs may set neither (MANAGED_FLAGS in src/engine/command.ts).
 */
export function sourceArgs(args: readonly string[], access: WeightsAccess): string[] {
  return [access.model, ...args.slice(1), ...access.extraArgs];
}
