// Watches the agent's own event loop: a late loop inflates every latency it measures,
// so samples taken while it was late are flagged instead of trusted.

import { performance } from 'node:perf_hooks'

export interface LagOptions {
  /** Lateness of a timer tick above which the loop counts as late. */
  thresholdMs: number
  /** How often the drift check ticks. */
  tickMs?: number
}

export class LoopLag {
  readonly thresholdMs: number
  readonly tickMs: number
  #timer: NodeJS.Timeout | undefined
  #expected = 0
  /** performance.now() of the end of the last late stretch; -Infinity when never late. */
  #lateUntil = -Infinity
  #maxLagMs = 0

  constructor (options: LagOptions) {
    this.thresholdMs = options.thresholdMs
    this.tickMs = options.tickMs ?? Math.max(5, Math.min(20, Math.floor(options.thresholdMs / 2)))
  }

  start (): void {
    if (this.#timer !== undefined) return
    this.#expected = performance.now() + this.tickMs
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

  /**
   * Whether the loop was late at any point after `since` (a performance.now() value), including now:
   * a probe that completes during a stall runs before the overdue tick does, so the pending tick counts too.
   */
  lateSince (since: number): boolean {
    if (this.#lateUntil >= since) return true
    return this.#timer !== undefined && performance.now() - this.#expected > this.thresholdMs
  }

  #tick (): void {
    const now = performance.now()
    const lag = now - this.#expected
    if (lag > this.#maxLagMs) this.#maxLagMs = lag
    if (lag > this.thresholdMs) this.#lateUntil = now
    this.#expected = now + this.tickMs
  }
}
