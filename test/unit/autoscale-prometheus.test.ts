import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import {
  PrometheusParseError,
  VllmMetricsError,
  parsePrometheusText,
  parseValue,
  readVllmSample,
} from "../../src/autoscale/prometheus.ts";

const FIXTURE = readFileSync(
  new URL("../fixtures/vllm-metrics-sample.txt", import.meta.url),
  "utf8",
);

describe("parsePrometheusText on the vLLM fixture", () => {
  const e = parsePrometheusText(FIXTURE);

  test("every sample line, HELP and TYPE is read", () => {
    assert.equal(e.samples.length, 146);
    assert.equal(e.types.size, 28);
    assert.equal(e.help.size, 28);
    assert.equal(e.types.get("vllm:generation_tokens_total"), "counter");
    assert.equal(e.types.get("vllm:time_to_first_token_seconds"), "histogram");
    assert.equal(
      e.help.get("vllm:num_requests_running"),
      "Number of requests in model execution batches.",
    );
  });

  test("histogram series are plain samples, le=+Inf kept as a label string", () => {
    const buckets = e.samples.filter((s) => s.name === "vllm:time_to_first_token_seconds_bucket");
    assert.equal(buckets.length, 23); // 22 bounds plus +Inf
    const inf = buckets.find((s) => s.labels["le"] === "+Inf");
    assert.deepEqual(inf, {
      name: "vllm:time_to_first_token_seconds_bucket",
      labels: { engine: "0", le: "+Inf", model_name: "mistral-small-4" },
      value: 10,
    });
    const sum = e.samples.find((s) => s.name === "vllm:time_to_first_token_seconds_sum");
    assert.equal(sum?.value, 6.96);
    const count = e.samples.find((s) => s.name === "vllm:time_to_first_token_seconds_count");
    assert.equal(count?.value, 10);
  });

  test("exponent notation values", () => {
    const created = e.samples.find((s) => s.name === "vllm:generation_tokens_created");
    assert.equal(created?.value, 1.7959184292161598e9);
  });
});

describe("readVllmSample", () => {
  test("reads the fixture's exact values", () => {
    assert.deepEqual(readVllmSample(FIXTURE), {
      generationTokensTotal: 5120,
      promptTokensTotal: 18432,
      running: 3,
      // vllm:num_requests_waiting only, not the _by_reason series (which would add 1 + 0).
      waiting: 1,
      kvCacheUsage: 0.0421,
      // request_success_total over stop, length, abort, error: 9 + 1 + 0 + 0.
      requestsFinishedTotal: 10,
      countersCreatedSeconds: 1.7959184292161598e9,
      engines: 1,
    });
  });

  test("filters by model name and refuses a model that is not served", () => {
    assert.equal(readVllmSample(FIXTURE, "mistral-small-4").generationTokensTotal, 5120);
    assert.throws(() => readVllmSample(FIXTURE, "other-model"), VllmMetricsError);
  });

  test("_by_reason never stands in for num_requests_waiting", () => {
    const text = FIXTURE.split("\n")
      .filter((l) => !l.startsWith("vllm:num_requests_waiting{"))
      .join("\n");
    assert.throws(() => readVllmSample(text), /vllm:num_requests_waiting/);
  });

  test("sums counters and gauges over engines, averages KV usage, accepts the old KV name", () => {
    const text = [
      "# TYPE vllm:generation_tokens_total counter",
      'vllm:generation_tokens_total{engine="0",model_name="m"} 100',
      'vllm:generation_tokens_total{engine="1",model_name="m"} 250',
      'vllm:prompt_tokens_total{engine="0",model_name="m"} 10',
      'vllm:prompt_tokens_total{engine="1",model_name="m"} 20',
      'vllm:num_requests_running{engine="0",model_name="m"} 2',
      'vllm:num_requests_running{engine="1",model_name="m"} 5',
      'vllm:num_requests_waiting{engine="0",model_name="m"} 0',
      'vllm:num_requests_waiting{engine="1",model_name="m"} 4',
      'vllm:gpu_cache_usage_perc{engine="0",model_name="m"} 0.2',
      'vllm:gpu_cache_usage_perc{engine="1",model_name="m"} 0.6',
      'vllm:generation_tokens_total{engine="0",model_name="other"} 999',
      "",
    ].join("\n");
    const s = readVllmSample(text, "m");
    assert.equal(s.generationTokensTotal, 350);
    assert.equal(s.promptTokensTotal, 30);
    assert.equal(s.running, 7);
    assert.equal(s.waiting, 4);
    assert.ok(Math.abs(s.kvCacheUsage! - 0.4) < 1e-12);
    assert.equal(s.engines, 2);
    assert.equal(s.requestsFinishedTotal, undefined);
    assert.equal(s.countersCreatedSeconds, undefined);
    // Without a model filter the other model's series count too.
    assert.equal(readVllmSample(text).generationTokensTotal, 1349);
  });
});

describe("parser details", () => {
  test("escaped label values, trailing comma, spaces, timestamps, CRLF", () => {
    const e = parsePrometheusText(
      'a{path="C:\\\\dir",q="say \\"hi\\"",nl="x\\ny",} 1 1700000000000\r\n' +
        "b   2.5\r\n" +
        'c{ x = "1" , y="2" } -3e-2\n',
    );
    assert.deepEqual(e.samples, [
      {
        name: "a",
        labels: { path: "C:\\dir", q: 'say "hi"', nl: "x\ny" },
        value: 1,
        timestampMs: 1700000000000,
      },
      { name: "b", labels: {}, value: 2.5 },
      { name: "c", labels: { x: "1", y: "2" }, value: -0.03 },
    ]);
  });

  test("Inf, -Inf and NaN values", () => {
    const e = parsePrometheusText("a +Inf\nb -Inf\nc NaN\nd Inf\n");
    assert.equal(e.samples[0]!.value, Number.POSITIVE_INFINITY);
    assert.equal(e.samples[1]!.value, Number.NEGATIVE_INFINITY);
    assert.ok(Number.isNaN(e.samples[2]!.value));
    assert.equal(e.samples[3]!.value, Number.POSITIVE_INFINITY);
    assert.ok(Number.isNaN(parseValue("abc")));
  });

  test("comments are skipped, HELP is unescaped", () => {
    const e = parsePrometheusText(
      "# just a comment\n#HELP x line one\\nline \\\\two\n# TYPE x gauge\nx 1\n",
    );
    assert.equal(e.help.get("x"), "line one\nline \\two");
    assert.equal(e.types.get("x"), "gauge");
    assert.equal(e.samples.length, 1);
  });

  test("a label named __proto__ stays an ordinary label", () => {
    const e = parsePrometheusText('a{__proto__="x"} 1\n');
    assert.equal(Object.getPrototypeOf(e.samples[0]!.labels), Object.prototype);
    assert.deepEqual(Object.keys(e.samples[0]!.labels), ["__proto__"]);
  });

  test("errors name the line", () => {
    const bad: [string, RegExp][] = [
      ['ok 1\nbad{a="x} 1\n', /line 2: unterminated label value/],
      ["x one\n", /line 1: invalid value "one"/],
      ["x\n", /line 1: missing value/],
      ['x{a="1",a="2"} 1\n', /duplicate label a/],
      ['x{a="\\t"} 1\n', /invalid escape/],
      ["x 1 2 3\n", /unexpected text/],
      ["# TYPE x thing\n", /unknown metric type/],
      ["9x 1\n", /expected a metric name/],
    ];
    for (const [text, message] of bad) {
      assert.throws(
        () => parsePrometheusText(text),
        (err: unknown) => err instanceof PrometheusParseError && message.test(err.message),
        text,
      );
    }
  });
});

describe("a fresh engine that has served nothing yet", () => {
  // Labelled counters have no series before their first increment (seen on llm-d-inference-sim).
  const fresh = [
    'vllm:num_requests_running{model_name="m"} 0',
    'vllm:num_requests_waiting{model_name="m"} 0',
    'vllm:kv_cache_usage_perc{model_name="m"} 0',
  ].join("\n");
  test("absent token counters next to present gauges read as zero tokens", () => {
    const s = readVllmSample(fresh, "m");
    assert.equal(s.generationTokensTotal, 0);
    assert.equal(s.promptTokensTotal, 0);
    assert.equal(s.running, 0);
  });
  test("a page without the request gauges is still an error, never an idle pod", () => {
    assert.throws(
      () => readVllmSample('vllm:generation_tokens_total{model_name="m"} 5', "m"),
      /num_requests_running/,
    );
    assert.throws(() => readVllmSample(fresh, "other-model"), /num_requests_running/);
  });
});
