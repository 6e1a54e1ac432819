// The DNS detections' shapes: dns-resolver, dns-name, dns-path (per name, or merged per resolver)
// and dns-group, each with its evidence, lead and rest, built from the signals dns.ts judged.

import { LOOKUP_NEGATIVE_RAWS } from './dns-service-limits.ts'
import type { DnsServiceInput, LookupColumn, WireColumn } from './dns-service-input.ts'
import { FAIL, groupsOf, judgeCell, namesOf, nodesText, OK, reasonText, shareScore, UNJUDGED } from './dns-service-judge.ts'
import { answers, groupBy, isResolverFailure, nodesWhere, relatedWire, signal, signalEvidence, type Local, type Signal } from './dns-signal.ts'
import type { Detection, Evidence, EvidenceReason } from './finding.ts'
import type { FindingsContext } from './input.ts'
function basis (failing: number, judged: number, samples: number): string {
  return `${failing} of ${judged} judged nodes agree, over ${samples} probes`
}

/** Nodes of a signal that fail getaddrinfo too, across the lookups of the given nodes. */
function lookupsFailingAt (input: DnsServiceInput, nodes: readonly number[]): { count: number, reasons: EvidenceReason[] } {
  let count = 0
  const reasons: EvidenceReason[] = []
  for (const n of nodes) {
    let failed = false
    for (const l of input.lookups) {
      if (judgeCell(l.cells[n]) === FAIL) { failed = true; reasons.push(...l.cells[n]!.reasons) }
    }
    if (failed) count++
  }
  return { count, reasons }
}

/** dns-resolver for `resolver`: its failing nodes, one evidence per query type, the types that still answer. */
export function resolverFinding (ctx: FindingsContext, resolver: string, columns: WireColumn[], s: Signal, witness: readonly boolean[], input: DnsServiceInput): Detection {
  const failingNodes = nodesWhere(s.status, FAIL)
  const byType = groupBy(columns, c => c.type)
  const ev: Evidence[] = []
  const failTypes: string[] = []
  const okTypes: string[] = []
  for (const [type, cols] of [...byType].sort(([a], [b]) => a.localeCompare(b))) {
    const t = signal(ctx, 'dns-wire', type, cols, witness, s.accept)
    const judgedNodes = [...nodesWhere(t.status, FAIL), ...nodesWhere(t.status, OK)]
    ev.push(signalEvidence(ctx, t, type, judgedNodes, t.scope.judged))
    if (t.scope.level === 'fleet') failTypes.push(type)
    else if (t.scope.failing === 0 && t.scope.judged > 0) okTypes.push(type)
  }
  const worst = ev.filter(e => failTypes.includes(e.scope)).sort((a, b) => (b.errorRatio ?? 0) - (a.errorRatio ?? 0))[0] ?? ev[0]!
  const what = failTypes.length > 0 && okTypes.length > 0 ? `${failTypes.join(' and ')} queries fail` : 'queries fail'
  const rest = [reasonText(worst.reasons)]
  if (okTypes.length > 0 && failTypes.length > 0) rest.push(`; ${okTypes.join(' and ')} queries answer`)
  const lookups = lookupsFailingAt(input, failingNodes)
  if (lookups.count > 0) rest.push(`; getaddrinfo fails too on ${lookups.count} of them`)
  const samples = ev.reduce((n, e) => n + e.samples, 0)
  return {
    kind: 'dns-resolver',
    subject: { type: 'resolver', id: `resolver/${resolver}`, resolver },
    evidence: ev,
    score: shareScore(s.scope.failing, s.scope.judged),
    scoreBasis: basis(s.scope.failing, s.scope.judged, samples),
    lead: `resolver ${resolver}: ${what} on the wire from ${s.scope.failing} of ${s.scope.judged} nodes`,
    rest: rest.join(''),
    nodes: namesOf(ctx, failingNodes),
    groups: groupsOf(ctx, failingNodes)
  }
}

/** dns-name for `name`: from the wire (with the related lookups quoted), or from getaddrinfo alone (score x0.8). */
export function nameFinding (ctx: FindingsContext, name: string, s: Signal, lookups: LookupColumn[], witness: readonly boolean[], source: 'the wire' | 'getaddrinfo'): Detection {
  const failingNodes = nodesWhere(s.status, FAIL)
  const judgedNodes = [...failingNodes, ...nodesWhere(s.status, OK)]
  const ev = [signalEvidence(ctx, s, source === 'the wire' ? 'wire' : 'getaddrinfo', judgedNodes, s.scope.judged)]
  const rest = [reasonText(ev[0]!.reasons)]
  if (source === 'the wire') {
    const resolvers = [...new Set((s.columns as WireColumn[]).map(c => c.resolver))].sort()
    rest.push(` from every resolver asked (${resolvers.join(', ')})`)
    if (lookups.length > 0) {
      const l = signal(ctx, 'dns-lookup', name, lookups, witness)
      const e = signalEvidence(ctx, l, 'getaddrinfo', [...nodesWhere(l.status, FAIL), ...nodesWhere(l.status, OK)], l.scope.judged)
      ev.push(e)
      if (l.scope.failing > 0) rest.push(`; getaddrinfo fails too ${reasonText(e.reasons)}`)
    }
  } else {
    rest.push('; no dns-wire probe asks this name')
  }
  const top = ev[0]!.reasons[0]
  const answer = top === undefined ? 'no address' : top.reason === 'ENOTFOUND' ? (top.raw === 'EAI_NODATA' ? 'NODATA' : top.raw === 'EAI_NONAME' ? 'NXDOMAIN' : 'no address') : top.reason === 'BAD_RESPONSE' ? 'an answer where none is expected' : top.reason
  return {
    kind: 'dns-name',
    subject: { type: 'dns-name', id: `name/${name}`, name },
    evidence: ev,
    score: shareScore(s.scope.failing, s.scope.judged) * (source === 'the wire' ? 1 : 0.8),
    scoreBasis: basis(s.scope.failing, s.scope.judged, ev[0]!.samples) + (source === 'the wire' ? '' : '; from getaddrinfo alone (x0.8)'),
    lead: `name ${name}: ${answer} from ${s.scope.failing} of ${s.scope.judged} nodes`,
    rest: rest.join(''),
    nodes: namesOf(ctx, failingNodes),
    groups: groupsOf(ctx, failingNodes)
  }
}

/** A fleet-wide getaddrinfo failure that no resolver explains: dns-path where the wire answers, dns-name for a negative answer otherwise. */
export function pathOrName (ctx: FindingsContext, id: string, signals: Signal[], input: DnsServiceInput, witness: readonly boolean[]): Detection {
  const name = signals[0]!.label
  const columns = signals.flatMap(s => s.columns) as LookupColumn[]
  const s = signal(ctx, 'dns-lookup', name, columns, witness, undefined, n => signals.every(x => x.status[n] === UNJUDGED))
  const failingNodes = nodesWhere(s.status, FAIL)
  const judgedNodes = [...failingNodes, ...nodesWhere(s.status, OK)]
  const ev = [signalEvidence(ctx, s, 'getaddrinfo', judgedNodes, s.scope.judged)]
  const related = relatedWire(input, name)
  const relatedAnswers = answers(ctx, related, witness)
  const negative = ev[0]!.reasons[0] !== undefined && LOOKUP_NEGATIVE_RAWS.has(ev[0]!.reasons[0].raw)
  if (!relatedAnswers && negative) return nameFinding(ctx, id, s, [], witness, 'getaddrinfo')
  let wireText: string
  let weight = 1
  if (relatedAnswers) {
    const names = [...new Set(related.map(w => w.name))].sort()
    wireText = `the resolver answers ${names.join(', ')} on the wire`
    const w = signal(ctx, 'dns-wire', 'wire', related, witness)
    ev.push(signalEvidence(ctx, w, 'wire', [...nodesWhere(w.status, FAIL), ...nodesWhere(w.status, OK)], w.scope.judged))
  } else if (answers(ctx, input.wire, witness)) {
    wireText = 'the resolvers answer other names on the wire'
    weight = 0.8
  } else {
    wireText = 'no dns-wire probe answers to compare'
    weight = 0.6
  }
  return {
    kind: 'dns-path',
    subject: { type: 'dns-name', id: `name/${id}`, name: id },
    evidence: ev,
    score: Math.round(shareScore(s.scope.failing, s.scope.judged) * weight * 100) / 100,
    scoreBasis: basis(s.scope.failing, s.scope.judged, ev[0]!.samples) + (weight < 1 ? `; the wire did not ask this name (x${weight})` : ''),
    lead: `getaddrinfo fails for ${id} from ${s.scope.failing} of ${s.scope.judged} nodes`,
    rest: `${reasonText(ev[0]!.reasons)}; ${wireText}`,
    nodes: namesOf(ctx, failingNodes),
    groups: groupsOf(ctx, failingNodes)
  }
}

/**
 * Every name getaddrinfo asks failing on the path (two or more) is one fault of the path through
 * the resolvers, not one per name: one dns-path finding about the resolvers that answer on the wire
 * (subject `resolver/<ip>[,<ip>…]`), quoting each name. Otherwise the per-name findings stand.
 */
export function mergePaths (ctx: FindingsContext, paths: Detection[], judged: ReadonlySet<string>, input: DnsServiceInput, witness: readonly boolean[]): Detection[] {
  if (paths.length < 2 || paths.length !== judged.size) return paths
  const answering = [...groupBy(input.wire, c => c.resolver)].filter(([, cols]) => answers(ctx, cols, witness)).map(([r]) => r).sort()
  if (answering.length === 0) return paths
  const resolver = answering.join(',')
  const nodes = [...new Set(paths.flatMap(d => d.nodes))].sort()
  const evidence = paths.flatMap(d => d.evidence.filter(e => e.probe === 'dns-lookup').map(e => ({ ...e, scope: `getaddrinfo ${d.subject.name!}` })))
  const worst = [...evidence].sort((a, b) => (b.errorRatio ?? 0) - (a.errorRatio ?? 0))[0]!
  const of = Math.max(...evidence.map(e => e.agreeing?.of ?? 0))
  return [{
    kind: 'dns-path',
    subject: { type: 'resolver', id: `resolver/${resolver}`, resolver },
    evidence,
    score: Math.max(...paths.map(d => d.score)),
    scoreBasis: `every name getaddrinfo asks (${paths.length}) fails from ${nodes.length} of ${of} judged nodes; the best per-name score`,
    lead: `getaddrinfo fails for every name it asks (${paths.map(d => d.subject.name!).join(', ')}) from ${nodes.length} of ${of} nodes`,
    rest: `${reasonText(worst.reasons)}; resolver ${answering.join(' and ')} ${answering.length === 1 ? 'answers' : 'answer'} on the wire`,
    nodes,
    groups: [...new Set(paths.flatMap(d => d.groups))].sort()
  }]
}

/** Whether the wire answers at `nodes` (some resolver judged OK at most of them, resolver failures counted). */
function wireAnswersAt (input: DnsServiceInput, nodes: readonly number[]): boolean {
  let ok = 0
  for (const n of nodes) {
    let v = UNJUDGED
    for (const c of input.wire) v = Math.max(v, judgeCell(c.cells[n], isResolverFailure))
    if (v === OK) ok++
  }
  return nodes.length > 0 && ok / nodes.length > 0.5
}

/** dns-group for group `group` (node null) or for one node: every local signal there in one finding. */
export function groupFinding (ctx: FindingsContext, input: DnsServiceInput, witness: readonly boolean[], group: string, node: number | null, l: Local): Detection {
  const inScope = (n: number): boolean => node === null ? ctx.nodes[n]!.group === group : n === node
  const groupSize = ctx.nodes.filter(n => n.group === group).length
  const ordered = [...l.signals].sort((a, b) => (a.probe === b.probe ? a.label.localeCompare(b.label) : a.probe === 'dns-wire' ? -1 : 1))
  const ev: Evidence[] = []
  const failing = new Set<number>()
  for (const s of ordered) {
    const here = nodesWhere(s.status, FAIL, inScope)
    for (const n of here) failing.add(n)
    const judgedHere = [...here, ...nodesWhere(s.status, OK, inScope)]
    ev.push(signalEvidence(ctx, s, s.probe === 'dns-wire' ? `wire ${s.label}` : `getaddrinfo ${s.label}`, judgedHere, judgedHere.length))
  }
  const primary = ordered[0]!
  const first = ev[0]!
  const who = node === null ? `${group} (${nodesText(groupSize)})` : `${ctx.nodes[node]!.name} (${group})`
  const from = node === null ? ` from ${first.agreeing!.count} of ${first.agreeing!.of} nodes` : ''
  const what = primary.probe === 'dns-wire'
    ? (primary.label.startsWith('resolver ') ? `${primary.label} fails on the wire` : `the wire denies ${primary.label}`)
    : `getaddrinfo fails for ${primary.label}`
  const rest = [reasonText(first.reasons)]
  const failingList = [...failing]
  if (primary.probe === 'dns-lookup' && wireAnswersAt(input, failingList)) rest.push('; the resolver answers on the wire')
  if (ordered.length > 1) rest.push(`; ${ordered.length - 1} more DNS failure${ordered.length > 2 ? 's' : ''} here`)
  // Who does not share it: other groups (group scope) or the rest of the group (node scope).
  const verb = primary.probe === 'dns-wire' && primary.label.startsWith('resolver ') ? ['reaches', 'reach'] : ['resolves', 'resolve']
  if (node === null) {
    const others = [...primary.scope.perGroup].filter(([g, st]) => g !== group && !primary.scope.groups.includes(g) && st.judged > 0).map(([g]) => g).sort()
    if (others.length > 0) rest.push(`; ${others.join(' and ')} ${others.length === 1 ? verb[0] : verb[1]} it`)
  } else {
    const peers = primary.scope.perGroup.get(group)
    if (peers !== undefined && peers.judged - peers.failing > 0) rest.push(`; ${peers.judged - peers.failing} other ${group} node${peers.judged - peers.failing === 1 ? '' : 's'} ${peers.judged - peers.failing === 1 ? verb[0] : verb[1]} it`)
  }
  const judged = node === null ? ctx.nodes.filter((n, i) => n.group === group && witness[i]).length : 1
  const samples = ev.reduce((n, e) => n + e.samples, 0)
  return {
    kind: 'dns-group',
    subject: node === null ? { type: 'group', id: `group/${group}`, group } : { type: 'node', id: `node/${ctx.nodes[node]!.name}`, node: ctx.nodes[node]!.name, group },
    evidence: ev,
    score: shareScore(failing.size, judged),
    scoreBasis: basis(failing.size, judged, samples),
    lead: `${who}: ${what}${from}`,
    rest: rest.join(''),
    nodes: namesOf(ctx, failing),
    groups: [group]
  }
}
