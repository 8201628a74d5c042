/** What `msd plan` and status say about the engine: the release, its image and its caveats. */
import type { GpuSpec } from "../catalog/gpus.ts";
import type { EngineChoice } from "./contract.ts";
import { DRIVER_REQUIREMENT } from "./releases.ts";

export function engineNotes(engine: EngineChoice, gpu: GpuSpec): string[] {
  const notes: string[] = [];
  const version = engine.imageVersion ?? engine.release.version;
  notes.push(
    `vLLM ${version}${engine.verified ? "" : " (unverified)"} in ${engine.image}: a CUDA ${engine.cuda} build; ${DRIVER_REQUIREMENT[engine.cuda]}`,
  );
  if (engine.mlaBackend !== null) {
    notes.push(
      `attention on ${gpu.displayName}: ${engine.mlaBackend} (${engine.release.mlaBackends[engine.mlaBackend].evidence})`,
    );
  }
  if (engine.moe !== null) {
    notes.push(
      `MoE on ${gpu.displayName}: ${engine.moe.runs}` +
        (engine.moe.flag === null
          ? " (vLLM's own choice)"
          : ` (--moe-backend ${engine.moe.flag})`) +
        `: ${engine.moe.why}`,
    );
  }
  notes.push(...engine.caveats);
  return notes;
}
