// Optional report content added after protocol v1 shipped: cell fields and probe kinds. The aggregator
// names what it accepts in FEATURES_HEADER (messages.ts) of its websocket upgrade answer; the agent
// leaves out whatever its aggregator did not name. So a newer agent reports to an older aggregator
// (which rejects unknown fields and kinds) and an older agent to a newer one (every addition is optional).

import type { Cell, Report } from './messages.ts'

export const REPORT_FEATURES = {
  'slow-connects': 'the `slowConnects` cell field (handshakes of 1 s or more: SYN retransmits)',
  udp: 'cells of the `udp` probe kind, with their `sent`, `lost`, `jitterUs` and `jitterPairs` fields',
  phases: 'the `phases` cell field (per-phase latency histograms: dns, connect, tls, firstByte)'
} as const satisfies Record<string, string>

export type ReportFeature = keyof typeof REPORT_FEATURES
export const REPORT_FEATURE_NAMES = Object.keys(REPORT_FEATURES) as ReportFeature[]

/** The features a header value names; unknown names (from a newer aggregator) are ignored. Absent: none. */
export function parseFeatures (value: string | string[] | undefined): Set<ReportFeature> {
  const out = new Set<ReportFeature>()
  const text = Array.isArray(value) ? value.join(',') : value ?? ''
  for (const part of text.split(',')) {
    const name = part.trim()
    if (Object.hasOwn(REPORT_FEATURES, name)) out.add(name as ReportFeature)
  }
  return out
}

/** True when the report uses a feature outside `accepted` (so it must be downgraded before sending). */
export function needsDowngrade (report: Report, accepted: ReadonlySet<string>): boolean {
  const slow = accepted.has('slow-connects')
  const udp = accepted.has('udp')
  const phases = accepted.has('phases')
  if (slow && udp && phases) return false
  for (const cell of report.cells) {
    if (!udp && cell.probe === 'udp') return true
    if (!slow && cell.slowConnects !== undefined) return true
    if (!phases && cell.phases !== undefined) return true
  }
  return false
}

/**
 * A copy of the report without what `accepted` lacks: `udp` cells dropped, `slowConnects` and `phases`
 * removed. Cells that need no change are the same objects; the input is not modified.
 */
export function downgradeReport (report: Report, accepted: ReadonlySet<string>): Report {
  const keepSlow = accepted.has('slow-connects')
  const keepPhases = accepted.has('phases')
  const cells: Cell[] = []
  for (const cell of report.cells) {
    if (cell.probe === 'udp' && !accepted.has('udp')) continue
    const dropSlow = !keepSlow && cell.slowConnects !== undefined
    const dropPhases = !keepPhases && cell.phases !== undefined
    if (!dropSlow && !dropPhases) {
      cells.push(cell)
      continue
    }
    const rest = { ...cell }
    if (dropSlow) delete rest.slowConnects
    if (dropPhases) delete rest.phases
    cells.push(rest)
  }
  return { ...report, cells }
}
