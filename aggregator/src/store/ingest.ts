// Applies accepted reports: every cell goes to the node store, and per-report sums go to the
// group store (for fast group matrices) and to the running totals that /metrics exports.

import { PEER_PROBE_KINDS, type ProbeKind, type Report } from '@pingfleet/protocol'
import type { AgentHealth } from '../fleet/agent-health.ts'
import type { Fleet } from '../fleet/fleet.ts'
import type { AgentEntry } from '../fleet/roster.ts'
import { CellSum, hasLoss, type CellInput } from './cell-sum.ts'
import { peerNode } from './node-sums.ts'
import type { Store } from './store.ts'
import type { Totals } from './totals.ts'

const isPeerKind = new Set<string>(PEER_PROBE_KINDS)

// peerNode lives with the per-node sums, which attribute cells to nodes too; views import it from here.
export { peerNode }

/**
 * What a report's cells resolve to, remembered per agent: agents send the same targets in the same
 * order every interval, so a cell whose probe and target match the last report skips every map
 * lookup. Rebuilt when the roster changes, since a target's group may have moved.
 */
interface Layout {
  revision: number
  /** The agent's own group when the layout was built. */
  srcGroup: string
  /** Node-store cell of each position; its probe and target are the store's interned strings. */
  ids: Int32Array
  /** Index into `sums`: the (probe, destination group or target) the cell is summed under. */
  sumOf: Int32Array
  /** Per position, this report: 1 when the cell carries loss counters (looked up once, used twice). */
  loss: Uint8Array
  /** Per (probe, destination): its key, its group-store cell and the sum of one report, reused. */
  sumKeys: Array<{ probe: ProbeKind, dst: string }>
  groupIds: number[]
  sums: CellSum[]
  /** The peer node for peer kinds, else null. */
  dstNodes: Array<string | null>
}

export interface IngestResult {
  cells: number
  expiredCells: number
}

export class Ingest {
  private readonly nodes: Store
  private readonly groups: Store
  private readonly totals: Totals
  private readonly fleet: Fleet
  private readonly layouts = new Map<string, Layout>()
  private readonly health: AgentHealth | undefined

  /**
   * Group sums are filed under the fleet model's groups. `health`, when given, gets every report's
   * sums (count, lagged, AGENT_OVERLOADED) and its cpu counters. An agent's cached layout is
   * dropped when the roster expires it.
   */
  constructor (options: { nodes: Store, groups: Store, totals: Totals, fleet: Fleet, health?: AgentHealth }) {
    this.health = options.health
    this.nodes = options.nodes
    this.groups = options.groups
    this.totals = options.totals
    this.fleet = options.fleet
    this.fleet.roster.on('expire', node => this.layouts.delete(node))
  }

  /**
   * Files one accepted report at time `at` (ms, the aggregator's clock: where the stream placed it,
   * by default the report's own end): its cells to the node store, their sums per (probe,
   * destination group) to the group store and the totals, and the agent's own sums to its health.
   */
  apply (agent: AgentEntry, report: Report, at = report.end): IngestResult {
    const cells = report.cells
    const layout = this.layoutFor(agent, cells)
    const own = { count: 0, lagged: 0, overloaded: 0 }
    const sums = layout.sums
    const loss = layout.loss
    for (let i = 0; i < cells.length; i++) {
      const cell = cells[i]!
      // Whether the cell carries loss counters, looked up once for its sum and for the store.
      const hasCounters = hasLoss(cell)
      loss[i] = hasCounters ? 1 : 0
      const failed = sums[layout.sumOf[i]!]!.add(cell, hasCounters)
      own.count += cell.count
      if (cell.lagged !== undefined) own.lagged += cell.lagged
      if (cell.errors !== undefined) for (const e of cell.errors) if (e.reason === 'AGENT_OVERLOADED') own.overloaded += e.count
      const dstNode = layout.dstNodes[i]
      if (dstNode !== null && dstNode !== undefined) this.totals.node(dstNode, 'in', cell.probe, cell.count, failed)
    }
    const stored = this.nodes.write(at, layout.ids, cells, cells.length, loss)
    // Only the sums this report's cells went to (an earlier report's targets may be gone).
    const groupIds: number[] = []
    const used: CellSum[] = []
    const inputs: CellInput[] = []
    for (let k = 0; k < sums.length; k++) {
      const sum = sums[k]!
      if (sum.cells === 0) continue
      groupIds.push(layout.groupIds[k]!)
      used.push(sum)
      inputs.push(sum.input())
      const key = layout.sumKeys[k]!
      this.totals.pair(key.probe, layout.srcGroup, key.dst, sum)
      this.totals.node(agent.node, 'out', key.probe, sum.count, sum.failed)
    }
    this.groups.write(at, groupIds, inputs)
    for (const sum of used) sum.reset()
    this.health?.observe(agent.node, at, own, report.cpu)
    return { cells: cells.length, expiredCells: stored ? 0 : cells.length }
  }

  /** The agent's layout for this report, every position resolved. */
  private layoutFor (agent: AgentEntry, cells: Report['cells']): Layout {
    const srcGroup = this.fleet.groupOfAgent(agent)
    let layout = this.layouts.get(agent.node)
    if (layout === undefined || layout.revision !== this.fleet.revision || layout.srcGroup !== srcGroup || layout.ids.length < cells.length) {
      const size = Math.max(cells.length, 16)
      layout = { revision: this.fleet.revision, srcGroup, ids: new Int32Array(size).fill(-1), sumOf: new Int32Array(size), loss: new Uint8Array(size), sumKeys: [], groupIds: [], sums: [], dstNodes: [] }
      this.layouts.set(agent.node, layout)
    }
    for (let i = 0; i < cells.length; i++) {
      const cell = cells[i]!
      const id = layout.ids[i]!
      if (id === -1 || this.nodes.targetName(id) !== cell.target || this.nodes.probeOf(id) !== cell.probe) this.resolve(layout, i, agent.node, cell.probe, cell.target)
    }
    return layout
  }

  private resolve (layout: Layout, i: number, src: string, probe: ProbeKind, target: string): void {
    const id = this.nodes.cellId(src, probe, target)
    const interned = this.nodes.targetName(id)
    // Group columns are the peer's group: mtu sizes fold together there (the node store keeps them apart).
    const dstNode = isPeerKind.has(probe) ? peerNode(interned) : null
    const dst = dstNode !== null ? this.fleet.groupOf(dstNode) : interned
    let k = layout.sumKeys.findIndex(key => key.probe === probe && key.dst === dst)
    if (k === -1) {
      k = layout.sumKeys.push({ probe, dst }) - 1
      layout.groupIds.push(this.groups.cellId(layout.srcGroup, probe, dst))
      layout.sums.push(new CellSum())
    }
    layout.ids[i] = id
    layout.sumOf[i] = k
    layout.dstNodes[i] = dstNode
  }
}
