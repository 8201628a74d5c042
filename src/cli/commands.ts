/** `msd plan`, `msd render`, `msd crd`: pure commands, returning text and an exit code. */
import { parseResource, ValidationError } from "../api/validate.ts";
import { renderCrdFile } from "../api/crd-file.ts";
import { plan, gib, type Plan } from "../planner/plan.ts";
import { renderAll } from "../render/index.ts";
import { toYamlStream } from "../util/yaml.ts";
import { readDocument } from "./io.ts";

export const EXIT = { ok: 0, error: 1, invalid: 2, infeasible: 3 } as const;

export interface CommandResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

function invalid(err: ValidationError): CommandResult {
  return { code: EXIT.invalid, stdout: "", stderr: `${err.message}\n` };
}

export function planJson(p: Plan): Record<string, unknown> {
  return {
    feasible: p.feasible,
    gpuType: p.gpuType,
    quantization: p.quantization,
    checkpoint: p.checkpoint,
    maxModelLen: p.maxModelLen,
    tensorParallelSize: p.tensorParallelSize,
    tensorParallelSource: p.tensorParallelSource,
    gpusPerReplica: p.gpusPerReplica,
    gpuMemoryBytes: p.gpuMemoryBytes,
    gpuMemoryUtilization: p.gpuMemoryUtilization,
    usableBytesPerGpu: p.usableBytesPerGpu,
    weightBytesTotal: p.weightBytesTotal,
    weightBytesPerGpu: p.weightBytesPerGpu,
    overheadBytesPerGpu: p.overheadBytesPerGpu,
    overhead: p.overhead,
    kvCacheDtype: p.kvCacheDtype,
    kvCacheBytesPerToken: p.kvCacheBytesPerToken,
    kvCacheBytesPerGpu: p.kvCacheBytesPerGpu,
    kvCacheTokensPerReplica: p.kvCacheTokensPerReplica,
    fullContextSequences: p.fullContextSequences,
    maxNumSeqs: p.maxNumSeqs,
    maxNumBatchedTokens: p.maxNumBatchedTokens,
    reasons: p.reasons,
    notes: p.notes,
    vllmArgs: p.vllmArgs,
    engine: p.engine,
  };
}

export function planTable(p: Plan): string {
  const rows: [string, string][] = [
    ["feasible", p.feasible ? "yes" : "NO"],
    ["gpu", `${p.gpuType} x ${p.gpusPerReplica} per replica`],
    ["vLLM", `${p.engine.release}${p.engine.verified ? "" : " (unverified)"}: ${p.engine.image}`],
    ["attention / MoE", `${p.engine.attentionBackend ?? "-"} / ${p.engine.moeBackend ?? "-"}`],
    ["tensor parallel", `${p.tensorParallelSize} (${p.tensorParallelSource})`],
    ["checkpoint", `${p.checkpoint} (${p.quantization})`],
    ["context cap", `${p.maxModelLen} tokens`],
    ["usable per GPU", `${gib(p.usableBytesPerGpu)} GiB at ${p.gpuMemoryUtilization.toFixed(2)}`],
    ["weights per GPU", `${gib(p.weightBytesPerGpu)} GiB (of ${gib(p.weightBytesTotal)} GiB)`],
    ["overhead per GPU", `${gib(p.overheadBytesPerGpu)} GiB (estimate)`],
    ["KV cache per GPU", `${gib(p.kvCacheBytesPerGpu)} GiB at ${p.kvCacheBytesPerToken} B/token`],
    ["KV tokens/replica", String(p.kvCacheTokensPerReplica)],
    ["full-context seqs", String(p.fullContextSequences)],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  const lines = rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`);
  for (const r of p.reasons) lines.push(`reason: ${r}`);
  for (const n of p.notes) lines.push(`note: ${n}`);
  lines.push(`vllm serve ${p.vllmArgs.join(" ")}`);
  return `${lines.join("\n")}\n`;
}

export function runPlan(file: string, output: "json" | "table"): CommandResult {
  try {
    const msd = parseResource(readDocument(file));
    const p = plan(msd.spec);
    const stdout = output === "json" ? `${JSON.stringify(planJson(p), null, 2)}\n` : planTable(p);
    return { code: p.feasible ? EXIT.ok : EXIT.infeasible, stdout, stderr: "" };
  } catch (err) {
    if (err instanceof ValidationError) return invalid(err);
    throw err;
  }
}

export function runRender(file: string): CommandResult {
  try {
    const msd = parseResource(readDocument(file));
    const p = plan(msd.spec);
    if (!p.feasible) {
      return {
        code: EXIT.infeasible,
        stdout: "",
        stderr: `infeasible plan:\n${p.reasons.map((r) => `  - ${r}`).join("\n")}\n`,
      };
    }
    return { code: EXIT.ok, stdout: toYamlStream(renderAll(msd, p)), stderr: "" };
  } catch (err) {
    if (err instanceof ValidationError) return invalid(err);
    throw err;
  }
}

export function runCrd(): CommandResult {
  return { code: EXIT.ok, stdout: renderCrdFile(), stderr: "" };
}
