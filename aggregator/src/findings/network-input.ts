// What the network evaluator reads from the stores: per node its inbound and outbound sums of the
// peer kinds (cheap: the store's per-node sums), the cells that failed (cost follows the failures),
// and per group link the sums the group store keeps. Plain data, so tests can build it by hand.

import { Histogram, PROBE_KIND_NAMES, type ProbeKind } from '@pingfleet/protocol'
import { peerNode } from '../store/ingest.ts'
import type { NodeSide, SideLoss } from '../store/node-sums.ts'
import type { Store } from '../store/store.ts'
import type { WindowRead } from '../store/window-read.ts'
import { zeroLoss, type LossCounters } from '../store/cell-sum.ts'
import type { EvidenceReason } from './finding.ts'
import type { FindingsContext, FindingsSources } from './input.ts'
import { recentWindowMs, SLOW_PROBE_WINDOW_MS } from './network-thresholds.ts'

/** One node's results in one direction: probes toward it (inbound) or from it (outbound). */
export interface SideSum {
  samples: number
  errors: number
  /** Distinct peers with results. */
  peers: number
  /** Failures per reason; null when none or not read (readNetworkInput leaves them to the failed cells). */
  reasons: Map<string, number> | null
  /** udp datagrams sent/lost, connects that needed a SYN retransmit; absent when none carried any. */
  loss?: SideLoss
}

/** One cell with at least one failure: `src` probing node `dst` (mtu: at response size `size`). */
export interface FailedCell {
  src: string
  dst: string
  samples: number
  errors: number
  /** Per (reason, raw code), most first. */
  reasons: EvidenceReason[]
  size?: number
}

/** One peer kind: every node's sides and the failed cells. */
export interface PeerKindInput {
  inbound: Map<string, SideSum>
  outbound: Map<string, SideSum>
  failed: FailedCell[]
}

/** The group store's sums of one kind from group `src` to group `dst` (the groups at ingest). */
export interface GroupLinkSum {
  src: string
  dst: string
  samples: number
  errors: number
  loss: LossCounters
}

/** The node-level results the network evaluator judges (built by readNetworkInput, or by tests). */
export interface NetworkInput {
  pod: PeerKindInput
  mtu: PeerKindInput
  udp: PeerKindInput
  /** Per kind, the group links with results. */
  links: Record<'pod' | 'mtu' | 'udp', GroupLinkSum[]>
  /** The same reads over the recent sub-window, to confirm detections on; absent: nothing is confirmed (hand-built inputs). */
  recent?: RecentInput
}

/** pod and udp over the recent sub-window (recentWindowMs): what a detection is confirmed on. */
export interface RecentInput {
  pod: PeerKindInput
  udp: PeerKindInput
  links: Record<'pod' | 'udp', GroupLinkSum[]>
}

/**
 * Reads the network evaluator's input for `ctx` from the stores: `pod` over ctx.windowMs, `mtu` and
 * `udp` over at least SLOW_PROBE_WINDOW_MS (they run every 30 s by default). Per node of ctx.nodes,
 * its sides from the store's per-node sums (a few words per node and slot; their per-reason maps
 * are not read, `reasons` stays null: reasons come from the failed cells, with raw codes); the failed
 * cells from the slots' failure records, one pass per distinct window for every kind it serves (no
 * healthy cell is read); the group links from the group store.
 */
export function readNetworkInput (sources: FindingsSources, ctx: FindingsContext): NetworkInput {
  const names = ctx.nodes.map(n => n.name)
  const slowWindow = Math.max(ctx.windowMs, SLOW_PROBE_WINDOW_MS)
  const windows = new Map<number, Array<'pod' | 'mtu' | 'udp'>>()
  for (const [probe, windowMs] of [['pod', ctx.windowMs], ['mtu', slowWindow], ['udp', slowWindow]] as const) windows.set(windowMs, [...windows.get(windowMs) ?? [], probe])
  const out = {} as Record<'pod' | 'mtu' | 'udp', PeerKindInput>
  const links = {} as NetworkInput['links']
  for (const [windowMs, probes] of windows) {
    const read = sources.nodes.read(windowMs, ctx.at)
    const failed = failedCells(sources.nodes, read, probes)
    for (const probe of probes) {
      const sides = read.nodeSides(probe, names, false, false)
      out[probe] = { inbound: sideMap(names, sides.inbound), outbound: sideMap(names, sides.outbound), failed: failed.get(probe)! }
      links[probe] = readGroupLinks(sources, probe, windowMs, ctx.at)
    }
  }
  return { ...out, links, recent: readRecent(sources, ctx, names) }
}

/** pod and udp over the recent sub-window: sides, failed cells (pod; few: a short span) and group links. */
function readRecent (sources: FindingsSources, ctx: FindingsContext, names: readonly string[]): RecentInput {
  const windowMs = recentWindowMs(ctx.windowMs)
  const read = sources.nodes.read(windowMs, ctx.at)
  const failed = failedCells(sources.nodes, read, ['pod'])
  const kind = (probe: 'pod' | 'udp'): PeerKindInput => {
    const sides = read.nodeSides(probe, names, false, false)
    return { inbound: sideMap(names, sides.inbound), outbound: sideMap(names, sides.outbound), failed: failed.get(probe) ?? [] }
  }
  return { pod: kind('pod'), udp: kind('udp'), links: { pod: readGroupLinks(sources, 'pod', windowMs, ctx.at), udp: readGroupLinks(sources, 'udp', windowMs, ctx.at) } }
}

function sideMap (names: readonly string[], list: NodeSide[]): Map<string, SideSum> {
  return new Map(list.map((s, i) => [names[i]!, { samples: s.samples, errors: s.errors, peers: s.peers, reasons: s.reasons, ...(s.loss === undefined ? {} : { loss: s.loss }) }]))
}

/**
 * The failed cells of `probes` in one read, per kind: one pass over the read's failure records. A
 * broken boundary at 1,000 nodes fails ~250,000 cells per kind, so the pass sums into flat arrays
 * (a cell's first (reason, raw) pair by id; a cell with more pairs is rare and goes to a map) and
 * names are resolved once per interned name, not per cell.
 */
/** Failed cells indexed through a map up to this many; past it, a flat index over every cell (12 MB at 3 million cells) is cheaper. */
const SMALL_FAILED = 20_000

function failedCells (store: Store, read: WindowRead, probes: ReadonlyArray<'pod' | 'mtu' | 'udp'>): Map<ProbeKind, FailedCell[]> {
  const wanted = new Uint8Array(PROBE_KIND_NAMES.length)
  for (const p of probes) wanted[PROBE_KIND_NAMES.indexOf(p)] = 1
  const kindOf = (id: number): number => PROBE_KIND_NAMES.indexOf(store.probeOf(id))
  // Per cell with failures, its position k (a map while few, then a flat index); per k: cell id,
  // first pair and its count.
  const small = new Map<number, number>()
  let slot: Int32Array | null = null
  const ids: number[] = []
  const firstPair: number[] = []
  const firstCount: number[] = []
  const more = new Map<number, EvidenceReason[]>()
  const pairIds = new Map<string, number>()
  const pairs: Array<{ reason: string, raw: string }> = []
  // Most records repeat the last (reason, raw) pair: compared first, no key is built for them.
  let lastReason = ''
  let lastRaw = ''
  let lastPair = -1
  read.forEachErrorWhere(id => wanted[kindOf(id)] === 1, (id, e) => {
    let pair = lastPair
    if (e.reason !== lastReason || e.raw !== lastRaw || pair === -1) {
      const key = `${e.reason}\u0000${e.raw}`
      pair = pairIds.get(key) ?? -1
      if (pair === -1) { pair = pairs.length; pairIds.set(key, pair); pairs.push({ reason: e.reason, raw: e.raw }) }
      lastReason = e.reason
      lastRaw = e.raw
      lastPair = pair
    }
    let k = slot === null ? small.get(id) ?? -1 : slot[id]!
    if (k === -1) {
      k = ids.length
      if (slot !== null) slot[id] = k
      else if (small.size < SMALL_FAILED) small.set(id, k)
      else {
        // Many failures (a broken boundary): a flat index by cell id from here on.
        slot = new Int32Array(store.cellCount).fill(-1)
        for (const [c, j] of small) slot[c] = j
        slot[id] = k
      }
      ids.push(id)
      firstPair.push(pair)
      firstCount.push(e.count)
      return
    }
    if (firstPair[k] === pair) { firstCount[k]! += e.count; return }
    let list = more.get(k)
    if (list === undefined) more.set(k, list = [])
    const same = list.find(x => x.reason === e.reason && x.raw === e.raw)
    if (same !== undefined) same.count += e.count
    else list.push({ reason: e.reason, raw: e.raw, count: e.count })
  })
  const out = new Map<ProbeKind, FailedCell[]>(probes.map(p => [p, []]))
  const lists = probes.map(p => out.get(p)!)
  const listOf = new Array<FailedCell[] | undefined>(PROBE_KIND_NAMES.length)
  for (const [i, p] of probes.entries()) listOf[PROBE_KIND_NAMES.indexOf(p)] = lists[i]
  // Per interned target name: its node, and for mtu its size.
  const dstOf: Array<string | undefined> = []
  const sizeOf: number[] = []
  const counts = new Float64Array(ids.length)
  read.sumMany(ids, counts)
  for (let k = 0; k < ids.length; k++) {
    const id = ids[k]!
    const tId = store.targetOf(id)
    let dst = dstOf[tId]
    if (dst === undefined) {
      const target = store.name(tId)
      dst = dstOf[tId] = peerNode(target)
      sizeOf[tId] = dst.length === target.length ? 0 : Number(target.slice(dst.length + 1))
    }
    const src = store.name(store.srcOf(id))
    if (dst === src) continue
    const first = pairs[firstPair[k]!]!
    const reasons: EvidenceReason[] = [{ reason: first.reason, raw: first.raw, count: firstCount[k]! }]
    const extra = more.get(k)
    if (extra !== undefined) { reasons.push(...extra); reasons.sort((a, b) => b.count - a.count) }
    let errors = 0
    for (const r of reasons) errors += r.count
    const kind = kindOf(id)
    const cell: FailedCell = { src, dst, samples: counts[k]!, errors, reasons }
    if (PROBE_KIND_NAMES[kind] === 'mtu') cell.size = sizeOf[tId]!
    listOf[kind]!.push(cell)
  }
  return out
}

/** The group store's links of one kind over `windowMs` before `at`: samples, failures and loss counters. */
function readGroupLinks (sources: FindingsSources, probe: ProbeKind, windowMs: number, at: number): GroupLinkSum[] {
  const store = sources.groups
  const read = store.read(windowMs, at)
  const links: GroupLinkSum[] = []
  for (const id of store.idsOf(probe)) {
    if (!read.has(id)) continue
    const key = store.key(id)
    const loss = zeroLoss()
    let errors = 0
    read.forEachError(id, e => { errors += e.count })
    const samples = read.addLatency(id, new Histogram(), loss)
    links.push({ src: key.src, dst: key.target, samples, errors, loss })
  }
  return links
}
