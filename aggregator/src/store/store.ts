// Sliding windows of results per (source node, probe kind, target). Recent data sits in fine
// slots; as slots age they fold into coarser ones, so a long window costs little memory. Reads
// take whole slots only and say which span they cover (read()); nothing outside sees the slots.
// Per-phase latency is kept in the tiers that say so (Tier.phases): a read says whether every slot
// it took had them (WindowRead.phasesKept).

import { PROBE_KIND_NAMES, type ProbeKind } from '@pingfleet/protocol'
import type { CellInput } from './cell-sum.ts'
import { peerKindSlot, peerNode } from './node-sums.ts'
import { SlotArena } from './slot-arena.ts'
import { WindowRead } from './window-read.ts'

export interface Tier {
  /** Slot width in milliseconds. */
  width: number
  /** How long slots stay in this tier before they fold into the next one (or expire). */
  span: number
  /**
   * Whether this tier's slots keep per-phase latency (default true). A tier without them drops
   * them when a finer slot folds in; no tier after it may keep them again.
   */
  phases?: boolean
}

export interface CellKey {
  src: string
  probe: ProbeKind
  target: string
}

export interface StoreStats {
  cells: number
  slots: number
  bytes: number
  expired: number
}

export interface TierOptions {
  /** Windows up to this long are exact to one report interval: interval-wide slots are kept this long. */
  exactMs: number
  /** Slot width past six minutes; rounded up to whole minutes' worth of intervals. */
  lastWidthMs: number
  /** Whether the coarser tiers keep per-phase latency too; the first (exact) tier always does. */
  phasesPastExact: boolean
}

/**
 * The node store (millions of cells at 1,000 nodes): exact for the node matrix's default 1m window,
 * 5-minute slots past six minutes. Per-phase latency only in the exact tier: folded slots drop it,
 * which holds the 1,000-node mesh's memory (BENCHMARKS.md, "Phase timings (issue 13)").
 */
export const NODE_TIERS: TierOptions = { exactMs: 60_000, lastWidthMs: 5 * 60_000, phasesPastExact: false }
/** The group store, which gates read: its cells are few (groups², not nodes²), so it is exact for their default 5m window and minute-precise beyond, and keeps phases at every tier. */
export const GROUP_TIERS: TierOptions = { exactMs: 5 * 60_000, lastWidthMs: 60_000, phasesPastExact: true }

/**
 * Tiers for a report interval: interval-wide slots up to `exactMs` (at least a minute and
 * twelve intervals), then minute slots up to six minutes, then `lastWidthMs` slots up to
 * `maxWindowMs`. Coarse widths are rounded up to whole intervals, so every slot folds whole into
 * exactly one coarser slot. A span is the age at which a slot leaves its tier; the last one is
 * `maxWindowMs`, past which no window reaches. `Store.read` says what a window then covers.
 */
export function defaultTiers (intervalMs: number, maxWindowMs: number, options: TierOptions = NODE_TIERS): Tier[] {
  const tiers: Tier[] = [{ width: intervalMs, span: Math.min(maxWindowMs, Math.max(options.exactMs, 60_000, 12 * intervalMs)), phases: true }]
  const minute = intervalMs * Math.ceil(60_000 / intervalMs)
  const last = minute * Math.max(1, Math.round(options.lastWidthMs / 60_000))
  for (const [width, upTo] of [[minute, 6 * 60_000], [last, Infinity]] as const) {
    const finer = tiers[tiers.length - 1]!
    if (finer.span >= maxWindowMs) break
    // An interval of a minute or more, or a last width of one minute, needs no tier of its own.
    if (width === finer.width) {
      if (upTo === Infinity) finer.span = maxWindowMs
      continue
    }
    tiers.push({ width, span: Math.min(maxWindowMs, Math.max(upTo, finer.span + width)), phases: options.phasesPastExact })
  }
  return tiers
}

export class Store {
  readonly tiers: readonly Tier[]
  /** Per tier, arenas ordered oldest first. */
  private readonly rings: SlotArena[][]
  private readonly ids = new Map<string, Map<string, Map<string, number>>>()
  // Cells as parallel arrays of interned names: a million cells cost bytes, not objects.
  private readonly names: string[] = []
  private readonly nameIds = new Map<string, number>()
  private cellSrc = new Int32Array(1024)
  private cellTarget = new Int32Array(1024)
  private cellProbe = new Uint8Array(1024)
  // Per cell, for the per-node sums: its source's node index, and its peer's for peer kinds (-1
  // for other kinds and for a node probing itself, which node sums never count).
  private cellSrcNode = new Int32Array(1024)
  private cellPeerNode = new Int32Array(1024)
  /** peerKindSlot of the cell's probe, or -1 when the cell is not filed in the node sums. */
  private cellSumKind = new Int8Array(1024)
  private readonly nodeIndex = new Map<string, number>()
  private count = 0
  private readonly byProbe: number[][] = PROBE_KIND_NAMES.map(() => [])
  private expired = 0
  /** The time of the last advance(); tiers are chosen relative to it. */
  private now = -Infinity
  private readonly clock: () => number

  /**
   * `clock` (ms since the epoch) caps the time results are filed under, for agents whose clocks
   * run ahead; without it, the time of the last advance() does. The aggregator passes its clock:
   * capping at the last once-a-second advance would file every fresh result up to a second early.
   */
  constructor (tiers: readonly Tier[], clock?: () => number) {
    this.clock = clock ?? (() => this.now)
    if (tiers.length === 0) throw new RangeError('a store needs at least one tier')
    for (let i = 1; i < tiers.length; i++) {
      const [finer, coarser] = [tiers[i - 1]!, tiers[i]!]
      if (coarser.width < finer.width || coarser.span <= finer.span) throw new RangeError('tiers must get coarser and longer')
      // A finer slot must fold whole into one coarser slot, or a read could not say what it covers.
      if (coarser.width % finer.width !== 0) throw new RangeError('a coarser slot width must be a multiple of the finer one')
      // Phases dropped by a fold cannot come back.
      if (finer.phases === false && coarser.phases !== false) throw new RangeError('a tier after one without phases must be without them too')
    }
    this.tiers = tiers
    this.rings = tiers.map(() => [])
  }

  /** Dense id of a cell, created on first sight. */
  cellId (src: string, probe: ProbeKind, target: string): number {
    let bySrc = this.ids.get(src)
    if (bySrc === undefined) this.ids.set(src, bySrc = new Map())
    let byProbe = bySrc.get(probe)
    if (byProbe === undefined) bySrc.set(probe, byProbe = new Map())
    let id = byProbe.get(target)
    if (id === undefined) {
      id = this.count++
      if (id >= this.cellSrc.length) this.grow()
      this.cellSrc[id] = this.intern(src)
      this.cellTarget[id] = this.intern(target)
      const kind = PROBE_KIND_NAMES.indexOf(probe)
      this.cellProbe[id] = kind
      const src0 = this.nodeOf(src)
      this.cellSrcNode[id] = src0
      const slot = peerKindSlot(probe)
      const peer = slot === -1 ? -1 : this.nodeOf(peerNode(target))
      this.cellPeerNode[id] = peer === src0 ? -1 : peer
      this.cellSumKind[id] = peer === -1 || peer === src0 ? -1 : slot
      this.byProbe[kind]!.push(id)
      byProbe.set(target, id)
    }
    return id
  }

  key (cellId: number): CellKey {
    return { src: this.names[this.cellSrc[cellId]!]!, probe: PROBE_KIND_NAMES[this.cellProbe[cellId]!]!, target: this.names[this.cellTarget[cellId]!]! }
  }

  /** Interned name ids of a cell's source and target; `name()` turns them back into text. */
  srcOf (cellId: number): number { return this.cellSrc[cellId]! }
  targetOf (cellId: number): number { return this.cellTarget[cellId]! }
  name (nameId: number): string { return this.names[nameId]! }
  targetName (cellId: number): string { return this.names[this.cellTarget[cellId]!]! }
  probeOf (cellId: number): ProbeKind { return PROBE_KIND_NAMES[this.cellProbe[cellId]!]! }
  get nameCount (): number { return this.names.length }

  /** Ids of every cell of one probe kind, in creation order. */
  idsOf (probe: ProbeKind): readonly number[] {
    return this.byProbe[PROBE_KIND_NAMES.indexOf(probe)] ?? []
  }

  get cellCount (): number { return this.count }

  private intern (name: string): number {
    let id = this.nameIds.get(name)
    if (id === undefined) {
      id = this.names.length
      this.names.push(name)
      this.nameIds.set(name, id)
    }
    return id
  }

  /** The dense index of a node name in the per-node sums, created on first sight. */
  private nodeOf (name: string): number {
    let i = this.nodeIndex.get(name)
    if (i === undefined) this.nodeIndex.set(name, i = this.nodeIndex.size)
    return i
  }

  private grow (): void {
    const size = this.cellSrc.length * 2
    const src = new Int32Array(size)
    src.set(this.cellSrc)
    const target = new Int32Array(size)
    target.set(this.cellTarget)
    const probe = new Uint8Array(size)
    probe.set(this.cellProbe)
    this.cellSrc = src
    this.cellTarget = target
    this.cellProbe = probe
    const srcNode = new Int32Array(size)
    srcNode.set(this.cellSrcNode)
    const peerNodes = new Int32Array(size)
    peerNodes.set(this.cellPeerNode)
    this.cellSrcNode = srcNode
    this.cellPeerNode = peerNodes
    const sumKind = new Int8Array(size)
    sumKind.set(this.cellSumKind)
    this.cellSumKind = sumKind
  }

  /**
   * Files the cells of one report, measured at time `at` (ms since the epoch; a time after the
   * clock counts as now): `cells[i]` under cell id `ids[i]`, for i < `n`. Returns false when `at` is
   * older than the longest window kept: nothing is stored then, and the n cells count as expired
   * (stats().expired). `loss`, when given, says which cells carry loss counters (non-zero: they
   * do), for a caller that has already looked at each cell (ingest does, for its sums).
   */
  write (at: number, ids: ArrayLike<number>, cells: ArrayLike<CellInput>, n = cells.length, loss?: ArrayLike<number>): boolean {
    // Agent clocks may run ahead; results from "the future" count as now.
    const arena = this.arenaFor(Math.min(at, this.clock()))
    if (arena === null) {
      this.expired += n
      return false
    }
    for (let i = 0; i < n; i++) arena.addCell(ids[i]!, cells[i]!, loss === undefined ? undefined : loss[i] !== 0)
    arena.sums.addCells(ids, cells, n, this.cellSumKind, this.cellSrcNode, this.cellPeerNode)
    return true
  }

  /** One cell's results measured at `at`: write() for a single cell. */
  add (cellId: number, at: number, cell: CellInput): boolean {
    return this.write(at, [cellId], [cell])
  }

  /** Folds aged slots into the next tier and drops what no window can reach any more. */
  advance (now: number): void {
    this.now = Math.max(this.now, now)
    now = this.now
    for (let t = 0; t < this.tiers.length; t++) {
      const ring = this.rings[t]!
      const limit = now - this.tiers[t]!.span
      while (ring.length > 0 && ring[0]!.end <= limit) {
        const old = ring.shift()!
        if (t + 1 < this.tiers.length) this.fold(t + 1, old)
      }
      // A closed slot gets no more on-time reports: drop its spare capacity (and pack any chains,
      // which late reports leave behind).
      for (const arena of ring) if (arena.end <= now) arena.compact()
    }
  }

  /** Merges an aged slot into the coarser slot that covers its time. */
  private fold (t: number, old: SlotArena): void {
    const target = this.arenaIn(t, old.start)
    if (target === null) return
    const ring = this.rings[t]!
    ring[ring.indexOf(target)] = SlotArena.union(target, old)
  }

  /**
   * What the store holds for the window (now - windowMs, now], in whole slots. Interval slots
   * (the first tier) are taken when they overlap the window, so a short window never comes back
   * empty between two reports: `from` is at most one interval before now - windowMs. A coarser
   * slot is taken only when it starts inside the window, so a long window never reaches back by a
   * whole coarse slot: `from` is then at most one slot width (of the tier that holds age
   * `windowMs`) after now - windowMs. `from` is the oldest slot taken, later still when the
   * store holds nothing older; with no slot, from = to = now. Windows up to the first tier's span
   * are exact to one interval.
   */
  read (windowMs: number, now: number): WindowRead {
    const start = now - windowMs
    const slots: SlotArena[] = []
    let from = now
    for (let t = this.tiers.length - 1; t >= 0; t--) {
      // A slot of the first tier counts when it overlaps the window; a coarser one only when it starts inside.
      const overlap = t === 0
      for (const arena of this.rings[t]!) {
        if ((overlap ? arena.end <= start : arena.start < start) || arena.start > now) continue
        slots.push(arena)
        if (arena.start < from) from = arena.start
      }
    }
    return new WindowRead(slots, from, now, this.nodeIndex, this.cellProbe)
  }

  /**
   * Every slot that starts at or after `start` (ms) and by `now`, in any tier: unlike read(), a
   * slot that straddles `start` is left out whole, so nothing measured before `start` is counted
   * (node gates read a restarted agent's node since its boot this way). from = the oldest slot
   * taken, or now with none.
   */
  readSince (start: number, now: number): WindowRead {
    const slots: SlotArena[] = []
    let from = now
    for (const ring of this.rings) {
      for (const arena of ring) {
        if (arena.start < start || arena.start > now) continue
        slots.push(arena)
        if (arena.start < from) from = arena.start
      }
    }
    return new WindowRead(slots, from, now, this.nodeIndex, this.cellProbe)
  }

  /**
   * The start (ms) of the oldest slot `readSince(start, now)` would take, or null when it takes
   * none. Two starts with the same answer read the same slots, so callers can group reads by it
   * without knowing the slot layout.
   */
  oldestSlotSince (start: number, now: number): number | null {
    let from: number | null = null
    for (const ring of this.rings) {
      for (const arena of ring) {
        if (arena.start < start || arena.start > now) continue
        if (from === null || arena.start < from) from = arena.start
      }
    }
    return from
  }

  stats (): StoreStats {
    let slots = 0
    let bytes = 0
    for (const ring of this.rings) for (const arena of ring) { slots++; bytes += arena.bytes }
    return { cells: this.count, slots, bytes, expired: this.expired }
  }

  /**
   * The arena that holds time `at`: the finest tier whose slot for `at` has not aged out of it
   * yet (the same test advance() folds by, so one time never sits in two tiers' slots).
   */
  private arenaFor (at: number): SlotArena | null {
    for (let t = 0; t < this.tiers.length; t++) {
      const { width, span } = this.tiers[t]!
      if (Math.floor(at / width) * width + width > this.now - span) return this.arenaIn(t, at)
    }
    return null
  }

  private arenaIn (t: number, at: number): SlotArena | null {
    const width = this.tiers[t]!.width
    const start = Math.floor(at / width) * width
    const ring = this.rings[t]!
    // Newest first: reports mostly land in the current slot.
    for (let i = ring.length - 1; i >= 0; i--) {
      const arena = ring[i]!
      if (arena.start === start) return arena
      if (arena.start < start) {
        const created = new SlotArena(start, width, this.count + 64, this.tiers[t]!.phases !== false)
        ring.splice(i + 1, 0, created)
        return created
      }
    }
    const created = new SlotArena(start, width, this.count + 64, this.tiers[t]!.phases !== false)
    ring.unshift(created)
    return created
  }
}
