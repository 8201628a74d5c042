/**
 * A small parser for the Prometheus text exposition format (version 0.0.4), enough for
 * what vLLM serves at /metrics, and the reader that turns one scrape into the numbers the
 * autoscaler needs.
 *
 * Handled: `# HELP` and `# TYPE` lines (other comments are skipped), metric names with
 * colons, label sets with escaped values (`\\`, `\"`, `\n`) and a trailing comma, values
 * such as `1.5e+09`, `+Inf`, `-Inf` and `NaN`, an optional millisecond timestamp, blank lines
 * and CRLF line ends. Histogram and summary series (`_bucket`, `_sum`, `_count`, `_created`)
 * are returned as plain samples under their own names. Not handled: the OpenMetrics-only
 * features (exemplars, `# EOF`, quoted UTF-8 metric names), which vLLM does not serve on
 * this endpoint.
 */

export type MetricType = "counter" | "gauge" | "histogram" | "summary" | "untyped";

export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
  /** Milliseconds since the epoch, when the line carried one. */
  readonly timestampMs?: number;
}

export interface Exposition {
  readonly samples: readonly Sample[];
  /** Family name -> HELP text (unescaped). */
  readonly help: ReadonlyMap<string, string>;
  /** Family name -> TYPE. */
  readonly types: ReadonlyMap<string, MetricType>;
}

export class PrometheusParseError extends Error {
  readonly line: number;
  constructor(line: number, message: string) {
    super(`line ${line}: ${message}`);
    this.name = "PrometheusParseError";
    this.line = line;
  }
}

const NAME_START = /[a-zA-Z_:]/;
const NAME_CHAR = /[a-zA-Z0-9_:]/;
const LABEL_START = /[a-zA-Z_]/;
const LABEL_CHAR = /[a-zA-Z0-9_]/;
const METRIC_TYPES: ReadonlySet<string> = new Set([
  "counter",
  "gauge",
  "histogram",
  "summary",
  "untyped",
]);

/** Parses a sample value as Prometheus writes it (Go's ParseFloat plus Inf/NaN spellings). */
export function parseValue(text: string): number {
  switch (text) {
    case "+Inf":
    case "Inf":
    case "+inf":
    case "inf":
      return Number.POSITIVE_INFINITY;
    case "-Inf":
    case "-inf":
      return Number.NEGATIVE_INFINITY;
    case "NaN":
    case "nan":
      return Number.NaN;
  }
  if (!/^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/.test(text)) return Number.NaN;
  return Number(text);
}

function unescapeHelp(text: string): string {
  return text.replace(/\\(\\|n)/g, (_m, c: string) => (c === "n" ? "\n" : "\\"));
}

class LineReader {
  pos = 0;
  constructor(
    readonly text: string,
    readonly lineNo: number,
  ) {}
  fail(message: string): never {
    throw new PrometheusParseError(this.lineNo, message);
  }
  peek(): string {
    return this.text[this.pos] ?? "";
  }
  skipSpaces(): void {
    while (this.peek() === " " || this.peek() === "\t") this.pos++;
  }
  readWhile(first: RegExp, rest: RegExp, what: string): string {
    const start = this.pos;
    if (!first.test(this.peek())) this.fail(`expected ${what} at column ${this.pos + 1}`);
    this.pos++;
    while (this.pos < this.text.length && rest.test(this.peek())) this.pos++;
    return this.text.slice(start, this.pos);
  }
  readToken(): string {
    const start = this.pos;
    while (this.pos < this.text.length && this.peek() !== " " && this.peek() !== "\t") this.pos++;
    return this.text.slice(start, this.pos);
  }
  readQuoted(): string {
    if (this.peek() !== '"') this.fail(`expected '"' at column ${this.pos + 1}`);
    this.pos++;
    let out = "";
    for (;;) {
      if (this.pos >= this.text.length) this.fail("unterminated label value");
      const c = this.text[this.pos++]!;
      if (c === '"') return out;
      if (c === "\\") {
        const e = this.text[this.pos++];
        if (e === "n") out += "\n";
        else if (e === "\\") out += "\\";
        else if (e === '"') out += '"';
        else this.fail(`invalid escape \\${e ?? ""} in label value`);
      } else {
        out += c;
      }
    }
  }
}

function parseLabels(r: LineReader): Record<string, string> {
  // A Map, then own properties: a label named __proto__ must stay an ordinary label.
  const labels = new Map<string, string>();
  r.pos++; // "{"
  for (;;) {
    r.skipSpaces();
    if (r.peek() === "}") {
      r.pos++;
      return Object.fromEntries(labels);
    }
    const name = r.readWhile(LABEL_START, LABEL_CHAR, "a label name");
    r.skipSpaces();
    if (r.peek() !== "=") r.fail(`expected '=' after label ${name}`);
    r.pos++;
    r.skipSpaces();
    if (labels.has(name)) r.fail(`duplicate label ${name}`);
    labels.set(name, r.readQuoted());
    r.skipSpaces();
    if (r.peek() === ",") {
      r.pos++;
      continue;
    }
    if (r.peek() !== "}") r.fail(`expected ',' or '}' after label ${name}`);
  }
}

function parseSampleLine(line: string, lineNo: number): Sample {
  const r = new LineReader(line, lineNo);
  r.skipSpaces();
  const name = r.readWhile(NAME_START, NAME_CHAR, "a metric name");
  r.skipSpaces();
  const labels = r.peek() === "{" ? parseLabels(r) : {};
  r.skipSpaces();
  const valueText = r.readToken();
  if (valueText === "") r.fail(`missing value for ${name}`);
  const value = parseValue(valueText);
  if (Number.isNaN(value) && valueText !== "NaN" && valueText !== "nan") {
    r.fail(`invalid value ${JSON.stringify(valueText)} for ${name}`);
  }
  r.skipSpaces();
  const tsText = r.readToken();
  r.skipSpaces();
  if (r.pos < line.length) r.fail(`unexpected text after the sample of ${name}`);
  if (tsText === "") return { name, labels, value };
  if (!/^-?\d+$/.test(tsText)) r.fail(`invalid timestamp ${JSON.stringify(tsText)}`);
  return { name, labels, value, timestampMs: Number(tsText) };
}

/** Parses a whole exposition; throws PrometheusParseError naming the first bad line. */
export function parsePrometheusText(text: string): Exposition {
  const samples: Sample[] = [];
  const help = new Map<string, string>();
  const types = new Map<string, MetricType>();
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.replace(/\r$/, "");
    const lineNo = i + 1;
    if (line.trim() === "") continue;
    const trimmed = line.trimStart();
    if (trimmed.startsWith("#")) {
      const m = /^#\s*(HELP|TYPE)\s+([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\s+(.*))?$/.exec(trimmed);
      if (m === null) continue; // an ordinary comment
      const [, kind, family, rest = ""] = m;
      if (kind === "HELP") {
        help.set(family!, unescapeHelp(rest));
      } else {
        const t = rest.trim();
        if (!METRIC_TYPES.has(t)) {
          throw new PrometheusParseError(lineNo, `unknown metric type ${JSON.stringify(t)}`);
        }
        types.set(family!, t as MetricType);
      }
      continue;
    }
    samples.push(parseSampleLine(line, lineNo));
  }
  return { samples, help, types };
}

/** What the autoscaler reads from one vLLM /metrics page, summed over engines. */
export interface VllmSample {
  /** `vllm:generation_tokens_total`, a counter. */
  readonly generationTokensTotal: number;
  /** `vllm:prompt_tokens_total`, a counter. */
  readonly promptTokensTotal: number;
  /** `vllm:num_requests_running`, a gauge. */
  readonly running: number;
  /** `vllm:num_requests_waiting` (not `_by_reason`), a gauge. */
  readonly waiting: number;
  /**
   * `vllm:kv_cache_usage_perc` (or the old `vllm:gpu_cache_usage_perc`), 0-1; the mean over
   * engines (each engine has its own cache). Undefined when neither name is served.
   */
  readonly kvCacheUsage: number | undefined;
  /**
   * Sum of `vllm:request_success_total` over every finished_reason, a counter. Undefined when
   * not served. Lets the autoscaler know the tokens of an average request.
   */
  readonly requestsFinishedTotal: number | undefined;
  /**
   * When the counters started (seconds since the epoch): the earliest
   * `vllm:generation_tokens_created`. Served in single-process mode only (the `_created`
   * series vanish with several API servers); undefined otherwise. Lets the first scrape of a
   * new pod give a rate (its counters started at 0 then).
   */
  readonly countersCreatedSeconds: number | undefined;
  /** How many engines (distinct `engine` label values) contributed. */
  readonly engines: number;
}

export class VllmMetricsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "VllmMetricsError";
  }
}

/**
 * Reads the autoscaling numbers from a vLLM /metrics page. With `modelName`, only series whose
 * `model_name` label equals it count. Counters and request gauges are summed over engines
 * (data-parallel ranks or several API servers); KV usage is averaged. Throws VllmMetricsError
 * when a required series is absent, so a caller reports the pod as unknown rather than idle.
 */
export function readVllmSample(text: string, modelName?: string): VllmSample {
  const { samples } = parsePrometheusText(text);
  const sums = new Map<string, number>();
  const counts = new Map<string, number>();
  const engines = new Set<string>();
  let created: number | undefined;
  for (const s of samples) {
    if (!s.name.startsWith("vllm:")) continue;
    if (modelName !== undefined && s.labels["model_name"] !== modelName) continue;
    if (s.name === "vllm:generation_tokens_created") {
      created = created === undefined ? s.value : Math.min(created, s.value);
    }
    sums.set(s.name, (sums.get(s.name) ?? 0) + s.value);
    counts.set(s.name, (counts.get(s.name) ?? 0) + 1);
    if (s.labels["engine"] !== undefined) engines.add(s.labels["engine"]);
  }
  const required = (name: string): number => {
    const v = sums.get(name);
    if (v === undefined) {
      throw new VllmMetricsError(
        `no ${name} series${modelName === undefined ? "" : ` for model_name="${modelName}"`}`,
      );
    }
    return v;
  };
  const mean = (name: string): number | undefined => {
    const v = sums.get(name);
    return v === undefined ? undefined : v / counts.get(name)!;
  };
  // The request gauges prove the engine serves this model. A labelled counter has no
  // series until its first increment (vLLM simulators show this), so an absent token
  // counter next to present gauges is zero tokens so far, not a missing pod.
  const running = required("vllm:num_requests_running");
  return {
    generationTokensTotal: sums.get("vllm:generation_tokens_total") ?? 0,
    promptTokensTotal: sums.get("vllm:prompt_tokens_total") ?? 0,
    running,
    waiting: required("vllm:num_requests_waiting"),
    kvCacheUsage: mean("vllm:kv_cache_usage_perc") ?? mean("vllm:gpu_cache_usage_perc"),
    requestsFinishedTotal: sums.get("vllm:request_success_total"),
    countersCreatedSeconds: created,
    engines: Math.max(engines.size, 1),
  };
}
