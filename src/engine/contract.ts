/**
 * The engine contract applied to one spec: which vLLM release the image runs, which
 * attention and MoE backends vLLM will pick on the GPU, and every combination that release
 * cannot start or serve, refused with its reason. Pure; reads only the release catalog.
 */
import type { Spec } from "../api/schema.ts";
import type { GpuSpec } from "../catalog/gpus.ts";
import { MODEL, MODEL_VARIANTS } from "../catalog/model.ts";
import { parseArgv } from "./argv.ts";
import { compareVersions, imageRelease } from "./image.ts";
import { KNOWN_BUGS, MIN_VERSION, NEWEST, RELEASES } from "./releases.ts";
import {
  MLA_BACKENDS,
  type CudaVersion,
  type MlaBackend,
  type MoeRule,
  type Release,
} from "./types.ts";

/** MLA head size vLLM validates and its kernels run: the latent plus the rope key. */
export const MLA_HEAD_SIZE = MODEL.kvLoraRank + MODEL.qkRopeHeadDim;

export type CheckpointFormat = "mistral" | "hf";

/** Which contract an image runs under. */
interface ReleaseResolution {
  /** The contract the command line is checked against. */
  readonly release: Release;
  readonly image: string;
  readonly cuda: CudaVersion;
  /** The release the image runs, as read from its tag (null when it cannot be read). */
  readonly imageVersion: string | null;
  /** True when the image's release has its own contract. */
  readonly verified: boolean;
  /** Why the release is unverified (empty when verified). */
  readonly unverifiedReason: string;
  readonly problems: readonly string[];
}

export interface EngineChoice extends ReleaseResolution {
  readonly format: CheckpointFormat;
  readonly reasoning: boolean;
  readonly mlaBackend: MlaBackend | null;
  readonly moe: MoeRule | null;
  readonly caveats: readonly string[];
}

export function isOfficialCheckpoint(spec: Spec): boolean {
  const official = MODEL_VARIANTS[spec.model.quantization].officialCheckpoint;
  return spec.model.name === undefined || spec.model.name === official;
}

/** Official checkpoints are in Mistral's consolidated format; user checkpoints default to HF. */
export function checkpointFormat(spec: Spec): CheckpointFormat {
  return spec.model.format ?? (isOfficialCheckpoint(spec) ? "mistral" : "hf");
}

/** The reasoning parser needs Mistral's tokenizer, so it follows the format unless set. */
export function reasoningEnabled(spec: Spec): boolean {
  return spec.capabilities.reasoning ?? checkpointFormat(spec) === "mistral";
}

export function defaultImage(release: Release, cuda: CudaVersion): string {
  return release.images[cuda];
}

function releaseFor(version: string): Release | undefined {
  return RELEASES.find((r) => r.versions.includes(version));
}

/** The newest contract not newer than `version`, for releases we have no fixture of. */
function nearestOlder(version: string): Release {
  const older = RELEASES.filter((r) => compareVersions(r.version, version) <= 0);
  return older.sort((a, b) => compareVersions(b.version, a.version))[0] ?? NEWEST;
}

function resolveRelease(spec: Spec): ReleaseResolution {
  const image = spec.engine.image ?? defaultImage(NEWEST, spec.engine.cudaVersion ?? "13.0");
  const read = imageRelease(image);
  const problems: string[] = [];
  if (read === undefined) {
    return {
      release: NEWEST,
      image,
      cuda: spec.engine.cudaVersion ?? "13.0",
      imageVersion: null,
      verified: false,
      unverifiedReason: `the vLLM release of image ${image} cannot be read from its tag; its flags are checked against vLLM ${NEWEST.version}'s`,
      problems,
    };
  }
  if (compareVersions(read.version, MIN_VERSION) < 0) {
    problems.push(
      `engine.image ${image} is vLLM ${read.version}; Mistral Small 4 needs vLLM ${MIN_VERSION} or later (its tool and reasoning parsers and grammar support), and ${NEWEST.version} is the release this operator pins`,
    );
  }
  const known = releaseFor(read.version);
  const release = known ?? nearestOlder(read.version);
  return {
    release,
    image,
    cuda: read.cuda,
    imageVersion: read.version,
    verified: known !== undefined,
    unverifiedReason:
      known !== undefined
        ? ""
        : `no contract for vLLM ${read.version}; its flags are checked against vLLM ${release.version}'s`,
    problems,
  };
}

function ccName(gpu: GpuSpec): string {
  return `sm${Math.round(gpu.computeCapability * 10)}`;
}

/** The MLA backend vLLM's CUDA platform picks: the first in priority order that accepts the GPU and KV dtype. */
export function autoMlaBackend(release: Release, gpu: GpuSpec, fp8Kv: boolean): MlaBackend | null {
  const major = Math.floor(gpu.computeCapability);
  for (const b of release.mlaOrder[String(major)] ?? []) {
    const facts = release.mlaBackends[b];
    if (facts.ccMajors.includes(major) && (!fp8Kv || facts.fp8Kv)) return b;
  }
  return null;
}

/** Why a backend cannot run this model on this GPU, or undefined when it can. */
function backendProblem(
  release: Release,
  backend: MlaBackend,
  gpu: GpuSpec,
  fp8Kv: boolean,
): string | undefined {
  const facts = release.mlaBackends[backend];
  const major = Math.floor(gpu.computeCapability);
  if (!facts.ccMajors.includes(major)) {
    return `${backend} runs only on compute capability ${facts.ccMajors.map((m) => `${m}.x`).join(", ")}; an ${gpu.displayName} is ${gpu.computeCapability.toFixed(1)} (${facts.evidence})`;
  }
  if (fp8Kv && !facts.fp8Kv) {
    return `${backend} does not take an FP8 KV cache (${facts.evidence})`;
  }
  if (facts.kernelHeadSizes !== null && !facts.kernelHeadSizes.includes(MLA_HEAD_SIZE)) {
    return `${backend}'s kernels only run MLA head size ${facts.kernelHeadSizes.join(", ")}, and Mistral Small 4's is ${MLA_HEAD_SIZE} (${facts.evidence})`;
  }
  return undefined;
}

/** The attention backend named in extraArgs, if any, upper-cased as vLLM reads it. */
function requestedBackend(spec: Spec, release: Release): string | undefined {
  const parsed = parseArgv(spec.engine.extraArgs, release.flags);
  const f = parsed.flags.find((x) => x.flag === "--attention-backend");
  return f?.value;
}

function attentionChoice(
  spec: Spec,
  release: Release,
  gpu: GpuSpec,
  problems: string[],
): MlaBackend | null {
  const fp8Kv = spec.engine.kvCacheDtype === "fp8";
  const v = `vLLM ${release.version}`;
  if (fp8Kv && gpu.computeCapability < release.fp8KvMinCc) {
    problems.push(
      `engine.kvCacheDtype fp8 cannot run on an ${gpu.displayName} (SM ${gpu.computeCapability.toFixed(1)}): ` +
        (release.fp8KvBelowMin === "refused"
          ? `${v} refuses an FP8 KV cache for MLA below SM ${release.fp8KvMinCc}`
          : `${v} accepts the flag, but TRITON_MLA's FP8 path needs Triton's fp8e4nv type, which needs SM ${release.fp8KvMinCc}; it would fail at run time`) +
        "; use auto",
    );
    return null;
  }
  const requested = requestedBackend(spec, release);
  if (requested !== undefined) {
    if (!(MLA_BACKENDS as readonly string[]).includes(requested)) {
      problems.push(
        `engine.extraArgs selects attention backend ${requested}, which is not an MLA backend; Mistral Small 4 uses MLA attention (${MLA_BACKENDS.join(", ")})`,
      );
      return null;
    }
    const why = backendProblem(release, requested as MlaBackend, gpu, fp8Kv);
    if (why !== undefined) {
      problems.push(`engine.extraArgs selects ${requested} on an ${gpu.displayName}: ${why}`);
      return null;
    }
    return requested as MlaBackend;
  }
  const auto = autoMlaBackend(release, gpu, fp8Kv);
  if (auto === null) {
    problems.push(
      `${v} has no MLA attention backend for an ${gpu.displayName}${fp8Kv ? " with an FP8 KV cache" : ""}`,
    );
    return null;
  }
  const why = backendProblem(release, auto, gpu, fp8Kv);
  if (why !== undefined) {
    problems.push(
      `${fp8Kv ? "engine.kvCacheDtype fp8" : "this spec"} on an ${gpu.displayName}: ${v} would select ${auto}` +
        (fp8Kv ? " (the backends before it take no FP8 KV cache)" : "") +
        `, and ${why}; ${fp8Kv ? "use auto" : "choose another GPU type"}`,
    );
    return null;
  }
  return auto;
}

function moeRule(release: Release, spec: Spec, gpu: GpuSpec): MoeRule | null {
  const q = spec.model.quantization;
  return (
    release.moe.find(
      (r) =>
        r.quantizations.includes(q) &&
        gpu.computeCapability >= r.minCc &&
        gpu.computeCapability <= r.maxCc,
    ) ?? null
  );
}

function bugProblems(
  version: string,
  spec: Spec,
  gpu: GpuSpec,
  backend: MlaBackend | null,
): string[] {
  return KNOWN_BUGS.filter(
    (b) =>
      compareVersions(version, b.introducedIn) >= 0 &&
      compareVersions(version, b.fixedIn) < 0 &&
      (b.mlaBackends === undefined || (backend !== null && b.mlaBackends.includes(backend))) &&
      (b.quantizations === undefined || b.quantizations.includes(spec.model.quantization)),
  ).map(
    (b) =>
      `vLLM v${version} ${b.summary} on ${ccName(gpu)} (${backend === null ? "" : `${backend}, `}${b.id}); use v${b.fixedIn} or later (${b.detail}: ${b.link})`,
  );
}

export function chooseEngine(spec: Spec, gpu: GpuSpec): EngineChoice {
  const resolved = resolveRelease(spec);
  const { release } = resolved;
  const problems = [...resolved.problems];
  const caveats: string[] = [];
  const format = checkpointFormat(spec);
  const reasoning = reasoningEnabled(spec);
  if (reasoning && format === "hf") {
    problems.push(
      "capabilities.reasoning needs Mistral's tokenizer: vLLM's mistral reasoning parser raises \"The tokenizer must be an instance of MistralTokenizer\" at start-up with a Hugging Face-format checkpoint; set model.format: mistral if the repository holds consolidated*.safetensors, params.json and tekken.json, or capabilities.reasoning: false",
    );
  }
  const mlaBackend = attentionChoice(spec, release, gpu, problems);
  const moe = moeRule(release, spec, gpu);
  const version = resolved.imageVersion ?? release.version;
  problems.push(...bugProblems(version, spec, gpu, mlaBackend));
  if (spec.engine.speculative.enabled && !release.speculative.eagle) {
    problems.push(
      `engine.speculative needs EAGLE drafting for Mistral Small 4, which vLLM ${release.version} does not have (${release.speculative.evidence})`,
    );
  }
  if (!resolved.verified) caveats.push(`engine version unverified: ${resolved.unverifiedReason}`);
  return {
    ...resolved,
    format,
    reasoning,
    mlaBackend,
    moe,
    problems,
    caveats,
  };
}
