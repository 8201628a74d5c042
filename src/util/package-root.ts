/**
 * The package's root directory (the one holding our package.json), found by walking up
 * from a module. A fixed "../../" is wrong once tsc has compiled src/ into dist/src/:
 * it then points into dist/, where scripts/ and crds/ do not exist.
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import { OPERATOR_NAME } from "./identity.ts";

export const PACKAGE_NAME = OPERATOR_NAME;

export class PackageRootNotFoundError extends Error {
  override name = "PackageRootNotFoundError";
}

function isOurPackage(dir: string): boolean {
  const manifest = join(dir, "package.json");
  if (!existsSync(manifest)) return false;
  const parsed = JSON.parse(readFileSync(manifest, "utf8")) as { name?: unknown };
  return parsed.name === PACKAGE_NAME;
}

/** Nearest ancestor of `moduleUrl` whose package.json names this package. */
export function packageRoot(moduleUrl: string): string {
  const start = dirname(fileURLToPath(moduleUrl));
  for (let dir = start; ; dir = dirname(dir)) {
    if (isOurPackage(dir)) return dir;
    if (dirname(dir) === dir) {
      throw new PackageRootNotFoundError(`no package.json named ${PACKAGE_NAME} above ${start}`);
    }
  }
}
