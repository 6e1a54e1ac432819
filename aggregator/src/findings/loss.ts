// loss findings: datagrams lost by the udp trains, and SYN retransmits on pod connects, toward or
// from one node or across one group link, while most probes still succeed. Explaining away is by
// excess over the rest of the fleet, greedily, the largest loss first (as the pod mesh's cover).

import type { Detection, Evidence } from './finding.ts'
import type { FindingNode, FindingsContext } from './input.ts'
import { count, percent } from './evidence.ts'
import type { NetworkInput, SideSum } from './network-input.ts'
import { LOSS_EXCESS, LOSS_RATIO, MIN_LOSS_PACKETS } from './network-thresholds.ts'
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
}

/** One lossy subject for one signal, with the rest-of-fleet ratio it was judged against. */
interface Lossy extends Candidate { signal: 'udp' | 'syn', baseline: number }

/**
 * The loss detections: per node and per group link, from the udp trains (datagrams lost) and from
 * pod connects that needed a SYN retransmit. A subject with a pod finding (node-*, group-boundary)
 * is left out: that finding explains its loss.
 */
export function lossFindings (ctx: FindingsContext, input: NetworkInput, mesh: MeshVerdict): Detection[] {
  const udp = judge(ctx, input.udp.inbound, input.udp.outbound, input.links.udp.map(l => ({ src: l.src, dst: l.dst, packets: l.loss.sent, lost: l.loss.lost })), s => ({ packets: s.loss?.sent ?? 0, lost: s.loss?.lost ?? 0 }), mesh)
  const syn = judge(ctx, input.pod.inbound, input.pod.outbound, input.links.pod.map(l => ({ src: l.src, dst: l.dst, packets: l.samples - l.errors, lost: l.loss.slowConnects })), s => ({ packets: s.samples - s.errors, lost: s.loss?.slowConnects ?? 0 }), mesh)
  const bySubject = new Map<string, Lossy[]>()
  for (const l of [...udp.map(x => ({ ...x, signal: 'udp' as const })), ...syn.map(x => ({ ...x, signal: 'syn' as const }))]) {
    const id = l.side === 'link' ? `groups/${l.src}->${l.dst}` : `node/${ctx.nodes[l.node]!.name}`
    bySubject.set(id, [...bySubject.get(id) ?? [], l])
  }
  return [...bySubject].map(([id, list]) => detection(ctx.nodes, id, list))
}

/**
 * Greedy by lost packets: accepts the candidate that lost the most among those with ≥
 * MIN_LOSS_PACKETS packets, a loss ratio ≥ LOSS_RATIO and ≥ LOSS_EXCESS × the ratio of everything
 * not yet explained outside it; then takes its share out of the candidates it overlaps (a link's
 * loss spread evenly over its nodes' sides; a node side's over the other nodes' opposite sides and,
 * by group size, over its group's links).
 */
function judge (ctx: FindingsContext, inbound: Map<string, SideSum>, outbound: Map<string, SideSum>, links: Array<{ src: string, dst: string, packets: number, lost: number }>,
  packetsOf: (s: SideSum) => { packets: number, lost: number }, mesh: MeshVerdict): Array<Candidate & { baseline: number }> {
  const n = ctx.nodes.length
  const cands: Candidate[] = []
  const groupSize = new Map<string, number>()
  for (const node of ctx.nodes) groupSize.set(node.group, (groupSize.get(node.group) ?? 0) + 1)
  for (const [i, node] of ctx.nodes.entries()) {
    const inSide = inbound.get(node.name)
    const outSide = outbound.get(node.name)
    cands.push({ side: 'in', node: i, src: '', dst: '', ...(inSide === undefined ? { packets: 0, lost: 0 } : packetsOf(inSide)) })
    // A degraded agent's own samples are not judged.
    cands.push({ side: 'out', node: i, src: '', dst: '', ...(outSide === undefined || node.degraded !== null ? { packets: 0, lost: 0 } : packetsOf(outSide)) })
  }
  for (const l of links) cands.push({ side: 'link', node: -1, ...l })
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
      const ratio = c.lost / c.packets
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
      c.lost = Math.max(0, c.lost - best.lost * share)
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
      // A node side's loss lies on every other node's opposite side (spread evenly) and on its group's links.
      for (let i = 0; i < n; i++) if (i !== best.node) take(cands[2 * i + (best.side === 'in' ? 1 : 0)]!, 1 / Math.max(1, n - 1))
      for (const c of cands) {
        if (c.side !== 'link') continue
        if (best.side === 'in' && c.dst === g) take(c, (groupSize.get(c.src) ?? 0) / n)
        if (best.side === 'out' && c.src === g) take(c, (groupSize.get(c.dst) ?? 0) / n)
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
