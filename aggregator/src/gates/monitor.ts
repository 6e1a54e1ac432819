// Owns the named gates: evaluates them every interval (so transitions are seen even when nobody
// asks), keeps the latest result for /metrics and a bounded history of verdict transitions.

import type { Logger } from 'pino'
import { ERR_INTERNAL } from '../errors.ts'
import { evaluateGate, type GateResult, type GateSources, type Verdict } from './eval.ts'
import { withScope, type GateSpec } from './spec.ts'
import { applyStability, type StabilityClock } from './stability.ts'

export interface Transition {
  at: string
  from: Verdict | null
  verdict: Verdict
  result: GateResult
}

export const HISTORY_LIMIT = 50
/**
 * Node scopes a named gate is read with (`?nodes=`, `?nodeSelector=`) whose clocks are kept; past
 * this the least recently read is dropped. Each is evaluated every interval, like the gates.
 */
export const SCOPES_LIMIT = 16
/** A scope nobody has read for this long is no longer evaluated, and its clock is dropped. */
export const SCOPE_IDLE_MS = 10 * 60_000

interface Entry {
  spec: GateSpec
  clock: StabilityClock
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
  /** Scoped reads of named gates, least recently read first. */
  private readonly scopes = new Map<string, { spec: GateSpec, clock: StabilityClock, readAt: number }>()

  constructor (options: { specs: readonly GateSpec[], sources: GateSources, now: () => number, log: Logger }) {
    for (const spec of options.specs) this.entries.set(spec.name, { spec, clock: { passingSince: null }, latest: null, history: [] })
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
    const result = applyStability(entry.clock, entry.spec.passForMs, evaluateGate(entry.spec, this.sources, now), now)
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
   * A named gate judged over other nodes (`?nodes=`, `?nodeSelector=`): no history, no metrics. Its
   * `passFor` clock is the scope's own, started at the scope's first read and then kept by evaluating
   * the scope every interval (at most SCOPES_LIMIT scopes, each until SCOPE_IDLE_MS without a read),
   * so failures between two reads restart it. The gate's own scope is the gate itself.
   * @throws AggregatorError 400 for a bad selector (withScope).
   */
  evaluateScoped (name: string, nodes: readonly string[] | undefined, selector: string | undefined): GateResult | null {
    const entry = this.entries.get(name)
    if (entry === undefined) return null
    const key = scopeKey(name, nodes, selector)
    if (key === scopeKey(name, entry.spec.definition.nodes, entry.spec.definition.nodeSelector)) return this.evaluate(name)
    const now = this.now()
    let scope = this.scopes.get(key)
    this.scopes.delete(key) // re-inserted last: Map order is the read order
    scope ??= { spec: withScope(entry.spec, nodes, selector), clock: { passingSince: null }, readAt: now }
    scope.readAt = now
    this.scopes.set(key, scope)
    while (this.scopes.size > SCOPES_LIMIT) this.scopes.delete(this.scopes.keys().next().value!)
    return applyStability(scope.clock, scope.spec.passForMs, evaluateGate(scope.spec, this.sources, now), now)
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
        this.log.error({ err, gate: name, code: ERR_INTERNAL }, 'gate evaluation failed')
      }
    }
    // Scopes with a passFor clock keep it running between reads; idle ones are dropped.
    const now = this.now()
    for (const [key, scope] of this.scopes) {
      if (now - scope.readAt > SCOPE_IDLE_MS) {
        this.scopes.delete(key)
        continue
      }
      if (scope.spec.passForMs <= 0) continue
      try {
        applyStability(scope.clock, scope.spec.passForMs, evaluateGate(scope.spec, this.sources, now), now)
      } catch (err) {
        this.log.error({ err, scope: key, code: ERR_INTERNAL }, 'gate evaluation failed')
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

/** One key per scope however it is written: node names sorted and deduplicated, the selector trimmed. */
function scopeKey (name: string, nodes: readonly string[] | undefined, selector: string | undefined): string {
  const names = nodes === undefined ? '' : [...new Set(nodes)].sort().join(',')
  return `${name}\u0000${names}\u0000${selector?.trim() ?? ''}`
}
