import { readFileSync } from "node:fs";
import { parseAllDocuments, type Tags } from "yaml";
import { ValidationError } from "../api/validate.ts";

/**
 * The largest object etcd stores with its default --max-request-bytes (1.5 MiB); custom
 * resources are stored as JSON, so the JSON size is what counts.
 */
export const MAX_OBJECT_BYTES = 1.5 * 1024 * 1024;

/**
 * kubectl reads YAML with sigs.k8s.io/yaml, i.e. go-yaml v2: YAML 1.1 scalars (unquoted
 * yes/no/on/off/y/n are booleans, 0777 is octal), merge keys, but no base-60 numbers
 * ("1:30" stays a string) and timestamps turned into RFC 3339 strings. The yaml package's
 * 1.1 schema does all of that except base 60, which is removed here.
 */
function kubectlTags(tags: Tags): Tags {
  // yaml's base-60 int and float tags carry format "TIME".
  return tags.filter((t) => typeof t === "string" || !("format" in t && t.format === "TIME"));
}

/** Go's time.Time JSON form (RFC 3339, no trailing zero fraction), as kubectl sends it. */
function goTime(d: Date): string {
  return d.toISOString().replace(/\.000Z$/, "Z");
}

function jsonLike(value: unknown): unknown {
  if (value instanceof Date) return goTime(value);
  if (Array.isArray(value)) return value.map(jsonLike);
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, jsonLike(v)]));
  }
  return value;
}

/** Parses one document of a YAML (or JSON) stream the way kubectl does. */
export function parseKubectlYaml(text: string, source: string): unknown {
  const docs = parseAllDocuments(text, { version: "1.1", customTags: kubectlTags }).filter(
    (d) => d.contents !== null,
  );
  const errors = docs.flatMap((d) => d.errors);
  if (errors.length > 0) {
    throw new ValidationError(errors.map((e) => ({ path: source, message: `YAML: ${e.message}` })));
  }
  if (docs.length !== 1) {
    throw new ValidationError([
      { path: source, message: `must hold exactly one document, found ${docs.length}` },
    ]);
  }
  const value = jsonLike(docs[0]!.toJS());
  const bytes = Buffer.byteLength(JSON.stringify(value) ?? "");
  if (bytes > MAX_OBJECT_BYTES) {
    throw new ValidationError([
      {
        path: source,
        message: `the object is ${bytes} bytes as JSON; the API server stores at most ${MAX_OBJECT_BYTES} (etcd's default request limit)`,
      },
    ]);
  }
  return value;
}

/** Reads one YAML/JSON document from a path or `-` (stdin). */
export function readDocument(file: string): unknown {
  let text: string;
  try {
    text = file === "-" ? readFileSync(0, "utf8") : readFileSync(file, "utf8");
  } catch (err) {
    throw new ValidationError(
      [{ path: "-f", message: `cannot read ${file}: ${(err as Error).message}` }],
      {
        cause: err,
      },
    );
  }
  return parseKubectlYaml(text, file);
}
