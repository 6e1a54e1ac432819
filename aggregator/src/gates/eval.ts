// Evaluates a gate against the views and the fleet model: pair rules (pairs.ts), node rules
// (nodes.ts), coverage, staleness and Service backends. Fail closed: no data, too few samples, stale
// data, a missing group or low agent coverage is insufficient_data, never pass.

import { formatDuration } from '@pingfleet/protocol'
import { formatValue, type Check, type SkippedPair, type Verdict } from './check.ts'
import type { Fleet } from '../fleet/fleet.ts'
import type { Finding } from '../findings/finding.ts'
import { evaluateNodes } from './nodes.ts'
import { evaluatePairRule, type PairContext } from './pairs.ts'
import type { ServiceBackendsOf } from './service-backends.ts'
import type { GateSpec } from './spec.ts'
import type { Store } from '../store/store.ts'

export { CRITERIA, VERDICTS, type Check, type Criterion, type SkippedPair, type Verdict } from './check.ts'

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
  serviceBackends: ServiceBackendsOf
  /**
   * The node store (node × target). Node rules and the "is every destination probed" checks read
   * it; without it a scoped gate is insufficient.
   */
  nodes?: Store
  /**
   * The active findings (findings/engine.ts), for `forbidFindings`; null before the first evaluation.
   * Without it, forbidFindings checks are insufficient.
   */
  findings?: () => readonly Finding[] | null
}

/** Findings quoted by summary in a forbidFindings check's detail; the rest are counted. */
const QUOTED_FINDINGS = 3

/**
 * One check per forbidden finding kind: fail while an active finding of that kind concerns the gate
 * (one of `nodes`, or one of `groups`; `groups` null: every group), pass when none does, insufficient
 * without findings. A finding that names neither nodes nor groups (a resolver, a DNS name) concerns
 * every gate. The detail quotes the findings' summaries.
 */
function findingChecks (spec: GateSpec, active: readonly Finding[] | null, nodes: ReadonlySet<string>, groups: ReadonlySet<string> | null, scope: string): Check[] {
  return spec.forbidFindings.map(kind => {
    const base = { id: `forbidFindings ${kind}`, criterion: 'forbidFindings' as const, threshold: 0, samples: null, window: null, kind }
    if (active === null) return { ...base, verdict: 'insufficient_data', observed: null, detail: 'findings have not been evaluated yet' }
    const matching = active.filter(f => f.kind === kind && f.state === 'active' && (
      groups === null || (f.nodes.length === 0 && f.groups.length === 0) ||
      f.nodes.some(n => nodes.has(n)) || f.groups.some(g => groups.has(g))))
    const quoted = matching.slice(0, QUOTED_FINDINGS).map(f => f.summary).join('; ')
    const more = matching.length > QUOTED_FINDINGS ? `; and ${matching.length - QUOTED_FINDINGS} more` : ''
    return {
      ...base,
      verdict: matching.length > 0 ? 'fail' : 'pass',
      observed: matching.length,
      findings: matching.slice(0, 10).map(f => f.id),
      detail: matching.length === 0 ? `no active ${kind} finding concerns ${scope}` : `${matching.length} active ${kind} finding${matching.length === 1 ? '' : 's'} concern${matching.length === 1 ? 's' : ''} ${scope}: ${quoted}${more}`
    }
  })
}

function combine (verdicts: Iterable<Verdict>): Verdict {
  let insufficient = false
  for (const v of verdicts) {
    if (v === 'fail') return 'fail'
    if (v === 'insufficient_data') insufficient = true
  }
  return insufficient ? 'insufficient_data' : 'pass'
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

  let pairChecks = 0
  for (const rule of spec.rules) {
    const { checks: ruleChecks, skipped: ruleSkipped } = evaluatePairRule(rule, pairs)
    skipped.push(...ruleSkipped)
    pairChecks += ruleChecks.length
    for (const check of ruleChecks) {
      checks.push(check)
      if (check.src !== undefined && check.src !== '*') sourceGroups.add(check.src)
    }
  }
  // Skipped pairs neither pass nor hold a gate back, so that a one-node batch can pass on its other
  // pairs or its node rules. A gate whose pair rules were all skipped and that has no node rule
  // judged nothing about the paths it names: coverage or a node scope alone must not make that a pass.
  if (spec.rules.length > 0 && pairChecks === 0 && spec.nodeRules.length === 0) checks.push(nothingJudged(uniqueSkipped(skipped)))

  let selected: string[] | undefined
  let selectedGroups: string[] = []
  if (spec.scope !== null) {
    if (sources.nodes === undefined) {
      checks.push({ id: 'scope nodes', criterion: 'nodeScope', verdict: 'insufficient_data', observed: null, threshold: 1, samples: null, window: null, detail: 'no node store to judge nodes from' })
    } else {
      const kube = fleet.kubeNodes()
      const known = fleet.nodes(kube)
      const result = evaluateNodes(spec, { nodes: sources.nodes, groups: sources.groups, known, discovery: kube !== null, now, covered })
      selected = result.selected
      selectedGroups = [...new Set(result.selected.map(n => known.get(n)?.group).filter(g => g !== undefined))].sort()
      checks.push(...result.checks)
    }
  }

  if (spec.forbidFindings.length > 0) {
    const active = sources.findings?.() ?? null
    if (spec.scope !== null) {
      const names = selected ?? []
      const scope = `the selected nodes (${names.length === 0 ? 'none' : names.slice(0, 5).join(', ') + (names.length > 5 ? ` and ${names.length - 5} more` : '')}) or their groups (${selectedGroups.join(', ') || 'none'})`
      checks.push(...findingChecks(spec, active, new Set(names), new Set(selectedGroups), scope))
    } else {
      // A group gate concerns the groups its rules and coverage name; `*`, or naming none, is every group.
      const named = [...spec.rules.flatMap(r => [r.src, r.dst]), ...spec.coverage.map(c => c.group)]
      const all = named.length === 0 || named.includes('*')
      const groups = [...new Set(named)].sort()
      checks.push(...findingChecks(spec, active, new Set(), all ? null : new Set(groups), all ? 'the fleet' : `groups ${groups.join(', ')}`))
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
        : `newest report from group ${group} is ${formatValue(age, true)} old${fresh ? '' : `, older than ${formatDuration(spec.maxStalenessMs)}`}`
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

/** The check that keeps a gate whose every pair was skipped from passing, quoting the pairs and why. */
function nothingJudged (skipped: readonly SkippedPair[]): Check {
  const listed = skipped.slice(0, 5).map(s => `${s.probe} ${s.src}->${s.dst} (${s.reason})`).join('; ') +
    (skipped.length > 5 ? `; and ${skipped.length - 5} more` : '')
  return {
    id: 'pairs judged',
    criterion: 'judgedPairs',
    verdict: 'insufficient_data',
    observed: 0,
    threshold: 1,
    samples: null,
    window: null,
    detail: `every pair the rules name was skipped, so the gate judged none of them: ${listed}`
  }
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
