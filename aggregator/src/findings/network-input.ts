// What the network evaluator reads from the stores: per node its inbound and outbound sums of the
// peer kinds (cheap: the store's per-node sums), the cells that failed (cost follows the failures),
// and per group link the sums the group store keeps. Plain data, so tests can build it by hand.

import { Histogram, PEER_PROBE_KINDS, type ProbeKind } from '@pingfleet/protocol'
import { peerNode } from '../store/ingest.ts'
import type { NodeSide, SideLoss } from '../store/node-sums.ts'
import type { Store } from '../store/store.ts'
import type { WindowRead } from '../store/window-read.ts'
import { zeroLoss, type LossCounters } from '../store/cell-sum.ts'
import type { EvidenceReason } from './finding.ts'
import type { FindingsContext, FindingsSources } from './input.ts'
import { SLOW_PROBE_WINDOW_MS } from './network-thresholds.ts'

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
}

const isPeerKind = new Set<string>(PEER_PROBE_KINDS)

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
  return { ...out, links }
}

function sideMap (names: readonly string[], list: NodeSide[]): Map<string, SideSum> {
  return new Map(list.map((s, i) => [names[i]!, { samples: s.samples, errors: s.errors, peers: s.peers, reasons: s.reasons, ...(s.loss === undefined ? {} : { loss: s.loss }) }]))
}

/** The failed cells of `probes` in one read, per kind: one pass over the read's failure records. */
function failedCells (store: Store, read: WindowRead, probes: ReadonlyArray<'pod' | 'mtu' | 'udp'>): Map<ProbeKind, FailedCell[]> {
  const wanted = new Set<ProbeKind>(probes)
  const byCell = new Map<number, EvidenceReason[]>()
  read.forEachErrorWhere(id => wanted.has(store.probeOf(id)), (id, e) => {
    let list = byCell.get(id)
    if (list === undefined) byCell.set(id, list = [])
    const same = list.find(x => x.reason === e.reason && x.raw === e.raw)
    if (same !== undefined) same.count += e.count
    else list.push({ reason: e.reason, raw: e.raw, count: e.count })
  })
  const out = new Map<ProbeKind, FailedCell[]>(probes.map(p => [p, []]))
  for (const [id, reasons] of byCell) {
    const key = store.key(id)
    const dst = isPeerKind.has(key.probe) ? peerNode(key.target) : key.target
    if (dst === key.src) continue
    if (reasons.length > 1) reasons.sort((a, b) => b.count - a.count)
    let errors = 0
    for (const r of reasons) errors += r.count
    const cell: FailedCell = { src: key.src, dst, samples: read.count(id), errors, reasons }
    if (key.probe === 'mtu') cell.size = Number(key.target.slice(dst.length + 1))
    out.get(key.probe)!.push(cell)
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
