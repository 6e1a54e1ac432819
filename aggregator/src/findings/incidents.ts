// The incident timeline: every finding that opened and closed, with its span, peak impact, first
// reasons and the fleet events of the same minutes (nodes that joined, were relabelled, cordoned,
// restarted or departed), kept for at least a day within a fixed count.

import { describeEvent, type FleetEvent, type FleetEventLog, type FleetEventType } from '../fleet/events.ts'
import type { EvidenceReason, FindingKind, FindingSubject } from './finding.ts'
import { clockTime, type PeakImpact, type TrackedFinding } from './tracker.ts'

/** How long incidents are kept at least (ms): /api/v1/incidents answers for the last day. */
export const INCIDENT_RETENTION_MS = 24 * 3_600_000
/**
 * Incidents kept at most, oldest dropped first: a cap on memory whatever the churn. Measured: an
 * incident is ~0.9 KB as JSON without events and ~3.6 KB with the full 10 (long node names); 5,000
 * full ones take ~28 MB of heap. At one incident a minute a day is 1,440; past the cap answers that
 * reach back to dropped incidents say so (`complete: false`).
 */
export const MAX_INCIDENTS = 5000
/** Fleet events this long before an incident started are quoted with it: the change that caused it comes first. */
export const CORRELATE_BEFORE_MS = 5 * 60_000
/** Fleet events quoted per incident at most, the latest before its start first kept; the rest are counted. */
export const MAX_EVENTS_PER_INCIDENT = 10
/** Nodes (and groups) listed per incident at most. */
export const MAX_NODES_PER_INCIDENT = 50

export interface IncidentEvent {
  /** ISO 8601. */
  at: string
  node: string
  type: FleetEventType
  group: string
  from?: string
  /** "node-17 relabelled to cilium (was aws) at 10:01:50". */
  text: string
}

export interface Incident {
  /** The finding's id and its start: `${kind}:${subject.id}@${start}`. */
  id: string
  kind: FindingKind
  subject: FindingSubject
  /** ISO 8601: the finding's firstSeen and resolvedAt; end is null while it is still open. */
  start: string
  end: string | null
  /** The last evaluation that detected it. */
  lastSeen: string
  durationSeconds: number
  peak: PeakImpact
  firstReasons: EvidenceReason[]
  /** The finding's summary as it last read. */
  summary: string
  nodes: string[]
  groups: string[]
  /** Fleet events of its nodes and groups from CORRELATE_BEFORE_MS before its start to its end, oldest first. */
  events: IncidentEvent[]
  /** Correlated events not listed (over MAX_EVENTS_PER_INCIDENT). */
  moreEvents: number
  /** "node-17 relabelled to cilium (was aws) at 10:01:50; node-inbound node-17 from 10:02:15 to 10:09:40". */
  timeline: string
}

function eventOf (e: FleetEvent): IncidentEvent {
  return { at: new Date(e.at).toISOString(), node: e.node, type: e.type, group: e.group, ...(e.from === undefined ? {} : { from: e.from }), text: `${describeEvent(e)} at ${clockTime(e.at)}` }
}

/**
 * Whether a fleet event concerns a finding: its node is one of the finding's, or its group (before
 * or after a relabel) is one of the finding's groups. A finding that names neither nodes nor groups
 * (a resolver, a DNS name) can be caused by any node's change, so every event concerns it.
 */
function concerns (f: TrackedFinding, e: FleetEvent): boolean {
  if (f.nodes.length === 0 && f.groups.length === 0) return true
  return f.nodes.includes(e.node) || f.groups.includes(e.group) || (e.from !== undefined && f.groups.includes(e.from))
}

export class IncidentLog {
  private readonly events: FleetEventLog | null
  private readonly max: number
  private readonly retentionMs: number
  /** Closed incidents, oldest end first; at most `max`. */
  private readonly closed: Incident[] = []
  /** Incidents dropped for the count cap while younger than the retention. */
  dropped = 0
  /** The end of the newest incident dropped for the cap (ms), or null: answers from before it are incomplete. */
  private droppedUntil: number | null = null

  /** `events` is the fleet event log incidents are correlated with (null: none); `max` and `retentionMs` default to MAX_INCIDENTS and INCIDENT_RETENTION_MS. */
  constructor (options: { events: FleetEventLog | null, max?: number, retentionMs?: number }) {
    this.events = options.events
    this.max = options.max ?? MAX_INCIDENTS
    this.retentionMs = options.retentionMs ?? INCIDENT_RETENTION_MS
  }

  /**
   * An incident for `f` as it stands: closed when `f` is resolved, open (end null) while active, at
   * `at` (ms). The events are read from the fleet event log now, so record a closed finding when it
   * resolves.
   */
  incidentOf (f: TrackedFinding, at: number): Incident {
    const start = Date.parse(f.firstSeen)
    const end = f.resolvedAt === undefined ? null : Date.parse(f.resolvedAt)
    const related = (this.events?.between(start - CORRELATE_BEFORE_MS, end ?? at) ?? []).filter(e => concerns(f, e))
    // Keep the events nearest the start: the cause comes just before the fault.
    const ranked = [...related].sort((a, b) => Math.abs(a.at - start) - Math.abs(b.at - start)).slice(0, MAX_EVENTS_PER_INCIDENT)
    const events = ranked.sort((a, b) => a.at - b.at).map(eventOf)
    const span = end === null ? `from ${clockTime(start)}, still active` : `from ${clockTime(start)} to ${clockTime(end)}`
    const what = `${f.kind} ${f.subject.id} ${span}`
    return {
      id: `${f.id}@${f.firstSeen}`,
      kind: f.kind,
      subject: f.subject,
      start: f.firstSeen,
      end: f.resolvedAt ?? null,
      lastSeen: f.lastSeen,
      durationSeconds: Math.max(0, Math.round(((end ?? at) - start) / 1000)),
      peak: f.peak,
      firstReasons: f.firstReasons,
      summary: f.summary,
      nodes: f.nodes.slice(0, MAX_NODES_PER_INCIDENT),
      groups: f.groups.slice(0, MAX_NODES_PER_INCIDENT),
      events,
      moreEvents: related.length - events.length,
      timeline: [...events.filter(e => Date.parse(e.at) <= start).map(e => e.text), what, ...events.filter(e => Date.parse(e.at) > start).map(e => e.text)].join('; ')
    }
  }

  /** Records a resolved finding as a closed incident at `at` (ms), then drops what is past the retention or the cap. */
  record (f: TrackedFinding, at: number): Incident {
    const incident = this.incidentOf(f, at)
    this.closed.push(incident)
    this.prune(at)
    return incident
  }

  private prune (at: number): void {
    while (this.closed.length > 0 && at - Date.parse(this.closed[0]!.end!) > this.retentionMs) this.closed.shift()
    while (this.closed.length > this.max) {
      const gone = this.closed.shift()!
      this.dropped++
      this.droppedUntil = Math.max(this.droppedUntil ?? 0, Date.parse(gone.end!))
    }
  }

  /**
   * Closed incidents that ended at or after `since` (ms), oldest first, and whether that is all of
   * them: false when incidents ending after `since` were dropped for the count cap.
   */
  since (since: number): { incidents: Incident[], complete: boolean } {
    return {
      incidents: this.closed.filter(i => Date.parse(i.end!) >= since),
      complete: this.droppedUntil === null || this.droppedUntil < since
    }
  }

  get size (): number { return this.closed.length }
}
