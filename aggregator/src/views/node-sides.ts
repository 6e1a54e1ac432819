// Per-node views of the node store for node-scoped gates: each selected node's inbound and
// outbound sums of one probe kind (read since its agent's boot when that is later), and which
// destination nodes each source group probed at all. Over every peer, the store's per-node sums
// answer; a peer-group filter and the other reads take one pass over a kind's cells.

import { BUCKET_COUNT, PEER_PROBE_KINDS, type ProbeKind } from '@pingfleet/protocol'
import { peerNode } from '../store/ingest.ts'
import type { NodeSide } from '../store/node-sums.ts'
import type { Store } from '../store/store.ts'
import type { WindowRead } from '../store/window-read.ts'

/** One selected node's results in one direction. */
export interface Side {
  samples: number
  errors: number
  reasons: Map<string, number> | null
  /** Distinct peers (targets) with results. */
  peers: number
  /** mtu only: a peer has one cell per size, so peers are counted by name. */
  peerSet: Set<string> | null
  dense: Float64Array | null
}

const peerKinds = new Set<string>(PEER_PROBE_KINDS)
// Per name id: not looked at yet (UNSEEN), or not one of the selected nodes (OUT).
const UNSEEN = -2
const OUT = -1

/**
 * Per selected node, inbound and outbound sums of one probe kind over the window. Peer kinds: a
 * cell node→peer is outbound for the node and inbound for the peer; other kinds are outbound only.
 * Histograms only when asked. `peerOk` null takes every peer (target): for a peer kind the store's
 * per-node sums answer then (a few words per node and slot); a filter, or a kind whose targets are
 * not nodes, reads the cells in one pass over the kind's cells, since a peer's group is the one the
 * fleet model gives now, which sums filed at ingest could not follow through a relabel.
 */
export function nodeSides (nodes: Store, probe: ProbeKind, windowMs: number, now: number, selected: readonly string[], peerOk: ((peer: string) => boolean) | null, latency: boolean, since: number | null = null): { inbound: Side[], outbound: Side[], from: number, to: number } {
  const peer = peerKinds.has(probe)
  // `since`: whole slots from then on only (Store.readSince), the read of a node since its boot.
  const read = since === null ? nodes.read(windowMs, now) : nodes.readSince(since, now)
  if (peerOk === null && peer) {
    const sums = read.nodeSides(probe, selected, latency)
    const side = (s: NodeSide): Side => ({ ...s, peerSet: null })
    return { inbound: sums.inbound.map(side), outbound: sums.outbound.map(side), from: read.from, to: read.to }
  }
  return cellSides(nodes, read, probe, selected, peerOk ?? (() => true), latency)
}

/** nodeSides() from the cells: one pass over the kind's cells, then their counts slot by slot. */
function cellSides (nodes: Store, read: WindowRead, probe: ProbeKind, selected: readonly string[], peerOk: (peer: string) => boolean, latency: boolean): { inbound: Side[], outbound: Side[], from: number, to: number } {
  const peer = peerKinds.has(probe)
  const index = new Map(selected.map((n, i) => [n, i]))
  const side = (): Side => ({ samples: 0, errors: 0, reasons: null, peers: 0, peerSet: probe === 'mtu' ? new Set() : null, dense: null })
  const inbound = selected.map(side)
  const outbound = selected.map(side)
  // Per interned name: the selected index it names (UNSEEN / OUT otherwise), and whether it is an acceptable peer.
  const names = nodes.nameCount
  const selIndex = new Int32Array(names).fill(UNSEEN)
  const okCache = new Int8Array(names)
  const peerName: Array<string | undefined> = []
  const selOf = (nameId: number, isTarget: boolean): number => {
    let i = selIndex[nameId]!
    if (i === UNSEEN) {
      const name = nodes.name(nameId)
      const n = isTarget && peer ? peerNode(name) : name
      peerName[nameId] = n
      i = selIndex[nameId] = index.get(n) ?? OUT
    }
    return i
  }
  const ok = (nameId: number): boolean => {
    let c = okCache[nameId]!
    if (c === 0) c = okCache[nameId] = peerOk(peerName[nameId]!) ? 1 : -1
    return c === 1
  }
  // Pass 1: the cells that matter, each with the side it adds to; a cell between two selected
  // nodes adds to both (rare, so its second side sits in a map).
  const ids: number[] = []
  const sideOf: Side[] = []
  const peerOf: string[] = []
  const firstK = new Int32Array(nodes.cellCount).fill(-1)
  const secondK = new Map<number, number>()
  const want = (id: number, s: Side, other: string): void => {
    if (firstK[id] === -1) firstK[id] = ids.length
    else secondK.set(id, ids.length)
    ids.push(id)
    sideOf.push(s)
    peerOf.push(other)
  }
  for (const id of nodes.idsOf(probe)) {
    const srcId = nodes.srcOf(id)
    const targetId = nodes.targetOf(id)
    const s = selOf(srcId, false)
    // Other kinds: a target is never a node, so only the source side is looked up.
    const d = peer ? selOf(targetId, true) : OUT
    if (s < 0 && d < 0) continue
    if (!peer) selOf(targetId, true)
    const srcName = peerName[srcId]!
    const dstName = peerName[targetId]!
    if (srcName === dstName) continue
    if (s >= 0 && ok(targetId)) want(id, outbound[s]!, dstName)
    if (d >= 0 && ok(srcId)) want(id, inbound[d]!, srcName)
  }
  // Pass 2: counts (and latency) slot by slot, then failures, whose cost follows the failures.
  const wanted = Int32Array.from(ids)
  const counts = new Float64Array(wanted.length)
  if (latency) {
    // One flat histogram per side (inbound sides first), copied out to the sides after.
    const all = [...inbound, ...outbound]
    const row = new Map(all.map((s, i) => [s, i * BUCKET_COUNT]))
    const dense = new Float64Array(all.length * BUCKET_COUNT)
    read.sumMany(wanted, counts, dense, Int32Array.from(sideOf, s => row.get(s)!))
    for (const [i, s] of all.entries()) s.dense = dense.subarray(i * BUCKET_COUNT, (i + 1) * BUCKET_COUNT)
  } else {
    read.sumMany(wanted, counts)
  }
  const addError = (k: number, e: { reason: string, count: number }): void => {
    const s = sideOf[k]!
    s.errors += e.count
    s.reasons ??= new Map()
    s.reasons.set(e.reason, (s.reasons.get(e.reason) ?? 0) + e.count)
  }
  read.forEachErrorWhere(id => id < firstK.length && firstK[id]! >= 0, (id, e) => {
    addError(firstK[id]!, e)
    const k2 = secondK.get(id)
    if (k2 !== undefined) addError(k2, e)
  })
  // Pass 3: per side, samples and distinct peers (an mtu peer has a cell per size).
  for (let k = 0; k < wanted.length; k++) {
    if (counts[k] === 0) continue
    const s = sideOf[k]!
    s.samples += counts[k]!
    if (s.peerSet !== null) s.peerSet.add(peerOf[k]!)
    else s.peers++
  }
  for (const s of [...inbound, ...outbound]) if (s.peerSet !== null) s.peers = s.peerSet.size
  return { inbound, outbound, from: read.from, to: read.to }
}

/** An agent's current boot and when it first said hello (ms): a node's window is shortened to start there. */
export interface Since {
  bootId: string
  at: number
}

/** What one node rule reads: a probe kind over the last `windowMs` (ms) before `now`. */
export interface SidesWindow {
  probe: ProbeKind
  windowMs: number
  now: number
}

export interface SidesSinceBoot {
  inbound: Side[]
  outbound: Side[]
  /** Per selected node, the boot its read started at when that cut the window short, else null. */
  since: Array<Since | null>
  /**
   * Sides over the whole window, for subtracting from group sums: always when no node was
   * shortened (they are then `inbound`/`outbound`), else only when asked for.
   */
  full: { inbound: Side[], outbound: Side[] } | null
  from: number
  to: number
}

/**
 * Per selected node, its sides read only since its agent's current boot first said hello: a node
 * whose boot is newer than the oldest slot of the rule's window reads only the slots that start at
 * or after its boot (Store.readSince: a slot that straddles the boot is left out whole); the others
 * share the rule window's read. Shortened nodes whose reads take the same slots share one read. `since[i]` is set when node i's read lost slots to its boot; `full` are the sides over the
 * whole rule window, read only when asked (the rest-of-fleet ratio subtracts them) and some node
 * was shortened. from/to span every read made.
 */
export function sidesSinceBoot (nodes: Store, window: SidesWindow, selected: readonly string[], bootOf: (node: string) => Since | null,
  peerOk: ((peer: string) => boolean) | null, latency: boolean, wantFull: boolean): SidesSinceBoot {
  const { probe, windowMs, now } = window
  const fullRead = nodes.read(windowMs, now)
  // The oldest slot the rule's window takes; the key of the nodes read over the whole window.
  const FULL = -1
  const fullFrom = fullRead.empty ? null : fullRead.from
  const byKey = new Map<number | null, number[]>()
  const since: Array<Since | null> = []
  for (const [i, node] of selected.entries()) {
    const boot = bootOf(node)
    const shortened = boot !== null && (fullFrom === null ? boot.at > now - windowMs : boot.at > fullFrom)
    const key = shortened ? nodes.oldestSlotSince(boot.at, now) : FULL
    since.push(shortened ? boot : null)
    const group = byKey.get(key)
    if (group === undefined) byKey.set(key, [i])
    else group.push(i)
  }
  const empty = (): Side => ({ samples: 0, errors: 0, reasons: null, peers: 0, peerSet: null, dense: latency ? new Float64Array(BUCKET_COUNT) : null })
  const inbound: Side[] = selected.map(empty)
  const outbound: Side[] = selected.map(empty)
  let from = now
  let to = now
  let full: { inbound: Side[], outbound: Side[] } | null = null
  for (const [key, members] of byKey) {
    // No slot lies wholly after the boot: nothing to read yet.
    if (key === null) continue
    const r = nodeSides(nodes, probe, windowMs, now, members.map(i => selected[i]!), peerOk, latency, key === FULL ? null : key)
    for (const [k, i] of members.entries()) { inbound[i] = r.inbound[k]!; outbound[i] = r.outbound[k]! }
    if (key === FULL && members.length === selected.length) full = r
    from = Math.min(from, r.from)
    to = Math.max(to, r.to)
  }
  if (wantFull && full === null) {
    full = since.some(x => x !== null) ? nodeSides(nodes, probe, windowMs, now, selected, peerOk, false) : { inbound, outbound }
  }
  return { inbound, outbound, since, full, from, to }
}

/**
 * For pair rules of peer kinds: which destination nodes have any result from a source group in
 * the window. One pass over the kind's cells; a bit per source group per target. Returns, per
 * destination node, the set of source groups that probed it (a bit mask over `groups`).
 */
export function probedBy (nodes: Store, probe: ProbeKind, windowMs: number, now: number, groups: readonly string[], groupOf: (node: string) => string): Map<string, number> {
  const read = nodes.read(windowMs, now)
  const names = nodes.nameCount
  const bitOf = new Int32Array(names).fill(UNSEEN)
  const targetOf = new Int32Array(names).fill(UNSEEN)
  const groupIndex = new Map(groups.slice(0, 31).map((g, i) => [g, i]))
  const targets: string[] = []
  const targetIndex = new Map<string, number>()
  const masks: number[] = []
  for (const id of nodes.idsOf(probe)) {
    const srcId = nodes.srcOf(id)
    let bit = bitOf[srcId]!
    if (bit === UNSEEN) bit = bitOf[srcId] = groupIndex.get(groupOf(nodes.name(srcId))) ?? OUT
    if (bit < 0) continue
    const tId = nodes.targetOf(id)
    let t = targetOf[tId]!
    if (t === UNSEEN) {
      const node = peerNode(nodes.name(tId))
      t = targetIndex.get(node) ?? -1
      if (t === -1) { t = targets.length; targets.push(node); targetIndex.set(node, t); masks.push(0) }
      targetOf[tId] = t
    }
    if ((masks[t]! & (1 << bit)) !== 0) continue
    if (read.has(id)) masks[t]! |= 1 << bit
  }
  return new Map(targets.map((n, i) => [n, masks[i]!]))
}
