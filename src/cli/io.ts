import { readFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";
import { ValidationError } from "../api/validate.ts";

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
  const docs = parseAllDocuments(text).filter((d) => d.contents !== null);
  const errors = docs.flatMap((d) => d.errors);
  if (errors.length > 0) {
    throw new ValidationError(errors.map((e) => ({ path: file, message: `YAML: ${e.message}` })));
  }
  if (docs.length !== 1) {
    throw new ValidationError([
      { path: file, message: `must hold exactly one document, found ${docs.length}` },
    ]);
  }
  return docs[0]!.toJS();
}
