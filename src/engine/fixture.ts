/**
 * The shape of a generated flag fixture: every flag `vllm serve` accepts at one vLLM
 * release, extracted from vLLM's own argument definitions by scripts/gen-vllm-flags.py
 * (which names the commit it read). The files live beside this one and are never edited
 * by hand.
 */

export interface FlagSpec {
  /** Other spellings of the same flag, such as `-tp`. */
  readonly aliases: readonly string[];
  readonly takesValue: boolean;
  /** The values argparse accepts, or null when any value of the type is. */
  readonly choices: readonly (string | number)[] | null;
  /** A boolean flag that also has a `--no-` form (argparse.BooleanOptionalAction). */
  readonly negatable: boolean;
  /** argparse nargs: "+" takes one or more values. */
  readonly nargs: string | null;
}

export interface ValueNormalisation {
  /** vLLM changes the value's case before checking it. */
  readonly case: string;
  readonly dashToUnderscore?: boolean;
}

interface NamedValues {
  readonly values: readonly string[];
}

export interface FlagFixture {
  readonly release: string;
  readonly commit: string;
  /** Repository and commit the fixture was read from. */
  readonly source: string;
  readonly generator: string;
  readonly parser: {
    /** FlexibleArgumentParser rewrites `--foo_bar` to `--foo-bar`. */
    readonly underscoreToDash: boolean;
    /** argparse's default: an unambiguous prefix of a long flag names it. */
    readonly allowAbbrev: boolean;
    /** `-O3` is `--optimization-level 3`. */
    readonly optimizationLevelShorthand?: boolean;
  };
  /** Flags whose values vLLM normalises before checking them. */
  readonly choiceNormalise?: Readonly<Record<string, ValueNormalisation>>;
  readonly flags: Readonly<Record<string, FlagSpec>>;
  /** Value sets checked after parsing (pydantic validators, registries). */
  readonly enums: {
    readonly attentionBackends: NamedValues;
    readonly tokenizerModes: NamedValues;
    readonly loadFormats: NamedValues;
    readonly configFormats: NamedValues;
    readonly quantizationMethods: NamedValues;
  };
  readonly registries: {
    readonly reasoningParsers: readonly string[];
    readonly toolParsers: readonly string[];
  };
}

/** The value set vLLM checks a flag's value against, wherever the fixture keeps it. */
export function acceptedValues(fixture: FlagFixture, flag: string): readonly string[] | null {
  const spec = fixture.flags[flag];
  if (spec !== undefined && spec.choices !== null) return spec.choices.map(String);
  switch (flag) {
    case "--attention-backend":
      return fixture.enums.attentionBackends.values;
    case "--tokenizer-mode":
      return fixture.enums.tokenizerModes.values;
    case "--load-format":
      return fixture.enums.loadFormats.values;
    case "--config-format":
      return fixture.enums.configFormats.values;
    case "--quantization":
      return fixture.enums.quantizationMethods.values;
    case "--reasoning-parser":
      return fixture.registries.reasoningParsers;
    case "--tool-call-parser":
      return fixture.registries.toolParsers;
    default:
      return null;
  }
}
