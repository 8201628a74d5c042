import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { DOMParser, onWarningStopParsing, type Document, type Element } from "@xmldom/xmldom";
import { targetModel } from "../../src/autoscale/model.ts";
import {
  benchContext,
  chatUnitRate,
  defaultBenchConfig,
  runBench,
} from "../../bench/autoscale/harness.ts";
import type { RunResult } from "../../bench/autoscale/fleet.ts";
import {
  niceTicks,
  PlotInputError,
  renderPlot,
  type PlotSeries,
} from "../../bench/autoscale/plot.ts";
import { binSecondsFor, plotSeries } from "../../bench/autoscale/plot-series.ts";
import { poissonTrace, type Trace } from "../../bench/autoscale/traces.ts";

const SVG_NS = "http://www.w3.org/2000/svg";

/**
 * A strict parse: any warning or error of the XML parser fails the test. xmldom lets a bare "&"
 * followed by a non-word character through (its entity pattern is /&#?\w+;?/), which a browser's
 * XML parser refuses, so that is checked here too.
 */
function parseSvg(svg: string): Document {
  const bare = /&(?!(?:amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);)/.exec(svg);
  if (bare !== null)
    throw new Error(`unescaped & at ${bare.index}: ${svg.slice(bare.index, bare.index + 20)}`);
  return new DOMParser({ onError: onWarningStopParsing }).parseFromString(svg, "image/svg+xml");
}

function all(root: Document | Element, tag: string, attrs: Record<string, string> = {}): Element[] {
  return Array.from(root.getElementsByTagName(tag)).filter((e) =>
    Object.entries(attrs).every(([k, v]) => e.getAttribute(k) === v),
  );
}

function one(root: Document | Element, tag: string, attrs: Record<string, string>): Element {
  const found = all(root, tag, attrs);
  assert.equal(found.length, 1, `one <${tag}> with ${JSON.stringify(attrs)}`);
  return found[0]!;
}

/** The numbers of an SVG path's d, command by command: [["M", x, y], ["H", x], ...]. */
function pathCommands(d: string): [string, ...number[]][] {
  return Array.from(d.matchAll(/([MHVZ])([^MHVZ]*)/g), (m) => [
    m[1]!,
    ...m[2]!
      .trim()
      .split(/[ ,]+/)
      .filter((x) => x !== "")
      .map(Number),
  ]);
}

const CFG = defaultBenchConfig();
const TARGET = targetModel(CFG.plan);
const UNIT = chatUnitRate(TARGET);

/** 40 min: 1.5 replicas' worth, 5 for 20 min from minute 10, so some policy misses the SLO. */
function stepTrace(): Trace {
  const rate = (t: number): number => (t >= 600 && t < 1800 ? 5 : 1.5) * UNIT;
  return poissonTrace("plot-step", "test step <1.5 → 5> & back", 2400, rate, 5 * UNIT, 11);
}

describe("benchmark plots", () => {
  const trace = stepTrace();
  const results = runBench([trace], CFG, benchContext(CFG));
  const runs: RunResult[] = Object.values(results.traces[trace.name]!);
  const series = plotSeries(trace, runs, TARGET);
  const svg = renderPlot(series);
  const doc = parseSvg(svg);

  test("the SVG parses as SVG and holds one replicas series and one miss row per policy", () => {
    const root = doc.documentElement!;
    assert.equal(root.tagName, "svg");
    assert.equal(root.namespaceURI, SVG_NS);
    assert.deepEqual(
      runs.map((r) => r.policy),
      ["ours", "hpa", "kubeai", "oracle"],
    );
    const replicaPaths = all(doc, "path", { "data-series": "replicas" });
    assert.deepEqual(
      replicaPaths.map((p) => p.getAttribute("data-policy")).sort(),
      runs.map((r) => r.policy).sort(),
    );
    assert.equal(replicaPaths.at(-1)!.getAttribute("data-policy"), "ours", "ours drawn on top");
    const missRows = all(doc, "g", { "data-series": "misses" });
    assert.deepEqual(
      missRows.map((g) => g.getAttribute("data-policy")),
      runs.map((r) => r.policy),
    );
    const colours = replicaPaths.map((p) => p.getAttribute("stroke"));
    assert.equal(new Set(colours).size, runs.length, `distinct colours: ${colours.join(" ")}`);
    one(doc, "path", { "data-series": "load" });
    one(doc, "path", { "data-series": "needed" });
  });

  test("the legend names each policy with its GPU-hours and SLO attainment", () => {
    for (const r of runs) {
      const item = one(doc, "g", { class: "legend-item", "data-policy": r.policy });
      assert.equal(
        one(item, "text", {}).textContent,
        `${r.policy}: ${r.gpuHours.toFixed(1)} GPU-h, SLO ${(r.sloAttainment * 100).toFixed(1)} %`,
      );
    }
  });

  test("axes carry units", () => {
    const texts = all(doc, "text").map((t) => t.textContent);
    for (const label of ["requests/s", "replicas", "time (min)"]) {
      assert.ok(texts.includes(label), `axis title ${label}`);
    }
  });

  test("a replicas path steps where the policy's timeline does, on the panel's scale", () => {
    const panel = one(doc, "g", { "data-panel": "replicas" });
    const frame = all(panel, "rect").find((r) => r.getAttribute("fill") === "none")!;
    const [x0, y0, w, h] = ["x", "y", "width", "height"].map((a) => Number(frame.getAttribute(a)));
    const ticks = all(panel, "text", { "text-anchor": "end" }).map((t) => Number(t.textContent));
    const top = Math.max(...ticks);
    const x = (s: number): number => x0! + (s / trace.durationSeconds) * w!;
    const y = (v: number): number => y0! + h! - (v / top) * h!;
    for (const r of runs) {
      const d = one(panel, "path", { "data-policy": r.policy }).getAttribute("d")!;
      const cmds = pathCommands(d);
      const [first, ...rest] = r.timeline;
      assert.deepEqual(cmds[0], ["M", round1(x(first![0])), round1(y(first![1]))]);
      rest.forEach(([t, v], i) => {
        assert.deepEqual(cmds[1 + 2 * i], ["H", round1(x(t))], `${r.policy} change ${i}`);
        assert.deepEqual(cmds[2 + 2 * i], ["V", round1(y(v))], `${r.policy} change ${i}`);
      });
      assert.deepEqual(cmds[cmds.length - 1], ["H", round1(x0! + w!)], "held to the end");
    }
  });

  test("SLO misses: one mark per bin with misses, counts adding up to the run's", () => {
    const someMissed = runs.filter((r) => r.sloAttainment < 1);
    assert.ok(someMissed.length > 0, "the step trace makes some policy miss");
    for (const r of runs) {
      const missed = Math.round(r.requests * (1 - r.sloAttainment));
      assert.equal(r.missedArrivals.length, missed, `${r.policy} missed arrivals`);
      const p = series.policies.find((s) => s.policy === r.policy)!;
      assert.equal(
        p.missesPerBin.reduce((a, b) => a + b, 0),
        missed,
      );
      const row = one(doc, "g", { "data-series": "misses", "data-policy": r.policy });
      assert.equal(all(row, "circle").length, p.missesPerBin.filter((m) => m > 0).length);
      const total = all(one(doc, "g", { "data-panel": "misses" }), "text").find(
        (t) => t.textContent === `${missed.toLocaleString("en-US")} missed`,
      );
      assert.ok(total !== undefined, `${r.policy}: total ${missed} shown`);
    }
  });

  test("the series bins every request once, and the load in replicas' worth", () => {
    assert.equal(series.binSeconds, 10);
    const arrived = series.offeredRequestsPerSecond.reduce((a, r) => a + r * series.binSeconds, 0);
    assert.ok(Math.abs(arrived - trace.requests.length) < 1e-6);
    const needed = series.neededReplicas!;
    const mean = (from: number, to: number): number => {
      const xs = needed.slice(from / series.binSeconds, to / series.binSeconds);
      return xs.reduce((a, b) => a + b, 0) / xs.length;
    };
    // Chat tokens at 1.5 and 5 replicas' worth of the target.
    assert.ok(Math.abs(mean(0, 600) - 1.5) < 0.3, `low ${mean(0, 600)}`);
    assert.ok(Math.abs(mean(600, 1800) - 5) < 0.5, `high ${mean(600, 1800)}`);
  });
});

function round1(v: number): number {
  return Math.round(v * 10) / 10;
}

describe("plot writer", () => {
  const base: PlotSeries = {
    trace: "t",
    description: `quotes " ' and <tags> & ampersands`,
    durationSeconds: 7200,
    binSeconds: 3600,
    offeredRequestsPerSecond: [1, 2],
    policies: [
      { policy: "ours", gpuHours: 4, sloAttainment: 1, replicas: [[0, 1]], missesPerBin: [0, 0] },
      {
        policy: "other",
        gpuHours: 6,
        sloAttainment: 0.5,
        replicas: [[0, 2]],
        missesPerBin: [0, 3600],
      },
    ],
  };

  test("text is escaped: the description survives the round trip", () => {
    const doc = parseSvg(renderPlot(base));
    assert.equal(doc.getElementsByTagName("desc")[0]!.textContent, base.description);
    // A policy name outside the benchmark's four still gets a colour of its own.
    const strokes = all(doc, "path", { "data-series": "replicas" }).map((p) =>
      p.getAttribute("stroke"),
    );
    assert.equal(new Set(strokes).size, 2);
  });

  test("the parser used here rejects malformed XML", () => {
    assert.throws(() => parseSvg(`<svg xmlns="${SVG_NS}"><g></svg>`));
    assert.throws(() => parseSvg(`<svg xmlns="${SVG_NS}"><text>a &b</text></svg>`));
    assert.throws(() => parseSvg(`<svg xmlns="${SVG_NS}"><text>a & b</text></svg>`));
    assert.throws(() => parseSvg(`<svg xmlns="${SVG_NS}"><g x=1/></svg>`));
  });

  test("inconsistent series are refused with the reason", () => {
    assert.throws(
      () => renderPlot({ ...base, offeredRequestsPerSecond: [1] }),
      (e: unknown) =>
        e instanceof PlotInputError && /offeredRequestsPerSecond has 1 bins/.test(e.message),
    );
    assert.throws(
      () => renderPlot({ ...base, policies: [base.policies[0]!, base.policies[0]!] }),
      PlotInputError,
    );
    assert.throws(() => renderPlot({ ...base, policies: [] }), PlotInputError);
  });

  test("ticks and bins are round numbers", () => {
    assert.deepEqual(niceTicks(23, 5, true), [0, 5, 10, 15, 20, 25]);
    assert.deepEqual(niceTicks(0.7, 5), [0, 0.2, 0.4, 0.6, 0.8]);
    assert.deepEqual(niceTicks(3, 5, true), [0, 1, 2, 3]);
    assert.equal(binSecondsFor(2400), 10);
    assert.equal(binSecondsFor(3600), 15);
    assert.equal(binSecondsFor(24 * 3600), 600);
  });
});
