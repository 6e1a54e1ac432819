// One read of a store over a window: the span it covers and each cell's sums over that span.
// Views (matrix, service) read cells through it and never see the slots behind it.

import type { Histogram } from '@pingfleet/protocol'
import type { CellErrors, LossCounters } from './cell-sum.ts'
import type { SlotArena } from './slot-arena.ts'

export class WindowRead {
  /** Results measured at times in [from, to] (ms since the epoch) are in this read; no others. */
  readonly from: number
  readonly to: number
  private readonly slots: readonly SlotArena[]
  private readonly anyErrors: boolean

  /** `slots` must be the store's whole slots that lie inside the window; the store picks them. */
  constructor (slots: readonly SlotArena[], from: number, to: number) {
    this.slots = slots
    this.from = from
    this.to = to
    this.anyErrors = slots.some(s => s.errors.size > 0)
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
   * Adds the cell's latency in the span to `latency` and, when given, its loss counters to `loss`;
   * returns its probe count (failures included).
   */
  addLatency (cellId: number, latency: Histogram, loss?: LossCounters): number {
    let n = 0
    for (const slot of this.slots) if (slot.has(cellId)) n += slot.addTo(cellId, latency, loss)
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

  /** Calls `visit(cellId, e)` for each failure record in the span whose cell `wanted` accepts; cost follows the failures, not the cells. */
  forEachErrorWhere (wanted: (cellId: number) => boolean, visit: (cellId: number, e: CellErrors) => void): void {
    if (!this.anyErrors) return
    for (const slot of this.slots) {
      for (const [id, list] of slot.errors) if (wanted(id)) for (const e of list) visit(id, e)
    }
  }

  /** Service cells: adds the answers per backend node to `into`. */
  addBackends (cellId: number, into: Map<string, number>): void {
    for (const slot of this.slots) {
      const counts = slot.backends.get(cellId)
      if (counts !== undefined) for (const [node, n] of counts) into.set(node, (into.get(node) ?? 0) + n)
    }
  }
}
