// One time slot of probe results for every cell, packed in typed arrays so a 1,000-node mesh
// fits in memory. Records chain per cell while the slot is open; compact() makes one record each.
// The packing is this file's alone: the rest of the store reads and writes through its methods.

import { BUCKET_COUNT, type Histogram } from '@pingfleet/protocol'
import { hasLoss, LOSS_NAMES, type CellErrors, type CellInput, type CellPhases, type LossCounters } from './cell-sum.ts'
import { NodeSums } from './node-sums.ts'

// A record is [next, count << 9 | pairs, pair…]; a pair packs bucket (11 bits) and count (21 bits).
// 11 bits: phase buckets (below) reach 1,991. A count past 21 bits (2,097,151) is split over pairs of
// the same bucket, as add() always did; a latency bucket of one cell in one slot rarely gets there.
export const PAIR_BITS = 21
export const PAIR_COUNT_MASK = (1 << PAIR_BITS) - 1
const HEADER_PAIRS_BITS = 9
const MAX_PAIRS = (1 << HEADER_PAIRS_BITS) - 1
const MAX_RECORD_COUNT = 2 ** (32 - HEADER_PAIRS_BITS) - 1
const NONE = -1

/**
 * Per-cell loss counters ride in a record as extra pairs whose bucket lies past the latency buckets
 * (those end at BUCKET_COUNT - 1 = 369; a pair's bucket field has 11 bits). They add, fold and merge
 * exactly like latency counts, and cost one word only where non-zero. Readers route buckets from
 * COUNTER_BASE on to counters: counter `i` (LOSS_NAMES order) is bucket COUNTER_BASE + i.
 */
export const COUNTER_BASE = 500

/**
 * Per-phase latency rides the same way: phase `p` (PHASE_NAMES order: dns, connect, tls, firstByte)
 * bucket `b` is pair bucket PHASE_BASE + p * BUCKET_COUNT + b, so 512…1,991, past the counters. Sorted
 * pairs therefore end with the phase pairs, which is how a slot that keeps no phases drops them on a
 * fold (keepsPhases). A phase adds one word per non-empty bucket, only where a cell carries it.
 */
export const PHASE_BASE = 512
const PHASE_END = PHASE_BASE + 4 * BUCKET_COUNT
const CONNECT_BASE = PHASE_BASE + BUCKET_COUNT
const FIRST_BYTE_BASE = PHASE_BASE + 3 * BUCKET_COUNT

/**
 * An inline cell: the dominant cell of an interval slot (one probe; at most one bucket, of count 1,
 * in each of latency, connect and firstByte; no other phase, no loss counter) lives in its head word
 * instead of a record of 2 + 3 words: bit 31 set, then three 9-bit buckets (latency at bit 18,
 * connect at 9, firstByte at 0), INLINE_ABSENT where the cell has none. Buckets end at 369, so an
 * inline word is never NONE (-1) and never an offset (≥ 0): `head < NONE` tells it. A second record
 * for the cell spills it to a record first (spill()), so an inline cell is never chained.
 */
const INLINE_FLAG = 1 << 31
const INLINE_ABSENT = 511
const INLINE_BITS = 9

/** The inline word of one probe with the given buckets (INLINE_ABSENT: none). */
function inlineWord (latency: number, connect: number, firstByte: number): number {
  return INLINE_FLAG | (latency << (2 * INLINE_BITS)) | (connect << INLINE_BITS) | firstByte
}

/** Whether a one-probe histogram fits an inline field: empty, or one bucket of count 1. */
function inlineable (h: ArrayLike<number> | undefined): boolean {
  return h === undefined || h.length === 0 || (h.length === 2 && h[1] === 1 && h[0]! < BUCKET_COUNT)
}

/** The bucket of an inlineable histogram, or INLINE_ABSENT. */
function inlineBucket (h: ArrayLike<number> | undefined): number {
  return h === undefined || h.length === 0 ? INLINE_ABSENT : h[0]!
}

/** A cell's phase histograms (named reads: a keyed read is slow on the many shapes of cells), PHASE_NAMES order. */
function phaseList (phases: CellPhases): Array<ArrayLike<number> | undefined> {
  return [phases.dns, phases.connect, phases.tls, phases.firstByte]
}

/** `latency` (already with any counters) with the phase pairs appended, indexes still ascending. */
export function withPhases (latency: ArrayLike<number>, phases: CellPhases): number[] {
  const out = Array.from(latency)
  const list = phaseList(phases)
  for (let p = 0; p < list.length; p++) {
    const h = list[p]
    if (h === undefined) continue
    for (let i = 0; i < h.length; i += 2) out.push(PHASE_BASE + p * BUCKET_COUNT + h[i]!, h[i + 1]!)
  }
  return out
}

/**
 * A sparse histogram with the non-zero counters appended as pairs (indexes stay ascending), ready for
 * add(). Returns `latency` itself when every counter is zero or absent.
 */
export function withCounters (latency: ArrayLike<number>, counters: Partial<LossCounters>): ArrayLike<number> {
  let out: number[] | undefined
  // Named reads, LOSS_NAMES order: a keyed read by name would be slow on the many shapes of cells.
  const values = [counters.slowConnects, counters.sent, counters.lost, counters.jitterUs, counters.jitterPairs]
  for (let i = 0; i < values.length; i++) {
    const n = values[i]
    if (n === undefined || n <= 0) continue
    out ??= Array.from(latency)
    out.push(COUNTER_BASE + i, n)
  }
  return out ?? latency
}

export class SlotArena {
  readonly start: number
  readonly width: number
  /** Whether this slot files per-phase latency; a slot that does not drops it on add and on fold. */
  readonly keepsPhases: boolean
  private head: Int32Array
  private data: Uint32Array
  private used = 0
  private chained = false
  /** Failures are rare, so they live beside the packed data. */
  readonly errors = new Map<number, CellErrors[]>()
  /** Bumped whenever `errors` changes: failure-index.ts rebuilds its flat copy of a slot's failures only then. */
  errorsVersion = 0
  readonly lagged = new Map<number, number>()
  /** Service cells only: answers per backend node. */
  readonly backends = new Map<number, Map<string, number>>()
  /** The same slot's results summed per node (the store files them beside the cells). */
  sums = new NodeSums()

  constructor (start: number, width: number, cellCapacity = 1024, keepsPhases = true) {
    this.start = start
    this.width = width
    this.keepsPhases = keepsPhases
    this.head = new Int32Array(cellCapacity).fill(NONE)
    // One word per cell to start: most interval-slot cells are inline and need none (see INLINE_FLAG).
    this.data = new Uint32Array(Math.max(1024, cellCapacity))
  }

  get end (): number { return this.start + this.width }
  get bytes (): number {
    return this.head.byteLength + this.data.byteLength + this.errors.size * 96 + this.lagged.size * 32 + this.backends.size * 160 + this.sums.bytes
  }

  /**
   * Adds one cell's results for one report: latency, loss counters, per-phase latency (when the slot
   * keeps phases), errors, lagged and backends. `loss`: whether the cell carries loss counters (see
   * CellSum.add).
   */
  addCell (cellId: number, cell: CellInput, loss = hasLoss(cell)): void {
    const latency = loss ? withCounters(cell.latency, cell) : cell.latency
    const phases = this.keepsPhases ? cell.phases : undefined
    if (cell.count === 1 && this.writeInline(cellId, latency, phases)) {
      // The common interval-slot cell: its head word holds it.
    } else if (phases === undefined || !this.writePhased(cellId, cell.count, latency, phases)) {
      this.add(cellId, cell.count, phases === undefined ? latency : withPhases(latency, phases))
    }
    if (cell.errors !== undefined && cell.errors.length > 0) this.addErrors(cellId, cell.errors)
    if (cell.lagged !== undefined && cell.lagged > 0) this.lagged.set(cellId, (this.lagged.get(cellId) ?? 0) + cell.lagged)
    if (cell.backends !== undefined) this.addBackends(cellId, cell.backends)
  }

  /**
   * One probe's results as an inline cell (INLINE_FLAG), when they fit one and the cell has nothing
   * yet in this slot. Returns false, writing nothing, otherwise.
   */
  private writeInline (cellId: number, latency: ArrayLike<number>, phases: CellPhases | undefined): boolean {
    if (cellId >= this.head.length) this.growHead(cellId + 1)
    if (this.head[cellId] !== NONE || !inlineable(latency)) return false
    let connect = INLINE_ABSENT
    let firstByte = INLINE_ABSENT
    if (phases !== undefined) {
      const { dns, connect: c, tls, firstByte: f } = phases
      if ((dns !== undefined && dns.length > 0) || (tls !== undefined && tls.length > 0) || !inlineable(c) || !inlineable(f)) return false
      connect = inlineBucket(c)
      firstByte = inlineBucket(f)
    }
    this.head[cellId] = inlineWord(inlineBucket(latency), connect, firstByte)
    return true
  }

  /**
   * The inline word for a record of `count` and sorted pairs latency[firstPair…firstPair + pairs)
   * (flat [bucket, count, …], phases at their pair buckets), or NONE when it does not fit one.
   */
  private static inlineFor (count: number, latency: ArrayLike<number>, firstPair: number, pairs: number): number {
    if (count !== 1 || pairs > 3) return NONE
    let lat = INLINE_ABSENT
    let connect = INLINE_ABSENT
    let firstByte = INLINE_ABSENT
    // Fields fill in ascending order: a second pair for one field, or any other bucket, does not fit.
    let field = 0
    for (let i = 0; i < pairs; i++) {
      const j = (firstPair + i) * 2
      if (latency[j + 1] !== 1) return NONE
      const b = latency[j]!
      if (field < 1 && b < BUCKET_COUNT) { lat = b; field = 1 } else if (field < 2 && b >= CONNECT_BASE && b < CONNECT_BASE + BUCKET_COUNT) { connect = b - CONNECT_BASE; field = 2 } else if (field < 3 && b >= FIRST_BYTE_BASE && b < FIRST_BYTE_BASE + BUCKET_COUNT) { firstByte = b - FIRST_BYTE_BASE; field = 3 } else return NONE
    }
    return inlineWord(lat, connect, firstByte)
  }

  /** Rewrites an inline cell as a record (next: none), so another record can chain to it. */
  private spill (cellId: number): void {
    const packed: number[] = []
    pushInline(this.head[cellId]!, packed)
    this.ensure(2 + packed.length)
    const at = this.used
    this.data[at] = 0
    this.data[at + 1] = ((1 << HEADER_PAIRS_BITS) | packed.length) >>> 0
    for (let i = 0; i < packed.length; i++) this.data[at + 2 + i] = packed[i]!
    this.head[cellId] = at
    this.used = at + 2 + packed.length
  }

  /**
   * The common case of a cell with phases, written as one record straight from its arrays (no
   * intermediate array per cell on the ingest path). Returns false, writing nothing, when the record
   * would need splitting; add() then takes the flattened pairs.
   */
  private writePhased (cellId: number, count: number, latency: ArrayLike<number>, phases: CellPhases): boolean {
    const list = phaseList(phases)
    let pairs = latency.length >> 1
    for (const h of list) if (h !== undefined) pairs += h.length >> 1
    if (pairs > MAX_PAIRS || count > MAX_RECORD_COUNT) return false
    for (let i = 1; i < latency.length; i += 2) if (latency[i]! > PAIR_COUNT_MASK) return false
    for (const h of list) if (h !== undefined) for (let i = 1; i < h.length; i += 2) if (h[i]! > PAIR_COUNT_MASK) return false
    if (cellId >= this.head.length) this.growHead(cellId + 1)
    if (this.head[cellId]! < NONE) this.spill(cellId)
    this.ensure(2 + pairs)
    const at = this.used
    const prev = this.head[cellId]!
    if (prev !== NONE) this.chained = true
    this.data[at] = prev === NONE ? 0 : prev + 1
    this.data[at + 1] = ((count << HEADER_PAIRS_BITS) | pairs) >>> 0
    let w = at + 2
    for (let i = 0; i < latency.length; i += 2) this.data[w++] = ((latency[i]! << PAIR_BITS) | latency[i + 1]!) >>> 0
    for (let p = 0; p < list.length; p++) {
      const h = list[p]
      if (h === undefined) continue
      const base = PHASE_BASE + p * BUCKET_COUNT
      for (let i = 0; i < h.length; i += 2) this.data[w++] = (((base + h[i]!) << PAIR_BITS) | h[i + 1]!) >>> 0
    }
    this.head[cellId] = at
    this.used = w
    return true
  }

  /**
   * Adds one cell's results; `latency` is a sparse histogram [index, count, …]. Counts beyond
   * what one record holds are split over several records of the same cell.
   */
  add (cellId: number, count: number, latency: ArrayLike<number>, errors?: readonly CellErrors[], lagged?: number): void {
    if (cellId >= this.head.length) this.growHead(cellId + 1)
    let pairs = latency.length >> 1
    let big = false
    for (let i = 1; i < latency.length; i += 2) if (latency[i]! > PAIR_COUNT_MASK) big = true
    if (pairs <= MAX_PAIRS && count <= MAX_RECORD_COUNT && !big) {
      this.write(cellId, count, latency, 0, pairs)
    } else {
      const split: number[] = []
      for (let i = 0; i < latency.length; i += 2) {
        for (let left = latency[i + 1]!; left > 0; left -= PAIR_COUNT_MASK) split.push(latency[i]!, Math.min(left, PAIR_COUNT_MASK))
      }
      pairs = split.length >> 1
      let left = count
      for (let first = 0; first < pairs || left > 0; first += MAX_PAIRS) {
        const n = Math.max(0, Math.min(MAX_PAIRS, pairs - first))
        const part = Math.min(left, MAX_RECORD_COUNT)
        this.write(cellId, part, split, first, n)
        left -= part
      }
    }
    if (errors !== undefined && errors.length > 0) this.addErrors(cellId, errors)
    if (lagged !== undefined && lagged > 0) this.lagged.set(cellId, (this.lagged.get(cellId) ?? 0) + lagged)
  }

  /** Writes one record (`inline`: or an inline cell, when it fits one and the cell has nothing yet). */
  private write (cellId: number, count: number, latency: ArrayLike<number>, firstPair: number, pairs: number, inline = true): void {
    const head = this.head[cellId]!
    if (head === NONE && inline) {
      const word = SlotArena.inlineFor(count, latency, firstPair, pairs)
      if (word !== NONE) {
        this.head[cellId] = word
        return
      }
    } else if (head < NONE) this.spill(cellId)
    this.ensure(2 + pairs)
    const at = this.used
    const prev = this.head[cellId]!
    if (prev !== NONE) this.chained = true
    this.data[at] = prev === NONE ? 0 : prev + 1
    this.data[at + 1] = ((count << HEADER_PAIRS_BITS) | pairs) >>> 0
    for (let i = 0; i < pairs; i++) {
      const j = (firstPair + i) * 2
      this.data[at + 2 + i] = ((latency[j]! << PAIR_BITS) | latency[j + 1]!) >>> 0
    }
    this.head[cellId] = at
    this.used = at + 2 + pairs
  }

  /**
   * A new arena holding both arenas' cells, one sorted record each: how a finer slot folds into a
   * coarser one. Rewriting beats chaining here: chained folds held a coarse slot at several times
   * its packed size until it closed. Neither input is changed; `into`'s side maps move over.
   */
  static union (into: SlotArena, other: SlotArena): SlotArena {
    const cells = Math.max(into.head.length, other.head.length)
    const out = new SlotArena(into.start, into.width, 0, into.keepsPhases)
    out.head = new Int32Array(cells).fill(NONE)
    out.data = new Uint32Array(Math.max(16, SlotArena.unionWords(into, other, cells, into.keepsPhases)))
    const a: number[] = []
    const b: number[] = []
    for (let cell = 0; cell < cells; cell++) {
      const inA = into.has(cell)
      const inB = other.has(cell)
      if (!inA && !inB) continue
      a.length = 0
      b.length = 0
      const count = (inA ? into.sortedPairs(cell, a) : 0) + (inB ? other.sortedPairs(cell, b) : 0)
      // Phase pairs sort last: a slot that keeps no phases cuts them off.
      if (!out.keepsPhases) { dropPhases(a); dropPhases(b) }
      out.writeMerged(cell, count, a, b)
    }
    for (const [cell, list] of into.errors) out.errors.set(cell, list)
    for (const [cell, n] of into.lagged) out.lagged.set(cell, n)
    for (const [cell, counts] of into.backends) out.backends.set(cell, counts)
    for (const [cell, list] of other.errors) out.addErrors(cell, list)
    for (const [cell, n] of other.lagged) out.lagged.set(cell, (out.lagged.get(cell) ?? 0) + n)
    for (const [cell, counts] of other.backends) out.addBackendCounts(cell, counts)
    out.sums = NodeSums.union(into.sums, other.sums)
    return out
  }

  /** Appends the cell's packed pairs sorted by bucket (one record is already sorted) and returns its count. */
  private sortedPairs (cellId: number, out: number[]): number {
    const at = this.head[cellId]!
    if (at < NONE) return pushInline(at, out)
    if (this.data[at] !== 0) {
      const count = this.collectPacked(cellId, out)
      out.sort((x, y) => x - y)
      return count
    }
    const header = this.data[at + 1]!
    const pairs = header & MAX_PAIRS
    for (let i = 0; i < pairs; i++) out.push(this.data[at + 2 + i]!)
    return header >>> HEADER_PAIRS_BITS
  }

  /** Writes one record from two sorted packed-pair lists, summing equal buckets. */
  private writeMerged (cellId: number, count: number, a: readonly number[], b: readonly number[]): void {
    const merged: number[] = []
    let i = 0
    let j = 0
    let overflow = false
    while (i < a.length || j < b.length) {
      const x = i < a.length ? a[i]! >>> PAIR_BITS : Infinity
      const y = j < b.length ? b[j]! >>> PAIR_BITS : Infinity
      if (x === y) {
        const n = (a[i++]! & PAIR_COUNT_MASK) + (b[j++]! & PAIR_COUNT_MASK)
        if (n > PAIR_COUNT_MASK) overflow = true
        merged.push(x, n)
      } else if (x < y) {
        merged.push(x, a[i++]! & PAIR_COUNT_MASK)
      } else {
        merged.push(y, b[j++]! & PAIR_COUNT_MASK)
      }
    }
    // add() splits what one record cannot hold; the common case writes straight through.
    if (overflow || count > MAX_RECORD_COUNT || merged.length / 2 > MAX_PAIRS) this.add(cellId, count, merged)
    // Folds write records: a folded cell is rarely one probe, and a fold's bytes show what it keeps.
    else this.write(cellId, count, merged, 0, merged.length >> 1, false)
  }

  /** Adds which backends answered a service cell; kept beside the packed data like errors. */
  addBackends (cellId: number, backends: ReadonlyArray<{ node: string, count: number }>): void {
    let counts = this.backends.get(cellId)
    if (counts === undefined) this.backends.set(cellId, counts = new Map())
    for (const b of backends) counts.set(b.node, (counts.get(b.node) ?? 0) + b.count)
  }

  private addBackendCounts (cellId: number, from: ReadonlyMap<string, number>): void {
    let counts = this.backends.get(cellId)
    if (counts === undefined) this.backends.set(cellId, counts = new Map())
    for (const [node, n] of from) counts.set(node, (counts.get(node) ?? 0) + n)
  }

  /** A cell's records summed: its probe count and its sorted sparse histogram. */
  merged (cellId: number): { count: number, latency: number[] } {
    const packed: number[] = []
    const count = this.collectPacked(cellId, packed)
    packed.sort((a, b) => a - b)
    const latency: number[] = []
    for (const p of packed) {
      const index = p >>> PAIR_BITS
      const n = p & PAIR_COUNT_MASK
      if (latency.length > 0 && latency[latency.length - 2] === index) latency[latency.length - 1]! += n
      else latency.push(index, n)
    }
    return { count, latency }
  }

  has (cellId: number): boolean {
    return cellId < this.head.length && this.head[cellId] !== NONE
  }

  /**
   * Appends the cell's packed pairs (bucket << 23 | count: sorting them sorts by bucket) to
   * `out` and returns the cell's probe count.
   */
  private collectPacked (cellId: number, out: number[]): number {
    if (cellId >= this.head.length) return 0
    let at = this.head[cellId]!
    if (at < NONE) return pushInline(at, out)
    let count = 0
    while (at !== NONE) {
      const header = this.data[at + 1]!
      count += header >>> HEADER_PAIRS_BITS
      const pairs = header & MAX_PAIRS
      for (let i = 0; i < pairs; i++) out.push(this.data[at + 2 + i]!)
      at = this.data[at]! - 1
    }
    return count
  }

  /** The cell's probe count, without touching its latency pairs. */
  countOf (cellId: number): number {
    if (cellId >= this.head.length) return 0
    let at = this.head[cellId]!
    if (at < NONE) return 1
    let count = 0
    while (at !== NONE) {
      count += this.data[at + 1]! >>> HEADER_PAIRS_BITS
      at = this.data[at]! - 1
    }
    return count
  }

  /**
   * Adds the cell's latency to `latency`, its loss counters to `loss` and its per-phase latency to
   * `phases` (PHASE_NAMES order; each when given), and returns its probe count.
   */
  addTo (cellId: number, latency: Histogram, loss?: LossCounters, phases?: readonly Histogram[]): number {
    if (cellId >= this.head.length) return 0
    const data = this.data
    let at = this.head[cellId]!
    if (at < NONE) {
      const lat = (at >>> (2 * INLINE_BITS)) & INLINE_ABSENT
      if (lat !== INLINE_ABSENT) latency.add(lat, 1)
      if (phases !== undefined) {
        const connect = (at >>> INLINE_BITS) & INLINE_ABSENT
        const firstByte = at & INLINE_ABSENT
        if (connect !== INLINE_ABSENT) phases[1]!.add(connect, 1)
        if (firstByte !== INLINE_ABSENT) phases[3]!.add(firstByte, 1)
      }
      return 1
    }
    let count = 0
    while (at !== NONE) {
      const header = data[at + 1]!
      count += header >>> HEADER_PAIRS_BITS
      const end = at + 2 + (header & MAX_PAIRS)
      for (let i = at + 2; i < end; i++) {
        const p = data[i]!
        const index = p >>> PAIR_BITS
        if (index < COUNTER_BASE) latency.add(index, p & PAIR_COUNT_MASK)
        else if (index >= PHASE_BASE) {
          if (phases !== undefined) {
            const k = index - PHASE_BASE
            const phase = (k / BUCKET_COUNT) | 0
            phases[phase]!.add(k - phase * BUCKET_COUNT, p & PAIR_COUNT_MASK)
          }
        } else if (loss !== undefined) loss[LOSS_NAMES[index - COUNTER_BASE]!] += p & PAIR_COUNT_MASK
      }
      at = data[at]! - 1
    }
    return count
  }

  /**
   * Adds the cell's latency counts to `dense` from `offset` (one count per bucket; loss counters and
   * phases are left out) and returns its probe count.
   */
  addToDense (cellId: number, dense: Float64Array, offset: number): number {
    if (cellId >= this.head.length) return 0
    const data = this.data
    let at = this.head[cellId]!
    if (at < NONE) {
      const lat = (at >>> (2 * INLINE_BITS)) & INLINE_ABSENT
      if (lat !== INLINE_ABSENT) dense[offset + lat]! += 1
      return 1
    }
    let count = 0
    while (at !== NONE) {
      const header = data[at + 1]!
      count += header >>> HEADER_PAIRS_BITS
      const end = at + 2 + (header & MAX_PAIRS)
      for (let i = at + 2; i < end; i++) {
        const p = data[i]!
        const index = p >>> PAIR_BITS
        if (index < COUNTER_BASE) dense[offset + index]! += p & PAIR_COUNT_MASK
      }
      at = data[at]! - 1
    }
    return count
  }

  /**
   * Words union() writes at most (barring splits): a header and both cells' pairs for every cell
   * either holds (an inline cell's phases only when `phases`). Sized up front because inline cells
   * leave `used` no guide, and doubling the data of a 1 M-cell fold copies megabytes.
   */
  private static unionWords (a: SlotArena, b: SlotArena, cells: number, phases: boolean): number {
    let words = 0
    for (let cell = 0; cell < cells; cell++) {
      if (!a.has(cell) && !b.has(cell)) continue
      words += 2 + a.pairsOf(cell, phases) + b.pairsOf(cell, phases)
    }
    return words
  }

  /** The cell's pairs over all its records (an inline cell's: its present fields); 0 when it has none. */
  private pairsOf (cellId: number, phases: boolean): number {
    if (cellId >= this.head.length) return 0
    let at = this.head[cellId]!
    if (at < NONE) return phases ? inlinePairs(at) : inlinePairs(at | ((INLINE_ABSENT << INLINE_BITS) | INLINE_ABSENT))
    let pairs = 0
    while (at !== NONE) {
      pairs += this.data[at + 1]! & MAX_PAIRS
      at = this.data[at]! - 1
    }
    return pairs
  }

  /** Rewrites chained records as one sorted record per cell and trims spare capacity; the node sums pack once no report reaches them for a call (NodeSums.settle). */
  compact (): void {
    this.sums.settle()
    if (this.chained) {
      const cells = this.head.length
      const packed = new SlotArena(this.start, this.width, cells, this.keepsPhases)
      packed.data = new Uint32Array(Math.max(16, this.used))
      for (let cell = 0; cell < cells; cell++) {
        const at = this.head[cell]!
        if (at === NONE) continue
        if (at < NONE) {
          packed.head[cell] = at
          continue
        }
        const { count, latency } = this.merged(cell)
        packed.add(cell, count, latency)
      }
      this.head = packed.head
      this.data = packed.data
      this.used = packed.used
      this.chained = packed.chained
    }
    if (this.data.length > this.used + 16) this.data = this.data.slice(0, this.used)
  }

  private addErrors (cellId: number, errors: readonly CellErrors[]): void {
    this.errorsVersion++
    let list = this.errors.get(cellId)
    if (list === undefined) this.errors.set(cellId, list = [])
    for (const e of errors) {
      const same = list.find(x => x.reason === e.reason && x.raw === e.raw)
      if (same !== undefined) same.count += e.count
      else list.push({ reason: e.reason, raw: e.raw, count: e.count })
    }
  }

  private ensure (words: number): void {
    if (this.used + words <= this.data.length) return
    // compact() may have trimmed an empty arena to zero words; doubling zero never grows.
    let size = Math.max(16, this.data.length * 2)
    while (size < this.used + words) size *= 2
    const bigger = new Uint32Array(size)
    bigger.set(this.data.subarray(0, this.used))
    this.data = bigger
  }

  private growHead (min: number): void {
    // A union of empty arenas has a zero-length head; doubling zero never grows.
    let size = Math.max(16, this.head.length * 2)
    while (size < min) size *= 2
    const bigger = new Int32Array(size).fill(NONE)
    bigger.set(this.head)
    this.head = bigger
  }
}

/** How many pairs an inline cell stands for (its present fields). */
function inlinePairs (word: number): number {
  let n = 0
  if (((word >>> (2 * INLINE_BITS)) & INLINE_ABSENT) !== INLINE_ABSENT) n++
  if (((word >>> INLINE_BITS) & INLINE_ABSENT) !== INLINE_ABSENT) n++
  if ((word & INLINE_ABSENT) !== INLINE_ABSENT) n++
  return n
}

/** Appends an inline cell's packed pairs (sorted: latency, connect, firstByte) to `out`; returns its count, 1. */
function pushInline (word: number, out: number[]): number {
  const lat = (word >>> (2 * INLINE_BITS)) & INLINE_ABSENT
  const connect = (word >>> INLINE_BITS) & INLINE_ABSENT
  const firstByte = word & INLINE_ABSENT
  if (lat !== INLINE_ABSENT) out.push(((lat << PAIR_BITS) | 1) >>> 0)
  if (connect !== INLINE_ABSENT) out.push((((CONNECT_BASE + connect) << PAIR_BITS) | 1) >>> 0)
  if (firstByte !== INLINE_ABSENT) out.push((((FIRST_BYTE_BASE + firstByte) << PAIR_BITS) | 1) >>> 0)
  return 1
}

/** Cuts the phase pairs off a sorted packed-pair list (they sort last). */
function dropPhases (sorted: number[]): void {
  let n = sorted.length
  while (n > 0 && sorted[n - 1]! >>> PAIR_BITS >= PHASE_BASE) n--
  sorted.length = n
}

// The bucket field must hold the last phase bucket.
if (PHASE_END > 2 ** (32 - PAIR_BITS)) throw new RangeError('phase buckets do not fit a pair')
