// One read of a store over a window: the span it covers and each cell's sums over that span.
// Views (matrix, service) read cells through it and never see the slots behind it.

import { BUCKET_COUNT, PROBE_KIND_NAMES, type Histogram, type ProbeKind } from '@pingfleet/protocol'
import type { CellErrors, LossCounters } from './cell-sum.ts'
import { slotFailures, type SlotFailures } from './failure-index.ts'
import { INBOUND, OUTBOUND, peerKindSlot, type NodeSide } from './node-sums.ts'
import type { SlotArena } from './slot-arena.ts'

export class WindowRead {
  /** Results measured at times in [from, to] (ms since the epoch) are in this read; no others. */
  readonly from: number
  readonly to: number
  private readonly slots: readonly SlotArena[]
  private readonly anyErrors: boolean
  /**
   * Whether every slot taken keeps per-phase latency, so addLatency's phases cover the whole span.
   * False (the node store past its exact window) means the phases would cover only part of it: views
   * leave them out then.
   */
  readonly phasesKept: boolean
  private readonly nodeIndex: ReadonlyMap<string, number>
  private readonly cellKinds: Uint8Array

  /**
   * `slots` must be the store's whole slots that lie inside the window; the store picks them.
   * `nodeIndex`: the store's node name → index of its per-node sums. `cellKinds`: the store's probe
   * kind (PROBE_KIND_NAMES index) per cell id, which failedOf reads by.
   */
  constructor (slots: readonly SlotArena[], from: number, to: number, nodeIndex: ReadonlyMap<string, number> = new Map(), cellKinds: Uint8Array = new Uint8Array(0)) {
    this.slots = slots
    this.nodeIndex = nodeIndex
    this.cellKinds = cellKinds
    this.from = from
    this.to = to
    this.anyErrors = slots.some(s => s.errors.size > 0)
    this.phasesKept = slots.every(s => s.keepsPhases)
  }

  /** No slot in the span: the store held nothing for it. */
  get empty (): boolean { return this.slots.length === 0 }

  /** Whether the cell has any result in the span. */
  has (cellId: number): boolean {
    for (const slot of this.slots) if (slot.has(cellId)) return true
    return false
  }

  /** Whether the cell has at least one failure in the span. */
  failed (cellId: number): boolean {
    if (!this.anyErrors) return false
    for (const slot of this.slots) if (slot.errors.size > 0 && slot.errors.has(cellId)) return true
    return false
  }

  /** The cell's probe count (failures included) in the span. */
  count (cellId: number): number {
    let n = 0
    for (const slot of this.slots) if (slot.has(cellId)) n += slot.countOf(cellId)
    return n
  }

  /**
   * Adds the cell's latency in the span to `latency` and, when given, its loss counters to `loss`
   * and its per-phase latency to `phases` (one histogram per phase, PHASE_NAMES order; complete
   * only when phasesKept); returns its probe count (failures included).
   */
  addLatency (cellId: number, latency: Histogram, loss?: LossCounters, phases?: readonly Histogram[]): number {
    let n = 0
    for (const slot of this.slots) if (slot.has(cellId)) n += slot.addTo(cellId, latency, loss, phases)
    return n
  }

  /** Probes of the cell taken while its agent's event loop was late. */
  lagged (cellId: number): number {
    let n = 0
    for (const slot of this.slots) if (slot.lagged.size > 0) n += slot.lagged.get(cellId) ?? 0
    return n
  }

  /** Calls `visit` once per (reason, raw code) record of the cell; a pair may recur across slots. */
  forEachError (cellId: number, visit: (e: CellErrors) => void): void {
    if (!this.anyErrors) return
    for (const slot of this.slots) {
      if (slot.errors.size === 0) continue
      const list = slot.errors.get(cellId)
      if (list !== undefined) for (const e of list) visit(e)
    }
  }

  /**
   * Many cells at once, slot by slot: adds the probe count of `ids[k]` to `out[k]` and, with
   * `dense`, its latency histogram to `dense` at offset `rowOf[k]` (BUCKET_COUNT per row). Reading
   * each slot in one sweep over ascending ids is cheaper than cell by cell: node-scoped gates read
   * ~100,000 cells of a 1,000-node mesh this way.
   */
  sumMany (ids: ArrayLike<number>, out: Float64Array, dense?: Float64Array, rowOf?: ArrayLike<number>): void {
    for (const slot of this.slots) {
      for (let k = 0; k < ids.length; k++) {
        const id = ids[k]!
        if (dense === undefined) out[k]! += slot.countOf(id)
        else if (slot.has(id)) out[k]! += slot.addToDense(id, dense, rowOf![k]!)
      }
    }
  }

  /**
   * Per node of `nodes`, its inbound and outbound results of peer kind `probe` in the span, over
   * every peer but itself: the sums of the cells node → peer (outbound) and peer → node (inbound),
   * read from per-node sums (a few words per node and slot) instead of the cells. Latency
   * histograms only when `latency`; failures per reason unless `reasons` is false (reasons stay
   * null then). A node the store never saw gets zeros. Throws a RangeError for a kind whose targets
   * are not nodes (those have no node sums).
   */
  nodeSides (probe: ProbeKind, nodes: readonly string[], latency: boolean, reasons = true): { inbound: NodeSide[], outbound: NodeSide[] } {
    const kind = peerKindSlot(probe)
    if (kind === -1) throw new RangeError(`no per-node sums for probe kind ${probe}: its targets are not nodes`)
    const words = (this.nodeIndex.size + 31) >>> 5
    const read = (direction: number): NodeSide[] => nodes.map(name => {
      const side: NodeSide = { samples: 0, errors: 0, reasons: null, peers: 0, dense: latency ? new Float64Array(BUCKET_COUNT) : null }
      const node = this.nodeIndex.get(name)
      if (node === undefined) return side
      const bits = new Uint32Array(words)
      for (const slot of this.slots) slot.sums.read(kind, node, direction, side, bits, side.dense, reasons)
      for (let w = 0; w < words; w++) side.peers += popcount(bits[w]!)
      return side
    })
    return { inbound: read(INBOUND), outbound: read(OUTBOUND) }
  }

  /** Calls `visit(cellId, e)` for each failure record in the span whose cell `wanted` accepts; cost follows the failures, not the cells. */
  forEachErrorWhere (wanted: (cellId: number) => boolean, visit: (cellId: number, e: CellErrors) => void): void {
    if (!this.anyErrors) return
    for (const slot of this.slots) {
      for (const [id, list] of slot.errors) if (wanted(id)) for (const e of list) visit(id, e)
    }
  }

  /**
   * Every cell of kind `probe` with at least one failure in the span, ids ascending: its failures
   * summed over the span, and its (reason, raw code) pair when it has only one in every slot (`pair`
   * indexes `pairs`; -1: several, read them with forEachError). Cost follows the failed cells of
   * that kind only, through each slot's flat failure index (failure-index.ts, built once per slot).
   * Probe counts are not included: sumMany gives them.
   */
  failedOf (probe: ProbeKind): FailedOfKind {
    const kind = PROBE_KIND_NAMES.indexOf(probe)
    const parts: SlotFailures[] = []
    if (this.anyErrors) for (const slot of this.slots) if (slot.errors.size > 0) parts.push(slotFailures(slot, this.cellKinds, PROBE_KIND_NAMES.length))
    const pairs: Array<{ reason: string, raw: string }> = []
    const pairIds = new Map<string, number>()
    // Per part, its pairs' indexes in `pairs`; its cursor and end in kind's range.
    const remap = parts.map(p => Int32Array.from(p.pairs, x => {
      const key = `${x.reason}\u0000${x.raw}`
      let i = pairIds.get(key)
      if (i === undefined) { i = pairs.length; pairIds.set(key, i); pairs.push(x) }
      return i
    }))
    const at = Int32Array.from(parts, p => p.start[kind]!)
    const end = Int32Array.from(parts, p => p.start[kind + 1]!)
    // Room for the largest slot's range, doubled when the union is larger (most cells fail in every slot).
    let room = 16
    for (let s = 0; s < parts.length; s++) room = Math.max(room, end[s]! - at[s]!)
    let ids = new Int32Array(room)
    let errors = new Float64Array(room)
    let pair = new Int32Array(room)
    let n = 0
    // A k-way merge of the slots' sorted ranges (k: the slots in the span, a dozen at most).
    for (;;) {
      let id = -1
      for (let s = 0; s < parts.length; s++) if (at[s]! < end[s]! && (id === -1 || parts[s]!.ids[at[s]!]! < id)) id = parts[s]!.ids[at[s]!]!
      if (id === -1) break
      let sum = 0
      let p = -2
      for (let s = 0; s < parts.length; s++) {
        const j = at[s]!
        if (j >= end[s]! || parts[s]!.ids[j] !== id) continue
        sum += parts[s]!.errors[j]!
        const local = parts[s]!.pair[j]!
        const q = local === -1 ? -1 : remap[s]![local]!
        p = p === -2 || p === q ? q : -1
        at[s]!++
      }
      if (n === ids.length) {
        const grow = <T extends Int32Array | Float64Array>(a: T, b: T): T => { b.set(a); return b }
        ids = grow(ids, new Int32Array(2 * n))
        errors = grow(errors, new Float64Array(2 * n))
        pair = grow(pair, new Int32Array(2 * n))
      }
      ids[n] = id
      errors[n] = sum
      pair[n++] = p
    }
    return { ids: ids.subarray(0, n), errors: errors.subarray(0, n), pair: pair.subarray(0, n), pairs }
  }

  /** Service cells: adds the answers per backend node to `into`. */
  addBackends (cellId: number, into: Map<string, number>): void {
    for (const slot of this.slots) {
      const counts = slot.backends.get(cellId)
      if (counts !== undefined) for (const [node, n] of counts) into.set(node, (into.get(node) ?? 0) + n)
    }
  }
}

/** WindowRead.failedOf's answer: parallel arrays, one position per failed cell. */
export interface FailedOfKind {
  ids: Int32Array
  errors: Float64Array
  /** Index into `pairs`, or -1 when the cell has more than one (reason, raw code) pair. */
  pair: Int32Array
  pairs: ReadonlyArray<{ reason: string, raw: string }>
}

/** Set bits of a 32-bit word (Hacker's Delight, 5-2). */
function popcount (x: number): number {
  x -= (x >>> 1) & 0x55555555
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333)
  x = (x + (x >>> 4)) & 0x0f0f0f0f
  return Math.imul(x, 0x01010101) >>> 24
}
