// Node-scoped gate checks: which nodes a gate selects, whether each has a live agent, and each
// selected node's own results read from the node store, inbound and outbound apart. A group ratio
// hides one dead node among many (1 of 200 is 0.5%); judging each node does not.

import { formatDuration, nearestRank, PEER_PROBE_KINDS } from '@pingfleet/protocol'
import { formatValue as fmt, type NodeCheck, type NodeEvidence, type Verdict } from './check.ts'
import { groupIn, matchingNodes, type NodeFacts } from '../fleet/fleet.ts'
import type { GateSpec, NodeRule, NodeScope } from './spec.ts'
import { buildMatrix } from '../views/matrix.ts'
import { sidesSinceBoot, type Side, type Since } from '../views/node-sides.ts'
import type { Store } from '../store/store.ts'

export type { NodeCheck, NodeEvidence, NodeFacts }

/** Worst nodes quoted per check. */
export const WORST_QUOTED = 10

/**
 * The nodes a scope selects, sorted. With both `nodes` and a selector a node must satisfy both;
 * a named node nobody knows is still selected (and then not covered), never silently dropped.
 */
export function selectNodes (scope: NodeScope, known: ReadonlyMap<string, NodeFacts>): string[] {
  const out: string[] = []
  if (scope.nodes !== null) {
    for (const node of scope.nodes) {
      const facts = known.get(node)
      if (facts === undefined || scope.selector === null || scope.selector.matches(facts.labels)) out.push(node)
    }
    return out
  }
  return matchingNodes(scope.selector!, known)
}

function scopeText (scope: NodeScope): string {
  const parts: string[] = []
  if (scope.nodes !== null) parts.push(`nodes ${scope.nodes.join(',')}`)
  if (scope.selector !== null) parts.push(`nodeSelector ${JSON.stringify(scope.selector.text)}`)
  return parts.join(' and ')
}

function list (names: readonly string[], max = 5): string {
  return names.length <= max ? names.join(', ') : `${names.slice(0, max).join(', ')} and ${names.length - max} more`
}


export interface NodeContext {
  nodes: Store
  groups: Store
  known: ReadonlyMap<string, NodeFacts>
  /** Discovery is on and has listed: a selected node missing from it is not in the cluster. */
  discovery: boolean
  now: number
  /** Widens the span the gate's answer reports (from/to) by one read. */
  covered?: (from: number, to: number) => void
}

const peerKinds = new Set<string>(PEER_PROBE_KINDS)

/**
 * The scope, coverage and node-rule checks of a scoped gate, and the nodes it selected.
 * Fail closed: a scope matching nothing, an uncovered node, too few samples or peers are
 * insufficient; a node over a bound fails and is named.
 */
export function evaluateNodes (spec: GateSpec, ctx: NodeContext): { selected: string[], checks: NodeCheck[] } {
  const scope = spec.scope!
  const selected = selectNodes(scope, ctx.known)
  const checks: NodeCheck[] = []
  checks.push({
    id: 'scope nodes',
    criterion: 'nodeScope',
    verdict: selected.length > 0 ? 'pass' : 'insufficient_data',
    observed: selected.length,
    threshold: 1,
    samples: null,
    window: null,
    detail: selected.length > 0
      ? `${scopeText(scope)} selects ${selected.length} node${selected.length === 1 ? '' : 's'}: ${list(selected)}`
      : `${scopeText(scope)} selects no node (of ${ctx.known.size} known): nothing to judge`
  })
  if (selected.length === 0) return { selected, checks }
  checks.push(coverageCheck(spec, selected, ctx))
  for (const rule of spec.nodeRules) checks.push(...ruleChecks(rule, selected, ctx))
  return { selected, checks }
}

function coverageCheck (spec: GateSpec, selected: readonly string[], ctx: NodeContext): NodeCheck {
  const evidence: NodeEvidence[] = []
  for (const node of selected) {
    const f = ctx.known.get(node)
    let why: string | null = null
    if (f === undefined) why = ctx.discovery ? 'not in the cluster and no agent has connected from it' : 'no agent has connected from it'
    else if (ctx.discovery && f.kube === null) why = 'not in the cluster'
    else if (f.kube !== null && !f.kube.podReady) why = f.kube.podReason ?? 'its agent pod is not ready'
    else if (f.state === null) why = 'its agent has never connected'
    else if (!f.connected) why = 'its agent is disconnected'
    else if (f.state === 'terminating') why = 'its agent is terminating'
    else if (f.lastReportAt === null) why = 'its agent has not reported yet'
    else if (ctx.now - f.lastReportAt > spec.maxStalenessMs) why = `its newest report is ${fmt((ctx.now - f.lastReportAt) / 1000, true)} old, older than ${formatDuration(spec.maxStalenessMs)}`
    if (why !== null) evidence.push({ node, verdict: 'insufficient_data', observed: 0, samples: 0, peers: 0, detail: why })
  }
  const covered = selected.length - evidence.length
  return {
    id: 'coverage nodes',
    criterion: 'nodeCoverage',
    verdict: evidence.length === 0 ? 'pass' : 'insufficient_data',
    observed: covered / selected.length,
    threshold: 1,
    samples: covered,
    window: null,
    ...(evidence.length > 0 ? { worst: evidence.slice(0, WORST_QUOTED) } : {}),
    detail: evidence.length === 0
      ? `every selected node (${selected.length}) has a connected, reporting agent${ctx.discovery ? ' and a ready agent pod' : ''}`
      : `${covered} of ${selected.length} selected nodes covered; not covered: ${evidence.slice(0, 5).map(e => `${e.node} (${e.detail})`).join('; ')}${evidence.length > 5 ? ` and ${evidence.length - 5} more` : ''}`
  }
}

/** "since its agent (boot …) joined at 10:02:15Z": the evidence for a shortened window. */
function sinceText (since: Since): string {
  return `since its agent (boot ${since.bootId}) joined at ${new Date(since.at).toISOString().slice(11, 19)}Z`
}

/** Nearest-rank quantile of a dense histogram (BUCKET_COUNT counts), seconds; null when empty. */
function quantile (dense: Float64Array, q: number): number | null {
  let total = 0
  for (let i = 0; i < dense.length; i++) total += dense[i]!
  return nearestRank(dense, total, q)
}

function topReasons (reasons: Map<string, number> | null): string {
  if (reasons === null) return ''
  return [...reasons].sort((a, b) => b[1] - a[1]).slice(0, 2).map(([r, n]) => `${r} ${n}`).join(', ')
}

/** Error ratio of the rest of the fleet: the group store's sum for this probe and peers, less the selected nodes'. */
function restRatio (ctx: NodeContext, rule: NodeRule, inbound: boolean, sides: readonly Side[]): { ratio: number | null, samples: number } {
  const peer = peerKinds.has(rule.probe)
  const ok = (name: string): boolean => rule.peers === '*' || name === rule.peers
  const { cells } = buildMatrix(ctx.groups, {
    probe: rule.probe,
    windowMs: rule.windowMs,
    now: ctx.now,
    rowOf: src => inbound && peer && !ok(src) ? null : 'all',
    colOf: dst => !inbound && !ok(dst) ? null : 'all'
  })
  let samples = cells[0]?.samples ?? 0
  let errors = cells[0]?.errors ?? 0
  for (const s of sides) { samples -= s.samples; errors -= s.errors }
  // The group store files a sample under the groups at ingest time; a relabel in the window can
  // leave the difference slightly off, never below zero.
  samples = Math.max(0, samples)
  errors = Math.min(samples, Math.max(0, errors))
  return { ratio: samples > 0 ? errors / samples : null, samples }
}

function ruleChecks (rule: NodeRule, selected: readonly string[], ctx: NodeContext): NodeCheck[] {
  const peer = peerKinds.has(rule.probe)
  const groupOf = (node: string): string => groupIn(ctx.known, node)
  // null: every peer, which the node store answers from its per-node sums.
  const peerOk = rule.peers === '*'
    ? null
    : peer
      ? (node: string): boolean => groupOf(node) === rule.peers
      : (target: string): boolean => target === rule.peers
  const bootOf = (node: string): Since | null => {
    const f = ctx.known.get(node)
    return f?.bootStartedAt == null ? null : { bootId: f.bootId!, at: f.bootStartedAt }
  }
  const sides = sidesSinceBoot(ctx.nodes, { probe: rule.probe, windowMs: rule.windowMs, now: ctx.now }, selected, bootOf,
    peerOk, rule.maxNodeP99 !== undefined, rule.maxNodeExcessErrorRatio !== undefined)
  ctx.covered?.(sides.from, sides.to)
  // Evidence for shortened windows: appended to a node's detail, and summed up in each check's.
  const sinceMap = new Map<string, Since>()
  for (const [i, x] of sides.since.entries()) if (x !== null) sinceMap.set(selected[i]!, x)
  const sinceOf = (node: string): Since | null => sinceMap.get(node) ?? null
  const withSince = (node: string, detail: string): string => {
    const x = sinceOf(node)
    return x === null ? detail : `${detail}; read ${sinceText(x)}`
  }
  const shortened = [...sinceMap.keys()]
  const sinceNote = shortened.length === 0
    ? ''
    : `; ${shortened.length} of ${selected.length} selected nodes read only since their agent's current boot joined: ${shortened.slice(0, 3).map(n => `${n} ${sinceText(sinceOf(n)!).replace('since its agent ', '')}`).join('; ')}${shortened.length > 3 ? ` and ${shortened.length - 3} more` : ''}`
  const window = formatDuration(rule.windowMs)
  const out: NodeCheck[] = []
  const directions = peer ? (['inbound', 'outbound'] as const) : (['outbound'] as const)
  for (const direction of directions) {
    const all = direction === 'inbound' ? sides.inbound : sides.outbound
    const arrow = direction === 'inbound' ? '<-' : '->'
    const prefix = `${rule.probe} nodes${arrow}${rule.peers}`
    const what = peer ? (direction === 'inbound' ? `from ${rule.peers === '*' ? 'its peers' : `peers in ${rule.peers}`}` : `to ${rule.peers === '*' ? 'its peers' : `peers in ${rule.peers}`}`)
      : `to ${rule.peers === '*' ? 'any target' : rule.peers}`
    const base = { probe: rule.probe, direction, peers: rule.peers, window } as const
    const enough = all.map(s => s.samples >= rule.minSamples)
    const totalSamples = all.reduce((n, s) => n + s.samples, 0)

    // minSamples: a node nobody probes (or that probes nobody) is insufficient, named.
    const short = selected.map((node, i) => ({ node, s: all[i]! })).filter((_, i) => !enough[i])
    const nobody = (node: string, s: Side): string => {
      if (s.samples > 0) return `${s.samples} samples, fewer than ${rule.minSamples}`
      const f = ctx.known.get(node)
      if (direction === 'outbound') return `no ${rule.probe} results ${what}`
      return `nobody probed it${f?.state === 'draining' ? ' (its agent is draining: peers probe a cordoned node once the peer list with it has reached them)' : f?.state === 'terminating' ? ' (its agent is terminating)' : ''}`
    }
    out.push({
      ...base,
      id: `${prefix} minSamples`,
      criterion: 'minSamples',
      verdict: short.length === 0 ? 'pass' : 'insufficient_data',
      observed: Math.min(...all.map(s => s.samples)),
      threshold: rule.minSamples,
      samples: totalSamples,
      ...(short.length > 0 ? { worst: short.slice(0, WORST_QUOTED).map(({ node, s }) => ({ node, verdict: 'insufficient_data' as const, observed: s.samples, samples: s.samples, peers: s.peers, detail: withSince(node, nobody(node, s)) })) } : {}),
      detail: short.length === 0
        ? `every selected node has at least ${rule.minSamples} ${direction} samples ${what} in the last ${window}${sinceNote}`
        : `${short.length} of ${selected.length} selected nodes have too few ${direction} samples ${what}: ${short.slice(0, 5).map(({ node, s }) => `${node} (${withSince(node, nobody(node, s))})`).join('; ')}${short.length > 5 ? ` and ${short.length - 5} more` : ''}${sinceNote}`
    })

    if (rule.minPeers !== undefined) {
      const min = rule.minPeers
      const few = selected.map((node, i) => ({ node, s: all[i]! })).filter(x => x.s.peers < min)
      out.push({
        ...base,
        id: `${prefix} minPeers`,
        criterion: 'minPeers',
        verdict: few.length === 0 ? 'pass' : 'insufficient_data',
        observed: Math.min(...all.map(s => s.peers)),
        threshold: min,
        samples: totalSamples,
        ...(few.length > 0 ? { worst: few.slice(0, WORST_QUOTED).map(({ node, s }) => ({ node, verdict: 'insufficient_data' as const, observed: s.peers, samples: s.samples, peers: s.peers, detail: withSince(node, `${s.peers} distinct peers, fewer than ${min}`) })) } : {}),
        detail: few.length === 0
          ? `every selected node has ${direction} results ${what} with at least ${min} distinct peers${sinceNote}`
          : `${few.length} of ${selected.length} selected nodes have ${direction} results with fewer than ${min} distinct peers: ${few.slice(0, 5).map(({ node, s }) => `${node} (${s.peers})`).join(', ')}${sinceNote}`
      })
    }

    const judge = (criterion: NodeCheck['criterion'], threshold: number, valueOf: (s: Side) => number | null, seconds: boolean, describe: (s: Side, v: number) => string): void => {
      const ev: NodeEvidence[] = selected.map((node, i) => {
        const s = all[i]!
        if (!enough[i]) return { node, verdict: 'insufficient_data', observed: null, samples: s.samples, peers: s.peers, detail: withSince(node, `not judged: ${nobody(node, s)}`) }
        const v = valueOf(s)
        if (v === null) return { node, verdict: 'insufficient_data', observed: null, samples: s.samples, peers: s.peers, detail: withSince(node, 'nothing to measure') }
        return { node, verdict: v <= threshold ? 'pass' : 'fail', observed: v, samples: s.samples, peers: s.peers, detail: withSince(node, describe(s, v)) }
      })
      const rank: Record<Verdict, number> = { fail: 0, insufficient_data: 1, pass: 2 }
      ev.sort((a, b) => rank[a.verdict] - rank[b.verdict] || (b.observed ?? -1) - (a.observed ?? -1) || a.node.localeCompare(b.node))
      const failed = ev.filter(e => e.verdict === 'fail')
      const unjudged = ev.filter(e => e.verdict === 'insufficient_data')
      const judged = ev.filter(e => e.observed !== null)
      const verdict: Verdict = failed.length > 0 ? 'fail' : unjudged.length > 0 ? 'insufficient_data' : 'pass'
      const worst = judged.length === 0 ? null : Math.max(...judged.map(e => e.observed!))
      const name = criterion === 'maxNodeP99' ? 'p99 latency' : criterion === 'maxNodeExcessErrorRatio' ? 'error ratio above the rest of the fleet' : 'error ratio'
      out.push({
        ...base,
        id: `${prefix} ${criterion}`,
        criterion,
        verdict,
        observed: worst,
        threshold,
        samples: totalSamples,
        worst: ev.filter(e => e.verdict !== 'pass').concat(ev.filter(e => e.verdict === 'pass')).slice(0, WORST_QUOTED),
        detail: failed.length > 0
          ? `${failed.length} of ${selected.length} selected nodes over ${fmt(threshold, seconds)} (${direction} ${name} ${what}): ${failed.slice(0, 5).map(e => `${e.node} ${fmt(e.observed, seconds)} (${e.detail})`).join('; ')}${failed.length > 5 ? ` and ${failed.length - 5} more` : ''}${sinceNote}`
          : unjudged.length > 0
            ? `${unjudged.length} of ${selected.length} selected nodes not judged (${unjudged.slice(0, 5).map(e => e.node).join(', ')}); the worst judged ${direction} ${name} is ${fmt(worst, seconds)}${sinceNote}`
            : `every selected node's ${direction} ${name} ${what} is at most ${fmt(threshold, seconds)} (worst ${ev[0]!.node}: ${fmt(worst, seconds)})${sinceNote}`
      })
    }
    const ratioDetail = (s: Side): string => `${s.errors} of ${s.samples} failed${s.errors > 0 ? `: ${topReasons(s.reasons)}` : ''}; ${s.peers} ${peer ? 'peer' : 'target'}${s.peers === 1 ? '' : 's'}`
    if (rule.maxNodeErrorRatio !== undefined) judge('maxNodeErrorRatio', rule.maxNodeErrorRatio, s => s.errors / s.samples, false, ratioDetail)
    if (rule.maxNodeP99 !== undefined) judge('maxNodeP99', rule.maxNodeP99, s => quantile(s.dense ?? new Float64Array(0), 0.99), true, s => `${s.samples - s.errors} successful probes`)
    if (rule.maxNodeExcessErrorRatio !== undefined) {
      // The group store's sum holds the selected nodes' whole window, so their whole window is taken off.
      const rest = restRatio(ctx, rule, direction === 'inbound', direction === 'inbound' ? sides.full!.inbound : sides.full!.outbound)
      judge('maxNodeExcessErrorRatio', rule.maxNodeExcessErrorRatio, s => rest.ratio === null || rest.samples < rule.minSamples ? null : s.errors / s.samples - rest.ratio, false,
        s => `${fmt(s.errors / s.samples)} against ${fmt(rest.ratio)} for the rest of the fleet (${rest.samples} samples); ${ratioDetail(s)}`)
    }
  }
  return out
}
