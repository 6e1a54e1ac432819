// What the network evaluator reads from the stores: per node its inbound and outbound sums of the
// peer kinds (cheap: the store's per-node sums), the cells that failed (cost follows the failures),
// and per group link the sums the group store keeps. Plain data, so tests can build it by hand.

import { Histogram, type ProbeKind } from '@pingfleet/protocol'
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
  /** Per (reason, raw code), most first. Read-only: cells read from the store may share one list. */
  reasons: EvidenceReason[]
  size?: number
}

/** One peer kind: every node's sides and the failed cells. */
export interface PeerKindInput {
  inbound: Map<string, SideSum>
  outbound: Map<string, SideSum>
  failed: FailedCell[]
  /**
   * The failed cells whose (source, peer) `pair` accepts, as `failed.filter(c => pair(c.src, c.dst))`
   * gives them. readNetworkInput's test the pair before a cell's counts are read or its record is
   * built (mtu: a broken boundary's ~250,000 failed cells are explained by the pod mesh already).
   * Absent in inputs built by hand: `failed` is filtered then.
   */
  failedWhere?: (pair: (src: string, dst: string) => boolean) => FailedCell[]
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
 * cells from the slots' flat failure indexes, kind by kind (no healthy cell and no other kind's
 * failure is read); the group links from the group store. udp's failed cells are read when first
 * asked for (no evaluator judges them: loss reads the sides' counters), from the same read.
 */
export function readNetworkInput (sources: FindingsSources, ctx: FindingsContext): NetworkInput {
  const names = ctx.nodes.map(n => n.name)
  const slowWindow = Math.max(ctx.windowMs, SLOW_PROBE_WINDOW_MS)
  const out = {} as Record<'pod' | 'mtu' | 'udp', PeerKindInput>
  const links = {} as NetworkInput['links']
  const reads = new Map<number, WindowRead>()
  for (const [probe, windowMs] of [['pod', ctx.windowMs], ['mtu', slowWindow], ['udp', slowWindow]] as const) {
    let read = reads.get(windowMs)
    if (read === undefined) reads.set(windowMs, read = sources.nodes.read(windowMs, ctx.at))
    const sides = read.nodeSides(probe, names, false, false)
    const inbound = sideMap(names, sides.inbound)
    const outbound = sideMap(names, sides.outbound)
    if (probe === 'pod') {
      out[probe] = { inbound, outbound, failed: failedCells(sources.nodes, read, probe) }
    } else {
      // mtu is judged through failedWhere, udp's cells by nobody: `failed` is read when first asked for.
      const from = read
      let failed: FailedCell[] | null = null
      out[probe] = {
        inbound,
        outbound,
        get failed () { return (failed ??= failedCells(sources.nodes, from, probe)) },
        failedWhere: pair => failedCells(sources.nodes, from, probe, pair)
      }
    }
    links[probe] = readGroupLinks(sources, probe, windowMs, ctx.at)
  }
  return { ...out, links, recent: readRecent(sources, ctx, names) }
}

/** pod and udp over the recent sub-window: sides, failed cells (pod; few: a short span) and group links. */
function readRecent (sources: FindingsSources, ctx: FindingsContext, names: readonly string[]): RecentInput {
  const windowMs = recentWindowMs(ctx.windowMs)
  const read = sources.nodes.read(windowMs, ctx.at)
  const kind = (probe: 'pod' | 'udp'): PeerKindInput => {
    const sides = read.nodeSides(probe, names, false, false)
    // udp's recent failed cells: judged by nobody (loss reads the sides' counters).
    return { inbound: sideMap(names, sides.inbound), outbound: sideMap(names, sides.outbound), failed: probe === 'pod' ? failedCells(sources.nodes, read, 'pod') : [] }
  }
  return { pod: kind('pod'), udp: kind('udp'), links: { pod: readGroupLinks(sources, 'pod', windowMs, ctx.at), udp: readGroupLinks(sources, 'udp', windowMs, ctx.at) } }
}

function sideMap (names: readonly string[], list: NodeSide[]): Map<string, SideSum> {
  return new Map(list.map((s, i) => [names[i]!, { samples: s.samples, errors: s.errors, peers: s.peers, reasons: s.reasons, ...(s.loss === undefined ? {} : { loss: s.loss }) }]))
}

/**
 * The failed cells of one kind in one read, ids ascending (WindowRead.failedOf: the slots' flat
 * failure indexes). A broken boundary at 1,000 nodes fails ~250,000 cells per kind: a cell with one
 * (reason, raw) pair, as nearly all have, takes it from the index; only a cell with several reads
 * its records (forEachError, slots in order: its pairs in order of first appearance, then most
 * first). Names are resolved once per interned name, not per cell.
 */
function failedCells (store: Store, read: WindowRead, probe: ProbeKind, pair?: (src: string, dst: string) => boolean): FailedCell[] {
  const f = read.failedOf(probe)
  const isMtu = probe === 'mtu'
  // Per interned name: a source's text; a target's node, and for mtu its size.
  const srcOf: Array<string | undefined> = []
  const dstOf: Array<string | undefined> = []
  const sizeOf: number[] = []
  // The positions kept (not a node probing itself, and the pair accepted), then their counts.
  const kept = new Int32Array(f.ids.length)
  let m = 0
  for (let k = 0; k < f.ids.length; k++) {
    const id = f.ids[k]!
    const tId = store.targetOf(id)
    let dst = dstOf[tId]
    if (dst === undefined) {
      const target = store.name(tId)
      dst = dstOf[tId] = peerNode(target)
      sizeOf[tId] = dst.length === target.length ? 0 : Number(target.slice(dst.length + 1))
    }
    const sId = store.srcOf(id)
    const src = srcOf[sId] ??= store.name(sId)
    if (dst !== src && (pair === undefined || pair(src, dst))) kept[m++] = k
  }
  const ids = new Int32Array(m)
  for (let j = 0; j < m; j++) ids[j] = f.ids[kept[j]!]!
  const counts = new Float64Array(m)
  read.sumMany(ids, counts)
  const cells: FailedCell[] = []
  const shared: Array<Map<number, EvidenceReason[]>> = []
  for (let j = 0; j < m; j++) {
    const k = kept[j]!
    const id = f.ids[k]!
    const tId = store.targetOf(id)
    const dst = dstOf[tId]!
    const src = srcOf[store.srcOf(id)]!
    const p = f.pair[k]!
    let reasons: EvidenceReason[]
    let errors: number
    if (p !== -1) {
      // Cells with the same one pair and count share one reasons list (nothing changes a cell's
      // reasons in place): at a broken boundary that is a few lists, not one per cell.
      errors = f.errors[k]!
      const byCount = shared[p] ??= new Map()
      let list = byCount.get(errors)
      if (list === undefined) {
        const only = f.pairs[p]!
        byCount.set(errors, list = [{ reason: only.reason, raw: only.raw, count: errors }])
      }
      reasons = list
    } else {
      reasons = []
      read.forEachError(id, e => {
        const same = reasons.find(x => x.reason === e.reason && x.raw === e.raw)
        if (same !== undefined) same.count += e.count
        else reasons.push({ reason: e.reason, raw: e.raw, count: e.count })
      })
      if (reasons.length > 1) reasons.sort((a, b) => b.count - a.count)
      errors = 0
      for (const r of reasons) errors += r.count
    }
    const cell: FailedCell = { src, dst, samples: counts[j]!, errors, reasons }
    if (isMtu) cell.size = sizeOf[tId]!
    cells.push(cell)
  }
  return cells
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
