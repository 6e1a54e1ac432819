// Explaining away: the fewest causes that explain the failing cells of a node × node mesh. A cause is
// a node's inbound side, its outbound side, or the link between two groups; each failing cell
// (source → peer) lies on three of them. Greedy, as deTector's PMC localisation (Peng et al., ATC
// 2018, §4.3) and NetBouncer's per-device/per-link inference (Tan et al., NSDI 2019, §4) do it.

import { HIT_RATIO, MIN_FAILING_PEERS } from './network-thresholds.ts'

/** One node as the cover sees it. */
export interface CoverNode {
  group: string
  /** Its own probes count (its agent is connected or was, and is not degraded). */
  witness: boolean
  /** Peers' probes toward it count (it is not degraded). */
  target: boolean
  /** Distinct peers with results toward it / from it (the store's per-node sums). */
  inPeers: number
  outPeers: number
}

/** A failing cell: node index `src` probing node index `dst`. */
export interface CoverCell { src: number, dst: number }

/** One accepted cause, with the figures it was accepted on. */
export interface Cause {
  side: 'in' | 'out' | 'link'
  /** in/out: the node index. */
  node: number
  /** link: source and destination group. */
  src: string
  dst: string
  /** Failing cells it explains (not explained by an earlier cause) out of the cells through it then. */
  failing: number
  total: number
  /** Indexes into the cells it explained. */
  cells: number[]
}

/** At most this many causes per evaluation: beyond that the mesh is broken everywhere and a list of causes helps nobody. */
export const MAX_CAUSES = 100

/**
 * Greedy cover. Each candidate's hit ratio is its failing cells over the cells through it, both
 * counted without cells an accepted cause already explains. Repeatedly accepts the candidate that
 * explains the most failing cells among those with hit ratio ≥ HIT_RATIO and ≥ MIN_FAILING_PEERS
 * failing cells (ties: node sides before links, the more specific cause), except a link whose
 * failing cells one node explains (its own sides fell short of HIT_RATIO: a lossy node's cells in a
 * small group). Cells through a node side
 * are counted from its distinct peers; through a link as witnesses × targets (the mesh probes every
 * peer). A dead node among 1,000 has a hit ratio of 1 on its own sides and 1/1,000 on its group's
 * links, so it is found however large its group is (dilution does not hide it). Cost: O(cells +
 * causes × (nodes + groups²)).
 */
export function explainFailures (nodes: readonly CoverNode[], cells: readonly CoverCell[]): Cause[] {
  const n = nodes.length
  const groups = [...new Set(nodes.map(x => x.group))].sort()
  const gi = new Map(groups.map((g, i) => [g, i]))
  const G = groups.length
  const groupOf = Int32Array.from(nodes, x => gi.get(x.group)!)
  const witnesses = new Float64Array(G)
  const targets = new Float64Array(G)
  let allWitnesses = 0
  let allTargets = 0
  for (const [i, x] of nodes.entries()) {
    if (x.witness) { witnesses[groupOf[i]!]!++; allWitnesses++ }
    if (x.target) { targets[groupOf[i]!]!++; allTargets++ }
  }
  // Candidates: in(i) = i, out(i) = n + i, link(A, B) = 2n + A * G + B.
  const C = 2 * n + G * G
  const failing = new Float64Array(C)
  const total = new Float64Array(C)
  for (const [i, x] of nodes.entries()) {
    if (x.target) total[i] = Math.min(x.inPeers, allWitnesses - (x.witness ? 1 : 0))
    if (x.witness) total[n + i] = Math.min(x.outPeers, allTargets - (x.target ? 1 : 0))
  }
  const both = new Float64Array(G)
  for (const [i, x] of nodes.entries()) if (x.witness && x.target) both[groupOf[i]!]!++
  for (let a = 0; a < G; a++) for (let b = 0; b < G; b++) total[2 * n + a * G + b] = witnesses[a]! * targets[b]! - (a === b ? both[a]! : 0)
  const link = (k: number): number => 2 * n + groupOf[cells[k]!.src]! * G + groupOf[cells[k]!.dst]!
  // Cells per candidate (CSR).
  const start = new Int32Array(C + 1)
  for (let k = 0; k < cells.length; k++) { start[cells[k]!.dst + 1]!++; start[n + cells[k]!.src + 1]!++; start[link(k) + 1]!++ }
  for (let c = 0; c < C; c++) start[c + 1]! += start[c]!
  const fill = start.slice(0, C)
  const list = new Int32Array(start[C]!)
  // Each cell's three candidates, spelled out (no array per cell: a boundary has ~250,000 cells).
  for (let k = 0; k < cells.length; k++) {
    const a = cells[k]!.dst
    const b = n + cells[k]!.src
    const c = link(k)
    list[fill[a]!++] = k
    failing[a]!++
    list[fill[b]!++] = k
    failing[b]!++
    list[fill[c]!++] = k
    failing[c]!++
  }
  const explained = new Uint8Array(cells.length)
  const causes: Cause[] = []
  // Links refused because one node explains their failing cells (see oneNodeExplains), until a cause is accepted.
  const refused = new Uint8Array(C)
  /**
   * Whether one node explains link `c`'s failing cells: without the cells through the node that
   * touches most of them, fewer than HIT_RATIO of the rest fail, or fewer than
   * min(MIN_FAILING_PEERS, the rest). In a small group a lossy node's failing cells are most of its
   * group's own link (4 of aws → aws's 6 pairs in a group of 3): that is the node's fault, not a boundary.
   */
  const oneNodeExplains = (c: number): boolean => {
    const a = Math.floor((c - 2 * n) / G)
    const b = (c - 2 * n) % G
    const touches = new Map<number, number>()
    for (let j = start[c]!; j < start[c + 1]!; j++) {
      const k = list[j]!
      if (explained[k] === 1) continue
      touches.set(cells[k]!.src, (touches.get(cells[k]!.src) ?? 0) + 1)
      touches.set(cells[k]!.dst, (touches.get(cells[k]!.dst) ?? 0) + 1)
    }
    let node = -1
    for (const [m, x] of touches) if (node === -1 || x > touches.get(node)!) node = m
    if (node === -1) return false
    const x = nodes[node]!
    const g = groupOf[node]!
    // Cells of the link through that node: its outbound ones if it is in the source group, its inbound ones if in the destination group.
    const through = (g === a && x.witness ? targets[b]! - (a === b && x.target ? 1 : 0) : 0) + (g === b && x.target ? witnesses[a]! - (a === b && x.witness ? 1 : 0) : 0)
    const restFailing = failing[c]! - touches.get(node)!
    const restTotal = Math.max(0, total[c]! - through)
    return restFailing < Math.min(MIN_FAILING_PEERS, restTotal) || restFailing < HIT_RATIO * restTotal || restFailing <= 0
  }
  while (causes.length < MAX_CAUSES) {
    let best = -1
    for (let c = 0; c < C; c++) {
      const f = failing[c]!
      const t = total[c]!
      // t ≤ 0: the cells through it are all explained; failing ones left are counting slack, no cause.
      if (f < MIN_FAILING_PEERS || t <= 0 || f < HIT_RATIO * t || refused[c] === 1) continue
      if (best === -1 || f > failing[best]!) best = c
    }
    if (best === -1) break
    if (best >= 2 * n && oneNodeExplains(best)) { refused[best] = 1; continue }
    refused.fill(0)
    const cause: Cause = best < 2 * n
      ? { side: best < n ? 'in' : 'out', node: best % n, src: '', dst: '', failing: failing[best]!, total: total[best]!, cells: [] }
      : { side: 'link', node: -1, src: groups[Math.floor((best - 2 * n) / G)]!, dst: groups[(best - 2 * n) % G]!, failing: failing[best]!, total: total[best]!, cells: [] }
    for (let j = start[best]!; j < start[best + 1]!; j++) {
      const k = list[j]!
      if (explained[k] === 1) continue
      explained[k] = 1
      cause.cells.push(k)
      failing[cells[k]!.dst]!--
      failing[n + cells[k]!.src]!--
      failing[link(k)]!--
    }
    // The cells through the accepted cause no longer count toward the others' totals.
    if (cause.side === 'in') {
      const i = cause.node
      for (let a = 0; a < G; a++) total[2 * n + a * G + groupOf[i]!]! -= witnesses[a]! - (a === groupOf[i] && nodes[i]!.witness ? 1 : 0)
      for (let m = 0; m < n; m++) if (m !== i && nodes[m]!.witness) total[n + m]!--
    } else if (cause.side === 'out') {
      const i = cause.node
      for (let b = 0; b < G; b++) total[2 * n + groupOf[i]! * G + b]! -= targets[b]! - (b === groupOf[i] && nodes[i]!.target ? 1 : 0)
      for (let m = 0; m < n; m++) if (m !== i && nodes[m]!.target) total[m]!--
    } else {
      const a = gi.get(cause.src)!
      const b = gi.get(cause.dst)!
      for (let m = 0; m < n; m++) {
        if (groupOf[m] === b && nodes[m]!.target) total[m]! -= witnesses[a]! - (a === b && nodes[m]!.witness ? 1 : 0)
        if (groupOf[m] === a && nodes[m]!.witness) total[n + m]! -= targets[b]! - (a === b && nodes[m]!.target ? 1 : 0)
      }
    }
    total[best] = 0
    causes.push(cause)
  }
  return causes
}
