// Applies accepted reports: every cell goes to the node store, and per-report sums go to the
// group store (for fast group matrices) and to the running totals that /metrics exports.

import { BUCKET_COUNT, PEER_PROBE_KINDS, type ProbeKind, type Report } from '@pingfleet/protocol'
import type { AgentEntry, Roster } from './roster.ts'
import type { CellErrors } from './slot-arena.ts'
import type { Store } from './store.ts'
import type { Totals } from './totals.ts'

/** The group of a node that is not (or no longer) in the roster, or lacks the label. */
export const UNKNOWN_GROUP = '(none)'

interface Sum {
  probe: ProbeKind
  dst: string
  count: number
  lagged: number
  dense: Float64Array
  errors: CellErrors[]
}

const isPeerKind = new Set<string>(PEER_PROBE_KINDS)

export interface IngestResult {
  cells: number
  expiredCells: number
}

export class Ingest {
  private readonly nodes: Store
  private readonly groups: Store
  private readonly totals: Totals
  private readonly roster: Roster
  readonly groupLabel: string

  constructor (options: { nodes: Store, groups: Store, totals: Totals, roster: Roster, groupLabel: string }) {
    this.nodes = options.nodes
    this.groups = options.groups
    this.totals = options.totals
    this.roster = options.roster
    this.groupLabel = options.groupLabel
  }

  groupOf (node: string): string {
    return this.roster.get(node)?.labels[this.groupLabel] ?? UNKNOWN_GROUP
  }

  apply (agent: AgentEntry, report: Report): IngestResult {
    const at = report.end
    const srcGroup = agent.labels[this.groupLabel] ?? UNKNOWN_GROUP
    const sums = new Map<string, Sum>()
    let expiredCells = 0
    for (const cell of report.cells) {
      const id = this.nodes.cellId(agent.node, cell.probe, cell.target)
      if (!this.nodes.add(id, at, cell.count, cell.latency, cell.errors, cell.lagged)) expiredCells++
      const peer = isPeerKind.has(cell.probe)
      const dst = peer ? this.groupOf(cell.target) : cell.target
      const key = cell.probe + '\u0000' + dst
      let sum = sums.get(key)
      if (sum === undefined) sums.set(key, sum = { probe: cell.probe, dst, count: 0, lagged: 0, dense: new Float64Array(BUCKET_COUNT), errors: [] })
      sum.count += cell.count
      sum.lagged += cell.lagged ?? 0
      const latency = cell.latency
      for (let i = 0; i < latency.length; i += 2) sum.dense[latency[i]!]! += latency[i + 1]!
      let failed = 0
      if (cell.errors !== undefined) {
        for (const e of cell.errors) {
          failed += e.count
          const same = sum.errors.find(x => x.reason === e.reason && x.raw === e.raw)
          if (same !== undefined) same.count += e.count
          else sum.errors.push({ reason: e.reason, raw: e.raw, count: e.count })
        }
      }
      this.totals.node(agent.node, 'out', cell.probe, cell.count, failed)
      if (peer) this.totals.node(cell.target, 'in', cell.probe, cell.count, failed)
    }
    for (const sum of sums.values()) {
      const sparse: number[] = []
      for (let i = 0; i < BUCKET_COUNT; i++) if (sum.dense[i]! > 0) sparse.push(i, sum.dense[i]!)
      const id = this.groups.cellId(srcGroup, sum.probe, sum.dst)
      this.groups.add(id, at, sum.count, sparse, sum.errors, sum.lagged)
      this.totals.pair(sum.probe, srcGroup, sum.dst, sum.count, sum.dense, sum.errors)
    }
    return { cells: report.cells.length, expiredCells }
  }
}
