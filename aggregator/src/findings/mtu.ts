// mtu findings: large (mtu) probes fail where small (pod) probes between the same two nodes succeed,
// explained away by node sides and group links as the pod mesh is (cover.ts).

import { explainFailures, type Cause } from './cover.ts'
import type { Detection } from './finding.ts'
import type { FindingsContext } from './input.ts'
import { cellEvidence, count, reasonText } from './evidence.ts'
import type { FailedCell, PeerKindInput } from './network-input.ts'
import { cellFails, coverCells, coverNodes, type MeshVerdict } from './node-faults.ts'

/**
 * mtu detections: one per node (large probes toward it, from it, or both) and one per group link.
 * A pair counts only when its pod cell does not fail and neither end nor its link already has a
 * pod finding: those explain the large probes' failures too.
 */
export function mtuFindings (ctx: FindingsContext, mtu: PeerKindInput, mesh: MeshVerdict): Detection[] {
  const index = new Map(ctx.nodes.map((n, i) => [n.name, i]))
  const groupOf = new Map(ctx.nodes.map(n => [n.name, n.group]))
  const nodes = coverNodes(ctx.nodes, mtu)
  const n = ctx.nodes.length
  // Cells come grouped by source (the store reads them so): its index is looked up once per run.
  let lastSrc: string | null = null
  let srcIndex = -1
  // Pairs the pod mesh already explains (tested before a cell is read: mtu.failedWhere).
  const open = (src: string, dst: string): boolean => {
    if (src !== lastSrc) { lastSrc = src; srcIndex = index.get(src) ?? -1 }
    return !mesh.failingPairs.has(srcIndex * n + (index.get(dst) ?? -1)) &&
      !mesh.faultyNodes.has(src) && !mesh.faultyNodes.has(dst) && !mesh.brokenLinks.has(`${groupOf.get(src)}\u0000${groupOf.get(dst)}`)
  }
  const failing = (mtu.failedWhere?.(open) ?? mtu.failed.filter(c => open(c.src, c.dst))).filter(cellFails)
  // A peer has one mtu cell per size: the cover counts pairs, so a pair's failing sizes become one cell.
  const { cells, source } = coverCells(nodes, index, byPair(failing), () => true)
  const causes = explainFailures(nodes, cells)
  const detections: Detection[] = []
  const byNode = new Map<number, Cause[]>()
  for (const c of causes) {
    if (c.side === 'link') { detections.push(linkDetection(c, c.cells.map(k => source[k]!))); continue }
    byNode.set(c.node, [...byNode.get(c.node) ?? [], c])
  }
  for (const [i, list] of byNode) detections.push(nodeDetection(ctx, i, list, source))
  return detections
}

/** One cell per (src, dst) pair: failures and reasons summed, the sizes kept in `sizes`. */
function byPair (failed: readonly FailedCell[]): Array<FailedCell & { sizes: number[] }> {
  const pairs = new Map<string, FailedCell & { sizes: number[] }>()
  for (const c of failed) {
    const key = `${c.src}\u0000${c.dst}`
    const p = pairs.get(key)
    if (p === undefined) { pairs.set(key, { ...c, reasons: c.reasons.map(r => ({ ...r })), sizes: [c.size ?? 0] }); continue }
    p.samples += c.samples
    p.errors += c.errors
    p.sizes.push(c.size ?? 0)
    for (const r of c.reasons) {
      const same = p.reasons.find(x => x.reason === r.reason && x.raw === r.raw)
      if (same !== undefined) same.count += r.count
      else p.reasons.push({ ...r })
    }
  }
  return [...pairs.values()]
}

const sizes = (cells: readonly FailedCell[]): string => {
  const all = [...new Set(cells.flatMap(c => (c as FailedCell & { sizes?: number[] }).sizes ?? [c.size ?? 0]))].sort((a, b) => a - b)
  return all.length === 0 ? '' : ` (${all.join(', ')} bytes)`
}

function nodeDetection (ctx: FindingsContext, i: number, list: Cause[], source: FailedCell[]): Detection {
  const node = ctx.nodes[i]!
  const evidence = list.map(c => cellEvidence('mtu', c.side === 'in' ? 'inbound' : 'outbound', c.cells.map(k => source[k]!), { count: c.failing, of: c.total }))
  const all = list.flatMap(c => c.cells.map(k => source[k]!))
  const part = (c: Cause): string => c.side === 'in' ? `toward it fail from ${c.failing} of ${c.total} peers` : `from it fail toward ${c.failing} of ${c.total} peers`
  return {
    kind: 'mtu',
    subject: { type: 'node', id: `node/${node.name}`, node: node.name, group: node.group },
    evidence,
    score: Math.min(...list.map(c => c.total > 0 ? Math.min(1, c.failing / c.total) : 1)),
    scoreBasis: 'share of distinct peers whose large probes fail while their pod probes succeed',
    lead: `${node.name} (${node.group}): large mtu probes${sizes(all)} ${list.map(part).join(' and ')}`,
    rest: [reasonText(evidence[0]!.reasons), 'small pod probes on the same paths succeed'].filter(s => s !== '').join('; '),
    nodes: [node.name],
    groups: [node.group]
  }
}

function linkDetection (c: Cause, cells: FailedCell[]): Detection {
  const evidence = [cellEvidence('mtu', `${c.src}->${c.dst}`, cells, { count: c.failing, of: c.total })]
  return {
    kind: 'mtu',
    subject: { type: 'group-pair', id: `groups/${c.src}->${c.dst}`, src: c.src, dst: c.dst, bothWays: false },
    evidence,
    score: c.total > 0 ? Math.min(1, c.failing / c.total) : 1,
    scoreBasis: 'share of the group pair\'s node pairs whose large probes fail while their pod probes succeed',
    lead: `${c.src} -> ${c.dst}: large mtu probes${sizes(cells)} fail on ${count(c.failing)} of ${count(c.total)} node pairs`,
    rest: [reasonText(evidence[0]!.reasons), 'small pod probes on the same paths succeed'].filter(s => s !== '').join('; '),
    nodes: [],
    groups: [...new Set([c.src, c.dst])]
  }
}
