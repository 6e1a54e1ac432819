// Owns the named gates: evaluates them every interval (so transitions are seen even when nobody
// asks), keeps the latest result for /metrics and a bounded history of verdict transitions.

import type { Logger } from 'pino'
import { evaluateGate, type GateResult, type GateSources, type Verdict } from './gate-eval.ts'
import { withScope, type GateSpec } from './gate-spec.ts'
import { StabilityTracker } from './gate-stability.ts'

export interface Transition {
  at: string
  from: Verdict | null
  verdict: Verdict
  result: GateResult
}

export const HISTORY_LIMIT = 50

interface Entry {
  spec: GateSpec
  latest: GateResult | null
  /** Oldest first; at most HISTORY_LIMIT. */
  history: Transition[]
}

export class GateMonitor {
  private readonly entries = new Map<string, Entry>()
  private readonly sources: GateSources
  private readonly now: () => number
  private readonly log: Logger
  private timer: NodeJS.Timeout | null = null
  private readonly stability = new StabilityTracker()

  constructor (options: { specs: readonly GateSpec[], sources: GateSources, now: () => number, log: Logger }) {
    for (const spec of options.specs) this.entries.set(spec.name, { spec, latest: null, history: [] })
    this.sources = options.sources
    this.now = options.now
    this.log = options.log
  }

  get size (): number { return this.entries.size }

  specs (): GateSpec[] {
    return [...this.entries.values()].map(e => e.spec)
  }

  spec (name: string): GateSpec | null {
    return this.entries.get(name)?.spec ?? null
  }

  has (name: string): boolean {
    return this.entries.has(name)
  }

  latest (name: string): GateResult | null {
    return this.entries.get(name)?.latest ?? null
  }

  history (name: string): Transition[] {
    return this.entries.get(name)?.history ?? []
  }

  /** Evaluates a named gate now and records a transition when its verdict changed. */
  evaluate (name: string): GateResult | null {
    const entry = this.entries.get(name)
    if (entry === undefined) return null
    const now = this.now()
    const result = this.stability.apply(name, entry.spec.passForMs, evaluateGate(entry.spec, this.sources, now), now)
    const from = entry.latest?.verdict ?? null
    entry.latest = result
    if (from !== result.verdict) {
      entry.history.push({ at: result.evaluatedAt, from, verdict: result.verdict, result })
      if (entry.history.length > HISTORY_LIMIT) entry.history.shift()
      this.log.info({ gate: name, from, verdict: result.verdict, summary: result.summary }, 'gate verdict changed')
    }
    return result
  }

  /**
   * A named gate judged over other nodes (`?nodes=`, `?nodeSelector=`): no history, no metrics, but
   * its `passFor` clock runs per scope, so a CLI waiting on one batch sees that batch's stability.
   * @throws AggregatorError 400 for a bad selector (withScope).
   */
  evaluateScoped (name: string, nodes: readonly string[] | undefined, selector: string | undefined): GateResult | null {
    const entry = this.entries.get(name)
    if (entry === undefined) return null
    const spec = withScope(entry.spec, nodes, selector)
    const now = this.now()
    const key = `${name}?nodes=${nodes?.join(',') ?? ''}&nodeSelector=${selector ?? ''}`
    return this.stability.apply(key, spec.passForMs, evaluateGate(spec, this.sources, now), now)
  }

  /** Ad-hoc gates are evaluated on request only: no history, no metrics. */
  evaluateAdhoc (spec: GateSpec): GateResult {
    return evaluateGate(spec, this.sources, this.now())
  }

  evaluateAll (): void {
    for (const name of this.entries.keys()) {
      try {
        this.evaluate(name)
      } catch (err) {
        this.log.error({ err, gate: name, code: 'PINGFLEET_ERR_INTERNAL' }, 'gate evaluation failed')
      }
    }
  }

  start (intervalMs: number): void {
    if (this.timer !== null || this.entries.size === 0) return
    this.evaluateAll()
    this.timer = setInterval(() => this.evaluateAll(), intervalMs)
    this.timer.unref()
  }

  stop (): void {
    if (this.timer !== null) clearInterval(this.timer)
    this.timer = null
  }
}
