#!/usr/bin/env node
// Runs the TypeScript sources through tsx, or the compiled build when present.
import { existsSync } from "node:fs";
import { fileURLToPath, pathToFileURL } from "node:url";

const built = fileURLToPath(new URL("../dist/src/cli/entry.js", import.meta.url));
let entry;
if (existsSync(built)) {
  entry = pathToFileURL(built).href;
} else {
  const { register } = await import("tsx/esm/api");
  register();
  entry = new URL("../src/cli/entry.ts", import.meta.url).href;
}
const { run } = await import(entry);
process.exitCode = await run(process.argv.slice(2));
