// loss findings: datagrams lost by the udp trains, and SYN retransmits on pod connects, toward or
// from one node or across one group link, while most probes still succeed. Explaining away is by
// excess over the rest of the fleet, greedily, the largest loss first (as the pod mesh's cover).

import type { Detection, Evidence } from './finding.ts'
import type { FindingNode, FindingsContext } from './input.ts'
import { count, percent } from './evidence.ts'
import type { NetworkInput, RecentInput, SideSum } from './network-input.ts'
import { LOSS_EXCESS, LOSS_NOISE_SD, LOSS_RATIO, MIN_LOSS_PACKETS, MIN_RECENT_LOSS_PACKETS, STILL_FAILING_RATIO } from './network-thresholds.ts'
import type { MeshVerdict } from './node-faults.ts'
import { MAX_CAUSES } from './cover.ts'

/** One candidate: a node side or a group link, its packets (datagrams or connects) and those lost. */
interface Candidate {
  side: 'in' | 'out' | 'link'
  node: number
  src: string
  dst: string
  packets: number
  lost: number
  /** Lost packets taken out of it as other causes' share (their noise stays: LOSS_NOISE_SD). */
  taken: number
}

/** One lossy subject for one signal, with the rest-of-fleet ratio it was judged against. */
interface Lossy extends Candidate { signal: 'udp' | 'syn', baseline: number }

/**
 * The loss detections: per node and per group link, from the udp trains (datagrams lost) and from
 * pod connects that needed a SYN retransmit. Only packets of trains that got an echo count: a train
 * with no echo at all (UDP_NO_ECHO, a refused port) is an outage, the pod mesh's to judge, not loss.
 * A subject with a pod finding (node-*, group-boundary) is left out, and so is one whose pod probes
 * nearly all fail in the recent sub-window (an outage the mesh is about to find), or whose loss does not
 * show there (where it holds MIN_RECENT_LOSS_PACKETS): loss is packets lost while most probes succeed.
 */
export function lossFindings (ctx: FindingsContext, input: NetworkInput, mesh: MeshVerdict): Detection[] {
  const udpLinks = (links: NetworkInput['links']['udp']): LossCount[] => links.map(l => ({ src: l.src, dst: l.dst, ...echoed(l.samples, l.errors, l.loss.sent, l.loss.lost) }))
  const udpSide = (s: SideSum): { packets: number, lost: number } => echoed(s.samples, s.errors, s.loss?.sent ?? 0, s.loss?.lost ?? 0)
  const synLinks = (links: NetworkInput['links']['pod']): LossCount[] => links.map(l => ({ src: l.src, dst: l.dst, packets: l.samples - l.errors, lost: l.loss.slowConnects }))
  const synSide = (s: SideSum): { packets: number, lost: number } => ({ packets: s.samples - s.errors, lost: s.loss?.slowConnects ?? 0 })
  const udp = judge(ctx, input.udp.inbound, input.udp.outbound, udpLinks(input.links.udp), udpSide, mesh)
  const syn = judge(ctx, input.pod.inbound, input.pod.outbound, synLinks(input.links.pod), synSide, mesh)
  const recent = input.recent
  const stillLossy = (l: Lossy): boolean => {
    if (recent === undefined) return true
    if (outage(ctx, recent, l)) return false
    const r = l.signal === 'udp'
      ? recentCount(ctx, l, recent.udp.inbound, recent.udp.outbound, udpLinks(recent.links.udp), udpSide)
      : recentCount(ctx, l, recent.pod.inbound, recent.pod.outbound, synLinks(recent.links.pod), synSide)
    return r.packets < MIN_RECENT_LOSS_PACKETS || r.lost >= LOSS_RATIO * r.packets
  }
  const bySubject = new Map<string, Lossy[]>()
  for (const l of [...udp.map(x => ({ ...x, signal: 'udp' as const })), ...syn.map(x => ({ ...x, signal: 'syn' as const }))]) {
    if (!stillLossy(l)) continue
    const id = l.side === 'link' ? `groups/${l.src}->${l.dst}` : `node/${ctx.nodes[l.node]!.name}`
    bySubject.set(id, [...bySubject.get(id) ?? [], l])
  }
  return [...bySubject].map(([id, list]) => detection(ctx.nodes, id, list))
}

interface LossCount { src: string, dst: string, packets: number, lost: number }

/**
 * udp datagrams of trains that got at least one echo: `trains` trains (`failed` of them with no
 * echo at all) sent `sent` judged datagrams and lost `lost`. A train with no echo lost all of its
 * datagrams; trains are of one size (PINGFLEET_UDP_COUNT), so the failed ones sent sent/trains each.
 */
export function echoed (trains: number, failed: number, sent: number, lost: number): { packets: number, lost: number } {
  const outage = trains > 0 ? Math.min(sent, lost, failed * sent / trains) : 0
  return { packets: Math.max(0, sent - outage), lost: Math.max(0, lost - outage) }
}

/**
 * Whether `l`'s subject's pod probes nearly all fail in the recent sub-window (either side of a
 * node): STILL_FAILING_RATIO, as a broken path; partial loss fails a third or so, often over half.
 */
function outage (ctx: FindingsContext, recent: RecentInput, l: Lossy): boolean {
  const fails = (s: { samples: number, errors: number } | undefined): boolean => s !== undefined && s.samples > 0 && s.errors >= STILL_FAILING_RATIO * s.samples
  if (l.side === 'link') return fails(recent.links.pod.find(x => x.src === l.src && x.dst === l.dst))
  const name = ctx.nodes[l.node]!.name
  return fails(recent.pod.inbound.get(name)) || fails(recent.pod.outbound.get(name))
}

/** `l`'s subject's packets and lost ones in the recent sub-window. */
function recentCount (ctx: FindingsContext, l: Lossy, inbound: Map<string, SideSum>, outbound: Map<string, SideSum>, links: LossCount[],
  packetsOf: (s: SideSum) => { packets: number, lost: number }): { packets: number, lost: number } {
  if (l.side === 'link') return links.find(x => x.src === l.src && x.dst === l.dst) ?? { packets: 0, lost: 0 }
  const side = (l.side === 'in' ? inbound : outbound).get(ctx.nodes[l.node]!.name)
  return side === undefined ? { packets: 0, lost: 0 } : packetsOf(side)
}

/**
 * Greedy by lost packets: accepts the candidate that lost the most among those with ≥
 * MIN_LOSS_PACKETS packets, a loss ratio ≥ LOSS_RATIO and ≥ LOSS_EXCESS × the ratio of everything
 * not yet explained outside it; then takes its share out of the candidates it overlaps: a link's
 * loss spread evenly over its nodes' sides; a node side's over the other nodes' opposite sides, and
 * over its group's links by how many of its peers each holds. What is left of a candidate counts
 * less LOSS_NOISE_SD standard deviations of what was taken out of it (a count: sd ≈ √taken), so a
 * node's loss explains the links and peers it touches and its random share left there is no loss.
 */
function judge (ctx: FindingsContext, inbound: Map<string, SideSum>, outbound: Map<string, SideSum>, links: LossCount[],
  packetsOf: (s: SideSum) => { packets: number, lost: number }, mesh: MeshVerdict): Array<Candidate & { baseline: number }> {
  const n = ctx.nodes.length
  const cands: Candidate[] = []
  const groupSize = new Map<string, number>()
  for (const node of ctx.nodes) groupSize.set(node.group, (groupSize.get(node.group) ?? 0) + 1)
  for (const [i, node] of ctx.nodes.entries()) {
    const inSide = inbound.get(node.name)
    const outSide = outbound.get(node.name)
    cands.push({ side: 'in', node: i, src: '', dst: '', taken: 0, ...(inSide === undefined ? { packets: 0, lost: 0 } : packetsOf(inSide)) })
    // A degraded agent's own samples are not judged.
    cands.push({ side: 'out', node: i, src: '', dst: '', taken: 0, ...(outSide === undefined || node.degraded !== null ? { packets: 0, lost: 0 } : packetsOf(outSide)) })
  }
  for (const l of links) cands.push({ side: 'link', node: -1, taken: 0, ...l })
  let allPackets = 0
  let allLost = 0
  for (const l of links) { allPackets += l.packets; allLost += l.lost }
  const accepted: Array<Candidate & { baseline: number }> = []
  const done = new Set<Candidate>()
  while (accepted.length < MAX_CAUSES) {
    let best: Candidate | null = null
    let bestBaseline = 0
    for (const c of cands) {
      if (done.has(c) || c.packets < MIN_LOSS_PACKETS || c.lost <= 0) continue
      const ratio = (c.lost - LOSS_NOISE_SD * Math.sqrt(c.taken)) / c.packets
      const restPackets = allPackets - c.packets
      const baseline = restPackets > 0 ? Math.max(0, allLost - c.lost) / restPackets : 0
      if (ratio < LOSS_RATIO || ratio < LOSS_EXCESS * baseline) continue
      if (best === null || c.lost > best.lost) { best = c; bestBaseline = baseline }
    }
    if (best === null) break
    done.add(best)
    accepted.push({ ...best, baseline: bestBaseline })
    allPackets -= best.packets
    allLost -= best.lost
    const take = (c: Candidate, share: number): void => {
      const lost = Math.min(c.lost, best.lost * share)
      c.lost -= lost
      c.taken += lost
      c.packets = Math.max(0, c.packets - best.packets * share)
    }
    if (best.side === 'link') {
      const b = best
      for (let i = 0; i < n; i++) {
        const g = ctx.nodes[i]!.group
        if (g === b.dst) take(cands[2 * i]!, 1 / groupSize.get(g)!)
        if (g === b.src) take(cands[2 * i + 1]!, 1 / groupSize.get(g)!)
      }
    } else {
      const g = ctx.nodes[best.node]!.group
      const peers = Math.max(1, n - 1)
      // A node side's loss lies on every other node's opposite side (spread evenly) and on its group's
      // links, each by how many of its peers it holds (its own group's without itself).
      const peersIn = (group: string): number => (groupSize.get(group) ?? 0) - (group === g ? 1 : 0)
      for (let i = 0; i < n; i++) if (i !== best.node) take(cands[2 * i + (best.side === 'in' ? 1 : 0)]!, 1 / peers)
      for (const c of cands) {
        if (c.side !== 'link') continue
        if (best.side === 'in' && c.dst === g) take(c, peersIn(c.src) / peers)
        if (best.side === 'out' && c.src === g) take(c, peersIn(c.dst) / peers)
      }
    }
  }
  // What a pod finding already explains is not loss.
  return accepted.filter(c => c.side === 'link'
    ? !mesh.brokenLinks.has(`${c.src}\u0000${c.dst}`)
    : !mesh.faultyNodes.has(ctx.nodes[c.node]!.name) && ctx.nodes[c.node]!.degraded === null)
}

function detection (nodes: readonly FindingNode[], id: string, list: Lossy[]): Detection {
  const first = list[0]!
  const what = (l: Lossy): string => l.signal === 'udp' ? 'udp datagrams' : 'pod connects needing a SYN retransmit'
  const where = (l: Lossy): string => l.side === 'in' ? ' toward it' : l.side === 'out' ? ' from it' : ''
  const evidence: Evidence[] = list.map(l => ({
    probe: l.signal === 'udp' ? 'udp' : 'pod',
    scope: l.side === 'in' ? 'inbound' : l.side === 'out' ? 'outbound' : `${l.src}->${l.dst}`,
    samples: Math.round(l.packets),
    errors: 0,
    errorRatio: null,
    reasons: [],
    figures: { [l.signal === 'udp' ? 'lossRatio' : 'slowConnectRatio']: l.lost / l.packets, lost: Math.round(l.lost), baselineRatio: l.baseline }
  }))
  const part = (l: Lossy): string => l.signal === 'udp'
    ? `${percent(l.lost / l.packets)} of udp datagrams${where(l)} are lost (${count(l.lost)} of ${count(l.packets)})`
    : `${percent(l.lost / l.packets)} of pod connects${where(l)} needed a SYN retransmit (${count(l.lost)} of ${count(l.packets)})`
  const head = first.side === 'link' ? `${first.src} -> ${first.dst}` : `${nodes[first.node]!.name} (${nodes[first.node]!.group})`
  const lead = `${head}: ${list.map(part).join('; ')}`
  const node = first.side === 'link' ? null : nodes[first.node]!
  return {
    kind: 'loss',
    subject: node === null ? { type: 'group-pair', id, src: first.src, dst: first.dst, bothWays: false } : { type: 'node', id, node: node.name, group: node.group },
    evidence,
    score: Math.min(1, Math.max(...list.map(l => 1 - (l.baseline * l.packets) / Math.max(l.lost, 1e-9)))),
    scoreBasis: `loss ratio against the rest of the fleet's (${list.map(l => `${what(l)}: ${percent(l.lost / l.packets)} against ${percent(l.baseline)}`).join('; ')})`,
    lead,
    rest: `while most probes still succeed; the rest of the fleet loses ${percent(first.baseline)}`,
    nodes: node === null ? [] : [node.name],
    groups: node === null ? [...new Set([first.src, first.dst])] : [node.group]
  }
}
