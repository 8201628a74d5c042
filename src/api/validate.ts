import { z } from "zod";
import { API_VERSION, KIND, SpecSchema, type MistralSmallDeployment, type Spec } from "./schema.ts";

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

/** Turns zod's issue into a sentence that names what is allowed. */
function describeIssue(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case "invalid_value":
      return `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(", ")}`;
    case "too_big":
      return issue.origin === "array"
        ? `must have at most ${String(issue.maximum)} items`
        : issue.origin === "string"
          ? `must be at most ${String(issue.maximum)} characters`
          : `must be ${issue.inclusive === false ? "less than" : "at most"} ${String(issue.maximum)}`;
    case "too_small":
      return issue.origin === "array"
        ? `must have at least ${String(issue.minimum)} items`
        : issue.origin === "string"
          ? `must be at least ${String(issue.minimum)} characters`
          : `must be ${issue.inclusive === false ? "greater than" : "at least"} ${String(issue.minimum)}`;
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

const NAME_RE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

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
  if (typeof name !== "string" || !NAME_RE.test(name) || name.length > 52) {
    problems.push({
      path: "metadata.name",
      message:
        "is required: a lowercase DNS label of at most 52 characters (room for the suffixes of owned objects)",
    });
  }
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
