// node-inbound, node-outbound, node-isolated and group-boundary from the pod mesh: the failing
// cells are explained away by the fewest node sides and group links (cover.ts), and each accepted
// cause becomes one finding.

import type { Detection } from './finding.ts'
import type { FindingNode, FindingsContext } from './input.ts'
import { explainFailures, type Cause, type CoverCell, type CoverNode } from './cover.ts'
import { cellEvidence, count, dominantReasons, reasonText } from './evidence.ts'
import type { FailedCell, PeerKindInput, SideSum } from './network-input.ts'
import { CELL_FAIL_RATIO, HIT_RATIO, RECENT_COVERAGE, STILL_FAILING_RATIO } from './network-thresholds.ts'

/** What the pod mesh explains: the findings, and what they account for (mtu and loss skip it). */
export interface MeshVerdict {
  detections: Detection[]
  /** Nodes with a node-* finding. */
  faultyNodes: Set<string>
  /** `src\u0000dst` group links with a group-boundary finding. */
  brokenLinks: Set<string>
  /** Node pairs whose pod cell fails, as src index × nodes + dst index (indexes into ctx.nodes). */
  failingPairs: PairSet
}

/** A set of node pairs (src index × nodes + dst index): has() answers false for anything outside [0, nodes²). */
export interface PairSet {
  has: (pair: number) => boolean
}

/** The pairs of `cells` as a bitmap over nodes² (125 KB at 1,000 nodes): a Set of a boundary's ~250,000 pairs cost more to build than the cover. */
function pairBits (cells: readonly CoverCell[], nodes: number): PairSet {
  const bits = new Uint32Array(Math.ceil(nodes * nodes / 32))
  for (const c of cells) { const k = c.src * nodes + c.dst; bits[k >>> 5]! |= 1 << (k & 31) }
  return { has: k => k >= 0 && k < nodes * nodes && (bits[k >>> 5]! & (1 << (k & 31))) !== 0 }
}

/** Whether a failed cell fails (CELL_FAIL_RATIO of its probes or more). */
export function cellFails (c: FailedCell): boolean {
  return c.samples > 0 ? c.errors >= CELL_FAIL_RATIO * c.samples : c.errors > 0
}

/** The cover's view of the nodes for one kind: degraded agents are neither witnesses nor targets. */
export function coverNodes (nodes: readonly FindingNode[], kind: PeerKindInput): CoverNode[] {
  return nodes.map(n => {
    const out = kind.outbound.get(n.name)
    const inb = kind.inbound.get(n.name)
    return {
      group: n.group,
      witness: n.degraded === null && (out?.samples ?? 0) > 0,
      target: n.degraded === null,
      inPeers: inb?.peers ?? 0,
      outPeers: out?.peers ?? 0
    }
  })
}

/** The failing cells the cover judges: both ends known, a witness source and a target peer. */
export function coverCells (nodes: readonly CoverNode[], index: ReadonlyMap<string, number>, failed: readonly FailedCell[], keep: (c: FailedCell) => boolean): { cells: CoverCell[], source: FailedCell[] } {
  const cells: CoverCell[] = []
  const source: FailedCell[] = []
  // Cells come grouped by source (the store reads them so): its index is looked up once per run.
  let lastSrc: string | null = null
  let src: number | undefined
  for (const c of failed) {
    if (c.src !== lastSrc) { lastSrc = c.src; src = index.get(c.src) }
    const dst = index.get(c.dst)
    if (src === undefined || dst === undefined || !nodes[src]!.witness || !nodes[dst]!.target || !keep(c)) continue
    cells.push({ src, dst })
    source.push(c)
  }
  return { cells, source }
}

/**
 * Whether cells still fail, judged on `recent` (the failed cells of the recent sub-window): a cell
 * still fails when at least STILL_FAILING_RATIO of its recent probes failed. Without `recent` (an
 * input built by hand), every cell counts as still failing.
 */
export function stillFailing (recent: readonly FailedCell[] | undefined): (c: FailedCell) => boolean {
  if (recent === undefined) return () => true
  // By source, then peer: no key string per cell (a broken boundary has ~250,000 recent cells), and
  // cells come grouped by source, so its map is looked up once per run.
  const bySrc = new Map<string, Map<string, FailedCell>>()
  for (const r of recent) {
    let byDst = bySrc.get(r.src)
    if (byDst === undefined) bySrc.set(r.src, byDst = new Map())
    byDst.set(r.dst, r)
  }
  let lastSrc: string | null = null
  let lastDsts: Map<string, FailedCell> | undefined
  return c => {
    if (c.src !== lastSrc) { lastSrc = c.src; lastDsts = bySrc.get(c.src) }
    const r = lastDsts?.get(c.dst)
    return r !== undefined && (r.samples > 0 ? r.errors >= STILL_FAILING_RATIO * r.samples : r.errors > 0)
  }
}

/**
 * Whether a node's `side` was seen over the recent sub-window as fully as its other side: its
 * probes per peer there are at least RECENT_COVERAGE of the other side's. A one-sided finding
 * (node-inbound: "its own outbound probes succeed") needs the other side seen over the same span: an
 * agent that restarted a moment ago has one report out, while its peers' cells toward it still hold
 * the refusals from before it listened. Those are the drain of its node-isolated finding, not a new fault.
 */
function otherSideSeen (recent: PeerKindInput, name: string, side: 'in' | 'out'): boolean {
  const perPeer = (x: SideSum | undefined): number => x === undefined || x.peers === 0 ? 0 : x.samples / x.peers
  const seen = perPeer((side === 'out' ? recent.outbound : recent.inbound).get(name))
  const other = perPeer((side === 'out' ? recent.inbound : recent.outbound).get(name))
  return seen >= RECENT_COVERAGE * other
}

/**
 * The pod mesh's node and boundary findings for `ctx`. A cell counts when it fails over the window
 * (cellFails) and still fails in the recent sub-window (stillFailing over `recent`, the recent
 * failed pod cells): a fault that is gone, or partial loss, is no broken path. With `recent` (the
 * recent sub-window's pod input), a one-sided node finding also needs its other side seen there
 * (otherSideSeen).
 */
export function meshFindings (ctx: FindingsContext, pod: PeerKindInput, recent?: PeerKindInput): MeshVerdict {
  const index = new Map(ctx.nodes.map((n, i) => [n.name, i]))
  const nodes = coverNodes(ctx.nodes, pod)
  const still = stillFailing(recent?.failed)
  const { cells, source } = coverCells(nodes, index, pod.failed, c => cellFails(c) && still(c))
  const causes = explainFailures(nodes, cells)
  const failingPairs = pairBits(cells, nodes.length)
  const detections: Detection[] = []
  const faultyNodes = new Set<string>()
  const brokenLinks = new Set<string>()
  // Per node, its accepted sides.
  const sides = new Map<number, { in?: Cause, out?: Cause }>()
  for (const c of causes) {
    if (c.side === 'link') continue
    const s = sides.get(c.node) ?? {}
    s[c.side] = c
    sides.set(c.node, s)
  }
  const cellsOf = (c: Cause | undefined): FailedCell[] => c === undefined ? [] : c.cells.map(k => source[k]!)
  for (const [i, node] of ctx.nodes.entries()) {
    if (node.degraded !== null) continue
    const s = sides.get(i)
    const cutOff = !node.connected && (node.podReady === true || s?.in !== undefined)
    if (s === undefined && !cutOff) continue
    if (!cutOff && recent !== undefined && (s!.in === undefined) !== (s!.out === undefined) && !otherSideSeen(recent, node.name, s!.in !== undefined ? 'out' : 'in')) continue
    faultyNodes.add(node.name)
    detections.push(nodeDetection(node, s?.in, s?.out, cellsOf(s?.in), cellsOf(s?.out), pod, cutOff))
  }
  // Links: one finding per group pair, both directions in one.
  const links = causes.filter(c => c.side === 'link')
  const seen = new Set<Cause>()
  for (const c of links) {
    if (seen.has(c)) continue
    const back = c.src === c.dst ? undefined : links.find(x => x.src === c.dst && x.dst === c.src)
    // A one-way break whose other way already fails in the recent sub-window is a two-way break still
    // crossing the window's thresholds: wait for it, so one fault is one finding (not a one-way one
    // that turns into another, both-ways, subject a few seconds later).
    if (back === undefined && recent !== undefined && c.src !== c.dst && reverseFailing(ctx, recent.failed, c.dst, c.src)) continue
    seen.add(c)
    if (back !== undefined) seen.add(back)
    brokenLinks.add(`${c.src}\u0000${c.dst}`)
    if (back !== undefined) brokenLinks.add(`${back.src}\u0000${back.dst}`)
    detections.push(boundaryDetection(c, back, cellsOf(c), cellsOf(back)))
  }
  return { detections, faultyNodes, brokenLinks, failingPairs }
}

/**
 * Whether the pod cells from group `src` to group `dst` already fail in the recent sub-window on at
 * least HIT_RATIO of the node pairs between them (each cell failing STILL_FAILING_RATIO of its recent
 * probes), the share a link needs to be accepted.
 */
function reverseFailing (ctx: FindingsContext, recent: readonly FailedCell[], src: string, dst: string): boolean {
  const groupOf = new Map(ctx.nodes.map(n => [n.name, n.group]))
  let srcNodes = 0
  let dstNodes = 0
  for (const n of ctx.nodes) {
    if (n.group === src) srcNodes++
    if (n.group === dst) dstNodes++
  }
  const pairs = srcNodes * dstNodes
  if (pairs === 0) return false
  let failing = 0
  for (const r of recent) {
    if (groupOf.get(r.src) !== src || groupOf.get(r.dst) !== dst || r.src === r.dst) continue
    if (r.samples > 0 ? r.errors >= STILL_FAILING_RATIO * r.samples : r.errors > 0) failing++
  }
  return failing >= HIT_RATIO * pairs
}

/** How a node side fares, in words: "succeed", "fail toward 3 of 40 peers", "send nothing". */
function sideWords (side: SideSum | undefined, failingPeers: number, direction: 'toward' | 'from'): string {
  if (side === undefined || side.samples === 0) return 'have no results'
  if (failingPeers === 0 && side.errors === 0) return 'succeed'
  return `fail ${direction} ${failingPeers} of ${side.peers} peers`
}

function nodeDetection (node: FindingNode, inCause: Cause | undefined, outCause: Cause | undefined, inCells: FailedCell[], outCells: FailedCell[], pod: PeerKindInput, cutOff: boolean): Detection {
  const inbound = pod.inbound.get(node.name)
  const outbound = pod.outbound.get(node.name)
  const evidence = []
  const failingIn = inCause?.failing ?? 0
  const failingOut = outCause?.failing ?? 0
  const of = (c: Cause | undefined, side: SideSum | undefined): number => c !== undefined ? c.total : side?.peers ?? 0
  evidence.push(cellEvidence('pod', 'inbound', inCells, { count: failingIn, of: of(inCause, inbound) }, inbound))
  evidence.push(cellEvidence('pod', 'outbound', outCells, { count: failingOut, of: of(outCause, outbound) }, outbound))
  const reasons = reasonText((inCause !== undefined ? evidence[0]! : evidence[1]!).reasons)
  const who = `${node.name} (${node.group})`
  let kind: Detection['kind']
  let lead: string
  let rest: string
  let score: number
  let scoreBasis: string
  const hit = (c: Cause): number => c.total > 0 ? Math.min(1, c.failing / c.total) : 1
  if (cutOff || (inCause !== undefined && outCause !== undefined)) {
    kind = 'node-isolated'
    if (inCause !== undefined && outCause !== undefined) {
      lead = `${who}: pod probes fail both ways, from ${failingIn} of ${inCause.total} peers and toward ${failingOut} of ${outCause.total}`
      rest = reasons
      score = Math.min(hit(inCause), hit(outCause))
      scoreBasis = 'share of distinct peers whose cells fail, the lower of inbound and outbound'
    } else {
      lead = inCause !== undefined
        ? `${who}: inbound pod probes fail from ${failingIn} of ${inCause.total} peers`
        : `${who}: its agent is disconnected while Kubernetes says its pod is ready`
      rest = [reasons, inCause !== undefined ? 'and its agent is disconnected' : ''].filter(x => x !== '').join('; ')
      if (inCause !== undefined && node.podReady === true) rest += ' while Kubernetes says its pod is ready'
      score = inCause !== undefined ? hit(inCause) : 0.5
      scoreBasis = inCause !== undefined ? 'share of distinct peers whose cells toward it fail; its agent is disconnected' : 'agent disconnected while its pod is ready; no peer results to confirm'
    }
  } else if (inCause !== undefined) {
    kind = 'node-inbound'
    lead = `${who}: inbound pod probes fail from ${failingIn} of ${inCause.total} peers`
    rest = [reasons, `its own outbound probes ${sideWords(outbound, failingOut, 'toward')}`].filter(x => x !== '').join('; ')
    score = hit(inCause)
    scoreBasis = `share of distinct peers whose cells toward it fail (cells failing ≥ ${CELL_FAIL_RATIO * 100}% of probes; accepted from ${HIT_RATIO * 100}%)`
  } else {
    const c = outCause!
    kind = 'node-outbound'
    lead = `${who}: its outbound pod probes fail toward ${failingOut} of ${c.total} peers`
    rest = [reasons, `peers' probes toward it ${sideWords(inbound, failingIn, 'from')}`].filter(x => x !== '').join('; ')
    score = hit(c)
    scoreBasis = `share of distinct peers its cells toward fail (cells failing ≥ ${CELL_FAIL_RATIO * 100}% of probes; accepted from ${HIT_RATIO * 100}%)`
  }
  return { kind, subject: { type: 'node', id: `node/${node.name}`, node: node.name, group: node.group }, evidence, score, scoreBasis, lead, rest, nodes: [node.name], groups: [node.group] }
}

function boundaryDetection (c: Cause, back: Cause | undefined, cells: FailedCell[], backCells: FailedCell[]): Detection {
  const bothWays = back !== undefined
  // Both ways: named in sorted order so the subject stays the same whichever direction was accepted first.
  const [x, y] = bothWays && c.src > c.dst ? [back, c] : [c, back]
  const [xCells, yCells] = bothWays && c.src > c.dst ? [backCells, cells] : [cells, backCells]
  const sources = (list: FailedCell[]): number => {
    const seen = new Set<string>()
    let last: string | null = null
    for (const l of list) if (l.src !== last) seen.add(last = l.src)
    return seen.size
  }
  const evidence = [cellEvidence('pod', `${x.src}->${x.dst}`, xCells, { count: x.failing, of: x.total })]
  if (y !== undefined) evidence.push(cellEvidence('pod', `${y.src}->${y.dst}`, yCells, { count: y.failing, of: y.total }))
  const reasons = reasonText(dominantReasons(xCells, yCells))
  const pairs = (k: Cause): string => `${count(k.failing)} of ${count(k.total)} node pairs`
  const lead = y === undefined
    ? `${x.src} -> ${x.dst}: pod probes fail on ${pairs(x)}, from ${sources(xCells)} ${x.src} nodes`
    : `${x.src} <-> ${x.dst}: pod probes fail both ways, ${pairs(x)} ${x.src} -> ${x.dst} and ${pairs(y)} ${y.src} -> ${y.dst}`
  const hit = (k: Cause): number => k.total > 0 ? Math.min(1, k.failing / k.total) : 1
  return {
    kind: 'group-boundary',
    subject: { type: 'group-pair', id: `groups/${x.src}${bothWays ? '<->' : '->'}${x.dst}`, src: x.src, dst: x.dst, bothWays },
    evidence,
    score: y === undefined ? hit(x) : Math.min(hit(x), hit(y)),
    scoreBasis: 'share of the group pair\'s node pairs whose cells fail, once node faults are explained away',
    lead,
    rest: [reasons, 'no single node explains it'].filter(s => s !== '').join('; '),
    // A boundary concerns groups, not their members one by one.
    nodes: [],
    groups: [...new Set([x.src, x.dst])]
  }
}
