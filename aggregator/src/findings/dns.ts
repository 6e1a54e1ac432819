// DNS findings: dns-resolver, dns-name, dns-path and dns-group, explained away in that order. A
// resolver failing on the wire explains its nodes' getaddrinfo failures; a name negative everywhere
// explains its lookups; what is left and fails where the wire answers is the path; a failure of only
// some groups (or single nodes) is dns-group, one finding per group or node, whatever its mechanism.

import { isIP } from 'node:net'
import { groupFinding, mergePaths, nameFinding, pathOrName, resolverFinding } from './dns-detections.ts'
import { LOOKUP_NEGATIVE_RAWS, LOOKUP_REASONS } from './dns-service-limits.ts'
import type { CellCounts, Column, DnsServiceInput, LookupColumn, NodeCell, WireColumn } from './dns-service-input.ts'
import { failsMostly, FAIL } from './dns-service-judge.ts'
import { groupBy, isNameAnswer, isResolverFailure, nameKey, relatedWire, signal, statusOf, type Local, type Signal } from './dns-signal.ts'
import type { Detection, EvidenceReason } from './finding.ts'
import type { FindingsContext } from './input.ts'

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
  const lookupColumns = [...input.lookups, ...phaseLookups(input)]
  for (const column of lookupColumns) {
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
  // Some names fail on the path while the others' lookups already fail in the recent sub-window at most
  // nodes: the failure is spreading to every name (a CI run: pingfleet-agent for 1.5 s, then the
  // resolver's every name). Wait for it, so one fault is one finding.
  const pathNames = new Set(paths.map(d => d.subject.name!))
  const spreading = paths.length > 0 && paths.length < judgedLookups.size &&
    lookupColumns.some(c => judgedLookups.has(subjectName(c.name)) && !pathNames.has(subjectName(c.name)) && failsRecentlyAtMost(c, witness))
  out.push(...(spreading ? [] : mergePaths(ctx, paths, judgedLookups, input, witness)), ...nameDetections.values())

  // A failing node inside a group that fails as a whole is part of the group's finding.
  for (const [n, l] of nodeLocal) {
    const g = groupLocal.get(ctx.nodes[n]!.group)
    if (g !== undefined) { for (const s of l.signals) if (!g.signals.includes(s)) g.signals.push(s); nodeLocal.delete(n) }
  }
  for (const [g, l] of [...groupLocal].sort(([a], [b]) => a.localeCompare(b))) out.push(groupFinding(ctx, input, witness, g, null, l))
  for (const [n, l] of [...nodeLocal].sort(([a], [b]) => a - b)) {
    // A node alone has no peers to agree with: only what fails most of its probes is its finding.
    const signals = l.signals.filter(s => s.columns.some(c => failsMostly(c.cells[n], s.accept)))
    if (signals.length > 0) out.push(groupFinding(ctx, input, witness, ctx.nodes[n]!.group, n, { signals }))
  }
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
      cells: column.cells.map(cell => cell === undefined ? undefined : lookupPhase(cell))
    })
  }
  return out
}

/** A cell's name-lookup failures (LOOKUP_REASONS) only, over the window and its recent part. */
function lookupPhase (cell: NodeCell): NodeCell {
  const only = (c: CellCounts): CellCounts => {
    const reasons = c.reasons.filter(r => LOOKUP_REASONS.has(r.reason))
    return { samples: c.samples, errors: reasons.reduce((n, r) => n + r.count, 0), reasons }
  }
  const out: NodeCell = only(cell)
  if (cell.recent !== undefined) out.recent = only(cell.recent)
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

/** A lookup name's subject: as written, lower case (a trailing dot says it is absolute; wire names always are). */
/** Whether a lookup column's recent sub-window holds a lookup failure at more than half the witnesses with recent lookups. */
function failsRecentlyAtMost (column: LookupColumn, witness: readonly boolean[]): boolean {
  let seen = 0
  let failing = 0
  for (const [n, cell] of column.cells.entries()) {
    const recent = cell?.recent
    if (!witness[n] || recent === undefined || recent.samples === 0) continue
    seen++
    if (recent.reasons.some(r => LOOKUP_REASONS.has(r.reason) && !LOOKUP_NEGATIVE_RAWS.has(r.raw))) failing++
  }
  return seen > 0 && failing > seen / 2
}

function subjectName (name: string): string {
  return name.toLowerCase()
}

