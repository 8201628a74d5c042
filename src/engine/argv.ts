/**
 * Reads a vLLM command line the way vLLM's own parser does, against the flag fixture of
 * one release: `--foo_bar` is `--foo-bar`, `--flag=value` is `--flag value`, aliases such
 * as `-tp` and unambiguous prefixes (argparse's allow_abbrev) name their flag, `--no-x`
 * negates a boolean flag, `-O3` is `--optimization-level 3`, and values are normalised as
 * vLLM normalises them (backend names upper- or lower-cased) before they are checked.
 * Pure: the planner uses it to refuse extra arguments that would fight the plan, and the
 * tests use it to check every command line the operator renders.
 */
import { acceptedValues, type FlagFixture } from "./fixture.ts";

/** One flag as vLLM would see it, with where it came from in the argument list. */
export interface ParsedFlag {
  /** Index of the token naming the flag. */
  readonly index: number;
  /** The tokens as written (the flag and its values). */
  readonly written: string;
  /** The flag's canonical (long) name in the fixture. */
  readonly flag: string;
  /** The first value as vLLM normalises it, if the flag takes one. */
  readonly value?: string;
}

export interface ParsedArgv {
  readonly flags: readonly ParsedFlag[];
  readonly positionals: readonly { readonly index: number; readonly value: string }[];
  /** Each problem names the token and what vLLM would make of it. */
  readonly problems: readonly string[];
}

interface Spelling {
  readonly flag: string;
  readonly negated: boolean;
}

/** Maps every exact spelling vLLM accepts (flags, aliases, `--no-` forms) to its flag. */
export function spellings(fixture: FlagFixture): ReadonlyMap<string, Spelling> {
  const map = new Map<string, Spelling>();
  for (const [flag, spec] of Object.entries(fixture.flags)) {
    map.set(flag, { flag, negated: false });
    for (const alias of spec.aliases) map.set(alias, { flag, negated: false });
    if (spec.negatable) map.set(`--no-${flag.slice(2)}`, { flag, negated: true });
  }
  return map;
}

/** vLLM's parser rewrites underscores in a long flag's name (not its value) to dashes. */
function normaliseName(name: string, fixture: FlagFixture): string {
  return fixture.parser.underscoreToDash && name.startsWith("--")
    ? name.replaceAll("_", "-")
    : name;
}

/** argparse's lookup: exact spelling first, then a unique prefix of a long spelling. */
function lookup(
  name: string,
  names: ReadonlyMap<string, Spelling>,
  fixture: FlagFixture,
): Spelling | string {
  const exact = names.get(name);
  if (exact !== undefined) return exact;
  if (!fixture.parser.allowAbbrev || !name.startsWith("--")) return `${name} is not a flag`;
  const matches = [...names.keys()].filter((k) => k.startsWith("--") && k.startsWith(name));
  if (matches.length === 1) return names.get(matches[0]!)!;
  if (matches.length > 1) {
    return `${name} is ambiguous: it abbreviates ${matches.slice(0, 5).join(", ")}${matches.length > 5 ? ", ..." : ""}`;
  }
  return `${name} is not a flag`;
}

function looksLikeFlag(token: string): boolean {
  return token.startsWith("-") && token.length > 1 && !/^-\d/.test(token);
}

/** The value as vLLM reads it: backend names change case (and dashes) before the check. */
export function canonicalValue(flag: string, value: string, fixture: FlagFixture): string {
  const n = fixture.choiceNormalise?.[flag];
  if (n === undefined) return value;
  const cased = n.case === "upper" ? value.toUpperCase() : value.toLowerCase();
  return n.dashToUnderscore === true ? cased.replaceAll("-", "_") : cased;
}

function valueProblem(flag: string, value: string, fixture: FlagFixture): string | undefined {
  const allowed = acceptedValues(fixture, flag);
  if (allowed === null || allowed.includes(canonicalValue(flag, value, fixture))) return undefined;
  return `${flag} ${JSON.stringify(value)} is not accepted by vLLM ${fixture.release}; it takes ${allowed.join(", ")}`;
}

/** `-O3`, `-O=3` and `-O 3` are vLLM's shorthand for `--optimization-level`. */
function expandShorthand(token: string, fixture: FlagFixture): string {
  const m = /^-O=?(.*)$/.exec(token);
  if (m === null || fixture.parser.optimizationLevelShorthand !== true) return token;
  return m[1] === "" ? "--optimization-level" : `--optimization-level=${m[1]}`;
}

export function parseArgv(tokens: readonly string[], fixture: FlagFixture): ParsedArgv {
  const names = spellings(fixture);
  const flags: ParsedFlag[] = [];
  const positionals: { index: number; value: string }[] = [];
  const problems: string[] = [];
  for (let i = 0; i < tokens.length; i++) {
    const start = i;
    const token = expandShorthand(tokens[i]!, fixture);
    if (!looksLikeFlag(token)) {
      positionals.push({ index: i, value: token });
      continue;
    }
    const eq = token.indexOf("=");
    const rawName = eq < 0 ? token : token.slice(0, eq);
    if (/\s/.test(rawName)) {
      problems.push(
        `${JSON.stringify(tokens[i])} holds a space: vLLM's parser reads it as one unknown argument, not a flag and its value; write the flag and its value as two items`,
      );
      continue;
    }
    // `--json-flag.key value` is merged into --json-flag's JSON by vLLM's parser.
    const dot = rawName.indexOf(".");
    const baseName = dot > 2 ? rawName.slice(0, dot) : rawName;
    const found = lookup(normaliseName(baseName, fixture), names, fixture);
    if (typeof found === "string") {
      problems.push(`${found} of vLLM ${fixture.release} (flags read from ${fixture.source})`);
      continue;
    }
    const spec = fixture.flags[found.flag]!;
    const takesValue = spec.takesValue && !found.negated;
    const values: string[] = eq < 0 ? [] : [token.slice(eq + 1)];
    if (!takesValue && values.length > 0) {
      problems.push(`${rawName} takes no value, but ${JSON.stringify(tokens[i])} gives one`);
      continue;
    }
    if (takesValue && values.length === 0) {
      // nargs "+" takes every following value; otherwise exactly one.
      const many = spec.nargs === "+" || spec.nargs === "*";
      while (i + 1 < tokens.length && !looksLikeFlag(tokens[i + 1]!)) {
        values.push(tokens[++i]!);
        if (!many) break;
      }
      if (values.length === 0) {
        problems.push(`${rawName} needs a value`);
        continue;
      }
    }
    for (const v of dot > 2 ? [] : values) {
      const bad = valueProblem(found.flag, v, fixture);
      if (bad !== undefined) problems.push(bad);
    }
    const written = tokens.slice(start, i + 1).join(" ");
    if (flags.some((f) => f.flag === found.flag)) {
      problems.push(`${found.flag} is given twice (${written}); vLLM would keep only the last`);
    }
    const first = values[0];
    flags.push({
      index: start,
      written,
      flag: found.flag,
      ...(found.negated
        ? { value: "false" }
        : first === undefined
          ? {}
          : { value: canonicalValue(found.flag, first, fixture) }),
    });
  }
  return { flags, positionals, problems };
}
