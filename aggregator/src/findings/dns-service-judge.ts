// Judging cells and sets of nodes for the DNS, Service and egress findings: whether a cell fails,
// whether a failure is the fleet's, some groups' or single nodes', and the evidence quoted for it.

import type { ProbeKind } from '@pingfleet/protocol'
import { FAILING_RATIO, GROUP_SHARE, MIN_AGREEING_NODES, MIN_FAILURES, MIN_SAMPLES, NODE_FAILING_RATIO, SPREAD_SHARE } from './dns-service-limits.ts'
import type { NodeCell } from './dns-service-input.ts'
import type { Detection, Evidence, EvidenceCell, EvidenceReason } from './finding.ts'
import type { FindingsContext } from './input.ts'

/** Per node index: UNJUDGED, OK or FAIL. */
export const UNJUDGED = -1
export const OK = 0
export const FAIL = 1

/** Whether `errors` of `samples` make a failing cell (MIN_SAMPLES, MIN_FAILURES, FAILING_RATIO); null when too few samples. */
export function failing (samples: number, errors: number): boolean | null {
  if (samples < MIN_SAMPLES) return null
  return errors >= MIN_FAILURES && errors / samples >= FAILING_RATIO
}

/** A cell's verdict counting only the failures `counts` accepts (all when omitted). */
export function judgeCell (cell: NodeCell | undefined, counts?: (r: EvidenceReason) => boolean): number {
  if (cell === undefined) return UNJUDGED
  let errors = cell.errors
  if (counts !== undefined) {
    errors = 0
    for (const r of cell.reasons) if (counts(r)) errors += r.count
  }
  const verdict = failing(cell.samples, errors)
  return verdict === null ? UNJUDGED : verdict ? FAIL : OK
}

/** A cell's recent sub-window (recentWindowMs) with only the failures `counts` accepts; null when the input has none. */
export function recentOf (cell: NodeCell | undefined, counts?: (r: EvidenceReason) => boolean): { samples: number, errors: number } | null {
  const recent = cell?.recent
  if (recent === undefined) return null
  let errors = recent.errors
  if (counts !== undefined) {
    errors = 0
    for (const r of recent.reasons) if (counts(r)) errors += r.count
  }
  return { samples: recent.samples, errors }
}

/**
 * Whether a cell fails now: its recent part has a failure (`counts` accepts), at least FAILING_RATIO
 * of its probes there. Few probes (one to three intervals) make this no verdict of its own: it only
 * says a node is on its way to failing, or still fails.
 */
export function failsNow (cell: NodeCell | undefined, counts?: (r: EvidenceReason) => boolean): boolean {
  const r = recentOf(cell, counts)
  return r !== null && r.errors > 0 && r.errors / r.samples >= FAILING_RATIO
}

/**
 * Whether a detection is about what still happens: the failing cells its evidence quotes, pooled over
 * the window's recent part (figures recentSamples, recentErrors), still fail there at least once for
 * the reason that dominates their evidence, or
 * the recent part has no probe of them to say (none read, or none came). A fault gone from the recent
 * part fails the older part of the window for a while yet, at fewer nodes and targets each
 * evaluation: without this, the draining window would make narrower findings than the fault had.
 */
export function stillHappening (d: Detection): boolean {
  let samples = 0
  let errors = 0
  for (const e of d.evidence) {
    samples += Number(e.figures?.recentSamples ?? 0)
    errors += Number(e.figures?.recentErrors ?? 0)
  }
  return samples === 0 || errors > 0
}

/** Whether a cell fails most of its probes (NODE_FAILING_RATIO), counting the failures `counts` accepts: enough for a finding about its node alone. */
export function failsMostly (cell: NodeCell | undefined, counts?: (r: EvidenceReason) => boolean): boolean {
  if (cell === undefined || cell.samples < MIN_SAMPLES) return false
  let errors = cell.errors
  if (counts !== undefined) {
    errors = 0
    for (const r of cell.reasons) if (counts(r)) errors += r.count
  }
  return errors >= MIN_FAILURES && errors / cell.samples >= NODE_FAILING_RATIO
}

/** Which nodes may testify: not degraded and not explained by their own network finding. */
export function witnesses (ctx: FindingsContext, explained: ReadonlySet<string>): boolean[] {
  return ctx.nodes.map(n => n.degraded === null && !explained.has(n.name))
}

/** How widely a failure reaches. */
export interface Scope {
  /** `fleet`: every group fails (or many nodes across them); `groups`: some groups while others work; `nodes`: single nodes. */
  level: 'none' | 'fleet' | 'groups' | 'nodes'
  /** Failing and judged node counts over the fleet. */
  failing: number
  judged: number
  /** Groups failing as a whole (level `groups`), sorted. */
  groups: string[]
  /** Per group: failing and judged nodes. */
  perGroup: Map<string, { failing: number, judged: number }>
  /** Failing nodes not inside a failing group (level `groups` or `nodes`). */
  loose: number[]
}

const LEVEL_RANK: Record<Scope['level'], number> = { none: 0, nodes: 1, groups: 2, fleet: 3 }

/**
 * The scope of a failure given each node's verdict (UNJUDGED, OK, FAIL): a group fails when more than
 * GROUP_SHARE of its judged nodes fail. All judged groups failing, or no group failing but at least
 * SPREAD_SHARE of the fleet, is `fleet` (with at least MIN_AGREEING_NODES); some groups is `groups`;
 * otherwise each failing node is its own (`nodes`). `now[i]`: node i fails in the window's recent
 * part (failsNow). When counting the OK nodes that fail now as failing makes the scope wider, the
 * failure is still reaching them (a fleet-wide fault crosses each node's threshold at its own time):
 * the scope is `none` for now, rather than a group or a node the next evaluations would contradict.
 */
export function scopeOf (ctx: FindingsContext, status: ArrayLike<number>, now?: ArrayLike<boolean>): Scope {
  const scope = windowScope(ctx, status)
  if (now === undefined || scope.level === 'fleet') return scope
  let rising = false
  const widened = Int8Array.from(status, (v, i) => { if (v === OK && now[i] === true) { rising = true; return FAIL } return v })
  if (!rising || LEVEL_RANK[windowScope(ctx, widened).level] <= LEVEL_RANK[scope.level]) return scope
  return { ...scope, level: 'none', groups: [], loose: [] }
}

function windowScope (ctx: FindingsContext, status: ArrayLike<number>): Scope {
  const perGroup = new Map<string, { failing: number, judged: number }>()
  let failingCount = 0
  let judged = 0
  for (let i = 0; i < status.length; i++) {
    if (status[i] === UNJUDGED) continue
    const g = ctx.nodes[i]!.group
    let s = perGroup.get(g)
    if (s === undefined) perGroup.set(g, s = { failing: 0, judged: 0 })
    s.judged++
    judged++
    if (status[i] === FAIL) { s.failing++; failingCount++ }
  }
  const scope: Scope = { level: 'none', failing: failingCount, judged, groups: [], perGroup, loose: [] }
  if (failingCount === 0) return scope
  const failingGroups = [...perGroup].filter(([, s]) => s.failing / s.judged > GROUP_SHARE).map(([g]) => g).sort()
  const enough = failingCount >= MIN_AGREEING_NODES
  if (enough && (failingGroups.length === perGroup.size || (failingGroups.length === 0 && failingCount / judged >= SPREAD_SHARE))) {
    scope.level = 'fleet'
    return scope
  }
  const inGroup = new Set(failingGroups.length < perGroup.size ? failingGroups : [])
  scope.level = inGroup.size > 0 ? 'groups' : 'nodes'
  scope.groups = [...inGroup]
  for (let i = 0; i < status.length; i++) if (status[i] === FAIL && !inGroup.has(ctx.nodes[i]!.group)) scope.loose.push(i)
  return scope
}

/** Adds reason records to a (reason, raw) keyed tally. */
export function tally (into: Map<string, EvidenceReason>, reasons: readonly EvidenceReason[], accept?: (r: EvidenceReason) => boolean): void {
  for (const r of reasons) {
    if (accept !== undefined && !accept(r)) continue
    const key = r.reason + '\u0000' + r.raw
    const same = into.get(key)
    if (same !== undefined) same.count += r.count
    else into.set(key, { reason: r.reason, raw: r.raw, count: r.count })
  }
}

/** The dominant reasons, most failures first (then by name), at most 3. */
export function topReasons (tallied: Map<string, EvidenceReason>): EvidenceReason[] {
  return [...tallied.values()].sort((a, b) => b.count - a.count || (a.reason + a.raw).localeCompare(b.reason + b.raw)).slice(0, 3)
}

/** `(REASON, raw RAW)` for a summary, or '' with no failures. */
export function reasonText (reasons: readonly EvidenceReason[]): string {
  const top = reasons[0]
  if (top === undefined) return ''
  return top.raw === '' || top.raw === top.reason ? `(${top.reason})` : `(${top.reason}, raw ${top.raw})`
}

/** What one piece of evidence sums: cells of some nodes toward some targets. */
export interface EvidenceInput {
  probe: ProbeKind
  scope: string
  /** [node index, target, cell] of the nodes concerned. */
  cells: Array<[number, string, NodeCell]>
  agreeing: { count: number, of: number }
  accept?: (r: EvidenceReason) => boolean
  figures?: Record<string, number | string>
}

/**
 * Builds one Evidence: pooled samples, errors (those `accept` takes), dominant reasons, worst cells
 * first (at most 10); with the cells' recent parts read, figures recentSamples and recentErrors: the
 * cells that failed in the window, over its recent part, counting failures of its dominant reason.
 */
export function evidence (ctx: FindingsContext, input: EvidenceInput): Evidence {
  let samples = 0
  let errors = 0
  const reasons = new Map<string, EvidenceReason>()
  const cells: EvidenceCell[] = []
  const failed: NodeCell[] = []
  for (const [node, target, cell] of input.cells) {
    let e = 0
    for (const r of cell.reasons) if (input.accept === undefined || input.accept(r)) e += r.count
    samples += cell.samples
    errors += e
    tally(reasons, cell.reasons, input.accept)
    if (e === 0) continue
    cells.push({ src: ctx.nodes[node]!.name, target, samples: cell.samples, errors: e })
    failed.push(cell)
  }
  const top = topReasons(reasons)
  // The failing cells over the recent part, counting only the evidence's dominant reason: the same
  // failure still happening, not another one that began at the same cells (a new fault while an
  // old one drains out of the window).
  let recent: { samples: number, errors: number } | null = null
  const dominant = top[0]?.reason
  const same = (r: EvidenceReason): boolean => r.reason === dominant && (input.accept === undefined || input.accept(r))
  for (const cell of failed) {
    const r = recentOf(cell, same)
    if (r !== null) { recent ??= { samples: 0, errors: 0 }; recent.samples += r.samples; recent.errors += r.errors }
  }
  cells.sort((a, b) => b.errors / b.samples - a.errors / a.samples || b.errors - a.errors || a.src.localeCompare(b.src))
  const out: Evidence = {
    probe: input.probe,
    scope: input.scope,
    samples,
    errors,
    errorRatio: samples === 0 ? null : errors / samples,
    agreeing: input.agreeing,
    reasons: top,
    cells: cells.slice(0, 10)
  }
  if (input.figures !== undefined) out.figures = { ...input.figures }
  // The failing cells over the window's recent part: whether the fault still shows (stillHappening).
  if (recent !== null) out.figures = { ...out.figures, recentSamples: recent.samples, recentErrors: recent.errors }
  return out
}

/** `n node` / `n nodes`. */
export function nodesText (n: number): string {
  return `${n} node${n === 1 ? '' : 's'}`
}

/** Group names of the given node indexes, sorted, each once. */
export function groupsOf (ctx: FindingsContext, nodes: Iterable<number>): string[] {
  return [...new Set([...nodes].map(i => ctx.nodes[i]!.group))].sort()
}

/** Node names of the given node indexes, sorted. */
export function namesOf (ctx: FindingsContext, nodes: Iterable<number>): string[] {
  return [...nodes].map(i => ctx.nodes[i]!.name).sort()
}

/** Agreement as a score: the agreeing share, rounded to two places. */
export function shareScore (count: number, of: number): number {
  return of === 0 ? 0 : Math.round(count / of * 100) / 100
}
