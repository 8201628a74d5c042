import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { parseSpec, ValidationError } from "../../src/api/validate.ts";
import type { Spec } from "../../src/api/schema.ts";
import { GPU_TYPES, type GpuType } from "../../src/catalog/gpus.ts";
import { QUANTIZATIONS, type Quantization } from "../../src/catalog/model.ts";
import { parseArgv } from "../../src/engine/argv.ts";
import { commandProblems } from "../../src/engine/command.ts";
import { imageRelease } from "../../src/engine/image.ts";
import { NEWEST, RELEASES, V0_20 } from "../../src/engine/releases.ts";
import { plan, type Plan } from "../../src/planner/plan.ts";
import { renderAll } from "../../src/render/index.ts";
import { WRITABLE_PATHS } from "../../src/render/deployment.ts";
import type { V1Deployment } from "@kubernetes/client-node";

function needsName(q: Quantization): boolean {
  return q === "bf16" || q === "awq" || q === "gptq";
}

function spec(gpu: GpuType, q: Quantization, extra: Record<string, unknown> = {}): Spec {
  const { model, engine, ...rest } = extra as {
    model?: Record<string, unknown>;
    engine?: Record<string, unknown>;
  };
  return parseSpec({
    gpu: { type: gpu },
    model: { quantization: q, ...(needsName(q) ? { name: `someone/ms4-${q}` } : {}), ...model },
    engine: { ...engine },
    ...rest,
  });
}

function argValue(p: Plan, flag: string): string | undefined {
  const i = p.vllmArgs.indexOf(flag);
  return i < 0 ? undefined : p.vllmArgs[i + 1];
}

function refusedWith(p: Plan, ...parts: readonly string[]): void {
  assert.equal(p.feasible, false, "expected a refusal");
  const hit = p.reasons.find((r) => parts.every((x) => r.includes(x)));
  assert.ok(hit !== undefined, `no reason with ${parts.join(" + ")} in:\n${p.reasons.join("\n")}`);
}

const CAPABILITY_SETS = [
  { name: "all on", capabilities: { toolCalling: true, vision: { enabled: true } } },
  {
    name: "all off",
    capabilities: { reasoning: false, toolCalling: false, vision: { enabled: false } },
  },
] as const;

describe("every rendered command line parses at its release", () => {
  for (const release of RELEASES) {
    for (const gpu of GPU_TYPES) {
      for (const q of QUANTIZATIONS) {
        for (const caps of CAPABILITY_SETS) {
          test(`vLLM ${release.version} ${gpu} ${q} ${caps.name}`, () => {
            const s = spec(gpu, q, {
              capabilities: caps.capabilities,
              engine: { image: release.images["13.0"] },
            });
            const p = plan(s);
            assert.equal(p.engine.release, release.version);
            assert.equal(p.engine.verified, true);
            if (!p.feasible) {
              assert.ok(p.reasons.length > 0, "an infeasible plan says why");
              return;
            }
            assert.deepEqual(commandProblems(p.vllmArgs, release), []);
            const parsed = parseArgv(p.vllmArgs, release.flags);
            const names = parsed.flags.map((f) => f.flag);
            assert.equal(
              new Set(names).size,
              names.length,
              `a flag given twice: ${names.join(" ")}`,
            );
            // BF16 MoE is unquantized: vLLM refuses --moe-backend marlin for it (audit row 29).
            if (q === "bf16") assert.ok(!p.vllmArgs.includes("marlin"));
            const msd = {
              apiVersion: "serving.mistralsmall.dev/v1alpha1",
              kind: "MistralSmallDeployment",
              metadata: { name: "m", namespace: "d" },
              spec: s,
            } as const;
            const deployment = renderAll(msd, p).find(
              (o) => o.kind === "Deployment",
            ) as V1Deployment;
            const container = deployment.spec!.template.spec!.containers[0]!;
            const env = new Map(container.env!.map((e) => [e.name, e.value]));
            assert.equal(env.get("USER"), "vllm", "getpass.getuser() needs USER (vllm#44548)");
            assert.equal(env.get("LOGNAME"), "vllm");
            assert.equal(container.securityContext?.readOnlyRootFilesystem, true);
            const mounts = container.volumeMounts!.map((m) => m.mountPath);
            for (const w of WRITABLE_PATHS) {
              assert.ok(
                mounts.some((m) => w.path === m || w.path.startsWith(`${m}/`)),
                `${w.path} (${w.what}) is on no writable volume`,
              );
              if (w.env !== undefined) assert.equal(env.get(w.env), w.path);
            }
            assert.equal(container.image, release.images["13.0"]);
          });
        }
      }
    }
  }
});

describe("hostile extraArgs are refused, whatever the spelling", () => {
  const cases: readonly (readonly [readonly string[], string])[] = [
    [["--moe-backend", "triton"], "--moe-backend"],
    [["--moe-backend=triton"], "--moe-backend"],
    [["-tp", "4"], "--tensor-parallel-size"],
    [["--tensor_parallel_size=4"], "--tensor-parallel-size"],
    [["--tensor-parallel", "4"], "--tensor-parallel-size"],
    [["--tokenizer-mode", "hf"], "--tokenizer-mode"],
    [["--load-format=safetensors"], "--load-format"],
    [["--no-enable-auto-tool-choice"], "--enable-auto-tool-choice"],
    [["--speculative-config.num_speculative_tokens", "9"], "--speculative-config"],
    [["--config", "/etc/vllm.yaml"], "--config"],
  ];
  for (const [extraArgs, flag] of cases) {
    test(`${extraArgs.join(" ")} names ${flag} and the field that sets it`, () => {
      // The planner's parse, past the admission rule (which may refuse it first).
      const s = spec("a100-80gb", "fp8");
      const p = plan({ ...s, engine: { ...s.engine, extraArgs: [...extraArgs] } });
      refusedWith(p, flag, "the operator sets from");
      try {
        spec("a100-80gb", "fp8", { engine: { extraArgs } });
      } catch (err) {
        assert.ok(err instanceof ValidationError);
        assert.deepEqual(
          err.problems.map((x) => x.path),
          ["spec.engine.extraArgs"],
        );
      }
    });
  }

  test('"--max-model-len 1000" as one token is refused for its space', () => {
    // The admission rule (CEL) already refuses the managed flag; the planner says why vLLM would too.
    assert.throws(
      () => spec("a100-80gb", "fp8", { engine: { extraArgs: ["--max-model-len 1000"] } }),
      ValidationError,
    );
    const p = plan(
      spec("a100-80gb", "fp8", { engine: { extraArgs: ["--enable-prefix-caching true"] } }),
    );
    refusedWith(p, "holds a space");
  });

  test("an unknown flag and a bad value are refused with the release", () => {
    refusedWith(
      plan(spec("h100-80gb", "fp8", { engine: { extraArgs: ["--enable-turbo"] } })),
      "--enable-turbo",
      "is not a flag",
      "0.24.0",
    );
    refusedWith(
      plan(
        spec("h100-80gb", "fp8", {
          engine: { extraArgs: ["--attention-backend", "FLASH_ATTN_SUPER"] },
        }),
      ),
      "--attention-backend",
      "not accepted by vLLM 0.24.0",
    );
  });

  test("an attention backend in lower case is read as vLLM reads it, and guarded by compute capability", () => {
    const extraArgs = ["--attention-backend=flash_attn_mla"];
    refusedWith(
      plan(spec("a100-80gb", "fp8", { engine: { extraArgs } })),
      "FLASH_ATTN_MLA",
      "compute capability 9.x",
      "8.0",
    );
    refusedWith(plan(spec("l40s-48gb", "fp8", { engine: { extraArgs } })), "FLASH_ATTN_MLA", "8.9");
    const h100 = plan(spec("h100-80gb", "fp8", { engine: { extraArgs } }));
    assert.equal(h100.feasible, true, h100.reasons.join("; "));
    assert.equal(h100.engine.attentionBackend, "FLASH_ATTN_MLA");
  });

  test("a non-MLA attention backend is refused", () => {
    refusedWith(
      plan(
        spec("h100-80gb", "fp8", { engine: { extraArgs: ["--attention-backend", "FLASH_ATTN"] } }),
      ),
      "not an MLA backend",
    );
  });

  test("harmless extra flags pass, in vLLM's spellings", () => {
    const p = plan(
      spec("h100-80gb", "fp8", {
        engine: { extraArgs: ["--enable_prefix_caching", "-O3", "--max-num-partial-prefills=2"] },
      }),
    );
    assert.equal(p.feasible, true, p.reasons.join("; "));
    assert.deepEqual(p.vllmArgs.slice(-3), [
      "--enable_prefix_caching",
      "-O3",
      "--max-num-partial-prefills=2",
    ]);
  });
});

describe("engine contract refusals", () => {
  test("v0.20.1 on sm80 and sm89 is refused with the bug and the fix", () => {
    for (const gpu of ["a100-80gb", "l40s-48gb"] as const) {
      const p = plan(spec(gpu, "fp8", { engine: { image: "vllm/vllm-openai:v0.20.1" } }));
      refusedWith(
        p,
        "vLLM v0.20.1 crashes decoding Mistral Small 4 on sm",
        "(TRITON_MLA, vllm#45031); use v0.22.0 or later",
      );
    }
    const hopper = plan(
      spec("h100-80gb", "fp8", { engine: { image: "vllm/vllm-openai:v0.20.1" } }),
    );
    assert.equal(hopper.feasible, true, hopper.reasons.join("; "));
    assert.equal(hopper.engine.attentionBackend, "FLASH_ATTN_MLA");
  });

  test("fp8 KV on Hopper is refused for FlashMLA's head sizes, with TRITON_MLA as the way out", () => {
    const p = plan(spec("h100-80gb", "fp8", { engine: { kvCacheDtype: "fp8" } }));
    refusedWith(p, "FLASHMLA", "576", "320");
    const triton = plan(
      spec("h100-80gb", "fp8", {
        engine: { kvCacheDtype: "fp8", extraArgs: ["--attention-backend", "TRITON_MLA"] },
      }),
    );
    assert.equal(triton.feasible, true, triton.reasons.join("; "));
    assert.equal(triton.engine.attentionBackend, "TRITON_MLA");
    assert.equal(argValue(triton, "--kv-cache-dtype"), "fp8");
  });

  test("fp8 KV below SM 8.9 is refused with what vLLM 0.24.0 really does", () => {
    refusedWith(
      plan(spec("a100-80gb", "fp8", { engine: { kvCacheDtype: "fp8" } })),
      "accepts the flag",
      "fp8e4nv",
      "fail at run time",
    );
  });

  test("fp8 KV on L40S runs TRITON_MLA", () => {
    const p = plan(spec("l40s-48gb", "nvfp4", { engine: { kvCacheDtype: "fp8" } }));
    assert.equal(p.engine.attentionBackend, "TRITON_MLA");
  });

  test("no --moe-backend is passed on any GPU (vLLM's own choice is right, and marlin breaks bf16)", () => {
    for (const gpu of GPU_TYPES) {
      for (const q of QUANTIZATIONS) {
        assert.equal(argValue(plan(spec(gpu, q)), "--moe-backend"), undefined, `${gpu} ${q}`);
      }
    }
    assert.equal(plan(spec("h100-80gb", "fp8")).engine.moeBackend, "FLASHINFER_CUTLASS");
    assert.equal(plan(spec("l40s-48gb", "nvfp4")).engine.moeBackend, "MARLIN");
  });

  test("a Hugging Face checkpoint loses the Mistral formats and the reasoning parser, and keeps tools", () => {
    const p = plan(spec("a100-80gb", "awq"));
    assert.equal(p.engine.format, "hf");
    assert.equal(argValue(p, "--tokenizer-mode"), undefined);
    assert.ok(!p.vllmArgs.includes("--reasoning-parser"));
    assert.equal(argValue(p, "--tool-call-parser"), "mistral");
  });

  test("reasoning asked of a Hugging Face checkpoint is refused with vLLM's error", () => {
    const p = plan(spec("a100-80gb", "awq", { capabilities: { reasoning: true } }));
    refusedWith(p, "capabilities.reasoning", "MistralTokenizer", "model.format: mistral");
  });

  test("a user checkpoint in Mistral format gets the Mistral flags and reasoning", () => {
    const p = plan(spec("a100-80gb", "bf16", { model: { format: "mistral" } }));
    assert.equal(argValue(p, "--load-format"), "mistral");
    assert.equal(argValue(p, "--reasoning-parser"), "mistral");
  });

  test("an image whose release cannot be read runs the newest contract, unverified", () => {
    const p = plan(
      spec("h100-80gb", "fp8", {
        engine: { image: "registry.example/vllm@sha256:0123456789abcdef" },
      }),
    );
    assert.equal(p.feasible, true, p.reasons.join("; "));
    assert.equal(p.engine.verified, false);
    assert.equal(p.engine.release, NEWEST.version);
    assert.ok(p.notes.some((n) => n.includes("engine version unverified")));
  });

  test("a release between contracts uses the older one's flags, unverified, and its bugs by version", () => {
    const p = plan(
      spec("a100-80gb", "fp8", { engine: { image: "mirror.example/vllm-openai:v0.21.0" } }),
    );
    assert.equal(p.engine.verified, false);
    refusedWith(p, "vLLM v0.21.0 crashes decoding", "use v0.22.0 or later");
    const later = plan(
      spec("a100-80gb", "fp8", { engine: { image: "mirror.example/vllm-openai:v0.22.1" } }),
    );
    assert.equal(later.feasible, true, later.reasons.join("; "));
    assert.equal(later.engine.verified, false);
  });

  test("a release older than Mistral Small 4 support is refused", () => {
    refusedWith(
      plan(spec("h100-80gb", "fp8", { engine: { image: "vllm/vllm-openai:v0.19.1" } })),
      "needs vLLM 0.20.0 or later",
    );
  });

  test("the CUDA 12.9 build is one field away, and a contradiction is refused at admission", () => {
    const p = plan(spec("h100-80gb", "fp8", { engine: { cudaVersion: "12.9" } }));
    assert.equal(p.engine.image, V0_20.images["12.9"].replace("0.20.1", NEWEST.version));
    assert.equal(imageRelease(p.engine.image)?.cuda, "12.9");
    assert.throws(
      () =>
        spec("h100-80gb", "fp8", {
          engine: { image: "vllm/vllm-openai:v0.24.0", cudaVersion: "12.9" },
        }),
      /cudaVersion contradicts/,
    );
  });

  test("speculative decoding adds the recipe's EAGLE config and counts the draft", () => {
    const off = plan(spec("h200-141gb", "fp8"));
    const on = plan(spec("h200-141gb", "fp8", { engine: { speculative: { enabled: true } } }));
    assert.equal(on.feasible, true, on.reasons.join("; "));
    const config = JSON.parse(argValue(on, "--speculative-config")!) as Record<string, unknown>;
    assert.equal(config.model, "mistralai/Mistral-Small-4-119B-2603-eagle");
    assert.equal(config.method, "eagle");
    assert.equal(config.num_speculative_tokens, 3);
    assert.ok(on.weightBytesTotal > off.weightBytesTotal);
    assert.ok(on.kvCacheBytesPerToken > off.kvCacheBytesPerToken);
    refusedWith(
      plan(
        spec("h100-80gb", "fp8", {
          engine: { image: "vllm/vllm-openai:v0.20.1", speculative: { enabled: true } },
        }),
      ),
      "engine.speculative",
    );
  });
});

describe("the release catalog and its generated fixtures agree", () => {
  for (const release of RELEASES) {
    test(`vLLM ${release.version}: the fixture names its release, commit and generator`, () => {
      const f = release.flags;
      assert.equal(f.generator, "scripts/gen-vllm-flags.py");
      assert.match(f.commit, /^[0-9a-f]{40}$/);
      assert.ok(f.source.endsWith(`@${f.commit}`), f.source);
      assert.ok(release.versions.includes(release.version));
      assert.ok(release.images["13.0"].endsWith(`:v${release.version}`));
      assert.equal(imageRelease(release.images["12.9"])?.cuda, "12.9");
      // The flags the operator renders exist at the release, whatever the spec.
      for (const flag of ["--tensor-parallel-size", "--kv-cache-dtype", "--limit-mm-per-prompt"]) {
        assert.ok(f.flags[flag] !== undefined, flag);
      }
    });
  }

  test("the pinned release is the newest and contains the TRITON_MLA fix", () => {
    assert.equal(NEWEST, RELEASES[RELEASES.length - 1]);
    assert.equal(NEWEST.flags.commit, "ee0da84ab9e04ac7610e28580af62c365e898389");
    assert.deepEqual(
      plan(spec("a100-80gb", "fp8")).reasons,
      [],
      "v0.24.0 serves A100 (PR #41119 is in it)",
    );
  });
});
