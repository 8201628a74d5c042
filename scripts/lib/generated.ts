/**
 * What every `scripts/gen-*.ts` does with its output: write each file whose content changed
 * and remove the stale ones, or with `--check` write nothing, name each difference and exit 1.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { REPO_ROOT } from "../../src/delivery/chart.ts";

export interface GeneratedOutput {
  /** Repository-relative path -> content. */
  readonly files: ReadonlyMap<string, string>;
  /** Repository-relative paths that must not exist (a file, or a directory and all in it). */
  readonly stale?: readonly string[];
  /** Printed after a written file's path, e.g. its hash. */
  readonly describe?: (rel: string) => string;
  /** The advice printed when `--check` finds a difference. */
  readonly onDrift: string;
}

/** Every file under a repository-relative directory, repository-relative. */
export function filesUnder(dir: string): string[] {
  const abs = join(REPO_ROOT, dir);
  if (!existsSync(abs)) return [];
  return readdirSync(abs, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? filesUnder(join(dir, e.name)) : [relative(REPO_ROOT, join(abs, e.name))],
  );
}

export function writeGenerated(out: GeneratedOutput): void {
  const check = process.argv.includes("--check");
  const suffix = (rel: string) => (out.describe === undefined ? "" : ` (${out.describe(rel)})`);
  let drifted = 0;
  for (const [rel, content] of out.files) {
    const path = join(REPO_ROOT, rel);
    if (existsSync(path) && readFileSync(path, "utf8") === content) continue;
    drifted++;
    if (check) {
      console.error(`${rel}: out of date${suffix(rel)}`);
      continue;
    }
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, content);
    console.log(`wrote ${rel}${suffix(rel)}`);
  }
  for (const rel of out.stale ?? []) {
    if (!existsSync(join(REPO_ROOT, rel))) continue;
    drifted++;
    if (check) console.error(`${rel}: stale`);
    else {
      rmSync(join(REPO_ROOT, rel), { recursive: true });
      console.log(`removed ${rel}`);
    }
  }
  if (check && drifted > 0) {
    console.error(out.onDrift);
    process.exitCode = 1;
  }
}
