// Runs the findings every interval: builds the context, evaluates, and feeds the tracker and the
// incident timeline. A failed evaluation is logged and retried next interval, never thrown.

import type { Logger } from 'pino'
import { ERR_FINDINGS_EVALUATION } from '../errors.ts'
import type { FleetEventLog } from '../fleet/events.ts'
import { evaluateFindings } from './evaluate.ts'
import type { Detection } from './finding.ts'
import { findingsContext, type FindingsContext, type FindingsSources } from './input.ts'
import type { Incident, IncidentLog } from './incidents.ts'
import type { FindingTracker, TrackedFinding } from './tracker.ts'

/** The evaluation the engine runs; evaluateFindings in production, a synthetic one in tests. */
export type EvaluateFn = (ctx: FindingsContext, sources: FindingsSources) => Detection[]

export interface FindingsEngineOptions {
  sources: FindingsSources
  tracker: FindingTracker
  incidents: IncidentLog
  /** Observed before each evaluation, so incidents see the fleet changes of the same interval. */
  events: FleetEventLog | null
  /** The window each evaluation reads (ms) and the group label. */
  windowMs: number
  groupLabel: string
  now: () => number
  log: Logger
  evaluate?: EvaluateFn
}

export class FindingsEngine {
  private readonly options: FindingsEngineOptions
  private readonly evaluate: EvaluateFn
  private timer: NodeJS.Timeout | null = null
  /**
   * ISO 8601 of the last evaluation that succeeded with at least one connected agent to judge by, or
   * null before one did and while none is connected: "no findings" from a fleet with no witness
   * would be a pass on no data (`pingfleet diagnose` exits 2, forbidFindings checks are insufficient).
   */
  evaluatedAt: string | null = null
  /** Evaluations that threw (logged with PINGFLEET_ERR_FINDINGS_EVALUATION). */
  failures = 0

  constructor (options: FindingsEngineOptions) {
    this.options = options
    this.evaluate = options.evaluate ?? evaluateFindings
  }

  /**
   * One evaluation now: observes the fleet's changes, evaluates, updates the tracker and records the
   * incidents of the findings that resolved. Returns false (after logging) when it failed; the
   * tracker is then left as it was, so a failing evaluator neither opens nor resolves anything.
   */
  run (): boolean {
    const { sources, tracker, incidents, events, windowMs, groupLabel, now, log } = this.options
    const at = now()
    try {
      events?.observe(at)
      const ctx = findingsContext(sources, at, windowMs, groupLabel)
      const detections = this.evaluate(ctx, sources)
      const { opened, resolved } = tracker.update(detections, at)
      for (const f of opened) log.info({ finding: f.id, kind: f.kind, summary: f.summary }, 'finding opened')
      for (const f of resolved) {
        incidents.record(f, at)
        log.info({ finding: f.id, kind: f.kind, firstSeen: f.firstSeen, resolvedAt: f.resolvedAt }, 'finding resolved')
      }
      this.evaluatedAt = ctx.nodes.some(n => n.connected) ? new Date(at).toISOString() : null
      return true
    } catch (err) {
      this.failures++
      log.error({ err, code: ERR_FINDINGS_EVALUATION }, 'findings evaluation failed')
      return false
    }
  }

  /** Active and recently resolved findings: active worst first, then resolved, latest first. */
  findings (): TrackedFinding[] {
    return this.options.tracker.all()
  }

  /** Closed incidents ending at or after `since` (ms), then the open ones (end null), oldest first. */
  incidents (since: number): { incidents: Incident[], complete: boolean } {
    const { tracker, incidents, now } = this.options
    const at = now()
    const answer = incidents.since(since)
    const open = tracker.active().map(f => incidents.incidentOf(f, at)).sort((a, b) => a.start < b.start ? -1 : a.start > b.start ? 1 : 0)
    return { incidents: [...answer.incidents, ...open], complete: answer.complete }
  }

  /** Evaluates now and then every `intervalMs`; the timer does not hold the process open. */
  start (intervalMs: number): void {
    if (this.timer !== null) return
    this.run()
    this.timer = setInterval(() => this.run(), intervalMs)
    this.timer.unref()
  }

  stop (): void {
    if (this.timer !== null) clearInterval(this.timer)
    this.timer = null
  }
}
