// The service view: for each Service target and source group, which backends answered through
// the Service and how often, and which backends pod probes reach directly but the Service never hands out.

import { formatDuration } from '@pingfleet/protocol'
import type { Fleet } from '../fleet/fleet.ts'
import type { Store } from '../store/store.ts'
import type { WindowRead } from '../store/window-read.ts'

export interface ServiceViewSources {
  /** The node store (node × target): service cells carry the backends that answered. */
  nodes: Store
  /** Groups rows by node or by a label. */
  fleet: Fleet
  now: () => number
}

export interface ServiceRow {
  service: string
  src: string
  /** Service probes from this group in the window, failed ones included. */
  samples: number
  errors: number
  errorsByReason: Record<string, number>
  backends: Array<{ node: string, count: number }>
  /**
   * Nodes this group's pod probes reached without a single error, that never answered through the
   * Service. Empty until `judged`.
   */
  flagged: string[]
  /** Enough answers arrived (MIN_ANSWERS_PER_BACKEND per candidate) that a never-seen backend means something. */
  judged: boolean
}

/** Answers per candidate backend before a missing one is flagged: even random picks miss one only ~e^-5 of the time. */
export const MIN_ANSWERS_PER_BACKEND = 5

export interface ServiceView {
  window: string
  /** The span the rows really cover (ISO 8601): see Store.read. */
  from: string
  to: string
  groupBy: string
  generatedAt: string
  services: string[]
  rows: ServiceRow[]
}

interface Acc {
  service: string
  src: string
  samples: number
  errors: number
  reasons: Map<string, number>
  backends: Map<string, number>
}

/** Sums one cell over the window: probe count, errors by reason (into `reasons`), and backends. */
function collect (read: WindowRead, id: number, reasons?: Map<string, number>, backends?: Map<string, number>): { samples: number, errors: number } {
  const samples = read.count(id)
  if (samples === 0) return { samples, errors: 0 }
  let errors = 0
  read.forEachError(id, e => {
    errors += e.count
    reasons?.set(e.reason, (reasons.get(e.reason) ?? 0) + e.count)
  })
  if (backends !== undefined) read.addBackends(id, backends)
  return { samples, errors }
}

/**
 * The service view over the last `windowMs` (ms) at `deps.now()`: one row per Service target and
 * source group (`groupBy`: 'node' or a label key), sorted by service then group; only `service`'s
 * rows when given. Reads every cell of the node store once. Throws nothing.
 */
export function buildServiceView (deps: ServiceViewSources, options: { windowMs: number, groupBy: string, service?: string }): ServiceView {
  const now = deps.now()
  const read = deps.nodes.read(options.windowMs, now)
  const groupOf = deps.fleet.grouping(options.groupBy)
  const rows = new Map<string, Acc>()
  /** Per source group, the nodes its pod probes reached, and whether any of those probes failed. */
  const direct = new Map<string, Map<string, boolean>>()
  const cells = deps.nodes.cellCount
  for (let id = 0; id < cells; id++) {
    const key = deps.nodes.key(id)
    if (key.probe === 'service') {
      if (options.service !== undefined && key.target !== options.service) continue
      const src = groupOf(key.src)
      const rowKey = key.target + '\u0000' + src
      let acc = rows.get(rowKey)
      if (acc === undefined) rows.set(rowKey, acc = { service: key.target, src, samples: 0, errors: 0, reasons: new Map(), backends: new Map() })
      const sum = collect(read, id, acc.reasons, acc.backends)
      acc.samples += sum.samples
      acc.errors += sum.errors
    } else if (key.probe === 'pod') {
      const { samples, errors } = collect(read, id)
      if (samples === 0) continue
      const src = groupOf(key.src)
      let reached = direct.get(src)
      if (reached === undefined) direct.set(src, reached = new Map())
      reached.set(key.target, (reached.get(key.target) ?? true) && errors === 0)
    }
  }
  const out: ServiceRow[] = []
  for (const acc of rows.values()) {
    if (acc.samples === 0) continue
    let answered = 0
    for (const n of acc.backends.values()) answered += n
    const candidates = [...direct.get(acc.src) ?? []].filter(([, green]) => green).map(([node]) => node)
    const judged = answered >= MIN_ANSWERS_PER_BACKEND * candidates.length
    const flagged = judged ? candidates.filter(node => !acc.backends.has(node)) : []
    out.push({
      service: acc.service,
      src: acc.src,
      samples: acc.samples,
      errors: acc.errors,
      errorsByReason: Object.fromEntries(acc.reasons),
      backends: [...acc.backends].map(([node, count]) => ({ node, count })).sort((a, b) => a.node.localeCompare(b.node)),
      flagged: flagged.sort(),
      judged
    })
  }
  out.sort((a, b) => a.service.localeCompare(b.service) || a.src.localeCompare(b.src))
  return {
    window: formatDuration(options.windowMs),
    from: new Date(read.from).toISOString(),
    to: new Date(read.to).toISOString(),
    groupBy: options.groupBy,
    generatedAt: new Date(now).toISOString(),
    services: [...new Set(out.map(r => r.service))],
    rows: out
  }
}

