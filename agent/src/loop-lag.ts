// Watches the agent's own event loop: a late loop inflates every latency it measures, and it can make
// a healthy probe time out. Stalls are kept as intervals, so a probe can ask how much of its own
// duration the agent could have lost to them (docs/reasons.md, "Lagged samples").

import { performance } from 'node:perf_hooks'

export interface LagOptions {
  /** Lateness of a timer tick above which the loop counts as stalled. */
  thresholdMs: number
  /** How often the drift check ticks. */
  tickMs?: number
  /** Stalls kept (oldest dropped first); default 1,024. */
  capacity?: number
}

/** What the scheduler asks about the loop for one probe; times are performance.now() values. */
export interface LagWatch {
  /** Whether a stall longer than the threshold overlapped [from, to]: the probe's timing is not trusted. */
  stalledDuring (from: number, to: number): boolean
  /**
   * The most the loop's stalls could have delayed a probe that ran in [from, to] and needs `turns`
   * event-loop turns: the sum of the `turns` largest stalls overlapping it (each clipped to it), in ms.
   */
  delayBoundMs (from: number, to: number, turns: number): number
}

/**
 * A ring of stalls in time order, each [start, end] in performance.now() milliseconds. `start` is the
 * last moment the loop is known to have run (the tick before), so `end - start` bounds from above how
 * long any callback could have waited during that stall.
 */
export class StallLog {
  readonly capacity: number
  #starts: Float64Array
  #ends: Float64Array
  /** Index of the next write; entries [next - size, next) are valid, modulo capacity. */
  #next = 0
  #size = 0

  constructor (capacity = 1024) {
    this.capacity = capacity
    this.#starts = new Float64Array(capacity)
    this.#ends = new Float64Array(capacity)
  }

  get size (): number {
    return this.#size
  }

  /** Adds a stall that ended at `end`; stalls must be added in order of their end. */
  add (start: number, end: number): void {
    this.#starts[this.#next] = start
    this.#ends[this.#next] = end
    this.#next = (this.#next + 1) % this.capacity
    if (this.#size < this.capacity) this.#size++
  }

  /**
   * The parts of the kept stalls that overlap [from, to], in ms, newest first. `extra` is one more
   * stall (the one still in progress, if any). Walks back from the newest and stops at the first
   * stall that ended before `from`, so the cost is the number of overlapping stalls.
   */
  overlaps (from: number, to: number, extra?: { start: number, end: number }): number[] {
    const out: number[] = []
    if (extra !== undefined) pushOverlap(out, extra.start, extra.end, from, to)
    for (let i = 0; i < this.#size; i++) {
      const at = (this.#next - 1 - i + this.capacity) % this.capacity
      if (this.#ends[at]! <= from) break
      pushOverlap(out, this.#starts[at]!, this.#ends[at]!, from, to)
    }
    return out
  }
}

function pushOverlap (out: number[], start: number, end: number, from: number, to: number): void {
  const ms = Math.min(end, to) - Math.max(start, from)
  if (ms > 0) out.push(ms)
}

/** Sum of the `k` largest values. */
export function sumOfLargest (values: number[], k: number): number {
  if (k <= 0 || values.length === 0) return 0
  if (values.length > k) values.sort((a, b) => b - a)
  let sum = 0
  for (let i = 0; i < Math.min(k, values.length); i++) sum += values[i]!
  return sum
}

export class LoopLag implements LagWatch {
  readonly thresholdMs: number
  readonly tickMs: number
  readonly stalls: StallLog
  #timer: NodeJS.Timeout | undefined
  /** performance.now() of the last tick that ran. */
  #lastTick = 0
  #maxLagMs = 0

  constructor (options: LagOptions) {
    this.thresholdMs = options.thresholdMs
    this.tickMs = options.tickMs ?? Math.max(5, Math.min(20, Math.floor(options.thresholdMs / 2)))
    this.stalls = new StallLog(options.capacity)
  }

  start (): void {
    if (this.#timer !== undefined) return
    this.#lastTick = performance.now()
    this.#timer = setInterval(() => this.#tick(), this.tickMs)
    this.#timer.unref()
  }

  stop (): void {
    clearInterval(this.#timer)
    this.#timer = undefined
  }

  /** Largest lateness seen since the last call, in milliseconds. */
  takeMaxLagMs (): number {
    const max = this.#maxLagMs
    this.#maxLagMs = 0
    return max
  }

  stalledDuring (from: number, to: number): boolean {
    return this.stalls.overlaps(from, to, this.#pending()).length > 0
  }

  delayBoundMs (from: number, to: number, turns: number): number {
    return sumOfLargest(this.stalls.overlaps(from, to, this.#pending()), turns)
  }

  /**
   * The stall in progress, if the overdue tick has not run yet: a probe whose deadline fires at the
   * end of a stall is recorded before the drift check's own tick gets its turn.
   */
  #pending (): { start: number, end: number } | undefined {
    if (this.#timer === undefined) return undefined
    const now = performance.now()
    return now - this.#lastTick - this.tickMs > this.thresholdMs ? { start: this.#lastTick, end: now } : undefined
  }

  #tick (): void {
    const now = performance.now()
    const lag = now - this.#lastTick - this.tickMs
    if (lag > this.#maxLagMs) this.#maxLagMs = lag
    if (lag > this.thresholdMs) this.stalls.add(this.#lastTick, now)
    this.#lastTick = now
  }
}
