// Evaluates a gate against the group store and the roster. Fail closed: no data, too few
// samples, stale data, a missing group or low agent coverage is insufficient_data, never pass.

import { formatDuration, PEER_PROBE_KINDS } from '@pingfleet/protocol'
import type { Check, Verdict } from './check.ts'
import type { Fleet } from '../fleet/fleet.ts'
import { evaluateNodes } from './nodes.ts'
import { probedBy } from '../views/node-sides.ts'
import type { GateSpec, PairRule } from './spec.ts'
import { buildMatrix, type MatrixCell } from '../views/matrix.ts'
import type { ServiceView } from '../views/service.ts'
import type { Store } from '../store/store.ts'

export { CRITERIA, VERDICTS, type Check, type Criterion, type Verdict } from './check.ts'

/** A pair a rule names that cannot have data, so it is not required. */
export interface SkippedPair {
  probe: string
  src: string
  dst: string
  reason: string
}

export interface GateResult {
  name: string
  description: string
  verdict: Verdict
  evaluatedAt: string
  window: string
  /**
   * The span the checks' data really covers (ISO 8601), over every rule's window (Store.read):
   * less than one interval before evaluatedAt - the longest window, or later for long windows.
   * Both are evaluatedAt when the gate read no window.
   */
  from: string
  to: string
  maxStaleness: string
  summary: Record<Verdict, number>
  /** Scoped gates only: the nodes judged. */
  nodes?: string[]
  /** Pairs not required because they cannot have data, and why. */
  skipped: SkippedPair[]
  checks: Check[]
}

/** Backend coverage of one Service in a window, for the source group where it is lowest. */
export interface ServiceBackends {
  /** Backends that answered through the Service. */
  reachable: number
  /** Those plus backends reached directly (pod probes, no errors) that the Service never handed out. */
  expected: number
  /** Service probes in the window, all source groups. */
  samples: number
  group: string
  /** Source groups with too few answers yet to tell a missing backend from chance. */
  unjudged: string[]
  /** The span (ms since the epoch) the service view covered, when known. */
  from?: number
  to?: number
}

export interface GateSources {
  groups: Store
  /**
   * Groups, their members, every node's state, and the agents each group should have: in-cluster,
   * once discovery has listed, the nodes with a live agent pod that are not cordoned (so a `*` rule
   * still judges a group whose agents all fail to reach the aggregator); before that, and outside a
   * cluster, the roster's members (disconnected agents stay until the peer TTL). See Fleet.census.
   */
  fleet: Fleet
  /** Backend coverage of a Service over a window; null when no service probe reported it. */
  serviceBackends: (service: string, windowMs: number) => ServiceBackends | null
  /**
   * The node store (node × target). Node rules and the "is every destination probed" checks read
   * it; without it a scoped gate is insufficient.
   */
  nodes?: Store
}

export function noServiceData (): ServiceBackends | null {
  return null
}

/**
 * Service backend coverage from the service view: the source group with the lowest ratio. The view
 * scans the node store, so answers are reused for `reuseMs` (every gate asking in one tick shares one).
 */
export function serviceBackendsFrom (view: (service: string, windowMs: number) => ServiceView, now: () => number = Date.now, reuseMs = 1000): GateSources['serviceBackends'] {
  const cache = new Map<string, { at: number, value: ServiceBackends | null }>()
  return (service, windowMs) => {
    const t = now()
    const key = `${windowMs} ${service}`
    const hit = cache.get(key)
    if (hit !== undefined && t - hit.at >= 0 && t - hit.at < reuseMs) return hit.value
    if (cache.size > 1000) cache.clear()
    const value = backendsOf(view(service, windowMs), service)
    cache.set(key, { at: t, value })
    return value
  }
}

function backendsOf (view: ServiceView, service: string): ServiceBackends | null {
  let worst: ServiceBackends | null = null
  let samples = 0
  const unjudged: string[] = []
  for (const row of view.rows) {
    if (row.service !== service) continue
    samples += row.samples
    if (!row.judged) {
      unjudged.push(row.src)
      continue
    }
    const reachable = row.backends.length
    const expected = reachable + row.flagged.length
    if (worst === null || reachable * worst.expected < worst.reachable * expected) worst = { reachable, expected, samples: 0, group: row.src, unjudged }
  }
  if (worst === null && unjudged.length === 0) return null
  return { ...(worst ?? { reachable: 0, expected: 0, group: unjudged[0]! }), samples, unjudged, from: Date.parse(view.from), to: Date.parse(view.to) }
}

const peerKinds = new Set<string>(PEER_PROBE_KINDS)

function combine (verdicts: Iterable<Verdict>): Verdict {
  let insufficient = false
  for (const v of verdicts) {
    if (v === 'fail') return 'fail'
    if (v === 'insufficient_data') insufficient = true
  }
  return insufficient ? 'insufficient_data' : 'pass'
}

function atMost (observed: number | null, threshold: number): Verdict {
  if (observed === null) return 'insufficient_data'
  return observed <= threshold ? 'pass' : 'fail'
}

function fmt (value: number | null, seconds = false): string {
  if (value === null) return 'nothing'
  const digits = (n: number): string => String(Number(n.toPrecision(3)))
  if (seconds) return value < 1 ? `${digits(value * 1000)}ms` : `${digits(value)}s`
  return digits(value)
}

/**
 * Judges one gate now (`now` in ms since the epoch) and returns its verdict with every check behind it.
 * Each rule's pairs are read from `sources.groups` over the gate's window (node rules and scoped gates
 * from `sources.nodes`), then coverage (connected / expected agents per group), staleness (age in
 * seconds of each relied-on group's newest report) and service backend ratios are added. Ratios are
 * 0..1, latencies and ages seconds, `from`/`to`/`evaluatedAt` ISO 8601. The verdict fails closed: any
 * failing check fails; otherwise any check without enough data (or no check at all) is
 * insufficient_data; only then pass. Check ids are unique (uniqueChecks).
 *
 * Throws nothing of its own: a missing source (no node store, no discovery) makes its checks
 * insufficient_data.
 */
export function evaluateGate (spec: GateSpec, sources: GateSources, now: number): GateResult {
  const { fleet } = sources
  // One count of every group for the whole evaluation: the roster's groups and discovery's.
  const census = fleet.census()
  const knownGroups = [...census.keys()].sort()
  const checks: Check[] = []
  const skipped: SkippedPair[] = []
  const sourceGroups = new Set<string>()
  // The union of the spans every windowed read covered.
  let from = Infinity
  let to = -Infinity
  const covered = (start: number, end: number): void => {
    from = Math.min(from, start)
    to = Math.max(to, end)
  }
  // Members are the agents that stay: a terminating one (a planned departure) is neither probed
  // (probeable) nor counted, so a group left with one member is skipped at once, not after the peer TTL.
  const pairs: PairContext = {
    groups: sources.groups,
    nodes: sources.nodes,
    knownGroups,
    members: group => {
      const c = census.get(group)
      return c === undefined ? 0 : Math.max(c.members, c.expected)
    },
    probeable: group => fleet.membersOf(group).map(a => ({ node: a.node, state: a.state })),
    groupOfNode: node => fleet.groupOf(node),
    batch: spec.scope !== null,
    now,
    covered
  }

  for (const rule of spec.rules) {
    const { checks: ruleChecks, skipped: ruleSkipped } = evaluateRule(rule, pairs)
    skipped.push(...ruleSkipped)
    for (const check of ruleChecks) {
      checks.push(check)
      if (check.src !== undefined && check.src !== '*') sourceGroups.add(check.src)
    }
  }

  let selected: string[] | undefined
  if (spec.scope !== null) {
    if (sources.nodes === undefined) {
      checks.push({ id: 'scope nodes', criterion: 'nodeScope', verdict: 'insufficient_data', observed: null, threshold: 1, samples: null, window: null, detail: 'no node store to judge nodes from' })
    } else {
      const kube = fleet.kubeNodes()
      const known = fleet.nodes(kube)
      const result = evaluateNodes(spec, { nodes: sources.nodes, groups: sources.groups, known, discovery: kube !== null, now, covered })
      selected = result.selected
      checks.push(...result.checks)
    }
  }

  for (const rule of spec.coverage) {
    const groups = rule.group === '*' ? knownGroups : [rule.group]
    if (groups.length === 0) {
      checks.push({ id: 'coverage *', criterion: 'minCoverage', verdict: 'insufficient_data', observed: null, threshold: rule.minRatio, samples: null, window: null, group: '*', detail: 'no agents are known in any group' })
    }
    for (const group of groups) {
      const expected = census.get(group)?.expected ?? 0
      const connected = census.get(group)?.connected ?? 0
      const observed = expected > 0 ? connected / expected : null
      const enough = observed !== null && observed >= rule.minRatio
      checks.push({
        id: `coverage ${group}`,
        criterion: 'minCoverage',
        verdict: enough ? 'pass' : 'insufficient_data',
        observed,
        threshold: rule.minRatio,
        samples: connected,
        window: null,
        group,
        detail: expected === 0
          ? `no agents are expected in group ${group}: the group is missing`
          : `${connected} of ${expected} agents of group ${group} connected`
      })
      sourceGroups.add(group)
    }
  }

  // Freshness of every group the checks rely on: the newest report of any of its agents.
  for (const group of [...sourceGroups].sort()) {
    const newest = census.get(group)?.newestReportAt ?? null
    const age = newest === null ? null : Math.max(0, now - newest) / 1000
    const fresh = age !== null && age * 1000 <= spec.maxStalenessMs
    checks.push({
      id: `staleness ${group}`,
      criterion: 'maxStaleness',
      verdict: fresh ? 'pass' : 'insufficient_data',
      observed: age,
      threshold: spec.maxStalenessMs / 1000,
      samples: null,
      window: null,
      group,
      detail: age === null
        ? `no report from group ${group} yet`
        : `newest report from group ${group} is ${fmt(age, true)} old${fresh ? '' : `, older than ${formatDuration(spec.maxStalenessMs)}`}`
    })
  }

  for (const rule of spec.services) {
    const data = sources.serviceBackends(rule.service, spec.windowMs)
    if (data?.from !== undefined && data.to !== undefined) covered(data.from, data.to)
    const observed = data === null || data.expected === 0 ? null : data.reachable / data.expected
    const enough = data !== null && data.samples >= spec.minSamples
    // A judged group below the minimum fails; groups not yet judged keep a pass from being given.
    const verdict: Verdict = observed === null || !enough ? 'insufficient_data'
      : observed < rule.minBackendRatio ? 'fail'
        : data.unjudged.length > 0 ? 'insufficient_data' : 'pass'
    checks.push({
      id: `service ${rule.service}`,
      criterion: 'minServiceBackendRatio',
      verdict,
      observed,
      threshold: rule.minBackendRatio,
      samples: data?.samples ?? 0,
      window: formatDuration(spec.windowMs),
      service: rule.service,
      ...(data === null ? {} : { group: data.group }),
      detail: data === null
        ? `no service probe results for ${rule.service} in the last ${formatDuration(spec.windowMs)}`
        : (observed === null ? `no group has had enough answers through ${rule.service} to judge its backends`
            : `${data.reachable} of ${data.expected} backends answered through ${rule.service} for group ${data.group} (the lowest)`) +
          (enough ? '' : `; too few samples (${data.samples} of ${spec.minSamples}) to judge`) +
          (data.unjudged.length > 0 ? `; not enough answers yet from ${data.unjudged.join(', ')}` : '')
    })
  }

  const unique = uniqueChecks(checks)
  const summary: Record<Verdict, number> = { pass: 0, fail: 0, insufficient_data: 0 }
  for (const c of unique) summary[c.verdict]++
  return {
    name: spec.name,
    description: spec.description,
    verdict: unique.length === 0 ? 'insufficient_data' : combine(unique.map(c => c.verdict)),
    evaluatedAt: new Date(now).toISOString(),
    window: formatDuration(spec.windowMs),
    from: new Date(Number.isFinite(from) ? from : now).toISOString(),
    to: new Date(Number.isFinite(to) ? to : now).toISOString(),
    maxStaleness: formatDuration(spec.maxStalenessMs),
    summary,
    ...(selected === undefined ? {} : { nodes: selected }),
    skipped: uniqueSkipped(skipped),
    checks: unique
  }
}

/**
 * Check ids are unique within a result (they are the `check` label of the gate metrics). Two rules
 * that meet on one pair (say `* -> cilium` and `cilium -> *` on cilium -> cilium) give the same
 * check twice: an identical one (same criterion, threshold and window) is dropped, a different
 * one keeps its place with ` #2`, ` #3`… appended to its id.
 */
export function uniqueChecks (checks: readonly Check[]): Check[] {
  const seen = new Map<string, Check>()
  const out: Check[] = []
  for (const c of checks) {
    const prior = seen.get(c.id)
    if (prior === undefined) {
      seen.set(c.id, c)
      out.push(c)
      continue
    }
    if (prior.criterion === c.criterion && prior.threshold === c.threshold && prior.window === c.window) continue
    let n = 2
    while (seen.has(`${c.id} #${n}`)) n++
    const renamed = { ...c, id: `${c.id} #${n}` }
    seen.set(renamed.id, renamed)
    out.push(renamed)
  }
  return out
}

function uniqueSkipped (skipped: readonly SkippedPair[]): SkippedPair[] {
  const seen = new Set<string>()
  return skipped.filter(s => {
    const key = `${s.probe} ${s.src}->${s.dst}`
    if (seen.has(key)) return false
    seen.add(key)
    return true
  })
}

interface PairContext {
  groups: Store
  nodes: Store | undefined
  knownGroups: readonly string[]
  /** Agents a group has or should have: the roster's count or discovery's, whichever is larger. */
  members: (group: string) => number
  /** A group's agents that peers should be probing (every state but terminating). */
  probeable: (group: string) => Array<{ node: string, state: string }>
  groupOfNode: (node: string) => string
  /** The gate judges a batch (it has a node scope): a named group with no members is skipped. */
  batch: boolean
  now: number
  /** Widens the span the gate's answer reports (from/to) by one read. */
  covered: (from: number, to: number) => void
}

/** Why a pair cannot have data, or null when it can. */
function cannotHaveData (rule: PairRule, src: string, dst: string, ctx: PairContext): string | null {
  const peer = peerKinds.has(rule.probe)
  if (peer && src === dst && ctx.members(src) === 1) return `group ${src} has one member, and an agent does not probe itself`
  if (ctx.batch) {
    if (ctx.members(src) === 0) return `group ${src} has no members yet; the gate judges a batch, so a group that does not exist yet is not required`
    if (peer && ctx.members(dst) === 0) return `group ${dst} has no members yet; the gate judges a batch, so a group that does not exist yet is not required`
  }
  return null
}

function evaluateRule (rule: PairRule, ctx: PairContext): { checks: Check[], skipped: SkippedPair[] } {
  const { groups, knownGroups, now, covered } = ctx
  const peer = peerKinds.has(rule.probe)
  const matches = (selector: string, value: string): boolean => selector === '*' || selector === value
  const { cells, from, to } = buildMatrix(groups, {
    probe: rule.probe,
    windowMs: rule.windowMs,
    now,
    place: key => matches(rule.src, key.src) && matches(rule.dst, key.target) ? { row: key.src, col: key.target } : null
  })
  covered(from, to)
  const byPair = new Map<string, MatrixCell>()
  for (const c of cells) byPair.set(c.src + '\u0000' + c.dst, c)
  // Wildcards expand over the groups the roster knows and the ones with data, so an expected
  // group without data shows up as insufficient instead of silently dropping out.
  const srcs = rule.src === '*' ? union(knownGroups, cells.map(c => c.src)) : [rule.src]
  const dsts = rule.dst === '*' ? union(peer ? knownGroups : [], cells.map(c => c.dst)) : [rule.dst]
  const window = formatDuration(rule.windowMs)
  const out: Check[] = []
  const skipped: SkippedPair[] = []
  if (srcs.length === 0 || dsts.length === 0) {
    out.push({
      id: `${rule.probe} ${rule.src}->${rule.dst} minSamples`,
      criterion: 'minSamples', verdict: 'insufficient_data', observed: 0, threshold: rule.minSamples, samples: 0, window,
      probe: rule.probe, src: rule.src, dst: rule.dst,
      detail: `no ${rule.probe} data matches ${rule.src} -> ${rule.dst}`
    })
    return { checks: out, skipped }
  }
  // Which destination nodes each source group probed at all (peer kinds): a pair's ratio says
  // nothing about a member nobody probes, such as a cordoned node agents skip.
  const probed = peer && ctx.nodes !== undefined
    ? probedBy(ctx.nodes, rule.probe, rule.windowMs, now, srcs, ctx.groupOfNode)
    : null
  for (const src of srcs) {
    for (const dst of dsts) {
      const impossible = cannotHaveData(rule, src, dst, ctx)
      if (impossible !== null) {
        skipped.push({ probe: rule.probe, src, dst, reason: impossible })
        continue
      }
      const cell = byPair.get(src + '\u0000' + dst)
      const samples = cell?.samples ?? 0
      const enough = samples >= rule.minSamples
      const base = { probe: rule.probe, src, dst, samples, window }
      const pair = `${rule.probe} ${src}->${dst}`
      out.push({
        ...base,
        id: `${pair} minSamples`,
        criterion: 'minSamples',
        verdict: enough ? 'pass' : 'insufficient_data',
        observed: samples,
        threshold: rule.minSamples,
        detail: cell === undefined
          ? `no ${rule.probe} results from ${src} to ${dst} in the last ${window}`
          : `${samples} samples in the last ${window}${enough ? '' : `, fewer than the ${rule.minSamples} required`}`
      })
      const judged = (observed: number | null, threshold: number): Verdict => enough ? atMost(observed, threshold) : 'insufficient_data'
      const why = (verdict: Verdict, what: string, observed: number | null, threshold: number, seconds = false): string => {
        if (!enough) return `${what} not judged: too few samples (${samples} of ${rule.minSamples})`
        if (observed === null) return `${what}: no successful probes to measure`
        return `${what} ${fmt(observed, seconds)} ${verdict === 'pass' ? '<=' : '>'} ${fmt(threshold, seconds)}`
      }
      if (rule.maxErrorRatio !== undefined) {
        const observed = cell === undefined ? null : cell.errorRatio
        const verdict = judged(observed, rule.maxErrorRatio)
        out.push({ ...base, id: `${pair} maxErrorRatio`, criterion: 'maxErrorRatio', verdict, observed, threshold: rule.maxErrorRatio, detail: why(verdict, 'error ratio', observed, rule.maxErrorRatio) })
      }
      for (const [criterion, q, max] of [['maxP50', 'p50', rule.maxP50], ['maxP99', 'p99', rule.maxP99]] as const) {
        if (max === undefined) continue
        const observed = cell?.latency[q] ?? null
        const verdict = judged(observed, max)
        out.push({ ...base, id: `${pair} ${criterion}`, criterion, verdict, observed, threshold: max, detail: why(verdict, `${q} latency`, observed, max, true) })
      }
      for (const [reason, max] of Object.entries(rule.maxErrorRatioByReason ?? {})) {
        const observed = cell === undefined || cell.samples === 0 ? null : (cell.errorsByReason[reason] ?? 0) / cell.samples
        const verdict = judged(observed, max)
        out.push({ ...base, id: `${pair} maxErrorRatioByReason ${reason}`, criterion: 'maxErrorRatioByReason', reason, verdict, observed, threshold: max, detail: why(verdict, `${reason} ratio`, observed, max) })
      }
      if (probed !== null) out.push(probedCheck(rule, src, dst, srcs.indexOf(src), probed, ctx, base))
    }
  }
  return { checks: out, skipped }
}

function probedCheck (rule: PairRule, src: string, dst: string, bit: number, probed: ReadonlyMap<string, number>, ctx: PairContext, base: { probe: string, src: string, dst: string, samples: number, window: string }): Check {
  const members = ctx.probeable(dst)
  const missing = members.filter(m => ((probed.get(m.node) ?? 0) & (1 << bit)) === 0 || bit > 30)
  const probedCount = members.length - missing.length
  const named = missing.slice(0, 5).map(m => `${m.node}${m.state === 'draining' ? ' (draining: cordoned)' : ''}`).join(', ') + (missing.length > 5 ? ` and ${missing.length - 5} more` : '')
  return {
    ...base,
    id: `${rule.probe} ${src}->${dst} probedMembers`,
    criterion: 'probedMembers',
    verdict: members.length > 0 && missing.length === 0 ? 'pass' : 'insufficient_data',
    observed: members.length === 0 ? null : probedCount / members.length,
    threshold: 1,
    detail: members.length === 0
      ? `group ${dst} has no agents to probe`
      : missing.length === 0
        ? `every member of ${dst} (${members.length}) has ${rule.probe} results from ${src} in the last ${base.window}`
        : `${missing.length} of ${members.length} members of ${dst} have no ${rule.probe} results from ${src} in the last ${base.window}: ${named}; nobody probes them, so this pair's numbers say nothing about them`
  }
}

function union (a: readonly string[], b: readonly string[]): string[] {
  return [...new Set([...a, ...b])].sort()
}
