// Pair rules: a probe kind's results from source groups to destination groups (or targets), read
// from the group store's matrix, judged per pair, with the members nobody probes named.

import { formatDuration, PEER_PROBE_KINDS } from '@pingfleet/protocol'
import { formatValue as fmt, type Check, type SkippedPair, type Verdict } from './check.ts'
import type { PairRule } from './spec.ts'
import { buildMatrix, type MatrixCell } from '../views/matrix.ts'
import { probedBy } from '../views/node-sides.ts'
import type { Store } from '../store/store.ts'

const peerKinds = new Set<string>(PEER_PROBE_KINDS)

function atMost (observed: number | null, threshold: number): Verdict {
  if (observed === null) return 'insufficient_data'
  return observed <= threshold ? 'pass' : 'fail'
}

/** What pair rules read, fixed for one gate evaluation. */
export interface PairContext {
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

/**
 * The checks of one pair rule: per (source group, destination) pair its sample count, error ratio,
 * p50/p99 (seconds) and per-reason ratios, and, for peer kinds with a node store, whether every
 * member of the destination was probed. Wildcards expand over the known groups and the groups with
 * data. Pairs that cannot have data are returned in `skipped` instead. Throws nothing.
 */
export function evaluatePairRule (rule: PairRule, ctx: PairContext): { checks: Check[], skipped: SkippedPair[] } {
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
