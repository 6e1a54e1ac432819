// DNS findings: dns-resolver, dns-name, dns-path and dns-group, explained away in that order. A
// resolver failing on the wire explains its nodes' getaddrinfo failures; a name negative everywhere
// explains its lookups; what is left and fails where the wire answers is the path; a failure of only
// some groups (or single nodes) is dns-group, one finding per group or node, whatever its mechanism.

import { isIP } from 'node:net'
import { LOOKUP_NEGATIVE_RAWS, LOOKUP_REASONS, UNEXPECTED_ANSWER_RAWS, WIRE_NAME_REASONS } from './dns-service-limits.ts'
import type { Column, DnsServiceInput, LookupColumn, NodeCell, WireColumn } from './dns-service-input.ts'
import { evidence, FAIL, groupsOf, judgeCell, namesOf, nodesText, OK, reasonText, scopeOf, shareScore, UNJUDGED, type Scope } from './dns-service-judge.ts'
import type { Detection, Evidence, EvidenceReason } from './finding.ts'
import type { FindingsContext } from './input.ts'

/** A negative answer about the name itself (RFC 1035 NXDOMAIN, RFC 2308 NODATA, or an unexpected answer). */
export function isNameAnswer (r: EvidenceReason): boolean {
  return WIRE_NAME_REASONS.has(r.reason) || (r.reason === 'BAD_RESPONSE' && UNEXPECTED_ANSWER_RAWS.has(r.raw))
}
const isResolverFailure = (r: EvidenceReason): boolean => !isNameAnswer(r)

/** A name as expectations compare it: lower case, no trailing dot (agent/src/dns-expect.ts). */
export function nameKey (name: string): string {
  return name.toLowerCase().replace(/\.$/, '')
}

/** One DNS failure signal: some columns judged per node with some failures counted. */
interface Signal {
  probe: 'dns-wire' | 'dns-lookup'
  /** How the summary names it: `resolver 10.96.0.10`, or a name. */
  label: string
  columns: Column[]
  accept?: (r: EvidenceReason) => boolean
  status: Int8Array
  scope: Scope
}

/**
 * Per node: FAIL when any column fails there, OK when one is judged and none fails; only witnesses.
 * `explained(n)`: a failure there is already another finding's, so the node is left unjudged (a node
 * that works stays a witness that it works).
 */
function statusOf (columns: readonly Column[], witness: readonly boolean[], accept?: (r: EvidenceReason) => boolean, explained?: (node: number) => boolean): Int8Array {
  const status = new Int8Array(witness.length).fill(UNJUDGED)
  for (let n = 0; n < witness.length; n++) {
    if (!witness[n]) continue
    for (const c of columns) {
      const v = judgeCell(c.cells[n], accept)
      if (v > status[n]!) status[n] = v
    }
    if (status[n] === FAIL && explained?.(n) === true) status[n] = UNJUDGED
  }
  return status
}

function signal (ctx: FindingsContext, probe: Signal['probe'], label: string, columns: Column[], witness: readonly boolean[], accept?: Signal['accept'], explained?: (node: number) => boolean): Signal {
  const status = statusOf(columns, witness, accept, explained)
  return { probe, label, columns, accept, status, scope: scopeOf(ctx, status) }
}

/** The cells of `nodes` in a signal's columns, for evidence. */
function cellsOf (s: Signal, nodes: readonly number[]): Array<[number, string, NodeCell]> {
  const out: Array<[number, string, NodeCell]> = []
  for (const c of s.columns) for (const n of nodes) { const cell = c.cells[n]; if (cell !== undefined) out.push([n, c.target, cell]) }
  return out
}

function nodesWhere (status: Int8Array, value: number, inGroup?: (n: number) => boolean): number[] {
  const out: number[] = []
  for (let n = 0; n < status.length; n++) if (status[n] === value && (inGroup === undefined || inGroup(n))) out.push(n)
  return out
}

function signalEvidence (ctx: FindingsContext, s: Signal, scope: string, nodes: readonly number[], judged: number): Evidence {
  const failing = nodes.filter(n => s.status[n] === FAIL)
  return evidence(ctx, { probe: s.probe, scope, cells: cellsOf(s, nodes), agreeing: { count: failing.length, of: judged }, accept: s.accept })
}

/** Where DNS failed for one group or one node, to become its dns-group finding. */
interface Local { signals: Signal[] }

/** The DNS detections for one evaluation; `witness[i]` says whether ctx.nodes[i] may testify. */
export function dnsFindings (ctx: FindingsContext, input: DnsServiceInput, witness: readonly boolean[]): Detection[] {
  const out: Detection[] = []
  const groupLocal = new Map<string, Local>()
  const nodeLocal = new Map<number, Local>()
  const local = (s: Signal): void => {
    for (const g of s.scope.groups) {
      let l = groupLocal.get(g)
      if (l === undefined) groupLocal.set(g, l = { signals: [] })
      l.signals.push(s)
    }
    for (const n of s.scope.loose) {
      let l = nodeLocal.get(n)
      if (l === undefined) nodeLocal.set(n, l = { signals: [] })
      l.signals.push(s)
    }
  }
  // Per node, the query types (A: 1, AAAA: 2) its resolvers fail on the wire, in any scope: its
  // lookups of those families fail because of it, unless they say the name does not exist.
  const resolverFailing = new Uint8Array(ctx.nodes.length)
  // Per name key, nodes where the wire says the name is negative (any scope).
  const nameNegative = new Map<string, Uint8Array>()

  // Names first: a name negative from every resolver, fleet-wide, is the name's fault.
  const byName = groupBy(input.wire, c => nameKey(c.name))
  const dnsNames = new Set<string>()
  const resolverExtra = new Map<string, WireColumn[]>()
  for (const [key, columns] of byName) {
    const perResolver = [...groupBy(columns, c => c.resolver)].map(([resolver, cols]) => ({ resolver, s: signal(ctx, 'dns-wire', columns[0]!.name, cols, witness, isNameAnswer) }))
    const judged = perResolver.filter(r => r.s.scope.judged > 0)
    const neg = new Uint8Array(ctx.nodes.length)
    for (const r of perResolver) for (let n = 0; n < neg.length; n++) if (r.s.status[n] === FAIL) neg[n] = 1
    nameNegative.set(key, neg)
    if (judged.length > 0 && judged.every(r => r.s.scope.level === 'fleet')) {
      dnsNames.add(key)
      continue
    }
    for (const r of perResolver) {
      // One resolver denies a name the others answer: that resolver is wrong.
      if (r.s.scope.level === 'fleet') resolverExtra.set(r.resolver, [...resolverExtra.get(r.resolver) ?? [], ...r.s.columns as WireColumn[]])
      else if (r.s.scope.level !== 'none') local(r.s)
    }
  }

  // Resolvers: failures on the wire other than answers about the name.
  const resolvers = groupBy(input.wire, c => c.resolver)
  for (const [resolver, columns] of [...resolvers].sort(([a], [b]) => a.localeCompare(b))) {
    const denies = resolverExtra.get(resolver)
    const accept = (r: EvidenceReason): boolean => isResolverFailure(r) || (denies !== undefined && isNameAnswer(r))
    const s = signal(ctx, 'dns-wire', `resolver ${resolver}`, columns, witness, denies === undefined ? isResolverFailure : accept)
    for (const [type, cols] of groupBy(columns, c => c.type)) {
      const bit = TYPE_BIT[type] ?? 0
      const t = statusOf(cols, witness, s.accept)
      for (let n = 0; n < ctx.nodes.length; n++) if (t[n] === FAIL) resolverFailing[n]! |= bit
    }
    if (s.scope.level === 'fleet') out.push(resolverFinding(ctx, resolver, columns, s, witness, input))
    else if (s.scope.level !== 'none') local(s)
  }

  // Lookups: what neither a resolver nor a name explains.
  const nameDetections = new Map<string, Detection>()
  const pathSignals = new Map<string, Signal[]>()
  const judgedLookups = new Set<string>()
  for (const column of [...input.lookups, ...phaseLookups(input)]) {
    const key = nameKey(column.name)
    // A name negative everywhere (itself, or its search-list expansion) explains its lookups.
    if (dnsNames.has(key) || relatedWire(input, column.name).some(w => dnsNames.has(nameKey(w.name)))) continue
    const neg = nameNegative.get(key)
    const families = FAMILY_BITS[column.family]
    const s = signal(ctx, 'dns-lookup', column.name, [column], witness, undefined,
      n => neg?.[n] === 1 || ((resolverFailing[n]! & families) !== 0 && !saysNoSuchName(column.cells[n])))
    if (s.scope.judged > 0) judgedLookups.add(subjectName(column.name))
    if (s.scope.level === 'fleet') {
      const id = subjectName(column.name)
      pathSignals.set(id, [...pathSignals.get(id) ?? [], s])
    } else if (s.scope.level !== 'none') local(s)
  }
  for (const key of [...dnsNames].sort()) {
    const columns = byName.get(key)!
    // The name as the wire probes write it (configured names are absolute, usually without the dot).
    const name = columns[0]!.name
    const s = signal(ctx, 'dns-wire', name, columns, witness, isNameAnswer)
    const lookups = input.lookups.filter(l => relatedWire({ ...input, wire: columns }, l.name).length > 0)
    nameDetections.set(name, nameFinding(ctx, name, s, lookups, witness, 'the wire'))
  }
  const paths: Detection[] = []
  for (const [id, signals] of [...pathSignals].sort(([a], [b]) => a.localeCompare(b))) {
    const d = pathOrName(ctx, id, signals, input, witness)
    if (d.kind === 'dns-name' && nameDetections.has(id)) continue
    if (d.kind === 'dns-name') nameDetections.set(id, d)
    else paths.push(d)
  }
  out.push(...mergePaths(ctx, paths, judgedLookups, input, witness), ...nameDetections.values())

  // A failing node inside a group that fails as a whole is part of the group's finding.
  for (const [n, l] of nodeLocal) {
    const g = groupLocal.get(ctx.nodes[n]!.group)
    if (g !== undefined) { for (const s of l.signals) if (!g.signals.includes(s)) g.signals.push(s); nodeLocal.delete(n) }
  }
  for (const [g, l] of [...groupLocal].sort(([a], [b]) => a.localeCompare(b))) out.push(groupFinding(ctx, input, witness, g, null, l))
  for (const [n, l] of [...nodeLocal].sort(([a], [b]) => a - b)) out.push(groupFinding(ctx, input, witness, ctx.nodes[n]!.group, n, l))
  return out
}

/**
 * The DNS phase of the service, http and tcp probes as lookup columns: each probe of a target named
 * by a host name (not an IP literal) began with getaddrinfo of that name (family 0), and its lookup
 * failures (LOOKUP_REASONS) are DNS's to explain, e.g. `pingfleet-agent@service`. A name the
 * dns-lookup targets do not ask then still reaches the DNS findings.
 */
function phaseLookups (input: DnsServiceInput): LookupColumn[] {
  const out: LookupColumn[] = []
  const columns: Array<[string, Column]> = [...input.services.map(c => ['service', c] as [string, Column]), ...input.external.map(c => [c.probe, c] as [string, Column])]
  for (const [probe, column] of columns) {
    const host = hostOf(probe, column.target)
    if (host === null || isIP(host) !== 0) continue
    out.push({
      target: `${host}@${probe}`,
      name: host,
      family: 0,
      cells: column.cells.map(cell => {
        if (cell === undefined) return undefined
        const reasons = cell.reasons.filter(r => LOOKUP_REASONS.has(r.reason))
        return { samples: cell.samples, errors: reasons.reduce((n, r) => n + r.count, 0), reasons }
      })
    })
  }
  return out
}

/** The host of a service or tcp target (`host:port`, `[v6]:port`) or an http URL; null when none. */
function hostOf (probe: string, target: string): string | null {
  if (probe === 'http') return URL.parse(target)?.hostname.replace(/^\[(.*)\]$/, '$1') || null
  const match = /^\[?(.+?)\]?:\d+$/.exec(target)
  return match === null ? null : match[1]!
}

/** Wire query types as bits, and the types each getaddrinfo family asks (0: both, 4: A, 6: AAAA). */
const TYPE_BIT: Record<string, number> = { A: 1, AAAA: 2 }
const FAMILY_BITS: Record<0 | 4 | 6, number> = { 0: 3, 4: 1, 6: 2 }

/** Whether most of a lookup cell's failures are negative answers (EAI_NONAME, EAI_NODATA): a resolver that does not answer never says that. */
function saysNoSuchName (cell: NodeCell | undefined): boolean {
  if (cell === undefined || cell.errors === 0) return false
  let negative = 0
  for (const r of cell.reasons) if (LOOKUP_NEGATIVE_RAWS.has(r.raw)) negative += r.count
  return negative * 2 > cell.errors
}

function groupBy<T> (items: readonly T[], key: (item: T) => string): Map<string, T[]> {
  const out = new Map<string, T[]>()
  for (const item of items) {
    const k = key(item)
    const list = out.get(k)
    if (list === undefined) out.set(k, [item])
    else list.push(item)
  }
  return out
}

/** A lookup name's subject: as written, lower case (a trailing dot says it is absolute; wire names always are). */
function subjectName (name: string): string {
  return name.toLowerCase()
}

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

function resolverFinding (ctx: FindingsContext, resolver: string, columns: WireColumn[], s: Signal, witness: readonly boolean[], input: DnsServiceInput): Detection {
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

function nameFinding (ctx: FindingsContext, name: string, s: Signal, lookups: LookupColumn[], witness: readonly boolean[], source: 'the wire' | 'getaddrinfo'): Detection {
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

/** Wire columns that ask the lookup's name: the same name, or (a relative name) one of its search-list expansions. */
function relatedWire (input: DnsServiceInput, name: string): WireColumn[] {
  const key = nameKey(name)
  const relative = !name.endsWith('.')
  return input.wire.filter(w => { const k = nameKey(w.name); return k === key || (relative && k.startsWith(key + '.')) })
}

/** Whether most judged witnesses get answers from `columns` (every failure counted). */
function answers (ctx: FindingsContext, columns: Column[], witness: readonly boolean[]): boolean {
  if (columns.length === 0) return false
  const s = statusOf(columns, witness)
  let ok = 0
  let judged = 0
  for (const v of s) if (v !== UNJUDGED) { judged++; if (v === OK) ok++ }
  return judged > 0 && ok / judged > 0.5
}

/** A fleet-wide getaddrinfo failure that no resolver explains: dns-path where the wire answers, dns-name for a negative answer otherwise. */
function pathOrName (ctx: FindingsContext, id: string, signals: Signal[], input: DnsServiceInput, witness: readonly boolean[]): Detection {
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
function mergePaths (ctx: FindingsContext, paths: Detection[], judged: ReadonlySet<string>, input: DnsServiceInput, witness: readonly boolean[]): Detection[] {
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
function groupFinding (ctx: FindingsContext, input: DnsServiceInput, witness: readonly boolean[], group: string, node: number | null, l: Local): Detection {
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
