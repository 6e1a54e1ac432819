// Watches GET /api/v1/findings while a fault lasts, and scores what it saw against what the row expects:
// which findings were active at any poll, when each first appeared, and the precision and recall of the
// whole fault (every finding active during it counts, a transient wrong one too: an operator sees it).

import type { FindingKind, FindingSubject } from '../../aggregator/src/findings/finding.ts'

/** A finding as the API answers it: the fields the suite reads. */
export interface ReportedFinding {
  id: string
  kind: string
  subject: FindingSubject
  state: string
  summary: string
  firstSeen: string
  nodes: string[]
  groups: string[]
}

/**
 * A finding a fault must produce: its kind and the subject fields that name the right culprit. Only the
 * fields given are compared; `false` also matches a field left out (a one-way boundary need not say
 * `bothWays: false`). `groups`, when given, must equal the finding's groups as a set (a two-way
 * boundary may name either group first).
 */
export interface FindingExpectation {
  kind: FindingKind
  subject: Partial<FindingSubject> & { type: FindingSubject['type'] }
  groups?: readonly string[]
}

/** Whether `f` is the finding `e` describes. */
export function matches (e: FindingExpectation, f: ReportedFinding): boolean {
  if (f.kind !== e.kind) return false
  for (const [key, want] of Object.entries(e.subject)) {
    const got = (f.subject as unknown as Record<string, unknown>)[key]
    if (want === false ? got !== undefined && got !== false : got !== want) return false
  }
  if (e.groups !== undefined) {
    const have = new Set(f.groups)
    if (have.size !== e.groups.length || e.groups.some(g => !have.has(g))) return false
  }
  return true
}

/** How one expectation reads in the table and in failure messages. */
export function describe (e: FindingExpectation): string {
  const fields = Object.entries(e.subject).filter(([k]) => k !== 'type').map(([k, v]) => `${k}=${String(v)}`)
  return `${e.kind} ${e.subject.type}${fields.length > 0 ? `(${fields.join(',')})` : ''}${e.groups === undefined ? '' : ` groups ${e.groups.join('+')}`}`
}

export interface Score {
  /** Expectations each paired with the reported finding that met it. */
  matched: Array<{ expected: FindingExpectation, finding: ReportedFinding }>
  missing: FindingExpectation[]
  /** Reported findings no expectation accounts for (a second finding for one expectation is extra too). */
  extra: ReportedFinding[]
  /** matched / reported; null when nothing was reported. */
  precision: number | null
  /** matched / expected; null when nothing was expected. */
  recall: number | null
}

/** Pairs expectations with reported findings, one each, in order. */
export function score (expected: readonly FindingExpectation[], reported: readonly ReportedFinding[]): Score {
  const left = [...reported]
  const matched: Score['matched'] = []
  const missing: FindingExpectation[] = []
  for (const e of expected) {
    const i = left.findIndex(f => matches(e, f))
    if (i < 0) missing.push(e)
    else matched.push({ expected: e, finding: left.splice(i, 1)[0]! })
  }
  return {
    matched,
    missing,
    extra: left,
    precision: reported.length === 0 ? null : matched.length / reported.length,
    recall: expected.length === 0 ? null : matched.length / expected.length
  }
}

/** One finding as the watch saw it: the last answer, and when (ms after the watch started) it was first and last active. */
export interface Sighting {
  finding: ReportedFinding
  firstMs: number
  lastMs: number
}

/** What one GET of the findings API answered: the active findings, or that the route does not exist (404). */
export type FindingsAnswer = { ok: true, active: ReportedFinding[] } | { ok: false, status: 404 }

/**
 * Reads the active findings. A 404 is returned as such (an aggregator without the findings API: the
 * caller decides whether that is a failure); any other non-200 answer, or a body without a `findings`
 * array, throws.
 */
export async function readFindings (get: (path: string) => Promise<{ status: number, body: string }>): Promise<FindingsAnswer> {
  const answer = await get('/api/v1/findings')
  if (answer.status === 404) return { ok: false, status: 404 }
  if (answer.status !== 200) throw new Error(`GET /api/v1/findings: ${answer.status} ${answer.body.slice(0, 300)}`)
  const body = JSON.parse(answer.body) as { findings?: unknown }
  if (!Array.isArray(body.findings)) throw new Error(`GET /api/v1/findings: no findings array in ${answer.body.slice(0, 300)}`)
  return { ok: true, active: (body.findings as ReportedFinding[]).filter(f => f.state === 'active') }
}

/**
 * Polls the findings API every `everyMs` from start() until stop(), keeping every finding seen active.
 * A failed poll is kept as `lastError` and polling goes on (the aggregator may be busy); a 404 sets
 * `missingApi`.
 */
export class FindingsWatch {
  readonly sightings = new Map<string, Sighting>()
  polls = 0
  missingApi = false
  lastError: string | null = null
  private startedAt = 0
  private running: Promise<void> | null = null
  private stopped = false
  private readonly get: (path: string) => Promise<{ status: number, body: string }>
  private readonly everyMs: number

  constructor (get: (path: string) => Promise<{ status: number, body: string }>, everyMs: number) {
    this.get = get
    this.everyMs = everyMs
  }

  /** Starts polling; times are ms after `at` (ms since the epoch), the fault's injection. */
  start (at: number): void {
    this.startedAt = at
    this.running = this.loop()
  }

  private async loop (): Promise<void> {
    while (!this.stopped) {
      await this.poll()
      await new Promise(resolve => setTimeout(resolve, this.everyMs))
    }
  }

  private async poll (): Promise<void> {
    try {
      const answer = await readFindings(this.get)
      const ms = Date.now() - this.startedAt
      this.polls++
      if (!answer.ok) {
        this.missingApi = true
        return
      }
      for (const f of answer.active) {
        const seen = this.sightings.get(f.id)
        if (seen === undefined) this.sightings.set(f.id, { finding: f, firstMs: ms, lastMs: ms })
        else Object.assign(seen, { finding: f, lastMs: ms })
      }
    } catch (err) {
      this.lastError = String(err)
    }
  }

  /** First time (ms after start) a finding meeting `e` was active, or null. */
  firstSeen (e: FindingExpectation): number | null {
    const times = [...this.sightings.values()].filter(s => matches(e, s.finding)).map(s => s.firstMs)
    return times.length === 0 ? null : Math.min(...times)
  }

  /** Every finding seen active so far. */
  reported (): ReportedFinding[] {
    return [...this.sightings.values()].map(s => s.finding)
  }

  /** Stops polling after the poll in flight, and takes one last poll. */
  async stop (): Promise<void> {
    this.stopped = true
    await this.running
    await this.poll()
  }
}
