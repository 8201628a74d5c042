/** Regenerates the README's field reference and sizing table. A test fails on drift. */
import { readFileSync, writeFileSync } from "node:fs";
import { renderReadme } from "../src/api/docs.ts";

const path = new URL("../README.md", import.meta.url);
writeFileSync(path, renderReadme(readFileSync(path, "utf8")));
console.log("updated README.md");
