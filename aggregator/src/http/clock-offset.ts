// One agent connection's clock offset (agent wall clock minus the aggregator's), from reports
// that carry ageMs. Each report gives offset − delay, where delay (transit, send queue, event-loop
// lateness) is never negative, so the largest of the last few samples is the best estimate; a
// window rather than all samples so a stepped clock is followed within a few reports.

/** Samples the estimate is taken over. */
const WINDOW = 8
/** Above this, an agent's clock is off enough to say so (NTP keeps healthy nodes within milliseconds). */
export const CLOCK_WARN_MS = 2000

export class ClockOffset {
  private readonly samples: number[] = []
  private estimate: number | null = null
  private warned = false

  /** Adds one sample (ms: agent's `end` minus where the aggregator placed it) and returns the estimate. */
  sample (offsetMs: number): number {
    this.samples.push(offsetMs)
    if (this.samples.length > WINDOW) this.samples.shift()
    this.estimate = Math.max(...this.samples)
    return this.estimate
  }

  /** The current estimate, or null before the first sample. */
  get offsetMs (): number | null { return this.estimate }

  /** True once per connection, the first time the estimate exceeds CLOCK_WARN_MS either way. */
  shouldWarn (): boolean {
    if (this.warned || this.estimate === null || Math.abs(this.estimate) <= CLOCK_WARN_MS) return false
    this.warned = true
    return true
  }
}
