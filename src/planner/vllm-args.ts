/**
 * The vLLM command line for a plan. Order is fixed so the rendered pod template,
 * and therefore its hash, only changes when the plan does.
 */
import type { Spec } from "../api/schema.ts";
import { GPU_CATALOG, isAmpere } from "../catalog/gpus.ts";
import { MODEL_VARIANTS } from "../catalog/model.ts";

export const VLLM_PORT = 8000;

interface ArgsInput {
  readonly checkpoint: string;
  readonly tensorParallelSize: number;
  readonly maxModelLen: number;
  readonly gpuMemoryUtilization: number;
  readonly maxNumSeqs: number;
  readonly maxNumBatchedTokens: number;
  readonly kvCacheDtype: "auto" | "fp8";
}

export function vllmArgsFor(spec: Spec, p: ArgsInput): string[] {
  const gpu = GPU_CATALOG[spec.gpu.type];
  const official =
    spec.model.name === undefined ||
    spec.model.name === MODEL_VARIANTS[spec.model.quantization].officialCheckpoint;
  const args: string[] = [p.checkpoint];
  args.push("--served-model-name", spec.model.servedModelName);
  if (spec.model.revision !== undefined) args.push("--revision", spec.model.revision);
  // Official checkpoints ship in Mistral's consolidated format.
  if (official) {
    args.push(
      "--tokenizer-mode",
      "mistral",
      "--config-format",
      "mistral",
      "--load-format",
      "mistral",
    );
  }
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
    // MLA below SM 8.9 only takes a BF16 cache; "auto" is that.
    "--kv-cache-dtype",
    p.kvCacheDtype,
  );
  if (spec.capabilities.toolCalling) {
    args.push("--enable-auto-tool-choice", "--tool-call-parser", "mistral");
  }
  if (spec.capabilities.reasoning) args.push("--reasoning-parser", "mistral");
  const images = spec.capabilities.vision.enabled ? spec.capabilities.vision.maxImagesPerPrompt : 0;
  args.push("--limit-mm-per-prompt", JSON.stringify({ image: images }));
  if (isAmpere(gpu)) {
    // The Triton fused-MoE FP8 kernel fails on sm80; Marlin works there.
    args.push("--moe-backend", "marlin");
  }
  args.push(...spec.engine.extraArgs);
  return args;
}
