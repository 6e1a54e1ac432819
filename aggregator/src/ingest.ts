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
  failed: number
  dense: Float64Array
  errors: CellErrors[]
}

const isPeerKind = new Set<string>(PEER_PROBE_KINDS)

/**
 * The peer node a peer-kind target names: `pod` targets are node names, `mtu` targets are
 * `<node>/<size>`. Node names never contain `/`, so everything from the last one is the size.
 */
export function peerNode (target: string): string {
  const slash = target.lastIndexOf('/')
  return slash === -1 ? target : target.slice(0, slash)
}

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
    const slot = this.nodes.slotAt(at)
    if (slot === null) this.nodes.expiredCells(report.cells.length)
    // Per report, cells are summed by (probe, destination) before they reach the group store.
    const sums = new Map<string, Map<string, Sum>>()
    for (const cell of report.cells) {
      if (slot !== null) {
        const id = this.nodes.cellId(agent.node, cell.probe, cell.target)
        slot.add(id, cell.count, cell.latency, cell.errors, cell.lagged)
        if (cell.backends !== undefined) slot.addBackends(id, cell.backends)
      }
      const peer = isPeerKind.has(cell.probe)
      // Group columns are the peer's group: mtu sizes fold together there (the node store keeps them apart).
      const dstNode = peer ? peerNode(cell.target) : cell.target
      const dst = peer ? this.groupOf(dstNode) : cell.target
      let byDst = sums.get(cell.probe)
      if (byDst === undefined) sums.set(cell.probe, byDst = new Map())
      let sum = byDst.get(dst)
      if (sum === undefined) byDst.set(dst, sum = { probe: cell.probe, dst, count: 0, lagged: 0, failed: 0, dense: new Float64Array(BUCKET_COUNT), errors: [] })
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
      sum.failed += failed
      if (peer) this.totals.node(dstNode, 'in', cell.probe, cell.count, failed)
    }
    const groupSlot = this.groups.slotAt(at)
    for (const byDst of sums.values()) {
      for (const sum of byDst.values()) {
        const sparse: number[] = []
        for (let i = 0; i < BUCKET_COUNT; i++) if (sum.dense[i]! > 0) sparse.push(i, sum.dense[i]!)
        if (groupSlot !== null) groupSlot.add(this.groups.cellId(srcGroup, sum.probe, sum.dst), sum.count, sparse, sum.errors, sum.lagged)
        this.totals.pair(sum.probe, srcGroup, sum.dst, sum.count, sum.dense, sum.errors)
        this.totals.node(agent.node, 'out', sum.probe, sum.count, sum.failed)
      }
    }
    return { cells: report.cells.length, expiredCells: slot === null ? report.cells.length : 0 }
  }
}
