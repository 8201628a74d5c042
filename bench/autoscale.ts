/**
 * npm run bench:autoscale -- [--json] [--seed N] [--multiplier K] [--trace FILE]...
 *   [--only step,ramp,spike,diurnal,azure-code] [--policies ours,hpa,kubeai,oracle]
 *   [--weights download|cached] [--provision S] [--load S]
 *   [--slo-queue S] [--slo-ttft S] [--min N] [--max N]
 *   [--ours-option key=value]... (our policy's PolicyOptions, e.g. backlogDrainSeconds=300)
 *   [--iso-slo]  (extra: how low the baselines' targets must go, in hindsight, to match our SLO)
 *   [--no-cold-start]  (skip the GPU-hours of the other cold-start model)
 *   [--plot DIR]  (one SVG per trace: load, replicas and SLO misses of each policy over time)
 *   [--series FILE]  (the same per-trace series the plots draw, bench/autoscale/plot-series.ts, as JSON)
 *
 * Drives every policy with the same load through the deterministic fleet simulation
 * (bench/autoscale) and prints GPU-hours, SLO attainment and scaling actions per trace. Ours is
 * the operator's own pipeline and scaling model. The cold start is the model's wake-up:
 * --weights picks a download at start (default, what the pods do today) or a complete cache;
 * --provision sets the node's seconds, --load the weights' seconds (default: from the model's
 * rates). The same runs are then repeated with the other weight source and both GPU-hours shown.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import {
  POLICY_NAMES,
  benchContext,
  benchTraces,
  defaultBenchConfig,
  defaultBenchPlan,
  formatTable,
  isoSlo,
  ISO_SLO_FACTORS,
  OURS_FACTORS,
  round2,
  runBench,
  toJson,
  type PolicyName,
} from "./autoscale/harness.ts";
import { compareColdStarts, describeWakeUp, formatColdStarts } from "./autoscale/cold-start.ts";
import { renderPlot } from "./autoscale/plot.ts";
import { plotSeries } from "./autoscale/plot-series.ts";
import { multiplyTrace, parseTraceCsv, type Trace } from "./autoscale/traces.ts";
import type { WakeUpOptions, WeightSource } from "../src/autoscale/model.ts";

const here = dirname(fileURLToPath(import.meta.url));
const DEFAULT_REAL_TRACE = resolve(here, "../test/fixtures/azure-llm-inference-2023-code.csv");

const { values } = parseArgs({
  options: {
    json: { type: "boolean", default: false },
    seed: { type: "string", default: "42" },
    multiplier: { type: "string", default: "10" },
    trace: { type: "string", multiple: true, default: [] },
    only: { type: "string" },
    policies: { type: "string" },
    weights: { type: "string", default: "download" },
    provision: { type: "string" },
    load: { type: "string" },
    "no-cold-start": { type: "boolean", default: false },
    series: { type: "string" },
    "slo-queue": { type: "string", default: "1" },
    "slo-ttft": { type: "string", default: "2" },
    min: { type: "string", default: "1" },
    max: { type: "string", default: "24" },
    "ours-option": { type: "string", multiple: true, default: [] },
    "iso-slo": { type: "boolean", default: false },
    plot: { type: "string" },
    help: { type: "boolean", default: false },
  },
  strict: true,
});

if (values.help) {
  console.log(readFileSync(fileURLToPath(import.meta.url), "utf8").split("*/")[0]);
  process.exit(0);
}

function num(name: string, v: string | undefined): number {
  const n = Number(v);
  if (v === undefined || !Number.isFinite(n)) {
    console.error(`--${name} must be a number`);
    process.exit(2);
  }
  return n;
}

const policies = (values.policies?.split(",") ?? [...POLICY_NAMES]) as PolicyName[];
for (const p of policies) {
  if (!(POLICY_NAMES as readonly string[]).includes(p)) {
    console.error(`unknown policy ${p}; known: ${POLICY_NAMES.join(", ")}`);
    process.exit(2);
  }
}
const oursOptions: Record<string, number> = {};
for (const kv of values["ours-option"] ?? []) {
  const [k, v] = kv.split("=");
  if (k === undefined || v === undefined) {
    console.error(`--ours-option takes key=value (a PolicyOptions field), got ${kv}`);
    process.exit(2);
  }
  oursOptions[k] = num(`ours-option ${k}`, v);
}
const weights = values.weights as WeightSource;
if (weights !== "download" && weights !== "cached") {
  console.error(`--weights must be download or cached, got ${String(values.weights)}`);
  process.exit(2);
}
const basePlan = defaultBenchPlan();
const wakeUp: Partial<WakeUpOptions> = {
  ...(values.provision === undefined
    ? {}
    : { nodeProvisioningSeconds: num("provision", values.provision) }),
  // Seconds for the weights, as the rate of the chosen source.
  ...(values.load === undefined
    ? {}
    : {
        [weights === "download" ? "downloadBytesPerSecond" : "cachedLoadBytesPerSecond"]:
          basePlan.weightBytesTotal / num("load", values.load),
      }),
};
const cfg = defaultBenchConfig({
  ours: oursOptions,
  seed: num("seed", values.seed),
  weights,
  wakeUp,
  slo: {
    queueSeconds: num("slo-queue", values["slo-queue"]),
    ttftSeconds: num("slo-ttft", values["slo-ttft"]),
  },
  minReplicas: num("min", values.min),
  maxReplicas: num("max", values.max),
  policies,
});
const multiplier = num("multiplier", values.multiplier);

const traces: Trace[] = [...benchTraces(cfg)];
const csvFiles = [DEFAULT_REAL_TRACE, ...(values.trace ?? [])];
for (const [i, file] of csvFiles.entries()) {
  const name = i === 0 ? "azure-code" : basename(file).replace(/\.csv$/, "");
  const base = parseTraceCsv(readFileSync(file, "utf8"));
  traces.push(
    multiplyTrace(
      name,
      `${basename(file)} replayed x${multiplier} (rate-multiplied)`,
      base,
      multiplier,
      cfg.seed,
    ),
  );
}
const only = values.only?.split(",");
const selected = only === undefined ? traces : traces.filter((t) => only.includes(t.name));

const ctx = benchContext(cfg);
if (!values.json) {
  const p = cfg.plan;
  console.log(
    `plan: ${p.quantization} on ${p.gpusPerReplica}x ${p.gpuType} (TP ${p.tensorParallelSize}), ` +
      `max-num-seqs ${p.maxNumSeqs}, KV ${p.kvCacheTokensPerReplica} tokens per replica`,
  );
  console.log(`target: ${ctx.model.target.explanation}`);
  console.log(
    "baselines' targets (70 % of a replica's capacity on each trace's mix, in their own metric):",
  );
  const w = ctx.model.wakeUp;
  console.log(
    `cold start (${w.weights}): ${describeWakeUp(w)} (our forecast horizon too); ` +
      `SLO: queue <= ${cfg.slo.queueSeconds} s and TTFT <= ${cfg.slo.ttftSeconds} s; ` +
      `replicas ${cfg.minReplicas}..${cfg.maxReplicas}; seed ${cfg.seed}`,
  );
  for (const t of selected) {
    const b = ctx.baselineTargets(t);
    console.log(
      `trace ${t.name}: ${t.requests.length} requests over ${(t.durationSeconds / 3600).toFixed(2)} h; ${t.description}\n` +
        `  HPA ${b.hpaGenerationTokensPerSecond.toFixed(0)} generation tokens/s per pod ` +
        `(generation share of the load ${b.generationShare.toFixed(3)}), ` +
        `KubeAI ${b.kubeAiTargetRequests} requests in flight per replica (measured at the target)`,
    );
  }
  console.log("");
}
const started = Date.now();
const results = runBench(selected, cfg, ctx);
const coldStarts = values["no-cold-start"]
  ? undefined
  : compareColdStarts(selected, cfg, ctx.model, results);
const seriesOf = (t: Trace) =>
  plotSeries(t, Object.values(results.traces[t.name] ?? {}), ctx.model.target);
if (values.series !== undefined) {
  writeFileSync(values.series, JSON.stringify({ series: selected.map(seriesOf) }));
}
if (values.json) {
  console.log(
    JSON.stringify({
      ...toJson(results),
      ...(coldStarts === undefined
        ? {}
        : {
            coldStart: coldStarts.rows.map((r) => ({
              trace: r.trace,
              policy: r.policy,
              downloadGpuHours: round2(r.download.gpuHours),
              cachedGpuHours: round2(r.cached.gpuHours),
            })),
          }),
    }),
  );
} else {
  console.log(formatTable(results));
  console.log(
    "\noracle: the cheapest future-knowing schedule reaching the best SLO of the others, at " +
      Object.entries(results.oracleUtilisation)
        .map(([t, u]) => `${t} ${u}`)
        .join(", ") +
      " x a replica's capacity (the best it reached where none got there)",
  );
  if (coldStarts !== undefined) console.log(`\n${formatColdStarts(coldStarts)}`);
}
if (values.plot !== undefined) {
  mkdirSync(values.plot, { recursive: true });
  for (const t of selected) {
    const file = join(values.plot, `${t.name}.svg`);
    writeFileSync(file, renderPlot(seriesOf(t)));
    if (!values.json) console.log(`wrote ${file}`);
  }
}
if (values["iso-slo"]) {
  const iso = isoSlo(selected, cfg, ctx, results);
  if (values.json) {
    console.error(JSON.stringify({ isoSlo: iso }));
  } else {
    const pct = (x: number): string => `${(x * 100).toFixed(1)} %`;
    const run = (r: { factor: number; gpuHours: number; sloAttainment: number }): string =>
      `${r.gpuHours.toFixed(1)} GPU-h at ${pct(r.sloAttainment)} (target x${r.factor})`;
    console.log(
      "\niso-SLO, both ways, tuned in hindsight: (1) the baseline's target lowered until it reaches our SLO;" +
        "\n(2) our cheapest target factor that still serves at least as well as the baseline did:",
    );
    for (const r of iso) {
      console.log(
        `${r.trace.padEnd(11)} ${r.policy.padEnd(7)} (1) ours ${run(r.ours)} vs ${r.policy} ` +
          (r.baselineAtOurSlo === undefined
            ? `never reaches it (down to x${ISO_SLO_FACTORS[ISO_SLO_FACTORS.length - 1]})`
            : run(r.baselineAtOurSlo)),
      );
      console.log(
        `${"".padEnd(19)} (2) ${r.policy} ${run(r.baseline)} vs ours ` +
          (r.oursAtBaselineSlo === undefined
            ? `never reaches it (factors ${OURS_FACTORS[0]} to ${OURS_FACTORS[OURS_FACTORS.length - 1]})`
            : run(r.oursAtBaselineSlo)),
      );
    }
  }
}
if (!values.json) console.log(`\n(${((Date.now() - started) / 1000).toFixed(1)} s)`);
