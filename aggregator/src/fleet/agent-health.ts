// Whether each agent is a trustworthy witness: an agent whose recent samples are mostly lagged (its
// event loop stalled) or mostly its own failures (AGENT_OVERLOADED) is itself the finding, never
// silently green. Also holds the CPU throttling each agent reports. The one place for "agent-degraded".

import type { CpuThrottling } from '@pingfleet/protocol'
import type { Roster } from './roster.ts'

/** Shortest window the verdict looks back over; the aggregator uses max(this, 6 × the interval). */
export const MIN_HEALTH_WINDOW_MS = 60_000
/** More than this share of an agent's samples lagged (or overloaded) marks it degraded. */
export const DEGRADED_SHARE = 0.5
/** Fewer samples than this in the window are too few to judge. */
export const MIN_JUDGED_SAMPLES = 10

export type DegradedReason = 'lagged' | 'overloaded'

/** One report's sums over all its cells. */
export interface ReportSums {
  count: number
  lagged: number
  /** Failures with reason AGENT_OVERLOADED: the agent could not run the probe. */
  overloaded: number
}

export interface AgentHealthVerdict {
  /** Samples, lagged and overloaded over the window. */
  samples: number
  lagged: number
  overloaded: number
  /** lagged / samples, or null with no samples in the window. */
  laggedRatio: number | null
  degraded: boolean
  degradedReason: DegradedReason | null
  /** One sentence for people, with the figures; null when not degraded. */
  degradedDetail: string | null
}

interface Entry extends ReportSums {
  at: number
}

interface NodeHealth {
  entries: Entry[]
  cpu: CpuThrottling | null
  /** The cpu counters at the oldest entry still in the window, for "throttled in N of M periods". */
  cpuAt: Array<{ at: number, cpu: CpuThrottling }>
}

const percent = (part: number, whole: number): string => `${Math.round(100 * part / whole)}%`

export class AgentHealth {
  readonly windowMs: number
  readonly #now: () => number
  readonly #nodes = new Map<string, NodeHealth>()

  /** With a roster, a node's health is forgotten when the roster expires its agent. */
  constructor (options: { windowMs?: number, now?: () => number, roster?: Roster } = {}) {
    this.windowMs = options.windowMs ?? MIN_HEALTH_WINDOW_MS
    this.#now = options.now ?? Date.now
    options.roster?.on('expire', node => this.forget(node))
  }

  /** Records one accepted report of `node` ending at `at` (ms since the epoch). */
  observe (node: string, at: number, sums: ReportSums, cpu?: CpuThrottling): void {
    let health = this.#nodes.get(node)
    if (health === undefined) this.#nodes.set(node, health = { entries: [], cpu: null, cpuAt: [] })
    health.entries.push({ at, ...sums })
    if (cpu !== undefined) {
      health.cpu = cpu
      health.cpuAt.push({ at, cpu })
    }
    this.#prune(health, this.#now())
  }

  /** The throttling counters the agent last reported, or null when it never did. */
  cpu (node: string): CpuThrottling | null {
    return this.#nodes.get(node)?.cpu ?? null
  }

  nodes (): IterableIterator<string> {
    return this.#nodes.keys()
  }

  forget (node: string): void {
    this.#nodes.delete(node)
  }

  /** The verdict over the last windowMs. O(reports in the window) for one node. */
  verdict (node: string): AgentHealthVerdict {
    const health = this.#nodes.get(node)
    let samples = 0
    let lagged = 0
    let overloaded = 0
    if (health !== undefined) {
      this.#prune(health, this.#now())
      for (const e of health.entries) {
        samples += e.count
        lagged += e.lagged
        overloaded += e.overloaded
      }
    }
    const verdict: AgentHealthVerdict = {
      samples, lagged, overloaded, laggedRatio: samples === 0 ? null : lagged / samples, degraded: false, degradedReason: null, degradedDetail: null
    }
    if (samples < MIN_JUDGED_SAMPLES || (lagged + overloaded) / samples <= DEGRADED_SHARE) return verdict
    const window = `${Math.round(this.windowMs / 1000)} s`
    const reason: DegradedReason = lagged >= overloaded ? 'lagged' : 'overloaded'
    const what = reason === 'lagged'
      ? `${percent(lagged, samples)} of its ${samples} samples in the last ${window} were lagged: its own event loop stalled, so their latencies and timeouts say nothing about the network`
      : `${percent(overloaded, samples)} of its ${samples} samples in the last ${window} failed as AGENT_OVERLOADED: it could not run its probes in time`
    return { ...verdict, degraded: true, degradedReason: reason, degradedDetail: what + this.#throttled(health!) }
  }

  /** ", and its cgroup was CPU-throttled in N of M periods" over the window, when it reports cpu.stat. */
  #throttled (health: NodeHealth): string {
    const first = health.cpuAt[0]
    const last = health.cpu
    if (first === undefined || last === null) return ''
    const periods = last.periods - first.cpu.periods
    const throttled = last.throttledPeriods - first.cpu.throttledPeriods
    if (periods <= 0 || throttled <= 0) return ''
    return `; its cgroup was CPU-throttled in ${throttled} of ${periods} periods (${((last.throttledUsec - first.cpu.throttledUsec) / 1e6).toFixed(1)} s)`
  }

  #prune (health: NodeHealth, now: number): void {
    const from = now - this.windowMs
    let drop = 0
    while (drop < health.entries.length && health.entries[drop]!.at < from) drop++
    if (drop > 0) health.entries.splice(0, drop)
    let dropCpu = 0
    // Keep one sample at or before the window's start, as the baseline of the counters' increase.
    while (dropCpu + 1 < health.cpuAt.length && health.cpuAt[dropCpu + 1]!.at <= from) dropCpu++
    if (dropCpu > 0) health.cpuAt.splice(0, dropCpu)
  }
}
