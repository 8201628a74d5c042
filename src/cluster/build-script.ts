/** Runs the scripts that build (once, into a version-keyed cache) the Go tools the local cluster uses. */
import { execFileSync } from "node:child_process";

/**
 * Runs a scripts/build-*.sh (a no-op on a warm cache) and returns the last line it prints on
 * stdout: where its outputs are. Its progress goes to our stderr unless `quiet`; a failure is
 * thrown as `failure(cause)`.
 */
export function runBuildScript(
  script: string,
  quiet: boolean | undefined,
  failure: (cause: unknown) => Error,
): string {
  let out: string;
  try {
    out = execFileSync("bash", [script], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", quiet === true ? "pipe" : "inherit"],
      maxBuffer: 64 * 1024 * 1024,
    });
  } catch (err) {
    throw failure(err);
  }
  return out.trim().split("\n").pop() ?? "";
}
