// Applies accepted reports: every cell goes to the node store, and per-report sums go to the
// group store (for fast group matrices) and to the running totals that /metrics exports.

import { BUCKET_COUNT, PEER_PROBE_KINDS, type ProbeKind, type Report } from '@pingfleet/protocol'
import type { AgentHealth } from '../fleet/agent-health.ts'
import type { Fleet } from '../fleet/fleet.ts'
import type { AgentEntry } from '../fleet/roster.ts'
import { withCounters, type CellErrors, type Counters } from './slot-arena.ts'
import type { Store } from './store.ts'
import type { Totals } from './totals.ts'

interface Sum {
  probe: ProbeKind
  dst: string
  count: number
  lagged: number
  failed: number
  dense: Float64Array
  errors: CellErrors[]
  /** Loss counters summed over the report's cells; see slot-arena COUNTER_NAMES. */
  loss: Required<Counters> | null
}

/** A cell's loss counters, or null when it carries none (the common case: no allocation). */
function cellCounters (cell: Report['cells'][number]): Required<Counters> | null {
  if (cell.slowConnects === undefined && cell.sent === undefined && cell.lost === undefined && cell.jitterUs === undefined && cell.jitterPairs === undefined) return null
  return { slowConnects: cell.slowConnects ?? 0, sent: cell.sent ?? 0, lost: cell.lost ?? 0, jitterUs: cell.jitterUs ?? 0, jitterPairs: cell.jitterPairs ?? 0 }
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

/**
 * What a report's cells resolve to, remembered per agent: agents send the same targets in the same
 * order every interval, so a cell whose probe and target match the last report skips every map
 * lookup. Rebuilt when the roster changes, since a target's group may have moved.
 */
interface Layout {
  revision: number
  /** Node-store cell of each position; its probe and target are the store's interned strings. */
  ids: Int32Array
  /** Index into `sumKeys`: the (probe, destination) the cell is summed under. */
  sumOf: Int32Array
  sumKeys: Array<{ probe: ProbeKind, dst: string }>
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
   * by default the report's own end).
   */
  apply (agent: AgentEntry, report: Report, at = report.end): IngestResult {
    const srcGroup = this.fleet.groupOfAgent(agent)
    const slot = this.nodes.slotAt(at)
    if (slot === null) this.nodes.expiredCells(report.cells.length)
    const cells = report.cells
    const layout = this.layoutFor(agent.node, cells.length)
    // Per report, cells are summed by (probe, destination) before they reach the group store.
    const sums: Array<Sum | undefined> = []
    const own = { count: 0, lagged: 0, overloaded: 0 }
    for (let i = 0; i < cells.length; i++) {
      const cell = cells[i]!
      let id = layout.ids[i]!
      if (id === -1 || this.nodes.targetName(id) !== cell.target || this.nodes.probeOf(id) !== cell.probe) {
        id = this.resolve(layout, i, agent.node, cell.probe, cell.target)
      }
      const counters = cellCounters(cell)
      if (slot !== null) {
        slot.add(id, cell.count, counters === null ? cell.latency : withCounters(cell.latency, counters), cell.errors, cell.lagged)
        if (cell.backends !== undefined) slot.addBackends(id, cell.backends)
      }
      const k = layout.sumOf[i]!
      let sum = sums[k]
      if (sum === undefined) {
        const key = layout.sumKeys[k]!
        sum = sums[k] = { probe: key.probe, dst: key.dst, count: 0, lagged: 0, failed: 0, dense: new Float64Array(BUCKET_COUNT), errors: [], loss: null }
      }
      if (counters !== null) {
        const loss = sum.loss ??= { slowConnects: 0, sent: 0, lost: 0, jitterUs: 0, jitterPairs: 0 }
        loss.slowConnects += counters.slowConnects
        loss.sent += counters.sent
        loss.lost += counters.lost
        loss.jitterUs += counters.jitterUs
        loss.jitterPairs += counters.jitterPairs
      }
      sum.count += cell.count
      own.count += cell.count
      if (cell.lagged !== undefined) {
        sum.lagged += cell.lagged
        own.lagged += cell.lagged
      }
      const latency = cell.latency
      for (let j = 0; j < latency.length; j += 2) sum.dense[latency[j]!]! += latency[j + 1]!
      let failed = 0
      if (cell.errors !== undefined) {
        for (const e of cell.errors) {
          failed += e.count
          if (e.reason === 'AGENT_OVERLOADED') own.overloaded += e.count
          const same = sum.errors.find(x => x.reason === e.reason && x.raw === e.raw)
          if (same !== undefined) same.count += e.count
          else sum.errors.push({ reason: e.reason, raw: e.raw, count: e.count })
        }
      }
      sum.failed += failed
      const dstNode = layout.dstNodes[i]
      if (dstNode !== null && dstNode !== undefined) this.totals.node(dstNode, 'in', cell.probe, cell.count, failed)
    }
    const groupSlot = this.groups.slotAt(at)
    for (const sum of sums) {
      if (sum === undefined) continue
      const sparse: number[] = []
      for (let i = 0; i < BUCKET_COUNT; i++) if (sum.dense[i]! > 0) sparse.push(i, sum.dense[i]!)
      if (groupSlot !== null) groupSlot.add(this.groups.cellId(srcGroup, sum.probe, sum.dst), sum.count, sum.loss === null ? sparse : withCounters(sparse, sum.loss), sum.errors, sum.lagged)
      this.totals.pair(sum.probe, srcGroup, sum.dst, sum.count, sum.dense, sum.errors, sum.loss ?? undefined)
      this.totals.node(agent.node, 'out', sum.probe, sum.count, sum.failed)
    }
    this.health?.observe(agent.node, at, own, report.cpu)
    return { cells: cells.length, expiredCells: slot === null ? cells.length : 0 }
  }

  private layoutFor (node: string, cells: number): Layout {
    let layout = this.layouts.get(node)
    if (layout === undefined || layout.revision !== this.fleet.revision || layout.ids.length < cells) {
      layout = {
        revision: this.fleet.revision,
        ids: new Int32Array(Math.max(cells, 16)).fill(-1),
        sumOf: new Int32Array(Math.max(cells, 16)),
        sumKeys: [],
        dstNodes: []
      }
      this.layouts.set(node, layout)
    }
    return layout
  }

  private resolve (layout: Layout, i: number, src: string, probe: ProbeKind, target: string): number {
    const id = this.nodes.cellId(src, probe, target)
    const interned = this.nodes.targetName(id)
    // Group columns are the peer's group: mtu sizes fold together there (the node store keeps them apart).
    const dstNode = isPeerKind.has(probe) ? peerNode(interned) : null
    const dst = dstNode !== null ? this.fleet.groupOf(dstNode) : interned
    let k = layout.sumKeys.findIndex(key => key.probe === probe && key.dst === dst)
    if (k === -1) k = layout.sumKeys.push({ probe, dst }) - 1
    layout.ids[i] = id
    layout.sumOf[i] = k
    layout.dstNodes[i] = dstNode
    return id
  }
}
