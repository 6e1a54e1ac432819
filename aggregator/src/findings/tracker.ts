// Tracks findings over evaluations: each evaluation's detections open, refresh or (after a short
// hold) resolve the findings the API shows, and recently resolved ones are kept a while.

import type { Detection, EvidenceReason, Finding } from './finding.ts'

/**
 * Evaluations in a row a finding may be missing before it is resolved. One noisy interval (a report
 * that arrived late, a window edge that cut a burst of errors in half) must not resolve a finding and
 * open it again a moment later as a second incident; two clean evaluations in a row (10 s at the
 * default interval) are a recovery.
 */
export const HOLD_EVALUATIONS = 2
/**
 * Evaluations in a row a detection must be made before its finding opens. A detection made once
 * (an evaluation that caught a fault spreading at onset, or draining out of the window) would
 * otherwise show for one evaluation and then stay HOLD_EVALUATIONS more; the cost is one
 * evaluation interval of time to finding (firstSeen still says when it was first detected).
 */
export const CONFIRM_EVALUATIONS = 2
/** How long a resolved finding stays in /api/v1/findings (ms); its incident stays much longer. */
export const KEEP_RESOLVED_MS = 15 * 60_000
/**
 * Findings tracked at once, active and recently resolved. Detections come from bounded subjects
 * (nodes, group pairs, resolvers, configured targets), so this is a guard, not a budget: past it the
 * lowest-scored new detections are not tracked (counted in `untracked`) and resolved ones go first.
 * A finding with its evidence is a few KB, so the tracker holds at most a few MB.
 */
export const MAX_TRACKED = 1000

/** The largest impact a finding had while active. */
export interface PeakImpact {
  /** Highest error ratio among its evidence; null when no evidence had samples. */
  errorRatio: number | null
  /** Most peers (or nodes) that agreed, in one piece of evidence; null when none counted. */
  agreeing: number | null
  score: number
  /** ISO 8601: when errorRatio (else score) peaked. */
  at: string
}

/** A finding as the tracker holds it: the API's Finding, its peak and the reasons it opened with. */
export interface TrackedFinding extends Finding {
  peak: PeakImpact
  /** The dominant reasons of its first detection (at most 3): what the incident quotes. */
  firstReasons: EvidenceReason[]
}

/** What one update changed. */
export interface TrackerUpdate {
  opened: TrackedFinding[]
  resolved: TrackedFinding[]
}

interface Entry {
  finding: TrackedFinding
  /** Evaluations in a row it was not detected. */
  missed: number
}

/** A detection not yet confirmed: when it was first made, and in how many evaluations in a row. */
interface Pending {
  firstAt: number
  seen: number
}

/** "10:02:15": a time of day in UTC, as summaries quote it. */
export function clockTime (ms: number): string {
  return new Date(ms).toISOString().slice(11, 19)
}

/** The summary a person reads: `${lead} since HH:MM:SS ${rest}` (UTC), without a trailing space. */
export function summaryOf (d: Detection, firstSeenMs: number): string {
  return `${d.lead} since ${clockTime(firstSeenMs)}${d.rest === '' ? '' : ` ${d.rest}`}`
}

function impactOf (d: Detection): { errorRatio: number | null, agreeing: number | null } {
  let errorRatio: number | null = null
  let agreeing: number | null = null
  for (const e of d.evidence) {
    if (e.errorRatio !== null && (errorRatio === null || e.errorRatio > errorRatio)) errorRatio = e.errorRatio
    if (e.agreeing !== undefined && (agreeing === null || e.agreeing.count > agreeing)) agreeing = e.agreeing.count
  }
  return { errorRatio, agreeing }
}

/** Active findings worst first: highest score, then the oldest, then by id (stable). */
export function worstFirst (a: Finding, b: Finding): number {
  if (a.state !== b.state) return a.state === 'active' ? -1 : 1
  if (a.score !== b.score) return b.score - a.score
  if (a.firstSeen !== b.firstSeen) return a.firstSeen < b.firstSeen ? -1 : 1
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0
}

export class FindingTracker {
  private readonly entries = new Map<string, Entry>()
  private readonly pending = new Map<string, Pending>()
  private readonly hold: number
  private readonly confirm: number
  private readonly keepResolvedMs: number
  private readonly max: number
  /** Detections not tracked because MAX_TRACKED findings were already active. */
  untracked = 0

  /** How long after a finding resolves its nodes still count as draining (ms; see update). */
  private readonly tailMs: number

  constructor (options: { hold?: number, confirm?: number, keepResolvedMs?: number, max?: number, tailMs?: number } = {}) {
    this.hold = options.hold ?? HOLD_EVALUATIONS
    this.tailMs = options.tailMs ?? 0
    // 1 (open at once) unless asked: the aggregator asks for CONFIRM_EVALUATIONS (app.ts).
    this.confirm = Math.max(1, options.confirm ?? 1)
    this.keepResolvedMs = options.keepResolvedMs ?? KEEP_RESOLVED_MS
    this.max = options.max ?? MAX_TRACKED
  }

  /**
   * Applies one evaluation's detections at `at` (ms): a new one opens active once it has been made in
   * `confirm` evaluations in a row (firstSeen = the first of them; a gap starts the count again; with
   * confirm above 1, evaluations where every node it names is in an active finding that went missing
   * do not count); one
   * seen again refreshes lastSeen, evidence, score and summary text and raises the peak; an active
   * finding missing from `hold` evaluations in a row resolves (resolvedAt = at). A resolved finding
   * detected again opens anew, as a new incident. Resolved findings older than keepResolvedMs are
   * forgotten. Two detections with one id in one evaluation: the higher score is kept.
   */
  update (detections: readonly Detection[], at: number): TrackerUpdate {
    const iso = new Date(at).toISOString()
    const byId = new Map<string, Detection>()
    for (const d of detections) {
      const id = `${d.kind}:${d.subject.id}`
      const other = byId.get(id)
      if (other === undefined || d.score > other.score) byId.set(id, d)
    }
    const opened: TrackedFinding[] = []
    const resolved: TrackedFinding[] = []
    // Nodes of active findings missing from this evaluation: a fault draining out of the window.
    const draining = new Set<string>()
    for (const [id, entry] of this.entries) if (entry.finding.state === 'active' && !byId.has(id)) for (const n of entry.finding.nodes) draining.add(n)
    // And of findings resolved less than tailMs ago: probes begun during the fault still end in its
    // failures after it is gone (getaddrinfo waits out glibc's timeouts, up to 4 s), at fewer nodes.
    for (const entry of this.entries.values()) {
      const f = entry.finding
      if (f.state === 'resolved' && f.resolvedAt !== undefined && at - Date.parse(f.resolvedAt) < this.tailMs) for (const n of f.nodes) draining.add(n)
    }
    const fresh: Array<[string, Detection, number]> = []
    for (const [id, d] of byId) {
      const entry = this.entries.get(id)
      if (entry !== undefined && entry.finding.state === 'active') {
        entry.missed = 0
        entry.finding = this.refreshed(entry.finding, d, iso)
        continue
      }
      // A new detection about nodes all in a finding that just went missing, or resolved less than
      // tailMs ago, is what is left of that fault (its last failures, at fewer nodes): it counts toward
      // opening only after that, so a real new fault there waits up to tailMs, while a tail never opens.
      if (this.confirm > 1 && d.nodes.length > 0 && d.nodes.every(n => draining.has(n))) {
        this.pending.delete(id)
        continue
      }
      const p = this.pending.get(id) ?? { firstAt: at, seen: 0 }
      p.seen++
      if (p.seen >= this.confirm) {
        this.pending.delete(id)
        fresh.push([id, d, p.firstAt])
      } else {
        this.pending.set(id, p)
      }
    }
    // A detection missing from one evaluation is no longer on its way to a finding.
    for (const id of this.pending.keys()) if (!byId.has(id)) this.pending.delete(id)
    for (const [id, entry] of this.entries) {
      if (entry.finding.state !== 'active' || byId.has(id)) continue
      if (++entry.missed < this.hold) continue
      entry.finding = { ...entry.finding, state: 'resolved', resolvedAt: iso }
      resolved.push(entry.finding)
    }
    this.forgetResolved(at)
    // New findings, worst first so that a full tracker keeps the ones that matter.
    fresh.sort((a, b) => b[1].score - a[1].score)
    for (const [id, d, firstAt] of fresh) {
      if (!this.makeRoom(id)) {
        this.untracked++
        continue
      }
      const finding = this.opened(id, d, firstAt, iso)
      this.entries.set(id, { finding, missed: 0 })
      opened.push(finding)
    }
    return { opened, resolved }
  }

  /** A finding opening at `iso`, first detected at `firstAt` (ms). */
  private opened (id: string, d: Detection, firstAt: number, iso: string): TrackedFinding {
    const first = new Date(firstAt).toISOString()
    return {
      ...d,
      id,
      state: 'active',
      firstSeen: first,
      lastSeen: iso,
      summary: summaryOf(d, firstAt),
      peak: { ...impactOf(d), score: d.score, at: iso },
      firstReasons: d.evidence.flatMap(e => e.reasons).sort((a, b) => b.count - a.count).slice(0, 3)
    }
  }

  private refreshed (f: TrackedFinding, d: Detection, iso: string): TrackedFinding {
    const impact = impactOf(d)
    const peak = { ...f.peak }
    const higher = impact.errorRatio !== null && (peak.errorRatio === null || impact.errorRatio > peak.errorRatio)
    if (higher) peak.errorRatio = impact.errorRatio
    if (impact.agreeing !== null && (peak.agreeing === null || impact.agreeing > peak.agreeing)) peak.agreeing = impact.agreeing
    if (higher || (peak.errorRatio === null && d.score > peak.score)) peak.at = iso
    peak.score = Math.max(peak.score, d.score)
    return {
      ...d,
      id: f.id,
      state: 'active',
      firstSeen: f.firstSeen,
      lastSeen: iso,
      summary: summaryOf(d, Date.parse(f.firstSeen)),
      peak,
      firstReasons: f.firstReasons
    }
  }

  private forgetResolved (at: number): void {
    for (const [id, entry] of this.entries) {
      const f = entry.finding
      if (f.state === 'resolved' && at - Date.parse(f.resolvedAt!) > this.keepResolvedMs) this.entries.delete(id)
    }
  }

  /** Whether `id` may be tracked: there is room, or a resolved entry (its own first, else the oldest) gives way. */
  private makeRoom (id: string): boolean {
    if (this.entries.delete(id)) return true
    if (this.entries.size < this.max) return true
    let oldest: string | null = null
    let oldestAt = ''
    for (const [key, entry] of this.entries) {
      const r = entry.finding.resolvedAt
      if (r !== undefined && (oldest === null || r < oldestAt)) {
        oldest = key
        oldestAt = r
      }
    }
    if (oldest === null) return false
    this.entries.delete(oldest)
    return true
  }

  /** Active findings, worst first. */
  active (): TrackedFinding[] {
    return [...this.entries.values()].map(e => e.finding).filter(f => f.state === 'active').sort(worstFirst)
  }

  /** Active findings worst first, then the recently resolved ones, latest resolved first. */
  all (): TrackedFinding[] {
    const resolved = [...this.entries.values()].map(e => e.finding).filter(f => f.state === 'resolved')
    resolved.sort((a, b) => a.resolvedAt! < b.resolvedAt! ? 1 : a.resolvedAt! > b.resolvedAt! ? -1 : 0)
    return [...this.active(), ...resolved]
  }

  get size (): number { return this.entries.size }
}
