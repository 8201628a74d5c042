import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { parseSpec } from "../../src/api/validate.ts";
import type { Spec } from "../../src/api/schema.ts";
import { GPU_TYPES, type GpuType } from "../../src/catalog/gpus.ts";
import { QUANTIZATIONS, type Quantization } from "../../src/catalog/model.ts";
import {
  AUTO_TP_FULL_SEQUENCES,
  GIB,
  TP_CHOICES,
  plan,
  type Plan,
  type TensorParallelSize,
} from "../../src/planner/plan.ts";

const KV_BYTES_PER_TOKEN_BF16 = 23040;
const CONTEXTS = [32768, 131072, 262144] as const;

interface Options {
  readonly tp?: TensorParallelSize;
  readonly maxModelLen?: number;
  readonly engine?: Record<string, unknown>;
  readonly capabilities?: Record<string, unknown>;
  readonly model?: Record<string, unknown>;
}

function needsName(q: Quantization): boolean {
  return q === "bf16" || q === "awq" || q === "gptq";
}

function specFor(gpu: GpuType, quantization: Quantization, o: Options = {}): Spec {
  return parseSpec({
    gpu: { type: gpu, ...(o.tp === undefined ? {} : { tensorParallelSize: o.tp }) },
    model: {
      quantization,
      ...(needsName(quantization) ? { name: `someone/mistral-small-4-${quantization}` } : {}),
      ...o.model,
    },
    ...(o.maxModelLen === undefined ? {} : { maxModelLen: o.maxModelLen }),
    ...(o.engine === undefined ? {} : { engine: o.engine }),
    ...(o.capabilities === undefined ? {} : { capabilities: o.capabilities }),
  });
}

function planFor(gpu: GpuType, quantization: Quantization, o: Options = {}): Plan {
  return plan(specFor(gpu, quantization, o));
}

/** The value following a flag in the vLLM arguments. */
function argValue(args: readonly string[], flag: string): string | undefined {
  const i = args.indexOf(flag);
  return i < 0 ? undefined : args[i + 1];
}

/** What automatic sizing asks of a TP size: it serves, with two full sequences of room. */
function hasHeadroom(p: Plan): boolean {
  return p.feasible && p.fullContextSequences >= AUTO_TP_FULL_SEQUENCES;
}

describe("plan invariants over every GPU x quantization x context", () => {
  for (const gpu of GPU_TYPES) {
    for (const q of QUANTIZATIONS) {
      for (const maxModelLen of CONTEXTS) {
        test(`${gpu} ${q} ${maxModelLen}`, () => {
          const p = planFor(gpu, q, { maxModelLen });
          const tp = p.tensorParallelSize;

          assert.ok((TP_CHOICES as readonly number[]).includes(tp));
          assert.equal(p.tensorParallelSource, "auto");
          assert.equal(p.gpusPerReplica, tp);
          assert.equal(p.gpuType, gpu);
          assert.equal(p.quantization, q);
          assert.equal(p.maxModelLen, maxModelLen);
          assert.ok(
            Math.abs(p.weightBytesPerGpu * tp - p.weightBytesTotal) <= tp,
            `weights per GPU ${p.weightBytesPerGpu} x ${tp} != total ${p.weightBytesTotal}`,
          );
          assert.equal(p.kvCacheDtype, "auto");
          assert.equal(p.kvCacheBytesPerToken, KV_BYTES_PER_TOKEN_BF16);
          assert.equal(
            p.kvCacheBytesPerGpu,
            Math.max(0, p.usableBytesPerGpu - p.weightBytesPerGpu - p.overheadBytesPerGpu),
          );
          assert.equal(
            p.kvCacheTokensPerReplica,
            Math.floor(p.kvCacheBytesPerGpu / KV_BYTES_PER_TOKEN_BF16),
          );
          assert.equal(p.fullContextSequences, Math.floor(p.kvCacheTokensPerReplica / maxModelLen));
          assert.equal(p.feasible, p.reasons.length === 0, JSON.stringify(p.reasons));
          if (p.feasible) {
            assert.ok(p.fullContextSequences >= 1);
            assert.ok(p.weightBytesPerGpu + p.overheadBytesPerGpu < p.usableBytesPerGpu);
          } else {
            assert.deepEqual(p.notes, [], "an infeasible plan carries reasons, not notes");
          }
          assert.equal(argValue(p.vllmArgs, "--tensor-parallel-size"), String(tp));
          assert.equal(argValue(p.vllmArgs, "--max-model-len"), String(maxModelLen));
        });

        test(`${gpu} ${q} ${maxModelLen}: automatic TP is the smallest with headroom`, () => {
          const auto = planFor(gpu, q, { maxModelLen });
          const explicit = TP_CHOICES.map((tp) => planFor(gpu, q, { maxModelLen, tp }));
          // An explicit TP equal to the automatic choice gives the same memory figures.
          const same = explicit.find((e) => e.tensorParallelSize === auto.tensorParallelSize)!;
          assert.equal(same.tensorParallelSource, "spec");
          assert.equal(same.kvCacheTokensPerReplica, auto.kvCacheTokensPerReplica);
          assert.equal(same.feasible, auto.feasible);

          const smaller = explicit.filter((e) => e.tensorParallelSize < auto.tensorParallelSize);
          const withHeadroom = explicit.filter(hasHeadroom);
          if (withHeadroom.length > 0) {
            assert.ok(hasHeadroom(auto), "auto must pick a TP with two full sequences");
            for (const e of smaller) {
              assert.ok(
                !hasHeadroom(e),
                `TP=${e.tensorParallelSize} already gives ${e.fullContextSequences} sequences`,
              );
            }
          } else if (explicit.some((e) => e.feasible)) {
            // No headroom anywhere: the smallest TP that serves at all.
            assert.ok(auto.feasible);
            for (const e of smaller) assert.ok(!e.feasible, `TP=${e.tensorParallelSize} serves`);
          } else {
            assert.equal(auto.feasible, false);
            assert.equal(auto.tensorParallelSize, 8);
            assert.match(auto.reasons.join("\n"), /^no tensor-parallel size of 1, 2, 4, 8 fits/);
          }
        });
      }
    }
  }
});

describe("known figures (research section 2)", () => {
  test("FP8 weights: the published 112.63 GiB, 56.3 GiB per GPU at TP=2", () => {
    const p = planFor("a100-80gb", "fp8", { tp: 2 });
    assert.equal(p.weightBytesTotal, Math.round(112.63 * GIB));
    assert.equal((p.weightBytesTotal / GIB).toFixed(1), "112.6");
    assert.equal((p.weightBytesPerGpu / GIB).toFixed(1), "56.3");
  });

  test("weights of the other formats match the research table", () => {
    const gib = (q: Quantization) => (planFor("h200-141gb", q).weightBytesTotal / GIB).toFixed(1);
    assert.equal(gib("bf16"), "222.4");
    // The recipe's "~72 GB raw", not the 64.6 GiB of the format arithmetic (audit row 67).
    assert.equal(gib("nvfp4"), "67.1");
    assert.equal(gib("awq"), "59.4");
    assert.equal(gib("gptq"), "59.4");
  });

  test("a refusal quotes what one full 262144-token sequence needs on every GPU", () => {
    const p = planFor("a100-40gb", "fp8", { tp: 4, maxModelLen: 262144 });
    assert.match(p.reasons[0]!, /\(which needs 5\.6 GiB on every GPU\)$/);
  });

  test("A100-40GB FP8 at TP=2 does not fit: the weights alone exceed the GPU", () => {
    const p = planFor("a100-40gb", "fp8", { tp: 2 });
    assert.equal(p.feasible, false);
    assert.equal(p.reasons.length, 1);
    const reason = p.reasons[0]!;
    assert.ok(reason.includes("56.3 GiB per GPU at TP=2"), reason);
    // 40536 MiB as nvidia-smi reports it, not 40 GiB.
    assert.ok(reason.includes("35.6 GiB at 0.90"), reason);
    assert.match(reason, /^FP8 weights need/);
    assert.match(reason, /A100-40GB/);
  });

  test("A100-80GB FP8 32K: automatic TP is 2", () => {
    const p = planFor("a100-80gb", "fp8", { maxModelLen: 32768 });
    assert.equal(p.feasible, true);
    assert.equal(p.tensorParallelSize, 2);
    assert.equal(p.gpusPerReplica, 2);
    assert.ok(p.fullContextSequences >= 2);
  });

  test("FP8 on one A100-80GB does not fit", () => {
    const p = planFor("a100-80gb", "fp8", { tp: 1 });
    assert.equal(p.feasible, false);
    assert.match(
      p.reasons[0]!,
      /^FP8 weights need 112\.6 GiB per GPU at TP=1 .* 72\.0 GiB at 0\.90/,
    );
  });

  test("A100-40GB FP8 at 262144: automatic TP 8, while TP=4 cannot hold one sequence", () => {
    const auto = planFor("a100-40gb", "fp8", { maxModelLen: 262144 });
    assert.equal(auto.feasible, true);
    assert.equal(auto.tensorParallelSize, 8);

    const tp4 = planFor("a100-40gb", "fp8", { maxModelLen: 262144, tp: 4 });
    assert.equal(tp4.feasible, false);
    assert.equal(tp4.fullContextSequences, 0);
    assert.ok(tp4.kvCacheTokensPerReplica > 0 && tp4.kvCacheTokensPerReplica < 262144);
    const reason = tp4.reasons[0]!;
    assert.ok(reason.startsWith("at TP=4 the KV cache gets"), reason);
    assert.ok(reason.includes(`= ${tp4.kvCacheTokensPerReplica} tokens`), reason);
    assert.ok(reason.includes("fewer than one 262144-token sequence"), reason);
    assert.ok(reason.includes(`${(tp4.kvCacheBytesPerGpu / GIB).toFixed(1)} GiB per GPU`), reason);
    assert.ok(reason.includes("35.6 GiB usable on an A100-40GB at 0.90"), reason);
    assert.ok(reason.includes("28.2 GiB FP8 weights"), reason);
  });

  test("an automatic plan that nothing fits explains every TP size", () => {
    const p = planFor("a100-40gb", "bf16", { maxModelLen: 262144 });
    assert.equal(p.feasible, false);
    assert.equal(p.reasons.length, 1);
    const reason = p.reasons[0]!;
    for (const tp of TP_CHOICES) assert.ok(reason.includes(`TP=${tp}`), `TP=${tp}: ${reason}`);
    assert.match(reason, /BF16 weights need 222\.4 GiB per GPU at TP=1/);
  });
});

describe("boundaries of what fits", () => {
  test("maxModelLen equal to the KV token capacity fits; one more token does not", () => {
    // KV capacity does not depend on maxModelLen: read it off one plan.
    const tokens = planFor("a100-40gb", "fp8", { tp: 4 }).kvCacheTokensPerReplica;
    assert.ok(tokens >= 1024 && tokens < 262144, `capacity ${tokens} out of the valid range`);

    const exact = planFor("a100-40gb", "fp8", { tp: 4, maxModelLen: tokens });
    assert.equal(exact.kvCacheTokensPerReplica, tokens);
    assert.equal(exact.feasible, true, exact.reasons.join("; "));
    assert.equal(exact.fullContextSequences, 1);
    assert.ok(exact.notes.some((n) => n.startsWith(`only 1 full ${tokens}-token sequence fits`)));

    const over = planFor("a100-40gb", "fp8", { tp: 4, maxModelLen: tokens + 1 });
    assert.equal(over.feasible, false);
    assert.equal(over.fullContextSequences, 0);
    assert.match(
      over.reasons[0]!,
      new RegExp(`= ${tokens} tokens, fewer than one ${tokens + 1}-token`),
    );
  });

  test("automatic sizing moves to a larger TP at the same boundary", () => {
    const tokens = planFor("a100-40gb", "fp8", { tp: 4 }).kvCacheTokensPerReplica;
    // TP=4 still gives one full sequence but not two: auto looks further.
    const auto = planFor("a100-40gb", "fp8", { maxModelLen: Math.floor(tokens / 2) + 1 });
    assert.equal(auto.tensorParallelSize, 8);
    const autoHalf = planFor("a100-40gb", "fp8", { maxModelLen: Math.floor(tokens / 2) });
    assert.equal(autoHalf.tensorParallelSize, 4);
    assert.equal(autoHalf.fullContextSequences, 2);
  });

  test("gpuMemoryUtilization: weights + overhead must fit strictly, then one sequence", () => {
    const reference = planFor("a100-40gb", "fp8", { tp: 4, maxModelLen: 1024 });
    const fixed = reference.weightBytesPerGpu + reference.overheadBytesPerGpu;
    const gpuBytes = reference.gpuMemoryBytes;
    const oneSequence = 1024 * KV_BYTES_PER_TOKEN_BF16;
    const at = (usable: number) =>
      planFor("a100-40gb", "fp8", {
        tp: 4,
        maxModelLen: 1024,
        engine: { gpuMemoryUtilization: usable / gpuBytes },
      });

    // Exactly weights + overhead: nothing left, refused on the weights.
    const tight = at(fixed);
    assert.ok(tight.gpuMemoryUtilization >= 0.5 && tight.gpuMemoryUtilization <= 0.98);
    assert.equal(tight.usableBytesPerGpu, fixed);
    assert.equal(tight.feasible, false);
    assert.match(tight.reasons[0]!, /^FP8 weights need 28\.2 GiB per GPU at TP=4/);

    // A few bytes more: the weights fit, the KV cache does not hold a sequence.
    const almost = at(fixed + oneSequence - 1);
    assert.equal(almost.kvCacheTokensPerReplica, 1023);
    assert.equal(almost.feasible, false);
    assert.match(
      almost.reasons[0]!,
      /^at TP=4 the KV cache gets .* = 1023 tokens, fewer than one 1024-token/,
    );

    // Exactly one sequence of KV: feasible.
    const just = at(fixed + oneSequence);
    assert.equal(just.kvCacheBytesPerGpu, oneSequence);
    assert.equal(just.kvCacheTokensPerReplica, 1024);
    assert.equal(just.feasible, true, just.reasons.join("; "));
  });
});

describe("capabilities the GPU lacks", () => {
  test("kvCacheDtype fp8 on A100 is refused with the SM requirement", () => {
    const p = planFor("a100-80gb", "fp8", { tp: 4, engine: { kvCacheDtype: "fp8" } });
    assert.equal(p.feasible, false);
    assert.equal(p.kvCacheBytesPerToken, KV_BYTES_PER_TOKEN_BF16 / 2);
    assert.ok(
      p.reasons.some((r) => r.includes("SM 8.9") && r.includes("A100-80GB (SM 8.0)")),
      p.reasons.join("; "),
    );
  });

  test("kvCacheDtype fp8 on H100 (through TRITON_MLA) halves the cache per token and doubles the tokens", () => {
    const triton = ["--attention-backend", "TRITON_MLA"];
    const fp8 = planFor("h100-80gb", "fp8", {
      tp: 2,
      engine: { kvCacheDtype: "fp8", extraArgs: triton },
    });
    const auto = planFor("h100-80gb", "fp8", { tp: 2 });
    assert.equal(fp8.feasible, true, fp8.reasons.join("; "));
    assert.equal(fp8.kvCacheDtype, "fp8");
    assert.equal(fp8.kvCacheBytesPerToken, 11520);
    assert.equal(fp8.kvCacheBytesPerGpu, auto.kvCacheBytesPerGpu);
    assert.equal(fp8.kvCacheTokensPerReplica, Math.floor(fp8.kvCacheBytesPerGpu / 11520));
    assert.ok(fp8.kvCacheTokensPerReplica >= 2 * auto.kvCacheTokensPerReplica);
    assert.equal(argValue(fp8.vllmArgs, "--kv-cache-dtype"), "fp8");
  });

  test("FLASH_ATTN_MLA in extraArgs is refused off Hopper", () => {
    const extraArgs = ["--attention-backend", "FLASH_ATTN_MLA"];
    const a100 = planFor("a100-80gb", "fp8", { engine: { extraArgs } });
    assert.equal(a100.feasible, false);
    assert.ok(a100.reasons.some((r) => r.includes("FLASH_ATTN_MLA") && r.includes("is 8.0")));
    const h100 = planFor("h100-80gb", "fp8", { engine: { extraArgs } });
    assert.equal(h100.feasible, true, h100.reasons.join("; "));
  });

  test("capability problems are reported alongside memory problems", () => {
    const p = planFor("a100-40gb", "fp8", { tp: 2, engine: { kvCacheDtype: "fp8" } });
    assert.equal(p.reasons.length, 2);
    assert.match(p.reasons[0]!, /kvCacheDtype fp8/);
    assert.match(p.reasons[1]!, /FP8 weights need/);
  });
});

describe("vLLM arguments", () => {
  test("carry the plan's numbers", () => {
    const p = planFor("a100-80gb", "fp8", {
      maxModelLen: 65536,
      engine: { gpuMemoryUtilization: 0.92 },
    });
    assert.equal(p.vllmArgs[0], "mistralai/Mistral-Small-4-119B-2603");
    assert.equal(argValue(p.vllmArgs, "--tensor-parallel-size"), String(p.tensorParallelSize));
    assert.equal(argValue(p.vllmArgs, "--max-model-len"), "65536");
    assert.equal(argValue(p.vllmArgs, "--gpu-memory-utilization"), "0.92");
    assert.equal(argValue(p.vllmArgs, "--kv-cache-dtype"), "auto");
    assert.equal(argValue(p.vllmArgs, "--served-model-name"), "mistral-small-4");
    assert.equal(argValue(p.vllmArgs, "--max-num-seqs"), "64");
    assert.equal(argValue(p.vllmArgs, "--max-num-batched-tokens"), "8192");
    assert.equal(argValue(p.vllmArgs, "--port"), "8000");
  });

  test("Hopper defaults for sequences and batched tokens, overridable", () => {
    const h = planFor("h100-80gb", "fp8");
    assert.equal(argValue(h.vllmArgs, "--max-num-seqs"), "128");
    assert.equal(argValue(h.vllmArgs, "--max-num-batched-tokens"), "16384");
    const o = planFor("h100-80gb", "fp8", {
      engine: { maxNumSeqs: 32, maxNumBatchedTokens: 4096 },
    });
    assert.equal(argValue(o.vllmArgs, "--max-num-seqs"), "32");
    assert.equal(argValue(o.vllmArgs, "--max-num-batched-tokens"), "4096");
    assert.ok(o.overheadBytesPerGpu < h.overheadBytesPerGpu, "fewer batched tokens, less overhead");
  });

  test("the MoE backend is vLLM's own choice, named in the plan: Marlin on A100", () => {
    for (const gpu of GPU_TYPES) {
      const p = planFor(gpu, "fp8");
      assert.equal(argValue(p.vllmArgs, "--moe-backend"), undefined, gpu);
      assert.equal(p.engine.moeBackend === "MARLIN", gpu.startsWith("a100"), gpu);
    }
  });

  test("tool calling flags only when toolCalling is on", () => {
    const on = planFor("h100-80gb", "fp8").vllmArgs;
    assert.equal(argValue(on, "--tool-call-parser"), "mistral");
    assert.ok(on.includes("--enable-auto-tool-choice"));
    const off = planFor("h100-80gb", "fp8", { capabilities: { toolCalling: false } }).vllmArgs;
    assert.ok(!off.includes("--tool-call-parser"));
    assert.ok(!off.includes("--enable-auto-tool-choice"));
    assert.equal(argValue(off, "--reasoning-parser"), "mistral", "reasoning stays on");
  });

  test("reasoning parser only when reasoning is on", () => {
    const off = planFor("h100-80gb", "fp8", { capabilities: { reasoning: false } }).vllmArgs;
    assert.ok(!off.includes("--reasoning-parser"));
    assert.equal(argValue(off, "--tool-call-parser"), "mistral", "tool calling stays on");
  });

  test("image limit follows capabilities.vision", () => {
    const def = planFor("h100-80gb", "fp8").vllmArgs;
    assert.equal(argValue(def, "--limit-mm-per-prompt"), '{"image":4}');
    const eight = planFor("h100-80gb", "fp8", {
      capabilities: { vision: { maxImagesPerPrompt: 8 } },
    }).vllmArgs;
    assert.equal(argValue(eight, "--limit-mm-per-prompt"), '{"image":8}');
    const off = planFor("h100-80gb", "fp8", {
      capabilities: { vision: { enabled: false, maxImagesPerPrompt: 8 } },
    });
    assert.equal(argValue(off.vllmArgs, "--limit-mm-per-prompt"), '{"image":0}');
    assert.equal(off.overhead.visionEncoderBytes, 0);
  });

  test("Mistral-format flags only for official checkpoints", () => {
    const mistralFormat = (args: readonly string[]) =>
      ["--tokenizer-mode", "--config-format", "--load-format"].map((f) => argValue(args, f));
    const official = ["mistral", "mistral", "mistral"];
    const none = [undefined, undefined, undefined];

    assert.deepEqual(mistralFormat(planFor("h100-80gb", "fp8").vllmArgs), official);
    assert.deepEqual(mistralFormat(planFor("h100-80gb", "nvfp4").vllmArgs), official);
    const namedOfficial = planFor("h100-80gb", "fp8", {
      model: { name: "mistralai/Mistral-Small-4-119B-2603" },
    });
    assert.deepEqual(mistralFormat(namedOfficial.vllmArgs), official);
    const community = planFor("h100-80gb", "fp8", { model: { name: "someone/small-4-fp8" } });
    assert.deepEqual(mistralFormat(community.vllmArgs), none);
    assert.equal(community.vllmArgs[0], "someone/small-4-fp8");
    for (const q of ["bf16", "awq", "gptq"] as const) {
      assert.deepEqual(mistralFormat(planFor("h200-141gb", q).vllmArgs), none, q);
    }
  });

  test("revision and served model name are passed on", () => {
    const p = planFor("h100-80gb", "fp8", {
      model: { revision: "v1.1", servedModelName: "small" },
    });
    assert.equal(argValue(p.vllmArgs, "--revision"), "v1.1");
    assert.equal(argValue(p.vllmArgs, "--served-model-name"), "small");
    assert.ok(!planFor("h100-80gb", "fp8").vllmArgs.includes("--revision"));
  });

  test("extraArgs come last, in order", () => {
    const extraArgs = ["--enforce-eager", "--swap-space", "8"];
    for (const gpu of ["a100-80gb", "h100-80gb"] as const) {
      const args = planFor(gpu, "fp8", { engine: { extraArgs } }).vllmArgs;
      assert.deepEqual(args.slice(-extraArgs.length), extraArgs, gpu);
      assert.equal(args.indexOf("--enforce-eager"), args.length - extraArgs.length);
    }
  });

  test("every flag appears at most once", () => {
    const args = planFor("a100-40gb", "fp8").vllmArgs;
    const flags = args.filter((a) => a.startsWith("--"));
    assert.equal(new Set(flags).size, flags.length, flags.join(" "));
  });
});

describe("determinism", () => {
  test("planning the same spec twice gives equal plans", () => {
    for (const gpu of GPU_TYPES) {
      const spec = specFor(gpu, "fp8", { maxModelLen: 131072 });
      assert.deepEqual(plan(spec), plan(structuredClone(spec)));
    }
  });

  test("planning does not mutate the spec", () => {
    const spec = specFor("a100-40gb", "fp8", { engine: { extraArgs: ["--enforce-eager"] } });
    const before = structuredClone(spec);
    plan(spec);
    assert.deepEqual(spec, before);
  });
});
