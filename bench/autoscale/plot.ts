/**
 * One SVG per benchmark trace: offered load, every policy's replicas and its SLO misses over
 * time, with GPU-hours and SLO attainment in the legend. A pure function of a plain series
 * (PlotSeries, built from a run by plot-series.ts), so it does not depend on the simulator.
 *
 * Hand-written rather than a charting library: of the maintained ones, Observable Plot builds
 * its SVG in a DOM, Chart.js and lightweight-charts draw on an HTML canvas, Vega-Lite 6 needs
 * Node >= 22 (this project supports 20.19), and ECharts, which does render SVG in Node, is some
 * 67 MB installed and leaves its line series unnamed in the SVG; this file is the whole chart.
 *
 * Layout: three panels sharing the time axis, so load and replicas each get their own y axis:
 * (1) offered requests/s, (2) replicas each policy asked for (what is billed), with the offered
 * load divided by the per-replica target as a reference, (3) one row per policy with a mark per
 * time bin that had SLO misses, its area proportional to the share of the bin's requests missed.
 * The elements carry data-series / data-policy attributes so tests (and readers of the file)
 * can find each policy's series.
 */

export interface PolicySeries {
  readonly policy: string;
  readonly gpuHours: number;
  /** 0..1 */
  readonly sloAttainment: number;
  /** (seconds, replicas) at every change of the replica count; a count holds until the next. */
  readonly replicas: readonly (readonly [number, number])[];
  /** Requests that arrived in each bin and missed the SLO (one entry per bin). */
  readonly missesPerBin: readonly number[];
}

export interface PlotSeries {
  readonly trace: string;
  readonly description: string;
  readonly durationSeconds: number;
  /** Width of the load and miss bins; the last bin may be shorter. */
  readonly binSeconds: number;
  /** Requests/s that arrived in each bin. */
  readonly offeredRequestsPerSecond: readonly number[];
  /** Offered load per bin divided by one replica's target: replicas' worth (optional). */
  readonly neededReplicas?: readonly number[];
  readonly policies: readonly PolicySeries[];
}

export class PlotInputError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "PlotInputError";
  }
}

/** Okabe-Ito colours (distinguishable with the common colour-vision deficiencies). */
const POLICY_COLOURS: Record<string, string> = {
  ours: "#0072B2",
  hpa: "#E69F00",
  kubeai: "#009E73",
  oracle: "#CC79A7",
};
const SPARE_COLOURS = ["#D55E00", "#56B4E9", "#000000", "#F0E442"] as const;
/** Dashes keep overlapping step lines apart where colour alone would not. */
const POLICY_DASHES: Record<string, string> = { oracle: "6 3" };
const NEEDED_COLOUR = "#888888";

const WIDTH = 960;
const MARGIN_LEFT = 72;
const MARGIN_RIGHT = 116;
const PLOT_WIDTH = WIDTH - MARGIN_LEFT - MARGIN_RIGHT;
const LEGEND_ITEM_WIDTH = 270;
const LEGEND_ROW_HEIGHT = 18;
const LOAD_HEIGHT = 130;
const REPLICAS_HEIGHT = 240;
const MISS_ROW_HEIGHT = 20;
const PANEL_GAP = 40;

export function escapeXml(s: string): string {
  return s
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&apos;");
}

/** Coordinates to 0.1 px: finer is invisible and only grows the file. */
function px(v: number): string {
  return String(Math.round(v * 10) / 10);
}

/** The colour of each policy: fixed for the benchmark's names, spares for others, in order. */
export function policyColours(policies: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  let spare = 0;
  for (const p of policies) {
    const fixed = POLICY_COLOURS[p];
    out.set(p, fixed ?? SPARE_COLOURS[spare++ % SPARE_COLOURS.length]!);
  }
  return out;
}

/** A step of 1, 2, 2.5 or 5 x 10^k giving about `count` intervals over [0, max]. */
export function niceStep(max: number, count: number): number {
  if (!(max > 0)) return 1;
  const raw = max / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const norm = raw / mag;
  const f = norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 2.5 ? 2.5 : norm <= 5 ? 5 : 10;
  return f * mag;
}

/** Ticks 0, step, ... up to the first multiple of step at or above max. */
export function niceTicks(max: number, count: number, integer = false): number[] {
  const step = integer ? Math.max(1, Math.round(niceStep(max, count))) : niceStep(max, count);
  const top = Math.max(step, Math.ceil(max / step - 1e-9) * step);
  const ticks: number[] = [];
  for (let i = 0; i * step <= top + step * 1e-9; i++)
    ticks.push(Number((i * step).toPrecision(12)));
  return ticks;
}

function formatTick(v: number): string {
  if (Number.isInteger(v)) return String(v);
  return v.toFixed(2).replace(/0+$/, "").replace(/\.$/, "");
}

function formatPercent(share: number): string {
  return `${(share * 100).toFixed(1)} %`;
}

function formatBin(seconds: number): string {
  if (seconds % 3600 === 0) return `${seconds / 3600} h`;
  if (seconds % 60 === 0) return `${seconds / 60} min`;
  return `${seconds} s`;
}

interface TimeAxis {
  readonly unit: string;
  readonly secondsPerUnit: number;
  readonly ticks: readonly number[];
  /** x pixel of a time in seconds. */
  readonly x: (seconds: number) => number;
}

/** Minutes up to three hours, hours beyond. */
function timeAxis(durationSeconds: number): TimeAxis {
  const secondsPerUnit = durationSeconds <= 3 * 3600 ? 60 : 3600;
  const unit = secondsPerUnit === 60 ? "min" : "h";
  const span = durationSeconds / secondsPerUnit;
  const ticks = niceTicks(span, 8).filter((t) => t <= span + 1e-9);
  const x = (s: number): number =>
    MARGIN_LEFT + (Math.min(s, durationSeconds) / durationSeconds) * PLOT_WIDTH;
  return { unit, secondsPerUnit, ticks, x };
}

interface YAxis {
  readonly ticks: readonly number[];
  readonly y: (v: number) => number;
}

function yAxis(top: number, height: number, max: number, integer: boolean): YAxis {
  const ticks = niceTicks(max, 5, integer);
  const hi = ticks[ticks.length - 1]!;
  return { ticks, y: (v) => top + height - (v / hi) * height };
}

function validate(s: PlotSeries): number {
  if (!(s.durationSeconds > 0) || !(s.binSeconds > 0)) {
    throw new PlotInputError(
      `trace ${s.trace}: duration ${s.durationSeconds} s and bin ${s.binSeconds} s must be positive`,
    );
  }
  const bins = Math.ceil(s.durationSeconds / s.binSeconds);
  const lengths: [string, number][] = [
    ["offeredRequestsPerSecond", s.offeredRequestsPerSecond.length],
  ];
  if (s.neededReplicas !== undefined) lengths.push(["neededReplicas", s.neededReplicas.length]);
  for (const p of s.policies) lengths.push([`${p.policy}.missesPerBin`, p.missesPerBin.length]);
  for (const [name, n] of lengths) {
    if (n !== bins) {
      throw new PlotInputError(`trace ${s.trace}: ${name} has ${n} bins, expected ${bins}`);
    }
  }
  if (s.policies.length === 0) throw new PlotInputError(`trace ${s.trace}: no policy to plot`);
  const names = new Set(s.policies.map((p) => p.policy));
  if (names.size !== s.policies.length) {
    throw new PlotInputError(`trace ${s.trace}: a policy appears twice`);
  }
  return bins;
}

/** Start and width (seconds) of bin i; the last one ends at the trace's end. */
function binSpan(s: PlotSeries, i: number): [number, number] {
  const start = i * s.binSeconds;
  return [start, Math.min(s.binSeconds, s.durationSeconds - start)];
}

function text(
  x: number,
  y: number,
  content: string,
  attrs: Record<string, string | number> = {},
): string {
  const extra = Object.entries(attrs)
    .map(([k, v]) => ` ${k}="${escapeXml(String(v))}"`)
    .join("");
  return `<text x="${px(x)}" y="${px(y)}"${extra}>${escapeXml(content)}</text>`;
}

/** Horizontal grid lines and labels of a y axis, with its title turned along the axis. */
function drawYAxis(top: number, height: number, axis: YAxis, title: string): string[] {
  const out: string[] = [];
  for (const t of axis.ticks) {
    const y = axis.y(t);
    out.push(
      `<line x1="${MARGIN_LEFT}" x2="${MARGIN_LEFT + PLOT_WIDTH}" y1="${px(y)}" y2="${px(y)}" stroke="#e3e3e3"/>`,
    );
    out.push(text(MARGIN_LEFT - 6, y + 4, formatTick(t), { "text-anchor": "end" }));
  }
  const cy = top + height / 2;
  out.push(
    text(MARGIN_LEFT - 48, cy, title, {
      "text-anchor": "middle",
      transform: `rotate(-90 ${px(MARGIN_LEFT - 48)} ${px(cy)})`,
    }),
  );
  return out;
}

/** Vertical grid lines at the time ticks and the panel's frame. */
function drawFrame(top: number, height: number, time: TimeAxis): string[] {
  const out: string[] = [];
  for (const t of time.ticks) {
    const x = time.x(t * time.secondsPerUnit);
    out.push(
      `<line x1="${px(x)}" x2="${px(x)}" y1="${px(top)}" y2="${px(top + height)}" stroke="#efefef"/>`,
    );
  }
  out.push(
    `<rect x="${MARGIN_LEFT}" y="${px(top)}" width="${PLOT_WIDTH}" height="${px(height)}" fill="none" stroke="#333333"/>`,
  );
  return out;
}

function panelTitle(top: number, title: string): string {
  return text(MARGIN_LEFT, top - 8, title, { "font-weight": "bold" });
}

/** A step line through (t, v) points, held to the trace's end. */
function stepPath(
  points: readonly (readonly [number, number])[],
  time: TimeAxis,
  y: (v: number) => number,
  end: number,
): string {
  if (points.length === 0) return "";
  const [t0, v0] = points[0]!;
  let d = `M${px(time.x(t0))} ${px(y(v0))}`;
  for (let i = 1; i < points.length; i++) {
    const [t, v] = points[i]!;
    d += `H${px(time.x(t))}V${px(y(v))}`;
  }
  return `${d}H${px(time.x(end))}`;
}

/** Per-bin values as (bin start, value) points for stepPath. */
function binPoints(s: PlotSeries, values: readonly number[]): [number, number][] {
  return values.map((v, i) => [binSpan(s, i)[0], v]);
}

/**
 * The replicas axis' top: the policies' highest count, and the reference up to 1.25x that
 * (at least +2), so a second-scale burst of the offered load (the code trace's) does not squash
 * every policy into the bottom of the panel; the load panel shows the burst whole.
 */
function replicaRange(s: PlotSeries): { max: number; clipped: boolean } {
  let policies = 1;
  for (const p of s.policies) for (const [, v] of p.replicas) policies = Math.max(policies, v);
  const needed = Math.max(0, ...(s.neededReplicas ?? []));
  const cap = Math.max(policies * 1.25, policies + 2);
  return { max: Math.max(policies, Math.min(needed, cap)), clipped: needed > cap };
}

function drawLegend(
  s: PlotSeries,
  top: number,
  colours: Map<string, string>,
  neededClipped: boolean,
): string[] {
  const items: { key: string; colour: string; dash: string; label: string; policy?: string }[] =
    s.policies.map((p) => ({
      key: p.policy,
      policy: p.policy,
      colour: colours.get(p.policy)!,
      dash: POLICY_DASHES[p.policy] ?? "",
      label: `${p.policy}: ${p.gpuHours.toFixed(1)} GPU-h, SLO ${formatPercent(p.sloAttainment)}`,
    }));
  if (s.neededReplicas !== undefined) {
    items.push({
      key: "needed",
      colour: NEEDED_COLOUR,
      dash: "",
      label: neededClipped ? "offered load ÷ target (peaks cut)" : "offered load ÷ target",
    });
  }
  const perRow = Math.max(1, Math.floor((WIDTH - MARGIN_LEFT) / LEGEND_ITEM_WIDTH));
  const out: string[] = [`<g class="legend">`];
  items.forEach((it, i) => {
    const x = MARGIN_LEFT + (i % perRow) * LEGEND_ITEM_WIDTH;
    const y = top + Math.floor(i / perRow) * LEGEND_ROW_HEIGHT;
    const dash = it.dash === "" ? "" : ` stroke-dasharray="${it.dash}"`;
    const policy = it.policy === undefined ? "" : ` data-policy="${escapeXml(it.policy)}"`;
    out.push(
      `<g class="legend-item" data-series="${it.key === "needed" ? "needed" : "replicas"}"${policy}>`,
    );
    out.push(
      it.key === "needed"
        ? `<rect x="${px(x)}" y="${px(y - 10)}" width="22" height="10" fill="#000000" fill-opacity="0.08" stroke="${it.colour}" stroke-width="0.75"/>`
        : `<line x1="${px(x)}" x2="${px(x + 22)}" y1="${px(y - 4)}" y2="${px(y - 4)}" stroke="${it.colour}" stroke-width="2.5"${dash}/>`,
    );
    out.push(text(x + 28, y, it.label));
    out.push(`</g>`);
  });
  out.push(`</g>`);
  return out;
}

function legendRows(s: PlotSeries): number {
  const perRow = Math.max(1, Math.floor((WIDTH - MARGIN_LEFT) / LEGEND_ITEM_WIDTH));
  const n = s.policies.length + (s.neededReplicas === undefined ? 0 : 1);
  return Math.ceil(n / perRow);
}

function drawLoadPanel(s: PlotSeries, top: number, time: TimeAxis): string[] {
  const max = Math.max(0, ...s.offeredRequestsPerSecond);
  const axis = yAxis(top, LOAD_HEIGHT, max, false);
  const line = stepPath(binPoints(s, s.offeredRequestsPerSecond), time, axis.y, s.durationSeconds);
  const base = px(axis.y(0));
  const area = `${line}V${base}H${px(time.x(0))}Z`;
  return [
    `<g class="panel" data-panel="load">`,
    panelTitle(top, `Offered load (per ${formatBin(s.binSeconds)})`),
    ...drawFrame(top, LOAD_HEIGHT, time),
    ...drawYAxis(top, LOAD_HEIGHT, axis, "requests/s"),
    `<path class="series" data-series="load" d="${area}" fill="#bdbdbd" fill-opacity="0.6" stroke="#777777" stroke-width="1"/>`,
    `</g>`,
  ];
}

function drawReplicasPanel(
  s: PlotSeries,
  top: number,
  time: TimeAxis,
  colours: Map<string, string>,
): string[] {
  const axis = yAxis(top, REPLICAS_HEIGHT, replicaRange(s).max, true);
  const out = [
    `<g class="panel" data-panel="replicas">`,
    panelTitle(top, "Replicas each policy asked for (billed from request to removal)"),
    ...drawFrame(top, REPLICAS_HEIGHT, time),
    ...drawYAxis(top, REPLICAS_HEIGHT, axis, "replicas"),
  ];
  if (s.neededReplicas !== undefined) {
    const line = stepPath(binPoints(s, s.neededReplicas), time, axis.y, s.durationSeconds);
    const d = `${line}V${px(axis.y(0))}H${px(time.x(0))}Z`;
    out.push(
      `<clipPath id="replicas-clip"><rect x="${MARGIN_LEFT}" y="${px(top)}" width="${PLOT_WIDTH}" height="${REPLICAS_HEIGHT}"/></clipPath>`,
      `<path class="series" data-series="needed" d="${d}" clip-path="url(#replicas-clip)" fill="#000000" fill-opacity="0.08" stroke="${NEEDED_COLOUR}" stroke-width="0.75"/>`,
    );
  }
  // Drawn last to first, so the first policy (ours in the benchmark) lies on top.
  for (const p of [...s.policies].reverse()) {
    const d = stepPath(p.replicas, time, axis.y, s.durationSeconds);
    const dash = POLICY_DASHES[p.policy];
    const width = p.policy === "ours" ? 2.25 : 1.5;
    out.push(
      `<path class="series" data-series="replicas" data-policy="${escapeXml(p.policy)}" d="${d}" fill="none" stroke="${colours.get(p.policy)!}" stroke-width="${width}" stroke-linejoin="round"${dash === undefined ? "" : ` stroke-dasharray="${dash}"`}/>`,
    );
  }
  out.push(`</g>`);
  return out;
}

/** Largest mark radius: a bin where every request missed. */
const MAX_MARK_RADIUS = 7;

function drawMissPanel(
  s: PlotSeries,
  top: number,
  time: TimeAxis,
  colours: Map<string, string>,
): string[] {
  const height = s.policies.length * MISS_ROW_HEIGHT;
  const out = [
    `<g class="panel" data-panel="misses">`,
    panelTitle(
      top,
      `SLO misses per ${formatBin(s.binSeconds)} (mark area ∝ share of the bin's requests missed)`,
    ),
    ...drawFrame(top, height, time),
  ];
  s.policies.forEach((p, row) => {
    const cy = top + (row + 0.5) * MISS_ROW_HEIGHT;
    const colour = colours.get(p.policy)!;
    out.push(text(MARGIN_LEFT - 6, cy + 4, p.policy, { "text-anchor": "end", fill: colour }));
    out.push(`<g class="series" data-series="misses" data-policy="${escapeXml(p.policy)}">`);
    let total = 0;
    p.missesPerBin.forEach((misses, i) => {
      if (misses <= 0) return;
      total += misses;
      const [start, width] = binSpan(s, i);
      const arrived = (s.offeredRequestsPerSecond[i] ?? 0) * width;
      const share = Math.min(1, misses / Math.max(misses, arrived));
      const r = Math.max(1.2, MAX_MARK_RADIUS * Math.sqrt(share));
      out.push(
        `<circle cx="${px(time.x(start + width / 2))}" cy="${px(cy)}" r="${px(r)}" fill="${colour}" fill-opacity="0.55"><title>${escapeXml(`${misses} of ${Math.round(arrived)} missed`)}</title></circle>`,
      );
    });
    out.push(`</g>`);
    out.push(
      text(
        MARGIN_LEFT + PLOT_WIDTH + MAX_MARK_RADIUS + 4,
        cy + 4,
        `${total.toLocaleString("en-US")} missed`,
      ),
    );
  });
  out.push(`</g>`);
  return out;
}

function drawTimeLabels(top: number, time: TimeAxis): string[] {
  const out = time.ticks.map((t) =>
    text(time.x(t * time.secondsPerUnit), top + 16, formatTick(t), { "text-anchor": "middle" }),
  );
  out.push(
    text(MARGIN_LEFT + PLOT_WIDTH / 2, top + 34, `time (${time.unit})`, {
      "text-anchor": "middle",
    }),
  );
  return out;
}

/** The SVG document for one trace. Throws PlotInputError when the series is inconsistent. */
export function renderPlot(s: PlotSeries): string {
  validate(s);
  const colours = policyColours(s.policies.map((p) => p.policy));
  const time = timeAxis(s.durationSeconds);
  const legendTop = 62;
  const loadTop = legendTop + legendRows(s) * LEGEND_ROW_HEIGHT + 22;
  const replicasTop = loadTop + LOAD_HEIGHT + PANEL_GAP;
  const missTop = replicasTop + REPLICAS_HEIGHT + PANEL_GAP;
  const missBottom = missTop + s.policies.length * MISS_ROW_HEIGHT;
  const height = missBottom + 46;
  const title = `${s.trace}: replicas, load and SLO misses per policy`;
  const body = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="sans-serif" font-size="12" fill="#222222" role="img">`,
    `<title>${escapeXml(title)}</title>`,
    `<desc>${escapeXml(s.description)}</desc>`,
    `<rect width="${WIDTH}" height="${height}" fill="#ffffff"/>`,
    text(MARGIN_LEFT, 24, title, { "font-size": 16, "font-weight": "bold" }),
    text(MARGIN_LEFT, 42, s.description, { fill: "#555555" }),
    ...drawLegend(s, legendTop, colours, replicaRange(s).clipped),
    ...drawLoadPanel(s, loadTop, time),
    ...drawReplicasPanel(s, replicasTop, time, colours),
    ...drawMissPanel(s, missTop, time, colours),
    ...drawTimeLabels(missBottom, time),
    `</svg>`,
  ];
  return `${body.join("\n")}\n`;
}
