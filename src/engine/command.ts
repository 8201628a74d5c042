/**
 * The vLLM command line for a plan, built only from the engine contract. Order is fixed
 * so the rendered pod template, and therefore its hash, only changes when the plan does.
 */
import type { Spec } from "../api/schema.ts";
import { parseArgv } from "./argv.ts";
import type { EngineChoice } from "./contract.ts";
import type { Release } from "./types.ts";

export const VLLM_PORT = 8000;

/** The official EAGLE draft for Mistral Small 4 (vLLM recipe). */
export const EAGLE_DRAFT = "mistralai/Mistral-Small-4-119B-2603-eagle";

/**
 * Flags the operator owns, with the spec field that sets each. vLLM keeps the last of a
 * repeated flag, so any of these in extraArgs would silently override the plan.
 */
export const MANAGED_FLAGS: Readonly<Record<string, string>> = {
  "--model": "the checkpoint (spec.model.name)",
  "--tokenizer": "the checkpoint (spec.model.name)",
  "--served-model-name": "spec.model.servedModelName",
  "--revision": "spec.model.revision",
  "--tokenizer-mode": "spec.model.format",
  "--config-format": "spec.model.format",
  "--load-format": "spec.model.format",
  "--quantization": "spec.model.quantization",
  "--host": "the operator (the Service targets it)",
  "--port": "the operator (the Service targets it)",
  "--tensor-parallel-size": "spec.gpu.tensorParallelSize (the pod requests that many GPUs)",
  "--pipeline-parallel-size": "the plan (one pod per replica)",
  "--data-parallel-size": "the plan (one pod per replica)",
  "--max-model-len": "spec.maxModelLen",
  "--gpu-memory-utilization": "spec.engine.gpuMemoryUtilization",
  "--kv-cache-dtype": "spec.engine.kvCacheDtype",
  "--max-num-seqs": "spec.engine.maxNumSeqs",
  "--max-num-batched-tokens": "spec.engine.maxNumBatchedTokens",
  "--limit-mm-per-prompt": "spec.capabilities.vision",
  "--enable-auto-tool-choice": "spec.capabilities.toolCalling",
  "--tool-call-parser": "spec.capabilities.toolCalling",
  "--reasoning-parser": "spec.capabilities.reasoning",
  "--moe-backend": "the engine contract (the MoE backend that runs on this GPU)",
  "--speculative-config": "spec.engine.speculative",
  "--api-key": "spec.access.apiKeySecretRef (a Secret, never a literal key in the resource)",
  "--config": "the operator (a config file could set any flag, unseen by the planner)",
};

/** Every spelling of the managed flags across releases, for the CRD's admission rule. */
export function managedSpellings(releases: readonly Release[]): string[] {
  const out = new Set<string>();
  for (const flag of Object.keys(MANAGED_FLAGS)) {
    out.add(flag);
    for (const r of releases) for (const a of r.flags.flags[flag]?.aliases ?? []) out.add(a);
  }
  return [...out].sort();
}

/** A CEL/JS regex (RE2-compatible) matching a managed flag in any spelling vLLM accepts. */
export function managedFlagRegex(releases: readonly Release[]): string {
  const alternatives = managedSpellings(releases).map((s) =>
    s.startsWith("--") ? `--${s.slice(2).replaceAll("-", "[-_]")}` : s,
  );
  // A flag glued to its value by "=" or a space is still that flag to a reader of the resource.
  return `^(${alternatives.join("|")})([= ].*)?$`;
}

export interface Sizing {
  readonly checkpoint: string;
  readonly tensorParallelSize: number;
  readonly maxModelLen: number;
  readonly gpuMemoryUtilization: number;
  readonly maxNumSeqs: number;
  readonly maxNumBatchedTokens: number;
}

function formatArgs(engine: EngineChoice): string[] {
  // Mistral's consolidated format: params.json, consolidated*.safetensors, tekken.json.
  if (engine.format === "mistral") {
    return [
      "--tokenizer-mode",
      "mistral",
      "--config-format",
      "mistral",
      "--load-format",
      "mistral",
    ];
  }
  return [];
}

function speculativeArgs(spec: Spec): string[] {
  const s = spec.engine.speculative;
  if (!s.enabled) return [];
  const config = {
    model: EAGLE_DRAFT,
    num_speculative_tokens: s.numSpeculativeTokens,
    method: "eagle",
  };
  return ["--speculative-config", JSON.stringify(config)];
}

/** The operator's own flags, before the user's extraArgs. */
export function operatorArgs(spec: Spec, p: Sizing, engine: EngineChoice): string[] {
  const args: string[] = [p.checkpoint, "--served-model-name", spec.model.servedModelName];
  if (spec.model.revision !== undefined) args.push("--revision", spec.model.revision);
  args.push(...formatArgs(engine));
  args.push(
    "--host",
    "0.0.0.0",
    "--port",
    String(VLLM_PORT),
    "--tensor-parallel-size",
    String(p.tensorParallelSize),
    "--max-model-len",
    String(p.maxModelLen),
    "--gpu-memory-utilization",
    p.gpuMemoryUtilization.toFixed(2),
    "--max-num-seqs",
    String(p.maxNumSeqs),
    "--max-num-batched-tokens",
    String(p.maxNumBatchedTokens),
    "--kv-cache-dtype",
    spec.engine.kvCacheDtype,
  );
  if (spec.capabilities.toolCalling) {
    args.push("--enable-auto-tool-choice", "--tool-call-parser", "mistral");
  }
  if (engine.reasoning) args.push("--reasoning-parser", "mistral");
  const images = spec.capabilities.vision.enabled ? spec.capabilities.vision.maxImagesPerPrompt : 0;
  args.push("--limit-mm-per-prompt", JSON.stringify({ image: images }));
  if (engine.moe !== null && engine.moe.flag !== null) args.push("--moe-backend", engine.moe.flag);
  args.push(...speculativeArgs(spec));
  return args;
}

/** Why the user's extraArgs cannot go on this release's command line (empty when they can). */
export function extraArgsProblems(spec: Spec, engine: EngineChoice): string[] {
  const fixture = engine.release.flags;
  const parsed = parseArgv(spec.engine.extraArgs, fixture);
  const problems = parsed.problems.map((p) => `engine.extraArgs: ${p}`);
  for (const pos of parsed.positionals) {
    problems.push(
      `engine.extraArgs[${pos.index}] ${JSON.stringify(pos.value)} is not a flag or a flag's value; vLLM's only positional argument is the model, which the operator sets`,
    );
  }
  for (const f of parsed.flags) {
    const owner = MANAGED_FLAGS[f.flag];
    if (owner !== undefined) {
      problems.push(
        `engine.extraArgs[${f.index}] ${JSON.stringify(f.written)} sets ${f.flag}, which the operator sets from ${owner}; vLLM keeps the last value, so it would override the plan`,
      );
    }
  }
  return problems;
}

/** Problems the release's parser would find in a whole command line (none for ours). */
export function commandProblems(args: readonly string[], release: Release): string[] {
  const parsed = parseArgv(args, release.flags);
  const extraPositionals = parsed.positionals
    .slice(1)
    .map((p) => `unexpected positional ${JSON.stringify(p.value)}`);
  return [...parsed.problems, ...extraPositionals];
}
