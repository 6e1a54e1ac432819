// service-path findings: probes through a Service fail where the same nodes' pod probes succeed,
// or some agents never answer through it although pod probes reach them directly.

import { FAILING_RATIO, GROUP_SHARE, LOOKUP_REASONS, MIN_FAILURES, MISSING_BACKEND_ALPHA, MIN_SAMPLES, SERVICE_EXCESS, SERVICE_NODE_EXCESS, SERVICE_Z } from './dns-service-limits.ts'
import type { DnsServiceInput, NodeCell, PodSums, ServiceColumn } from './dns-service-input.ts'
import { evidence, groupsOf, namesOf, reasonText, shareScore } from './dns-service-judge.ts'
import type { Detection, Evidence, EvidenceReason } from './finding.ts'
import type { FindingsContext } from './input.ts'

/** Failures a Service probe had before it reached the Service (its name lookup) belong to DNS findings. */
const throughService = (r: EvidenceReason): boolean => !LOOKUP_REASONS.has(r.reason)

/** A cell's probes that reached the Service, and their failures. */
function reached (cell: NodeCell): { samples: number, errors: number } {
  let lookup = 0
  for (const r of cell.reasons) if (!throughService(r)) lookup += r.count
  return { samples: cell.samples - lookup, errors: cell.errors - lookup }
}

/**
 * Whether `e1` of `n1` Service probes failing is more than chance above `e2` of `n2` pod probes: a
 * one-sided two-proportion z-test (pooled variance) at SERVICE_Z. Few probes in a short window
 * otherwise let noise (a lossy path that both kinds cross) look like a Service fault.
 */
export function significant (e1: number, n1: number, e2: number, n2: number): boolean {
  if (n1 === 0 || n2 === 0) return false
  const p = (e1 + e2) / (n1 + n2)
  const se = Math.sqrt(p * (1 - p) * (1 / n1 + 1 / n2))
  return se === 0 ? e1 / n1 > e2 / n2 : (e1 / n1 - e2 / n2) / se >= SERVICE_Z
}

/** A node's pod outbound error ratio, or null when too few probes to say. */
function podRatio (pod: PodSums | undefined): number | null {
  return pod === undefined || pod.samples < MIN_SAMPLES ? null : pod.errors / pod.samples
}

/**
 * The service-path detections. Every service target is the agents' own Service, by address or by name
 * (PINGFLEET_SERVICE_TARGETS), so what fails through several of them is one fault: one finding, whose
 * subject names every target the fleet probes (`service/<target>[,<target>…]`, sorted: stable while
 * the configuration is), with each failing target's evidence.
 */
export function servicePathFindings (ctx: FindingsContext, input: DnsServiceInput, witness: readonly boolean[]): Detection[] {
  const targets = input.services.map(c => c.target).sort()
  const found: Detection[] = []
  for (const column of [...input.services].sort((a, b) => a.target.localeCompare(b.target))) {
    const d = serviceFinding(ctx, input, witness, column)
    if (d !== null) found.push(d)
  }
  if (found.length === 0) return []
  const service = targets.join(',')
  const first = found[0]!
  const failing = found.map(d => d.subject.service!)
  // One sentence for all targets only when they say the same thing; else each its own (review finding:
  // the first target's backend was named for the second too).
  const bodies = found.map(d => d.lead.replace(`service ${d.subject.service!}:`, '').trim())
  const same = bodies.every(b => b === bodies[0])
  const lead = found.length === 1 ? first.lead : same ? `service ${failing.join(' and ')}: ${bodies[0]!}` : found.map(d => d.lead).join('; ')
  const rest = same ? first.rest : [...new Set(found.map(d => d.rest).filter(r => r !== ''))].join('; ')
  return [{
    ...first,
    subject: { type: 'service', id: `service/${service}`, service },
    evidence: found.flatMap(d => d.evidence),
    score: Math.max(...found.map(d => d.score)),
    lead,
    rest,
    nodes: [...new Set(found.flatMap(d => d.nodes))].sort(),
    groups: [...new Set(found.flatMap(d => d.groups))].sort()
  }]
}

/**
 * The share of the fleet's agents that cannot answer (not connected, not a witness, or their inbound
 * pod probes failing): until the Service's endpoints drop them, about that share of Service probes
 * fails wherever they come from, and that is those nodes' own finding, not the Service path's.
 */
function downShare (ctx: FindingsContext, input: DnsServiceInput, witness: readonly boolean[]): number {
  if (ctx.nodes.length === 0) return 0
  let down = 0
  for (const [i, node] of ctx.nodes.entries()) {
    const pod = input.podIn[i]
    const unreachable = pod !== undefined && pod.samples >= MIN_SAMPLES && pod.errors / pod.samples >= FAILING_RATIO
    if (!node.connected || !witness[i] || unreachable) down++
  }
  return down / ctx.nodes.length
}

function serviceFinding (ctx: FindingsContext, input: DnsServiceInput, witness: readonly boolean[], column: ServiceColumn): Detection | null {
  // What a node's Service probes may fail without a Service fault: its own pod error ratio, or the
  // share of agents that are down, whichever is more.
  const down = downShare(ctx, input, witness)
  const baseline = (n: number): PodSums => {
    const pod = input.podOut[n]!
    return { samples: pod.samples, errors: Math.max(pod.errors, down * pod.samples) }
  }
  // Per judged node: its excess of Service errors over that baseline; pooled per group.
  const pooled = new Map<string, { nodes: number[] }>()
  const excess = new Map<number, number>()
  for (let n = 0; n < ctx.nodes.length; n++) {
    const cell = column.cells[n]
    const p = podRatio(input.podOut[n] === undefined ? undefined : baseline(n))
    if (!witness[n] || cell === undefined || p === null) continue
    const r = reached(cell)
    if (r.samples < MIN_SAMPLES) continue
    excess.set(n, r.errors / r.samples - p)
    const g = ctx.nodes[n]!.group
    let acc = pooled.get(g)
    if (acc === undefined) pooled.set(g, acc = { nodes: [] })
    acc.nodes.push(n)
  }
  // Nodes failing hard on their own; a group fails when most of its nodes do, or when the rest,
  // pooled without them, still fail above their pod ratio (one wrong backend fails a few probes each).
  const hard = new Set([...excess].filter(([n, e]) => {
    const r = reached(column.cells[n]!)
    return e >= SERVICE_NODE_EXCESS && r.errors >= MIN_FAILURES && significant(r.errors, r.samples, baseline(n).errors, baseline(n).samples)
  }).map(([n]) => n))
  const failingGroups = [...pooled].filter(([, a]) => {
    const hardHere = a.nodes.filter(n => hard.has(n)).length
    if (hardHere / a.nodes.length > GROUP_SHARE) return true
    const rest = { samples: 0, errors: 0, podSamples: 0, podErrors: 0 }
    for (const n of a.nodes) {
      if (hard.has(n)) continue
      const r = reached(column.cells[n]!)
      rest.samples += r.samples
      rest.errors += r.errors
      rest.podSamples += baseline(n).samples
      rest.podErrors += baseline(n).errors
    }
    return rest.errors >= MIN_FAILURES && rest.errors / rest.samples - rest.podErrors / rest.podSamples >= SERVICE_EXCESS &&
      significant(rest.errors, rest.samples, rest.podErrors, rest.podSamples)
  }).map(([g]) => g).sort()
  const failingSet = new Set(failingGroups)
  const agreeing = [...excess].filter(([n, e]) => failingSet.has(ctx.nodes[n]!.group) && e >= SERVICE_EXCESS).map(([n]) => n)
  const loose = [...hard].filter(n => !failingSet.has(ctx.nodes[n]!.group)).sort((a, b) => a - b)
  const missing = missingBackends(ctx, input, witness, column)
  if (failingGroups.length === 0 && loose.length === 0 && missing.fleet.length === 0 && missing.byGroup.size === 0) return null

  const failingNodes = [...agreeing, ...loose].sort((a, b) => a - b)
  const judgedInFailing = failingGroups.reduce((n, g) => n + pooled.get(g)!.nodes.length, 0)
  const ev: Evidence[] = []
  const cells = failingGroups.flatMap(g => pooled.get(g)!.nodes).concat(loose).map(n => [n, column.target, column.cells[n]!] as [number, string, NodeCell])
  if (cells.length > 0) {
    const podSamples = cells.reduce((s, [n]) => s + input.podOut[n]!.samples, 0)
    const podErrors = cells.reduce((s, [n]) => s + input.podOut[n]!.errors, 0)
    ev.push(evidence(ctx, {
      probe: 'service',
      scope: `through ${column.target}`,
      cells,
      agreeing: { count: failingNodes.length, of: judgedInFailing + loose.length },
      accept: throughService,
      figures: { podSamples, podErrors, podErrorRatio: podSamples === 0 ? 0 : podErrors / podSamples, agentsDownShare: down }
    }))
  }
  const missingNames = [...new Set([...missing.fleet, ...[...missing.byGroup.values()].flat()])]
  if (missing.candidates > 0 && missingNames.length > 0) {
    const figures: Record<string, number | string> = { answers: missing.answers, candidates: missing.candidates, neverAnswer: missing.fleet.join(',') }
    for (const [g, list] of missing.byGroup) figures[`neverAnswer:${g}`] = list.join(',')
    ev.push({ probe: 'service', scope: `backends ${column.target}`, samples: missing.answers, errors: 0, errorRatio: null, agreeing: { count: missing.fleet.length, of: missing.candidates }, reasons: [], figures })
  }

  const service = column.target
  const rest: string[] = []
  let lead: string
  if (failingNodes.length > 0) {
    const where: string[] = []
    const all = failingGroups.length > 0 && failingGroups.length === pooled.size
    if (all) where.push(`every group (${agreeing.length} of ${judgedInFailing} nodes)`)
    else for (const g of failingGroups) where.push(`${g} (${agreeing.filter(n => ctx.nodes[n]!.group === g).length} of ${pooled.get(g)!.nodes.length} nodes)`)
    for (const n of loose) where.push(`${ctx.nodes[n]!.name} (${ctx.nodes[n]!.group})`)
    lead = `service ${service}: probes through the Service fail from ${where.join(', ')}`
    rest.push(`${reasonText(ev[0]!.reasons)}; their pod probes succeed`)
    const fine = [...pooled.keys()].filter(g => !failingSet.has(g)).sort()
    if (fine.length > 0 && failingGroups.length > 0) rest.push(`; ${fine.join(' and ')} ${fine.length === 1 ? 'reaches' : 'reach'} it`)
    if (missingNames.length > 0) rest.push(`; ${neverAnswer(missingNames)}`)
  } else {
    const whoMisses = missing.fleet.length > 0 ? '' : ` to ${[...missing.byGroup.keys()].sort().join(' and ')}`
    lead = `service ${service}: ${neverAnswer(missingNames)}${whoMisses}`
    rest.push(`(${missing.answers} answers from ${missing.sources} nodes); pod probes reach them directly`)
  }
  const score = failingNodes.length > 0 ? shareScore(failingNodes.length, judgedInFailing + loose.length) : shareScore(missingNames.length, missingNames.length)
  const backendNodes = missingNames.map(name => ctx.nodes.findIndex(x => x.name === name)).filter(i => i >= 0)
  return {
    kind: 'service-path',
    subject: { type: 'service', id: `service/${service}`, service },
    evidence: ev,
    score,
    scoreBasis: failingNodes.length > 0
      ? `${failingNodes.length} of ${judgedInFailing + loose.length} judged nodes fail through the Service at least ${SERVICE_EXCESS} above their pod error ratio`
      : `${missing.answers} answers (${missing.need} needed for ${missing.candidates} candidates), none from ${missingNames.length} of them`,
    lead,
    rest: rest.join(''),
    nodes: [...new Set([...namesOf(ctx, failingNodes), ...missingNames])].sort(),
    groups: [...new Set([...groupsOf(ctx, failingNodes), ...groupsOf(ctx, backendNodes)])].sort()
  }
}

/** `backend a never answers through it` / `backends a, b never answer through it`. */
function neverAnswer (names: string[]): string {
  const list = [...names].sort().join(', ')
  return names.length === 1 ? `backend ${list} never answers through it` : `backends ${list} never answer through it`
}

/**
 * Agents that never answered through the Service although pod probes reach them (their inbound pod
 * error ratio below FAILING_RATIO) and their agent is connected, trusted and ready: fleet-wide, and per
 * source group for backends that answer other groups. Judged only once the answers make a miss by
 * chance unlikely fleet-wide: with k answers picked at random among N candidates, one candidate gets
 * none with probability about e^(-k/N), so some candidate does with at most N·e^(-k/N) (the union
 * bound); k ≥ N·ln(N / MISSING_BACKEND_ALPHA) keeps that below MISSING_BACKEND_ALPHA. (The service
 * view's 5 per candidate is for one row a person reads; at 1,000 candidates it would flag ~7 by chance.)
 */
function missingBackends (ctx: FindingsContext, input: DnsServiceInput, witness: readonly boolean[], column: ServiceColumn): { fleet: string[], byGroup: Map<string, string[]>, answers: number, candidates: number, sources: number, need: number } {
  const candidates: string[] = []
  for (const [i, node] of ctx.nodes.entries()) {
    const pod = input.podIn[i]
    if (!node.connected || node.degraded !== null || node.podReady === false || pod === undefined || pod.samples < MIN_SAMPLES) continue
    if (pod.errors / pod.samples < FAILING_RATIO) candidates.push(node.name)
  }
  const total = new Map<string, number>()
  const perGroup = new Map<string, { answers: number, seen: Set<string> }>()
  let answers = 0
  let sources = 0
  for (let n = 0; n < ctx.nodes.length; n++) {
    const backends = column.backends[n]
    if (!witness[n] || backends === undefined) continue
    sources++
    const g = ctx.nodes[n]!.group
    let acc = perGroup.get(g)
    if (acc === undefined) perGroup.set(g, acc = { answers: 0, seen: new Set() })
    for (const [backend, count] of backends) {
      total.set(backend, (total.get(backend) ?? 0) + count)
      answers += count
      acc.answers += count
      acc.seen.add(backend)
    }
  }
  const need = candidates.length === 0 ? Infinity : Math.ceil(candidates.length * Math.log(candidates.length / MISSING_BACKEND_ALPHA))
  const fleet = candidates.length > 0 && answers >= need ? candidates.filter(c => !total.has(c)).sort() : []
  const byGroup = new Map<string, string[]>()
  if (perGroup.size > 1) {
    for (const [g, acc] of [...perGroup].sort(([a], [b]) => a.localeCompare(b))) {
      if (candidates.length === 0 || acc.answers < need) continue
      const never = candidates.filter(c => total.has(c) && !acc.seen.has(c)).sort()
      if (never.length > 0) byGroup.set(g, never)
    }
  }
  return { fleet, byGroup, answers, candidates: candidates.length, sources, need }
}
