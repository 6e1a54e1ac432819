// Per-node sums of one time slot for the peer kinds: each node's inbound and outbound probe count,
// failures by reason, latency histogram and which peers, filed as the cells are written. A
// node-scoped gate then reads a few small records per node and slot instead of ~1,000 cells each.

import { BUCKET_COUNT, PEER_PROBE_KINDS, type ProbeKind } from '@pingfleet/protocol'
import type { CellErrors, CellInput } from './cell-sum.ts'

/**
 * The peer node a peer-kind target names: `pod` targets are node names, `mtu` targets are
 * `<node>/<size>`. Node names never contain `/`, so everything from the last one is the size.
 */
export function peerNode (target: string): string {
  const slash = target.lastIndexOf('/')
  return slash === -1 ? target : target.slice(0, slash)
}

const KIND_SLOT = new Map<string, number>(PEER_PROBE_KINDS.map((k, i) => [k, i]))

/** The index of a peer kind in PEER_PROBE_KINDS, or -1 for kinds whose targets are not nodes. */
export function peerKindSlot (probe: ProbeKind): number {
  return KIND_SLOT.get(probe) ?? -1
}

/** A node's side: `node * 2 + INBOUND` (probes toward it) or `node * 2 + OUTBOUND` (probes from it). */
export const INBOUND = 0
export const OUTBOUND = 1

/** One node's results in one direction over the slots read: what a node-scoped gate judges. */
export interface NodeSide {
  /** Probes, failures included. */
  samples: number
  /** Failed probes, and their count per reason (null when none failed). */
  errors: number
  reasons: Map<string, number> | null
  /** Distinct peer nodes with at least one probe (an mtu peer's sizes count once). */
  peers: number
  /** Successful probes' latency, one count per bucket (BUCKET_COUNT); null unless asked for. */
  dense: Float64Array | null
  /** The cells' loss counters summed (udp `sent`/`lost`, connect kinds' `slowConnects`); absent when none carried any. */
  loss?: SideLoss
}

/** Loss counters of one side: protocol Cell fields of the same names. */
export interface SideLoss {
  sent: number
  lost: number
  slowConnects: number
}

/** Loss counters per side, LOSS_WORDS words each: sent, lost, slowConnects. */
const LOSS_WORDS = 3

/**
 * One peer kind's sums in a slot, per side (node * 2 + direction). While the slot takes reports
 * the histograms are dense (a bucket add is one array write); close() packs them per side
 * (`offs` into `buckets`/`ns`), which is what most slots hold for most of their life. Dense counts
 * are 16-bit until one would overflow (then 32-bit): half the cache footprint on the ingest path,
 * where each cell's inbound row is a random access.
 */
class KindSums {
  cap = 0
  words = 0
  count = new Float64Array(0)
  failed = new Float64Array(0)
  /** Per side, the peers with a probe: a bit per node index, `words` words per side. */
  bits = new Uint32Array(0)
  reasons = new Map<number, Map<string, number>>()
  dense: Uint16Array | Uint32Array | null = new Uint16Array(0)
  offs: Int32Array | null = null
  buckets: Uint16Array | null = null
  ns: Uint32Array | null = null
  /** Written since the last settle(): a slot still taking (late) reports stays dense. */
  written = false
  /** Per side, LOSS_WORDS loss counters; null until a cell carried one (most kinds never do). */
  loss: Float64Array | null = null

  /** Room for `nodes` node indexes; `open`: dense histograms (taking reports), else packed and empty. */
  constructor (nodes: number, open = true) {
    if (!open) {
      this.dense = null
      this.offs = new Int32Array(1)
      this.buckets = new Uint16Array(0)
      this.ns = new Uint32Array(0)
    }
    this.grow(nodes)
  }

  /** Makes room for node indexes below `nodes` (capacity doubles, so growth is rare). */
  grow (nodes: number): void {
    if (nodes <= this.cap) return
    let cap = Math.max(64, this.cap)
    while (cap < nodes) cap *= 2
    const words = cap >>> 5
    const sides = cap * 2
    const count = new Float64Array(sides)
    count.set(this.count)
    const failed = new Float64Array(sides)
    failed.set(this.failed)
    const bits = new Uint32Array(sides * words)
    for (let s = 0; s < this.cap * 2; s++) bits.set(this.bits.subarray(s * this.words, (s + 1) * this.words), s * words)
    if (this.dense !== null) {
      const dense = this.dense instanceof Uint16Array ? new Uint16Array(sides * BUCKET_COUNT) : new Uint32Array(sides * BUCKET_COUNT)
      dense.set(this.dense)
      this.dense = dense
    } else {
      const offs = new Int32Array(sides + 1)
      offs.set(this.offs!)
      offs.fill(this.offs![this.cap * 2]!, this.cap * 2 + 1)
      this.offs = offs
    }
    if (this.loss !== null) {
      const loss = new Float64Array(sides * LOSS_WORDS)
      loss.set(this.loss)
      this.loss = loss
    }
    this.count = count
    this.failed = failed
    this.bits = bits
    this.cap = cap
    this.words = words
  }

  /** Back to dense histograms: a late report landed in a closed slot (rare). */
  open (): void {
    if (this.dense !== null) return
    const dense = this.ns!.some(n => n > 0xffff) ? new Uint32Array(this.cap * 2 * BUCKET_COUNT) : new Uint16Array(this.cap * 2 * BUCKET_COUNT)
    const offs = this.offs!
    for (let s = 0; s < this.cap * 2; s++) {
      for (let j = offs[s]!; j < offs[s + 1]!; j++) dense[s * BUCKET_COUNT + this.buckets![j]!] = this.ns![j]!
    }
    this.dense = dense
    this.offs = this.buckets = this.ns = null
  }

  /** Packs the dense histograms into per-side lists of (bucket, count). */
  close (): void {
    const dense = this.dense
    if (dense === null) return
    let nnz = 0
    for (let i = 0; i < dense.length; i++) if (dense[i] !== 0) nnz++
    const offs = new Int32Array(this.cap * 2 + 1)
    const buckets = new Uint16Array(nnz)
    const ns = new Uint32Array(nnz)
    let j = 0
    for (let s = 0; s < this.cap * 2; s++) {
      offs[s] = j
      const base = s * BUCKET_COUNT
      for (let b = 0; b < BUCKET_COUNT; b++) {
        const n = dense[base + b]!
        if (n !== 0) { buckets[j] = b; ns[j++] = n }
      }
    }
    offs[this.cap * 2] = j
    this.offs = offs
    this.buckets = buckets
    this.ns = ns
    this.dense = null
  }

  /**
   * close() once the slot has had no report since the last call: a slot that reports still reach
   * (a backlog arriving late, all of it behind the clock) would otherwise be packed and reopened,
   * 3 MB each way at 1,000 nodes, on every tick of the store.
   */
  settle (): void {
    if (this.written) this.written = false
    else this.close()
  }

  /** Files one cell from node `src` to node `peer`: on src's outbound side and peer's inbound side. The ingest hot path. */
  add (src: number, peer: number, cell: CellInput): void {
    this.written = true
    if (src >= this.cap || peer >= this.cap) this.grow(Math.max(src, peer) + 1)
    const out = src * 2 + OUTBOUND
    const into = peer * 2 + INBOUND
    const count = cell.count
    this.count[out]! += count
    this.count[into]! += count
    if (count > 0) {
      const bits = this.bits
      const words = this.words
      bits[out * words + (peer >>> 5)]! |= 1 << (peer & 31)
      bits[into * words + (src >>> 5)]! |= 1 << (src & 31)
    }
    const latency = cell.latency
    if (latency.length > 0) {
      if (this.dense === null) this.open()
      let dense = this.dense!
      const a = out * BUCKET_COUNT
      const b = into * BUCKET_COUNT
      for (let i = 0; i < latency.length; i += 2) {
        const bucket = latency[i]!
        const n = latency[i + 1]!
        const x = dense[a + bucket]! + n
        const y = dense[b + bucket]! + n
        if ((x > 0xffff || y > 0xffff) && dense instanceof Uint16Array) this.dense = dense = Uint32Array.from(dense)
        dense[a + bucket] = x
        dense[b + bucket] = y
      }
    }
    if (cell.errors !== undefined && cell.errors.length > 0) {
      this.addErrors(out, cell.errors)
      this.addErrors(into, cell.errors)
    }
    const { sent, lost, slowConnects } = cell
    if (sent !== undefined || lost !== undefined || slowConnects !== undefined) {
      const loss = this.loss ??= new Float64Array(this.cap * 2 * LOSS_WORDS)
      for (const side of [out, into]) {
        loss[side * LOSS_WORDS]! += sent ?? 0
        loss[side * LOSS_WORDS + 1]! += lost ?? 0
        loss[side * LOSS_WORDS + 2]! += slowConnects ?? 0
      }
    }
  }

  /** Adds `from`'s loss counters (any capacity up to this one's) to this one's. */
  private addLoss (from: KindSums): void {
    if (from.loss === null) return
    const loss = this.loss ??= new Float64Array(this.cap * 2 * LOSS_WORDS)
    for (let i = 0; i < from.loss.length; i++) loss[i]! += from.loss[i]!
  }

  private addErrors (side: number, errors: readonly CellErrors[]): void {
    let by = this.reasons.get(side)
    if (by === undefined) this.reasons.set(side, by = new Map())
    for (const e of errors) {
      this.failed[side]! += e.count
      by.set(e.reason, (by.get(e.reason) ?? 0) + e.count)
    }
  }

  /**
   * Both inputs closed: a closed sum of both, merging each side's sorted (bucket, count) lists
   * (cheaper than going through dense histograms, which a fold would allocate every time).
   */
  static unionClosed (x: KindSums, y: KindSums): KindSums {
    const out = new KindSums(Math.max(x.cap, y.cap), false)
    for (const from of [x, y]) {
      for (let s = 0; s < from.cap * 2; s++) {
        out.count[s]! += from.count[s]!
        out.failed[s]! += from.failed[s]!
        for (let w = 0; w < from.words; w++) out.bits[s * out.words + w]! |= from.bits[s * from.words + w]!
      }
      out.addReasons(from)
      out.addLoss(from)
    }
    const sides = out.cap * 2
    const offs = new Int32Array(sides + 1)
    const buckets = new Uint16Array(x.buckets!.length + y.buckets!.length)
    const ns = new Uint32Array(buckets.length)
    let j = 0
    for (let s = 0; s < sides; s++) {
      offs[s] = j
      let i = s < x.cap * 2 ? x.offs![s]! : 0
      const iEnd = s < x.cap * 2 ? x.offs![s + 1]! : 0
      let k = s < y.cap * 2 ? y.offs![s]! : 0
      const kEnd = s < y.cap * 2 ? y.offs![s + 1]! : 0
      while (i < iEnd || k < kEnd) {
        const bx = i < iEnd ? x.buckets![i]! : BUCKET_COUNT
        const by = k < kEnd ? y.buckets![k]! : BUCKET_COUNT
        if (bx === by) { buckets[j] = bx; ns[j++] = x.ns![i++]! + y.ns![k++]! } else if (bx < by) { buckets[j] = bx; ns[j++] = x.ns![i++]! } else { buckets[j] = by; ns[j++] = y.ns![k++]! }
      }
    }
    offs[sides] = j
    out.offs = offs
    out.buckets = buckets.slice(0, j)
    out.ns = ns.slice(0, j)
    return out
  }

  private addReasons (from: KindSums): void {
    for (const [side, by] of from.reasons) {
      let into = this.reasons.get(side)
      if (into === undefined) this.reasons.set(side, into = new Map())
      for (const [reason, n] of by) into.set(reason, (into.get(reason) ?? 0) + n)
    }
  }

  /** Adds everything of `from` (any capacity, open or closed) to this open one. */
  addAll (from: KindSums): void {
    this.grow(from.cap)
    for (let s = 0; s < from.cap * 2; s++) {
      this.count[s]! += from.count[s]!
      this.failed[s]! += from.failed[s]!
      for (let w = 0; w < from.words; w++) this.bits[s * this.words + w]! |= from.bits[s * from.words + w]!
    }
    this.addReasons(from)
    this.addLoss(from)
    const dense = this.dense!
    if (from.dense !== null) {
      for (let i = 0; i < from.dense.length; i++) dense[i]! += from.dense[i]!
    } else {
      const offs = from.offs!
      for (let s = 0; s < from.cap * 2; s++) {
        for (let j = offs[s]!; j < offs[s + 1]!; j++) dense[s * BUCKET_COUNT + from.buckets![j]!]! += from.ns![j]!
      }
    }
  }

  /** Adds side `side` to `into` (and its latency to `dense` when given, its failures per reason unless `reasons` is false); ORs its peers into `bits`. */
  read (side: number, into: NodeSide, bits: Uint32Array, dense: Float64Array | null, reasons = true): void {
    into.samples += this.count[side]!
    into.errors += this.failed[side]!
    // Without `reasons` the per-reason map is skipped: a reader that takes reasons from the cells
    // saves a map walk per side and slot, which is most of a read when every node has failures.
    const by = reasons ? this.reasons.get(side) : undefined
    if (by !== undefined) {
      into.reasons ??= new Map()
      for (const [reason, n] of by) into.reasons.set(reason, (into.reasons.get(reason) ?? 0) + n)
    }
    const words = Math.min(this.words, bits.length)
    for (let w = 0; w < words; w++) bits[w]! |= this.bits[side * this.words + w]!
    if (this.loss !== null) {
      const loss = into.loss ??= { sent: 0, lost: 0, slowConnects: 0 }
      loss.sent += this.loss[side * LOSS_WORDS]!
      loss.lost += this.loss[side * LOSS_WORDS + 1]!
      loss.slowConnects += this.loss[side * LOSS_WORDS + 2]!
    }
    if (dense === null) return
    if (this.dense !== null) {
      const base = side * BUCKET_COUNT
      for (let b = 0; b < BUCKET_COUNT; b++) dense[b]! += this.dense[base + b]!
    } else {
      for (let j = this.offs![side]!; j < this.offs![side + 1]!; j++) dense[this.buckets![j]!]! += this.ns![j]!
    }
  }

  get bytes (): number {
    return this.count.byteLength + this.failed.byteLength + this.bits.byteLength + (this.dense?.byteLength ?? 0) +
      (this.offs?.byteLength ?? 0) + (this.buckets?.byteLength ?? 0) + (this.ns?.byteLength ?? 0) + this.reasons.size * 96 +
      (this.loss?.byteLength ?? 0)
  }
}

/**
 * A slot's per-node sums of every peer kind. Node indexes are the store's (dense, one per node
 * name); a cell from a node to itself is never filed. Exact: the same sums as adding the cells.
 */
export class NodeSums {
  private readonly kinds: Array<KindSums | null> = PEER_PROBE_KINDS.map(() => null)

  /** Files a cell of peer kind `kind` (peerKindSlot) from node `src` to node `peer`: outbound for src, inbound for peer. */
  add (kind: number, src: number, peer: number, cell: CellInput): void {
    this.kindSums(kind, Math.max(src, peer) + 1).add(src, peer, cell)
  }

  /**
   * Files `cells[i]` (cell id `ids[i]`, i < n) with the store's per-cell attribution: `kindOf[id]`
   * (peerKindSlot, -1 for cells that are not filed), `srcOf[id]` and `peerOf[id]` node indexes.
   * One call per report: the loop stays in one place, which is what ingest pays for.
   */
  addCells (ids: ArrayLike<number>, cells: ArrayLike<CellInput>, n: number, kindOf: Int8Array, srcOf: Int32Array, peerOf: Int32Array): void {
    let last = -1
    let k: KindSums | null = null
    for (let i = 0; i < n; i++) {
      const id = ids[i]!
      const kind = kindOf[id]!
      if (kind === -1) continue
      if (kind !== last) { k = this.kindSums(kind, 1); last = kind }
      k!.add(srcOf[id]!, peerOf[id]!, cells[i]!)
    }
  }

  private kindSums (kind: number, nodes: number): KindSums {
    const k = this.kinds[kind]
    if (k != null) return k
    return (this.kinds[kind] = new KindSums(nodes))
  }

  /** Packs the histograms now. */
  close (): void {
    for (const k of this.kinds) k?.close()
  }

  /** The slot takes no more on-time reports: packs each kind once no report reached it for one call (the store calls this every tick). */
  settle (): void {
    for (const k of this.kinds) k?.settle()
  }

  /** Both slots' sums in one (a finer slot folding into a coarser one); neither input changes. */
  static union (a: NodeSums, b: NodeSums): NodeSums {
    const out = new NodeSums()
    for (let i = 0; i < out.kinds.length; i++) {
      const [x, y] = [a.kinds[i], b.kinds[i]]
      if (x == null && y == null) continue
      if (x != null && y != null && x.dense === null && y.dense === null) {
        out.kinds[i] = KindSums.unionClosed(x, y)
        continue
      }
      const k = new KindSums(Math.max(x?.cap ?? 0, y?.cap ?? 0))
      k.dense = new Uint32Array(k.cap * 2 * BUCKET_COUNT)
      if (x != null) k.addAll(x)
      if (y != null) k.addAll(y)
      k.close()
      out.kinds[i] = k
    }
    return out
  }

  /**
   * Adds node `node`'s side (`direction`: INBOUND or OUTBOUND) of peer kind `kind` in this slot to
   * `into`, its peers to the bitmap `bits` (a bit per node index) and, with `dense`, its latency;
   * `reasons` false leaves `into.reasons` alone (failures are still counted).
   */
  read (kind: number, node: number, direction: number, into: NodeSide, bits: Uint32Array, dense: Float64Array | null, reasons = true): void {
    const k = this.kinds[kind]
    if (k == null || node >= k.cap) return
    k.read(node * 2 + direction, into, bits, dense, reasons)
  }

  get bytes (): number {
    let n = 0
    for (const k of this.kinds) n += k?.bytes ?? 0
    return n
  }
}
