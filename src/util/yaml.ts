import { stringify } from "yaml";
import { sortKeys } from "./json.ts";

/** Deterministic YAML: sorted keys, no line folding, so output is byte-stable. */
export function toYaml(value: unknown): string {
  return stringify(sortKeys(value), { lineWidth: 0, aliasDuplicateObjects: false });
}

/** A multi-document YAML stream. */
export function toYamlStream(values: readonly unknown[]): string {
  return values.map((v) => `---\n${toYaml(v)}`).join("");
}
