// egress findings: external targets (http, tcp) fail from a group, or a node, whose in-cluster
// traffic works. A group that fails every external target is one finding about the group; otherwise
// one finding per target names the groups and nodes it fails from.

import { FAILING_RATIO, GROUP_SHARE, LOOKUP_REASONS, MIN_SAMPLES } from './dns-service-limits.ts'
import type { CellCounts, DnsServiceInput, ExternalColumn, NodeCell } from './dns-service-input.ts'
import { evidence, FAIL, failsMostly, failsNow, judgeCell, nodesText, OK, recentOf, reasonText, shareScore, UNJUDGED } from './dns-service-judge.ts'
import type { Detection, Evidence, EvidenceReason } from './finding.ts'
import type { FindingsContext } from './input.ts'

/** Failures of the name lookup before connecting belong to DNS findings. */
const pastLookup = (r: EvidenceReason): boolean => !LOOKUP_REASONS.has(r.reason)

/** Per target: the groups it fails from as a whole, its nodes' verdicts and the nodes that fail alone. */
interface TargetVerdict {
  column: ExternalColumn
  status: Int8Array
  failingGroups: string[]
  /** Groups failing it counting the nodes that fail it now (failsNow) too: where the failure is reaching. */
  nowGroups: string[]
  judgedGroups: string[]
  loose: number[]
}

/**
 * The egress detections. A node testifies only when it is a witness and its own pod probes mostly
 * succeed (outbound error ratio below FAILING_RATIO): "in-cluster traffic works" there. A node fails a
 * target when its cell fails (judgeCell); a group when more than GROUP_SHARE of its judged nodes do;
 * a node fails alone when its group does not.
 */
export function egressFindings (ctx: FindingsContext, input: DnsServiceInput, witness: readonly boolean[]): Detection[] {
  const inCluster = ctx.nodes.map((_, n) => {
    const pod = input.podOut[n]
    return witness[n]! && pod !== undefined && pod.samples >= MIN_SAMPLES && pod.errors / pod.samples < FAILING_RATIO
  })
  const verdicts: TargetVerdict[] = []
  for (const column of [...input.external].sort((a, b) => a.target.localeCompare(b.target))) {
    const status = new Int8Array(ctx.nodes.length).fill(UNJUDGED)
    const perGroup = new Map<string, { failing: number, now: number, judged: number }>()
    for (let n = 0; n < ctx.nodes.length; n++) {
      const cell = column.cells[n]
      if (!inCluster[n] || cell === undefined) continue
      const past = withoutLookups(cell)
      status[n] = judgeCell(past, pastLookup)
      // Failing over the window, but probed and clean in the recent sub-window: gone from this node.
      const r = recentOf(past, pastLookup)
      if (status[n] === FAIL && r !== null && r.samples > 0 && r.errors === 0) status[n] = OK
      if (status[n] === UNJUDGED) continue
      const g = ctx.nodes[n]!.group
      let acc = perGroup.get(g)
      if (acc === undefined) perGroup.set(g, acc = { failing: 0, now: 0, judged: 0 })
      acc.judged++
      if (status[n] === FAIL) acc.failing++
      if (status[n] === FAIL || failsNow(past, pastLookup)) acc.now++
    }
    const failingGroups = [...perGroup].filter(([, a]) => a.failing / a.judged > GROUP_SHARE).map(([g]) => g).sort()
    const nowGroups = [...perGroup].filter(([, a]) => a.now / a.judged > GROUP_SHARE).map(([g]) => g).sort()
    const loose: number[] = []
    // A node alone has no peers to agree with: it must fail most of its probes (NODE_FAILING_RATIO).
    for (let n = 0; n < status.length; n++) {
      if (status[n] === FAIL && !failingGroups.includes(ctx.nodes[n]!.group) && failsMostly(withoutLookups(column.cells[n]!), pastLookup)) loose.push(n)
    }
    verdicts.push({ column, status, failingGroups, nowGroups, judgedGroups: [...perGroup.keys()].sort(), loose })
  }
  const out: Detection[] = []
  // A group that fails every target it has results for (two or more): its egress, not each target.
  const groups = [...new Set(ctx.nodes.map(n => n.group))].sort()
  const wholeGroup = new Set<string>()
  // A group failing some targets whose nodes fail the others now (recent part of the window) is on
  // its way to failing them all: no finding per target for it while its egress failure spreads.
  const spreading = new Set<string>()
  for (const g of groups) {
    const judged = verdicts.filter(v => v.judgedGroups.includes(g))
    if (judged.length < 2) continue
    if (!judged.every(v => v.failingGroups.includes(g))) {
      if (judged.every(v => v.nowGroups.includes(g))) spreading.add(g)
      continue
    }
    wholeGroup.add(g)
    out.push(groupEgress(ctx, g, judged, groups))
  }
  for (const v of verdicts) {
    const fromGroups = v.failingGroups.filter(g => !wholeGroup.has(g) && !spreading.has(g))
    const loose = v.loose.filter(n => !spreading.has(ctx.nodes[n]!.group))
    if (fromGroups.length === 0 && loose.length === 0) continue
    out.push(targetEgress(ctx, { ...v, loose }, fromGroups))
  }
  return out
}

/** The cell without the probes that failed their name lookup (they never tried the egress path). */
function withoutLookups (cell: NodeCell): NodeCell {
  const without = (c: CellCounts): CellCounts => {
    let lookup = 0
    for (const r of c.reasons) if (!pastLookup(r)) lookup += r.count
    return lookup === 0 ? c : { samples: c.samples - lookup, errors: c.errors - lookup, reasons: c.reasons.filter(pastLookup) }
  }
  const out: NodeCell = { ...without(cell) }
  if (cell.recent !== undefined) out.recent = without(cell.recent)
  return out
}

function targetEvidence (ctx: FindingsContext, v: TargetVerdict, nodes: readonly number[]): Evidence {
  const judged = nodes.filter(n => v.status[n] !== UNJUDGED)
  return evidence(ctx, {
    probe: v.column.probe,
    scope: v.column.target,
    cells: judged.map(n => [n, v.column.target, withoutLookups(v.column.cells[n]!)]),
    agreeing: { count: judged.filter(n => v.status[n] === FAIL).length, of: judged.length },
    accept: pastLookup
  })
}

function groupEgress (ctx: FindingsContext, group: string, verdicts: TargetVerdict[], groups: string[]): Detection {
  const members = ctx.nodes.flatMap((n, i) => n.group === group ? [i] : [])
  const ev = verdicts.map(v => targetEvidence(ctx, v, members))
  const failingNodes = members.filter(n => verdicts.some(v => v.status[n] === FAIL))
  const judged = members.filter(n => verdicts.some(v => v.status[n] !== UNJUDGED))
  const worst = [...ev].sort((a, b) => (b.errorRatio ?? 0) - (a.errorRatio ?? 0))[0]!
  const others = groups.filter(g => g !== group && verdicts.some(v => v.judgedGroups.includes(g) && !v.failingGroups.includes(g)))
  const rest = [`${reasonText(worst.reasons)}; in-cluster traffic works there`]
  if (others.length > 0) rest.push(`; ${others.join(' and ')} ${others.length === 1 ? 'reaches' : 'reach'} them`)
  return {
    kind: 'egress',
    subject: { type: 'group', id: `group/${group}`, group },
    evidence: ev,
    score: shareScore(failingNodes.length, judged.length),
    scoreBasis: `${failingNodes.length} of ${judged.length} judged ${group} nodes fail external targets while their pod probes succeed, over ${ev.reduce((n, e) => n + e.samples, 0)} probes`,
    lead: `${group} (${nodesText(members.length)}): every external target fails (${verdicts.length} of ${verdicts.length}) from ${failingNodes.length} of ${judged.length} nodes`,
    rest: rest.join(''),
    nodes: failingNodes.map(n => ctx.nodes[n]!.name).sort(),
    groups: [group]
  }
}

function targetEgress (ctx: FindingsContext, v: TargetVerdict, fromGroups: string[]): Detection {
  const inGroups = ctx.nodes.flatMap((n, i) => fromGroups.includes(n.group) ? [i] : [])
  const concerned = [...inGroups, ...v.loose]
  const e = targetEvidence(ctx, v, concerned)
  const where: string[] = []
  const all = fromGroups.length > 0 && fromGroups.length === v.judgedGroups.length
  const count = (g: string): string => {
    const judged = inGroups.filter(n => ctx.nodes[n]!.group === g && v.status[n] !== UNJUDGED)
    return `${judged.filter(n => v.status[n] === FAIL).length} of ${judged.length} nodes`
  }
  if (all) where.push(`every group (${e.agreeing!.count - v.loose.length} of ${e.agreeing!.of - v.loose.length} nodes)`)
  else for (const g of fromGroups) where.push(`${g} (${count(g)})`)
  for (const n of v.loose) where.push(`${ctx.nodes[n]!.name} (${ctx.nodes[n]!.group})`)
  const rest = [`${reasonText(e.reasons)}; in-cluster traffic works there`]
  const fine = v.judgedGroups.filter(g => !v.failingGroups.includes(g))
  if (fine.length > 0) rest.push(`; ${fine.join(' and ')} ${fine.length === 1 ? 'reaches' : 'reach'} it`)
  const failingNodes = concerned.filter(n => v.status[n] === FAIL)
  const target = v.column.target
  return {
    kind: 'egress',
    subject: { type: 'target', id: `target/${target}`, target },
    evidence: [e],
    score: shareScore(e.agreeing!.count, e.agreeing!.of),
    scoreBasis: `${e.agreeing!.count} of ${e.agreeing!.of} judged nodes fail ${target} while their pod probes succeed, over ${e.samples} probes`,
    lead: `${v.column.probe} ${target}: fails from ${where.join(', ')}`,
    rest: rest.join(''),
    nodes: failingNodes.map(n => ctx.nodes[n]!.name).sort(),
    groups: [...new Set(failingNodes.map(n => ctx.nodes[n]!.group))].sort()
  }
}
