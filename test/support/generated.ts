import assert from "node:assert/strict";

/**
 * Fails, naming the first line that differs, unless a committed generated file is what its
 * generator writes today. `why` leads the message (which file, and what to run).
 */
export function assertUpToDate(committed: string, generated: string, why: string): void {
  if (committed === generated) return;
  const a = committed.split("\n");
  const b = generated.split("\n");
  let line = 0;
  while (line < a.length && a[line] === b[line]) line += 1;
  assert.fail(
    `${why}\n` +
      `first difference at line ${line + 1}:\n  committed: ${a[line] ?? "<end of file>"}\n` +
      `  generated: ${b[line] ?? "<end of file>"}`,
  );
}
