import type { z } from "zod";

/**
 * A cross-field rule written once and enforced twice: by the API server as a CEL
 * `x-kubernetes-validations` entry, and by the CLI/operator through zod. Both must
 * say the same thing, so both come from this one object.
 */
export interface CrossFieldRule<T> {
  /** CEL expression evaluated with `self` bound to the object the rule sits on. */
  readonly cel: string;
  /** The message a user reads, from `kubectl apply` or from `msd plan`. */
  readonly message: string;
  /** Path (relative, dot-separated) of the field the message points at. */
  readonly field?: string;
  /** The same rule in TypeScript over the parsed (defaulted) value. */
  readonly holds: (value: T) => boolean;
}

export interface CelValidation {
  rule: string;
  message: string;
  fieldPath?: string;
}

export function celValidations<T>(rules: readonly CrossFieldRule<T>[]): CelValidation[] {
  return rules.map((r) => ({
    rule: r.cel,
    message: r.message,
    ...(r.field === undefined ? {} : { fieldPath: `.${r.field}` }),
  }));
}

/** Attach rules to an object schema: zod checks them, the CRD generator emits CEL. */
export function withRules<S extends z.ZodType>(
  schema: S,
  rules: readonly CrossFieldRule<z.output<S>>[],
): S {
  return schema
    .superRefine((value, ctx) => {
      for (const r of rules) {
        if (!r.holds(value)) {
          ctx.addIssue({
            code: "custom",
            message: r.message,
            path: r.field === undefined ? [] : r.field.split("."),
          });
        }
      }
    })
    .meta({ "x-kubernetes-validations": celValidations(rules) }) as S;
}
