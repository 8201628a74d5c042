/**
 * One simulated vLLM replica, event driven.
 *
 * Engine model (vLLM V1 continuous batching with chunked prefill, see perf.ts for step times):
 * - A request waits in the replica's queue (vLLM's WAITING) until a slot frees: fewer than
 *   max-num-seqs running and KV room for its prompt plus output (reserved up front, so no
 *   preemption; vLLM allocates as it goes and preempts instead: slightly pessimistic here).
 * - Admitted requests prefill first come first served, sharing each step's token budget
 *   (max-num-batched-tokens minus one token per decoding sequence) with the decodes; the step
 *   with the last prompt chunk emits the first token (TTFT).
 * - Every step advances every decoding sequence by one token; a step's time depends on the batch,
 *   the prefill tokens in it and the KV context read.
 * Between events the state is constant, so time advances in closed form ("fluid" steps: a step
 * may be cut at an event, which makes prefill completions exact to within one step).
 */
import { prefillWork, stepSeconds, type ReplicaPerf } from "../../src/autoscale/perf.ts";
import type { TraceRequest } from "./traces.ts";

/** Per-run outcome of every request, indexed by request number. */
export class Outcomes {
  readonly admitted: Float64Array;
  readonly firstToken: Float64Array;
  readonly finished: Float64Array;
  readonly failed: Uint8Array;
  constructor(n: number) {
    this.admitted = new Float64Array(n).fill(Number.NaN);
    this.firstToken = new Float64Array(n).fill(Number.NaN);
    this.finished = new Float64Array(n).fill(Number.NaN);
    this.failed = new Uint8Array(n);
  }
}

/** A min-heap of (key, value) pairs. */
class MinHeap {
  private keys: number[] = [];
  private vals: number[] = [];
  get size(): number {
    return this.keys.length;
  }
  peekKey(): number {
    return this.keys[0]!;
  }
  push(key: number, val: number): void {
    const k = this.keys;
    const v = this.vals;
    let i = k.length;
    k.push(key);
    v.push(val);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (k[p]! <= key) break;
      k[i] = k[p]!;
      v[i] = v[p]!;
      i = p;
    }
    k[i] = key;
    v[i] = val;
  }
  pop(): number {
    const k = this.keys;
    const v = this.vals;
    const top = v[0]!;
    const lastK = k.pop()!;
    const lastV = v.pop()!;
    const n = k.length;
    if (n > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const r = l + 1;
        const c = r < n && k[r]! < k[l]! ? r : l;
        if (k[c]! >= lastK) break;
        k[i] = k[c]!;
        v[i] = v[c]!;
        i = c;
      }
      k[i] = lastK;
      v[i] = lastV;
    }
    return top;
  }
  values(): number[] {
    return [...this.vals];
  }
}

/** A FIFO of numbers with O(1) shift. */
class Fifo {
  private items: number[] = [];
  private head = 0;
  get size(): number {
    return this.items.length - this.head;
  }
  push(x: number): void {
    this.items.push(x);
  }
  peek(): number {
    return this.items[this.head]!;
  }
  shift(): number {
    const x = this.items[this.head++]!;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return x;
  }
  drainAll(): number[] {
    const out = this.items.slice(this.head);
    this.items = [];
    this.head = 0;
    return out;
  }
}

export type ReplicaPhase = "starting" | "ready" | "draining" | "gone";

/** A millionth of a decode step, a thousandth of a prompt token: below float noise, above 0. */
const STEP_EPS = 1e-6;
const TOKEN_EPS = 1e-3;

export class SimReplica {
  phase: ReplicaPhase;
  removedAt = Number.NaN;
  drainDeadline = Number.POSITIVE_INFINITY;

  // Cumulative counters, as vLLM exports them.
  generationTokens = 0;
  promptTokens = 0;
  requestsFinished = 0;

  private readonly waiting = new Fifo();
  private readonly prefillIds = new Fifo();
  private headRemaining = 0; // compute-equivalent prefill tokens left of the queue head
  private prefillTotal = 0; // compute-equivalent prefill tokens left in the queue
  private readonly prefillWorkOf = new Map<number, number>();
  private readonly decode = new MinHeap();
  private decoded = 0; // D: decode steps done, the clock decoding sequences finish on
  private context = 0; // KV tokens the decoding sequences read per step
  private kvReserved = 0;
  private t: number;
  private decodeRate = 0; // steps/s
  private prefillRate = 0; // compute-equivalent prompt tokens/s

  constructor(
    readonly id: number,
    readonly requestedAt: number,
    readonly readyAt: number,
    private readonly perf: ReplicaPerf,
    private readonly reqs: readonly TraceRequest[],
    private readonly out: Outcomes,
  ) {
    this.phase = readyAt <= requestedAt ? "ready" : "starting";
    this.t = readyAt;
  }

  get running(): number {
    return this.decode.size + this.prefillIds.size;
  }
  get queued(): number {
    return this.waiting.size;
  }
  get outstanding(): number {
    return this.decode.size + this.prefillIds.size + this.waiting.size;
  }
  get kvUsage(): number {
    return this.kvReserved / this.perf.kvCacheTokens;
  }

  /** Time of the next completion inside the engine (Infinity when idle). */
  nextEventTime(): number {
    let te = Number.POSITIVE_INFINITY;
    if (this.decode.size > 0 && this.decodeRate > 0) {
      te = this.t + Math.max(0, this.decode.peekKey() - this.decoded) / this.decodeRate;
    }
    if (this.prefillIds.size > 0 && this.prefillRate > 0) {
      te = Math.min(te, this.t + Math.max(0, this.headRemaining) / this.prefillRate);
    }
    return te;
  }

  /** Processes every engine event up to `to` and leaves the state at time `to`. */
  advanceTo(to: number): void {
    if (this.phase === "starting" || this.phase === "gone") return;
    for (;;) {
      const te = this.nextEventTime();
      if (te > to) {
        this.flow(to);
        return;
      }
      this.flow(te);
      this.completeAt(te);
    }
  }

  /** Accepts a request (routing chose this replica). */
  enqueue(id: number, now: number): void {
    const r = this.reqs[id]!;
    if (r.prompt + r.gen > this.perf.kvCacheTokens) {
      this.out.failed[id] = 1; // longer than the cache: vLLM rejects it
      return;
    }
    this.waiting.push(id);
    this.admit(now);
    this.recompute();
  }

  /** Becomes ready at its readyAt. */
  markReady(): void {
    this.phase = "ready";
    this.t = this.readyAt;
  }

  /** Stops taking requests; finishes what it holds until `deadline`. */
  startDraining(now: number, deadline: number): void {
    if (this.phase === "starting") {
      this.phase = "gone";
      this.removedAt = now;
      return;
    }
    this.phase = "draining";
    this.drainDeadline = deadline;
    if (this.outstanding === 0) {
      this.phase = "gone";
      this.removedAt = now;
    }
  }

  /** At the drain deadline: whatever is left fails, the pod is gone. */
  kill(now: number): void {
    for (const id of this.waiting.drainAll()) this.out.failed[id] = 1;
    for (const id of this.prefillIds.drainAll()) this.out.failed[id] = 1;
    while (this.decode.size > 0) this.out.failed[this.decode.pop()] = 1;
    this.phase = "gone";
    this.removedAt = now;
  }

  private flow(to: number): void {
    const dt = to - this.t;
    if (dt <= 0) return;
    if (this.decodeRate > 0) {
      const steps = dt * this.decodeRate;
      this.decoded += steps;
      this.generationTokens += steps * this.decode.size;
    }
    if (this.prefillRate > 0 && this.prefillIds.size > 0) {
      const work = Math.min(dt * this.prefillRate, this.headRemaining);
      const id = this.prefillIds.peek();
      const prompt = this.reqs[id]!.prompt;
      this.headRemaining -= work;
      this.prefillTotal -= work;
      this.promptTokens += (work * prompt) / this.prefillWorkOf.get(id)!;
    }
    this.t = to;
  }

  private completeAt(now: number): void {
    // Prefill of the queue head done: first token.
    while (this.prefillIds.size > 0 && this.headRemaining <= TOKEN_EPS) {
      const id = this.prefillIds.shift();
      this.prefillTotal -= Math.max(0, this.headRemaining);
      this.prefillWorkOf.delete(id);
      this.out.firstToken[id] = now;
      this.generationTokens += 1;
      const r = this.reqs[id]!;
      if (r.gen <= 1) {
        this.finish(id, now);
      } else {
        this.decode.push(this.decoded + (r.gen - 1), id);
        this.context += r.prompt + r.gen / 2;
      }
      if (this.prefillIds.size > 0)
        this.headRemaining = this.prefillWorkOf.get(this.prefillIds.peek())!;
      else this.prefillTotal = 0;
    }
    while (this.decode.size > 0 && this.decode.peekKey() <= this.decoded + STEP_EPS) {
      const id = this.decode.pop();
      const r = this.reqs[id]!;
      this.context -= r.prompt + r.gen / 2;
      this.finish(id, now);
    }
    if (this.decode.size === 0) this.context = 0;
    this.admit(now);
    this.recompute();
    if (this.phase === "draining" && this.outstanding === 0) {
      this.phase = "gone";
      this.removedAt = now;
    }
  }

  private finish(id: number, now: number): void {
    const r = this.reqs[id]!;
    this.out.finished[id] = now;
    this.kvReserved -= r.prompt + r.gen;
    this.requestsFinished += 1;
  }

  private admit(now: number): void {
    const p = this.perf;
    while (this.waiting.size > 0 && this.running < p.maxNumSeqs) {
      const id = this.waiting.peek();
      const r = this.reqs[id]!;
      if (this.kvReserved + r.prompt + r.gen > p.kvCacheTokens) break;
      this.waiting.shift();
      this.out.admitted[id] = now;
      this.kvReserved += r.prompt + r.gen;
      const work = prefillWork(p, r.prompt);
      this.prefillWorkOf.set(id, work);
      if (this.prefillIds.size === 0) this.headRemaining = work;
      this.prefillIds.push(id);
      this.prefillTotal += work;
    }
  }

  private recompute(): void {
    const p = this.perf;
    const b = this.decode.size;
    if (this.prefillIds.size > 0) {
      const chunk = Math.max(1, Math.min(p.maxNumBatchedTokens - b, this.prefillTotal));
      const step = stepSeconds(p, b, chunk, this.context);
      this.prefillRate = chunk / step;
      this.decodeRate = b > 0 ? 1 / step : 0;
    } else {
      this.prefillRate = 0;
      this.decodeRate = b > 0 ? 1 / stepSeconds(p, b, 0, this.context) : 0;
    }
  }
}
