import { z } from "zod";
import {
  API_VERSION,
  KIND,
  NAME_MAX_LENGTH,
  NAME_PATTERN,
  SpecSchema,
  type MistralSmallDeployment,
  type Spec,
} from "./schema.ts";

/** One problem with user input: where, what is wrong, what is allowed. */
export interface FieldProblem {
  readonly path: string;
  readonly message: string;
}

export class ValidationError extends Error {
  readonly problems: readonly FieldProblem[];
  constructor(problems: readonly FieldProblem[], options?: { cause?: unknown }) {
    super(
      `invalid ${KIND}:\n${problems.map((p) => `  - ${p.path}: ${p.message}`).join("\n")}`,
      options,
    );
    this.name = "ValidationError";
    this.problems = problems;
  }
}

function pathOf(prefix: string, path: readonly PropertyKey[]): string {
  return [prefix, ...path.map(String)].filter((s) => s !== "").join(".");
}

/**
 * A size or value bound as a sentence: "must have at most 8 items", "must be at least 1
 * characters", "must be less than 2" (`strict` words an exclusive bound).
 */
function bound(
  origin: string,
  inclusive: string,
  strict: string,
  limit: number | bigint,
  isInclusive: boolean | undefined,
): string {
  if (origin === "array") return `must have ${inclusive} ${String(limit)} items`;
  if (origin === "string") return `must be ${inclusive} ${String(limit)} characters`;
  return `must be ${isInclusive === false ? strict : inclusive} ${String(limit)}`;
}

/** Turns zod's issue into a sentence that names what is allowed. */
function describeIssue(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case "invalid_value":
      return `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(", ")}`;
    case "too_big":
      return bound(issue.origin, "at most", "less than", issue.maximum, issue.inclusive);
    case "too_small":
      return bound(issue.origin, "at least", "greater than", issue.minimum, issue.inclusive);
    case "invalid_type":
      return issue.message.includes("received undefined")
        ? `is required (${issue.expected})`
        : `must be ${issue.expected === "int" ? "an integer" : `a ${issue.expected}`}`;
    case "unrecognized_keys":
      return `unknown field(s) ${issue.keys.map((k) => JSON.stringify(k)).join(", ")}`;
    default:
      return issue.message;
  }
}

export function problemsFromZod(error: z.ZodError, prefix: string): FieldProblem[] {
  return error.issues.map((issue) => ({
    path: pathOf(prefix, issue.path),
    message: describeIssue(issue),
  }));
}

/** Parse and default a spec; throws ValidationError listing every problem. */
export function parseSpec(raw: unknown): Spec {
  const result = SpecSchema.safeParse(raw ?? {});
  if (!result.success) throw new ValidationError(problemsFromZod(result.error, "spec"));
  return result.data;
}

const NAME_RE = new RegExp(NAME_PATTERN);

/** The same checks as the CRD's root CEL rules, with the same facts in the message. */
export function metadataNameProblem(name: unknown): string | undefined {
  if (typeof name !== "string" || name === "") return "is required";
  if (name.length > NAME_MAX_LENGTH) {
    return `must be at most ${NAME_MAX_LENGTH} characters (room for the suffixes of owned objects), got ${name.length}`;
  }
  if (!NAME_RE.test(name)) {
    return "must be a DNS-1035 label: lowercase letters, digits and '-', starting with a letter (it names a Service)";
  }
  return undefined;
}

/**
 * The API server's metadata rules (k8s.io/apimachinery pkg/api/validation/objectmeta.go and
 * pkg/util/validation): applied here too, so `msd plan` refuses what `kubectl apply` would.
 */
export const TOTAL_ANNOTATION_SIZE_LIMIT = 256 * 1024;
const QUALIFIED_NAME_RE = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const DNS_SUBDOMAIN_RE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_VALUE_RE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

/** Why `key` is not a qualified name ([prefix/]name), or undefined when it is one. */
export function qualifiedNameProblem(key: string): string | undefined {
  const parts = key.split("/");
  if (parts.length > 2) return "must be [prefix/]name with at most one /";
  const name = parts.at(-1)!;
  const prefix = parts.length === 2 ? parts[0]! : undefined;
  if (prefix !== undefined && (prefix.length > 253 || !DNS_SUBDOMAIN_RE.test(prefix))) {
    return "the prefix must be a lowercase DNS subdomain of at most 253 characters";
  }
  if (name.length > 63 || !QUALIFIED_NAME_RE.test(name)) {
    return "the name must be at most 63 characters of [A-Za-z0-9-_.], starting and ending alphanumeric";
  }
  return undefined;
}

/** Why `value` is not a valid label value, or undefined when it is one. */
export function labelValueProblem(value: string): string | undefined {
  return value.length <= 63 && LABEL_VALUE_RE.test(value)
    ? undefined
    : "must be at most 63 characters of [A-Za-z0-9-_.], starting and ending alphanumeric (or empty)";
}

function stringMap(value: unknown): Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : {};
}

function metadataProblems(meta: Record<string, unknown>): FieldProblem[] {
  const problems: FieldProblem[] = [];
  for (const [k, v] of Object.entries(stringMap(meta.labels))) {
    const keyProblem = qualifiedNameProblem(k);
    if (keyProblem !== undefined) {
      problems.push({
        path: `metadata.labels[${JSON.stringify(k)}]`,
        message: `key ${keyProblem}`,
      });
    }
    const valueProblem = typeof v === "string" ? labelValueProblem(v) : "must be a string";
    if (valueProblem !== undefined) {
      problems.push({ path: `metadata.labels[${JSON.stringify(k)}]`, message: valueProblem });
    }
  }
  let annotationBytes = 0;
  for (const [k, v] of Object.entries(stringMap(meta.annotations))) {
    const keyProblem = qualifiedNameProblem(k.toLowerCase());
    if (keyProblem !== undefined) {
      problems.push({
        path: `metadata.annotations[${JSON.stringify(k)}]`,
        message: `key ${keyProblem}`,
      });
    }
    // The API server counts bytes of Go strings: UTF-8.
    annotationBytes += Buffer.byteLength(k) + (typeof v === "string" ? Buffer.byteLength(v) : 0);
  }
  if (annotationBytes > TOTAL_ANNOTATION_SIZE_LIMIT) {
    problems.push({
      path: "metadata.annotations",
      message: `may not be more than ${TOTAL_ANNOTATION_SIZE_LIMIT} bytes in total, got ${annotationBytes}`,
    });
  }
  return problems;
}

/** Parse a whole object as read from a file or from the API server. */
export function parseResource(raw: unknown): MistralSmallDeployment {
  const problems: FieldProblem[] = [];
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new ValidationError([{ path: "", message: `must be a ${KIND} object` }]);
  }
  const obj = raw as Record<string, unknown>;
  if (obj.apiVersion !== API_VERSION)
    problems.push({ path: "apiVersion", message: `must be ${API_VERSION}` });
  if (obj.kind !== KIND) problems.push({ path: "kind", message: `must be ${KIND}` });
  const meta = (obj.metadata ?? {}) as Record<string, unknown>;
  const name = meta.name;
  const nameProblem = metadataNameProblem(name);
  if (nameProblem !== undefined) problems.push({ path: "metadata.name", message: nameProblem });
  problems.push(...metadataProblems(meta));
  let spec: Spec | undefined;
  try {
    spec = parseSpec(obj.spec);
  } catch (err) {
    if (!(err instanceof ValidationError)) throw err;
    problems.push(...err.problems);
  }
  if (problems.length > 0 || spec === undefined) throw new ValidationError(problems);
  return {
    apiVersion: API_VERSION,
    kind: KIND,
    metadata: {
      ...(meta as MistralSmallDeployment["metadata"]),
      name: name as string,
      namespace: typeof meta.namespace === "string" ? meta.namespace : "default",
    },
    spec,
    ...(obj.status === undefined ? {} : { status: obj.status as MistralSmallDeployment["status"] }),
  };
}
