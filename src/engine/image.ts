/**
 * Which vLLM release an image runs, read from its tag: `vllm/vllm-openai:v0.25.1` and its
 * CUDA 12.9 build `…:v0.25.1-cu129`, from any registry or mirror. A digest, `latest` or a
 * private tag says nothing about the release: the caller then serves the newest contract
 * and says so.
 */
import type { CudaVersion } from "./types.ts";

export interface ImageRelease {
  readonly version: string;
  readonly cuda: CudaVersion;
}

/** `[registry/]path[:tag][@digest]` -> the tag, if any. */
export function imageTag(image: string): string | undefined {
  const noDigest = image.split("@")[0]!;
  const lastSlash = noDigest.lastIndexOf("/");
  const colon = noDigest.indexOf(":", lastSlash + 1);
  return colon < 0 ? undefined : noDigest.slice(colon + 1);
}

export function imageRelease(image: string): ImageRelease | undefined {
  const tag = imageTag(image);
  const m = tag === undefined ? null : /^v?(\d+\.\d+\.\d+)(-cu(\d+))?$/.exec(tag);
  if (m === null) return undefined;
  if (m[3] !== undefined && m[3] !== "129" && m[3] !== "130") return undefined;
  return { version: m[1]!, cuda: m[3] === "129" ? "12.9" : "13.0" };
}

/** Orders dotted versions numerically: -1, 0 or 1. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split(".").map(Number);
  const pb = b.split(".").map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return Math.sign(d);
  }
  return 0;
}
