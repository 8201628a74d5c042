/**
 * The operator's version, from package.json: the nearest one up from this module named
 * mistral-small-operator (src/util/ when run from sources, dist/src/util/ in the image,
 * .tmp/bench-dist/src/util/ in the benchmark), so it is right however the code is laid out.
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { OPERATOR_NAME } from "./identity.ts";

export class VersionError extends Error {
  override name = "VersionError";
}

function findVersion(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    const file = join(dir, "package.json");
    if (existsSync(file)) {
      const pkg = JSON.parse(readFileSync(file, "utf8")) as { name?: string; version?: string };
      if (pkg.name === OPERATOR_NAME && typeof pkg.version === "string") return pkg.version;
    }
    if (dirname(dir) === dir)
      throw new VersionError(`no package.json of mistral-small-operator above ${from}`);
  }
}

export const VERSION = findVersion(import.meta.dirname);
/** Sent with every API request, so audit logs and API priority rules can tell us apart. */
export const USER_AGENT = `mistral-small-operator/${VERSION}`;
