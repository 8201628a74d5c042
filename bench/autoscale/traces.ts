/**
 * Request traces: arrival time and token counts. Synthetic ones are non-homogeneous Poisson
 * processes (seeded) with chat-like token lengths; real ones are read from CSV in the Azure
 * LLM inference format `TIMESTAMP,ContextTokens,GeneratedTokens`.
 */
import { Rng, subSeed } from "./rng.ts";

export interface TraceRequest {
  /** Seconds from the start of the trace. */
  readonly t: number;
  readonly prompt: number;
  /** Output tokens, at least 1. */
  readonly gen: number;
}

export interface Trace {
  readonly name: string;
  readonly description: string;
  /** Seconds the trace covers (cost is counted over [0, duration]). */
  readonly durationSeconds: number;
  /** Sorted by t. */
  readonly requests: readonly TraceRequest[];
}

/** Chat-like token lengths: log-normal prompts (median 800) and outputs (median 180). */
export interface TokenShape {
  readonly promptMedian: number;
  readonly promptSigma: number;
  readonly genMedian: number;
  readonly genSigma: number;
  readonly maxPrompt: number;
  readonly maxGen: number;
}

export const CHAT_TOKENS: TokenShape = {
  promptMedian: 800,
  promptSigma: 0.9,
  genMedian: 180,
  genSigma: 0.8,
  maxPrompt: 16384,
  maxGen: 4096,
};

/** Mean of a log-normal clamped above is close to median x exp(sigma^2 / 2). */
export function meanTokens(shape: TokenShape): { prompt: number; gen: number } {
  return {
    prompt: shape.promptMedian * Math.exp((shape.promptSigma * shape.promptSigma) / 2),
    gen: shape.genMedian * Math.exp((shape.genSigma * shape.genSigma) / 2),
  };
}

/**
 * Arrivals of a Poisson process whose rate (requests/s) follows `rate(t)`, bounded by
 * `maxRate`, by thinning; token counts drawn from `shape`.
 */
export function poissonTrace(
  name: string,
  description: string,
  durationSeconds: number,
  rate: (t: number) => number,
  maxRate: number,
  seed: number,
  shape: TokenShape = CHAT_TOKENS,
): Trace {
  const arrivals = new Rng(subSeed(seed, `${name}/arrivals`));
  const tokens = new Rng(subSeed(seed, `${name}/tokens`));
  const requests: TraceRequest[] = [];
  let t = 0;
  for (;;) {
    t += arrivals.exponential(maxRate);
    if (t >= durationSeconds) break;
    if (arrivals.next() * maxRate > rate(t)) continue;
    const prompt = Math.round(
      Math.min(
        shape.maxPrompt,
        Math.max(16, tokens.logNormal(shape.promptMedian, shape.promptSigma)),
      ),
    );
    const gen = Math.round(
      Math.min(shape.maxGen, Math.max(1, tokens.logNormal(shape.genMedian, shape.genSigma))),
    );
    requests.push({ t, prompt, gen });
  }
  return { name, description, durationSeconds, requests };
}

/** Piecewise-linear rate through (time, rate) points; constant beyond the ends. */
export function piecewise(points: readonly (readonly [number, number])[]): (t: number) => number {
  return (t) => {
    if (t <= points[0]![0]) return points[0]![1];
    for (let i = 1; i < points.length; i++) {
      const [t1, r1] = points[i]!;
      const [t0, r0] = points[i - 1]!;
      if (t <= t1) return t1 === t0 ? r1 : r0 + ((r1 - r0) * (t - t0)) / (t1 - t0);
    }
    return points[points.length - 1]![1];
  };
}

const MIN = 60;
const HOUR = 3600;

/**
 * The four synthetic traces. `unit` is the request rate one replica carries at its target
 * (target tokens/s / token-equivalents of a mean request), so the shapes need the same number
 * of replicas whatever the plan.
 */
export function syntheticTraces(unit: number, seed: number): Trace[] {
  const step = poissonTrace(
    "step",
    "2 replicas' worth for 30 min, 6 for 60 min, 2 for 60 min",
    150 * MIN,
    (t) => (t >= 30 * MIN && t < 90 * MIN ? 6 * unit : 2 * unit),
    6 * unit,
    seed,
  );
  const rampRate = piecewise([
    [0, 1.5 * unit],
    [20 * MIN, 1.5 * unit],
    [100 * MIN, 8 * unit],
    [120 * MIN, 8 * unit],
    [160 * MIN, 1.5 * unit],
  ]);
  const ramp = poissonTrace(
    "ramp",
    "1.5 replicas' worth, up to 8 over 80 min, hold 20 min, down over 40 min, 20 min low",
    180 * MIN,
    rampRate,
    8 * unit,
    seed,
  );
  const spike = poissonTrace(
    "spike",
    "2 replicas' worth with one 5-minute spike to 10 at minute 50",
    120 * MIN,
    (t) => (t >= 50 * MIN && t < 55 * MIN ? 10 * unit : 2 * unit),
    10 * unit,
    seed,
  );
  // A day: trough at 04:00, peak mid-afternoon, with slow seeded noise (+-10 %, 10-min knots).
  const noise = new Rng(subSeed(seed, "diurnal/noise"));
  const knots: number[] = [];
  let level = 0;
  for (let i = 0; i <= 24 * 6 + 1; i++) {
    level = 0.7 * level + 0.3 * noise.normal();
    knots.push(level);
  }
  const diurnalRate = (t: number): number => {
    const phase = (2 * Math.PI * (t - 4 * HOUR)) / (24 * HOUR);
    const shape = Math.pow(0.5 - 0.5 * Math.cos(phase), 1.5);
    const k = t / (10 * MIN);
    const i = Math.min(Math.floor(k), knots.length - 2);
    const n = knots[i]! + (knots[i + 1]! - knots[i]!) * (k - i);
    return unit * (0.8 + 7 * shape) * (1 + 0.1 * Math.max(-2, Math.min(2, n)));
  };
  const diurnal = poissonTrace(
    "diurnal",
    "24 h: 0.8 replicas' worth at 04:00 to ~7.8 at 16:00, slow +-10 % noise",
    24 * HOUR,
    diurnalRate,
    unit * 7.8 * 1.2,
    seed,
  );
  return [step, ramp, spike, diurnal];
}

/** Parses `YYYY-MM-DD HH:MM:SS(.fraction)` as UTC seconds (fractions of any length). */
export function parseTimestamp(text: string): number {
  const m = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?/.exec(text.trim());
  if (m === null) throw new Error(`bad TIMESTAMP ${JSON.stringify(text)}`);
  const [, y, mo, d, h, mi, s, frac = ""] = m;
  const whole = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s));
  return whole / 1000 + (frac === "" ? 0 : Number(`0.${frac}`));
}

/** Reads `TIMESTAMP,ContextTokens,GeneratedTokens` CSV text into requests from t = 0. */
export function parseTraceCsv(text: string): TraceRequest[] {
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== "");
  const header = lines[0]?.split(",").map((h) => h.trim()) ?? [];
  const ti = header.indexOf("TIMESTAMP");
  const ci = header.indexOf("ContextTokens");
  const gi = header.indexOf("GeneratedTokens");
  if (ti < 0 || ci < 0 || gi < 0) {
    throw new Error("trace CSV needs the header TIMESTAMP,ContextTokens,GeneratedTokens");
  }
  const rows: { t: number; prompt: number; gen: number }[] = [];
  for (let i = 1; i < lines.length; i++) {
    const cols = lines[i]!.split(",");
    const prompt = Number(cols[ci]);
    const gen = Number(cols[gi]);
    if (!Number.isFinite(prompt) || !Number.isFinite(gen)) {
      throw new Error(`trace CSV line ${i + 1}: token counts must be numbers`);
    }
    rows.push({
      t: parseTimestamp(cols[ti] ?? ""),
      prompt: Math.max(1, prompt),
      gen: Math.max(1, gen),
    });
  }
  rows.sort((a, b) => a.t - b.t);
  const t0 = rows[0]?.t ?? 0;
  return rows.map((r) => ({ t: r.t - t0, prompt: r.prompt, gen: r.gen }));
}

/**
 * A real trace, rate-multiplied: every request is replayed `multiplier` times (a fractional
 * part replays that share of requests once more, chosen by the seed), each copy's arrival moved
 * by a seeded uniform offset in [0, jitterSeconds). The shape over time (bursts, lulls) and the
 * token counts stay those of the real trace; the rate is `multiplier` times higher.
 */
export function multiplyTrace(
  name: string,
  description: string,
  base: readonly TraceRequest[],
  multiplier: number,
  seed: number,
  jitterSeconds = 2,
): Trace {
  const rng = new Rng(subSeed(seed, `${name}/multiply`));
  const whole = Math.floor(multiplier);
  const frac = multiplier - whole;
  const out: TraceRequest[] = [];
  let end = 0;
  for (const r of base) {
    const copies = whole + (rng.next() < frac ? 1 : 0);
    for (let c = 0; c < copies; c++) {
      out.push({ t: r.t + rng.uniform(0, jitterSeconds), prompt: r.prompt, gen: r.gen });
    }
    end = Math.max(end, r.t);
  }
  out.sort((a, b) => a.t - b.t);
  return { name, description, durationSeconds: Math.ceil(end + jitterSeconds), requests: out };
}
