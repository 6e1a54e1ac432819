// A slot's failure records as flat arrays, per probe kind and sorted by cell id: built once per slot
// (and again only when the slot takes another failure), so a read that wants every failed cell of a
// kind walks typed arrays instead of the slot's map of record lists on every evaluation.

import type { CellErrors } from './cell-sum.ts'
import type { SlotArena } from './slot-arena.ts'

/** One slot's failures: kind `k`'s cells are positions [start[k], start[k + 1]), ids ascending. */
export interface SlotFailures {
  start: Int32Array
  ids: Int32Array
  /** The cell's failures in the slot (all its records summed). */
  errors: Float64Array
  /** Index into `pairs` of the cell's one (reason, raw code) pair, or -1 when it has several. */
  pair: Int32Array
  pairs: ReadonlyArray<{ reason: string, raw: string }>
}

const cache = new WeakMap<SlotArena, { version: number, kinds: Uint8Array, index: SlotFailures }>()

/**
 * The slot's failures by kind (`kindOf[cellId]`, below `kinds`; a cell past kindOf's end is left
 * out), cached until the slot's failures change (SlotArena.errorsVersion). Cost to build: one walk
 * of the slot's failure map and a sort per kind; a cached one costs nothing.
 */
export function slotFailures (slot: SlotArena, kindOf: Uint8Array, kinds: number): SlotFailures {
  const hit = cache.get(slot)
  if (hit !== undefined && hit.version === slot.errorsVersion && hit.kinds === kindOf) return hit.index
  const index = build(slot.errors, kindOf, kinds)
  cache.set(slot, { version: slot.errorsVersion, kinds: kindOf, index })
  return index
}

function build (errors: ReadonlyMap<number, readonly CellErrors[]>, kindOf: Uint8Array, kinds: number): SlotFailures {
  const start = new Int32Array(kinds + 1)
  for (const id of errors.keys()) if (id < kindOf.length) start[kindOf[id]! + 1]!++
  for (let k = 0; k < kinds; k++) start[k + 1]! += start[k]!
  const ids = new Int32Array(start[kinds]!)
  const fill = start.slice(0, kinds)
  for (const id of errors.keys()) if (id < kindOf.length) ids[fill[kindOf[id]!]!++] = id
  for (let k = 0; k < kinds; k++) ids.subarray(start[k]!, start[k + 1]!).sort()
  const sums = new Float64Array(ids.length)
  const pair = new Int32Array(ids.length)
  const pairs: Array<{ reason: string, raw: string }> = []
  const pairIds = new Map<string, number>()
  // Most cells repeat the last pair: compared first, no key is built for them.
  let last: CellErrors | null = null
  let lastPair = -1
  for (let j = 0; j < ids.length; j++) {
    const list = errors.get(ids[j]!)!
    let n = 0
    for (const e of list) n += e.count
    sums[j] = n
    if (list.length !== 1) { pair[j] = -1; continue }
    const e = list[0]!
    if (last !== null && e.reason === last.reason && e.raw === last.raw) { pair[j] = lastPair; continue }
    const key = `${e.reason}\u0000${e.raw}`
    let p = pairIds.get(key)
    if (p === undefined) { p = pairs.length; pairIds.set(key, p); pairs.push({ reason: e.reason, raw: e.raw }) }
    pair[j] = lastPair = p
    last = e
  }
  return { start, ids, errors: sums, pair, pairs }
}
