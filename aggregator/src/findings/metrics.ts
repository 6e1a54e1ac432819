// Findings on /metrics: how many are active per kind (every kind, 0 when none), and one series per
// active finding's subject for the worst MAX_SUBJECT_SERIES of them, so a fleet-wide outage cannot
// turn into thousands of series.

import { Gauge, type Registry } from 'prom-client'
import { FINDING_KIND_NAMES } from './finding.ts'
import type { TrackedFinding } from './tracker.ts'

/**
 * K: active findings exported one series each, worst first (highest score). A finding's subject is a
 * node, a group pair, a resolver, a name, a Service or a target, so these series are bounded by the
 * fleet anyway; K keeps a fleet-wide outage (every node inbound-failing) at K series. The rest are
 * counted in pingfleet_findings_active_subjects_dropped and listed by /api/v1/findings.
 */
export const MAX_SUBJECT_SERIES = 50

/** Registers the findings gauges; `active()` returns the active findings worst first (FindingTracker.active). */
export function registerFindingMetrics (registry: Registry, active: () => readonly TrackedFinding[], k: number = MAX_SUBJECT_SERIES): void {
  new Gauge({
    name: 'pingfleet_findings_active',
    help: 'Active findings per kind (docs/findings.md); every kind is exported, 0 when none is active.',
    labelNames: ['kind'],
    registers: [registry],
    collect () {
      this.reset()
      const counts = new Map<string, number>(FINDING_KIND_NAMES.map(kind => [kind, 0]))
      for (const f of active()) counts.set(f.kind, (counts.get(f.kind) ?? 0) + 1)
      for (const [kind, n] of counts) this.set({ kind }, n)
    }
  })
  new Gauge({
    name: 'pingfleet_finding_active_score',
    help: `Score (0..1) of each active finding, by kind and subject id; the worst ${k} only (pingfleet_findings_active_subjects_dropped counts the rest).`,
    labelNames: ['kind', 'subject'],
    registers: [registry],
    collect () {
      this.reset()
      for (const f of active().slice(0, k)) this.set({ kind: f.kind, subject: f.subject.id }, f.score)
    }
  })
  new Gauge({
    name: 'pingfleet_findings_active_subjects_dropped',
    help: `Active findings not exported in pingfleet_finding_active_score because ${k} worse ones were.`,
    registers: [registry],
    collect () {
      this.set(Math.max(0, active().length - k))
    }
  })
}
