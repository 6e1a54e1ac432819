// How network findings quote their evidence and word their summaries: dominant reasons with raw
// codes, worst cells, ratios and "k of n".

import type { ProbeKind } from '@pingfleet/protocol'
import type { Evidence, EvidenceCell, EvidenceReason } from './finding.ts'
import type { FailedCell } from './network-input.ts'
import { EVIDENCE_CELLS, EVIDENCE_REASONS } from './network-thresholds.ts'

/** The dominant (reason, raw code) pairs over `cells` (and `more`, as if appended), most failures first, at most EVIDENCE_REASONS. */
export function dominantReasons (cells: readonly FailedCell[], more: readonly FailedCell[] = []): EvidenceReason[] {
  const by = new Map<string, EvidenceReason>()
  // Most cells repeat the last pair: compared first, no key is built for them.
  let last: EvidenceReason | null = null
  for (const list of [cells, more]) for (const c of list) {
    for (const r of c.reasons) {
      if (last !== null && last.reason === r.reason && last.raw === r.raw) { last.count += r.count; continue }
      const key = `${r.reason}\u0000${r.raw}`
      let e = by.get(key)
      if (e === undefined) by.set(key, e = { reason: r.reason, raw: r.raw, count: 0 })
      e.count += r.count
      last = e
    }
  }
  return [...by.values()].sort((a, b) => b.count - a.count || (a.reason < b.reason ? -1 : 1)).slice(0, EVIDENCE_REASONS)
}

/** The worst cells (highest error ratio, then most failures), at most EVIDENCE_CELLS, as evidence quotes them. */
export function worstCells (cells: readonly FailedCell[]): EvidenceCell[] {
  const ratio = (c: FailedCell): number => c.samples === 0 ? 1 : c.errors / c.samples
  const worse = (a: FailedCell, b: FailedCell): number => ratio(b) - ratio(a) || b.errors - a.errors || (a.src < b.src ? -1 : a.src > b.src ? 1 : a.dst < b.dst ? -1 : a.dst > b.dst ? 1 : 0)
  // The top few by insertion: a boundary's finding has ~250,000 cells at 1,000 nodes, too many to sort.
  const top: FailedCell[] = []
  for (const c of cells) {
    if (top.length === EVIDENCE_CELLS && worse(c, top[top.length - 1]!) >= 0) continue
    let i = top.length
    while (i > 0 && worse(c, top[i - 1]!) < 0) i--
    top.splice(i, 0, c)
    if (top.length > EVIDENCE_CELLS) top.pop()
  }
  return top
    .map(c => ({ src: c.src, target: c.size === undefined ? c.dst : `${c.dst}/${c.size}`, samples: c.samples, errors: c.errors }))
}

/** errors / samples, or null without samples. */
export function ratioOf (errors: number, samples: number): number | null {
  return samples === 0 ? null : errors / samples
}

/** One Evidence record over failed cells: sums, agreeing peers, reasons and worst cells. */
export function cellEvidence (probe: ProbeKind, scope: string, cells: readonly FailedCell[], agreeing: { count: number, of: number }, sums?: { samples: number, errors: number }): Evidence {
  let samples = 0
  let errors = 0
  for (const c of cells) { samples += c.samples; errors += c.errors }
  if (sums !== undefined) { samples = sums.samples; errors = sums.errors }
  return { probe, scope, samples, errors, errorRatio: ratioOf(errors, samples), agreeing, reasons: dominantReasons(cells), cells: worstCells(cells) }
}

/** `(CONNECT_TIMEOUT)`, `(CONNECT_TIMEOUT, CONNECT_REFUSED)` or '' without reasons: the summary's reason part. */
export function reasonText (reasons: readonly EvidenceReason[]): string {
  const names = [...new Set(reasons.map(r => r.reason))].slice(0, 2)
  return names.length === 0 ? '' : `(${names.join(', ')})`
}

/** A whole number with thousands separators, as summaries print counts. */
export function count (n: number): string {
  return Math.round(n).toLocaleString('en-US')
}

/** A ratio as a percentage with at most one decimal. */
export function percent (r: number): string {
  const p = 100 * r
  return `${p >= 10 ? Math.round(p) : Math.round(p * 10) / 10}%`
}
