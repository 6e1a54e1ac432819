// Ad-hoc gates: a gate built from query parameters (GET /api/v1/gates/adhoc?probe=pod&src=…), and
// the scope parameters a named gate also takes. Compiled by spec.ts like a gate from the file.

import { PEER_PROBE_KINDS } from '@pingfleet/protocol'
import { badQuery } from '../errors.ts'
import { shown } from './schema-errors.ts'
import { ADHOC, compileGate, DefinitionError, duration, nodeRuleBoundProperties, nodeSelector, PAIR_BOUNDS, pairRuleProperties, ratio, selector, type GateDefinition, type GateLimits, type GateSpec, type NodeRuleDefinition } from './spec.ts'

/**
 * Query parameters of an ad-hoc gate: a group-pair rule (`src` and `dst`), a node rule over the
 * nodes in `nodes`/`nodeSelector`, or both; optional coverage of the groups the pair names.
 */
export interface AdhocQuery {
  probe: string
  src?: string
  dst?: string
  window?: string
  minSamples?: number
  maxErrorRatio?: number
  maxP50?: string
  maxP99?: string
  /** REASON:ratio pairs, comma separated: ENOTFOUND:0.001,EAI_AGAIN:0.01 */
  maxErrorRatioByReason?: string
  minCoverage?: number
  maxStaleness?: string
  /** Node names, comma separated. */
  nodes?: string
  nodeSelector?: string
  peers?: string
  maxNodeErrorRatio?: number
  maxNodeP99?: string
  minPeers?: number
  maxNodeExcessErrorRatio?: number
  /** Finding kinds, comma separated: node-inbound,node-isolated */
  forbidFindings?: string
}

/** Scope parameters a named gate also takes (GET /api/v1/gates/{name}?nodeSelector=…). */
export interface ScopeQuery {
  nodes?: string
  nodeSelector?: string
}

const nodeList = { type: 'string', minLength: 1, maxLength: 20000, pattern: '^[a-z0-9]([-a-z0-9.]*[a-z0-9])?(,[a-z0-9]([-a-z0-9.]*[a-z0-9])?)*$' } as const

export const scopeQuerySchema = {
  type: 'object',
  additionalProperties: false,
  properties: { nodes: nodeList, nodeSelector }
} as const

export const adhocQuerySchema = {
  type: 'object',
  additionalProperties: false,
  required: ['probe'],
  properties: {
    ...pairRuleProperties,
    maxErrorRatioByReason: { type: 'string', pattern: '^[A-Z0-9_]+:[0-9.]+(,[A-Z0-9_]+:[0-9.]+)*$', maxLength: 1000 },
    minCoverage: ratio,
    maxStaleness: duration,
    nodes: nodeList,
    nodeSelector,
    peers: selector,
    ...nodeRuleBoundProperties,
    forbidFindings: { type: 'string', minLength: 1, maxLength: 1000, pattern: '^[a-z-]+(,[a-z-]+)*$', description: 'finding kinds, comma separated (docs/findings.md): the gate fails while one is active on the judged nodes or groups' }
  }
} as const

/** Node names from a comma-separated query parameter. */
export function nodeNames (text: string | undefined): string[] | undefined {
  return text === undefined ? undefined : text.split(',')
}

/** Builds the ad-hoc gate a query describes; a bad query is a 400 with the reason. */
export function adhocGate (q: AdhocQuery, limits: GateLimits): GateSpec {
  const scoped = q.nodes !== undefined || q.nodeSelector !== undefined
  const pair = q.src !== undefined || q.dst !== undefined
  if (pair && (q.src === undefined || q.dst === undefined)) throw badQuery(`${q.src === undefined ? 'src' : 'dst'}: expected both src and dst for a group pair (or neither, with nodes or nodeSelector)`)
  if (!pair && !scoped) throw badQuery('expected src and dst (a group pair), or nodes or nodeSelector (the nodes to judge), or both')
  const pairOnly = ['maxErrorRatio', 'maxP50', 'maxP99', 'maxErrorRatioByReason', 'minCoverage'] as const
  const nodeOnly = ['peers', 'maxNodeErrorRatio', 'maxNodeP99', 'minPeers', 'maxNodeExcessErrorRatio'] as const
  if (!pair) {
    const given = pairOnly.filter(k => q[k] !== undefined)
    if (given.length > 0) throw badQuery(`${given.join(', ')}: judges a group pair; give src and dst, or use ${given[0] === 'maxP99' ? 'maxNodeP99' : 'maxNodeErrorRatio'} to judge each selected node`)
  }
  if (!scoped) {
    const given = nodeOnly.filter(k => q[k] !== undefined)
    if (given.length > 0) throw badQuery(`${given.join(', ')}: judges each selected node; give nodes or nodeSelector`)
  }
  const def: GateDefinition = { name: ADHOC }
  if (pair) {
    const rule: NonNullable<GateDefinition['rules']>[number] = { probe: q.probe, src: q.src!, dst: q.dst! }
    if (q.maxErrorRatio !== undefined) rule.maxErrorRatio = q.maxErrorRatio
    if (q.maxP50 !== undefined) rule.maxP50 = q.maxP50
    if (q.maxP99 !== undefined) rule.maxP99 = q.maxP99
    if (q.maxErrorRatioByReason !== undefined) {
      const byReason: Record<string, number> = {}
      for (const pair of q.maxErrorRatioByReason.split(',')) {
        const [reason, value] = pair.split(':') as [string, string]
        const n = Number(value)
        if (!(n >= 0 && n <= 1)) throw badQuery(`maxErrorRatioByReason: ${reason}:${value} is not a ratio from 0 to 1`)
        byReason[reason] = n
      }
      rule.maxErrorRatioByReason = byReason
    }
    // minCoverage alone asks about the two groups' agents, not the pair's probes: coverage only.
    // Otherwise the rule must carry a bound (compileGate refuses it without one).
    if (PAIR_BOUNDS.some(k => q[k] !== undefined) || q.minCoverage === undefined) def.rules = [rule]
    if (q.minCoverage !== undefined) {
      const groups = new Set([q.src!, (PEER_PROBE_KINDS as readonly string[]).includes(q.probe) ? q.dst! : q.src!])
      def.coverage = [...groups].map(group => ({ group, minRatio: q.minCoverage! }))
    }
  }
  if (scoped) {
    const names = nodeNames(q.nodes)
    if (names !== undefined) def.nodes = names
    if (q.nodeSelector !== undefined) def.nodeSelector = q.nodeSelector
    const rule: NodeRuleDefinition = { probe: q.probe }
    for (const k of nodeOnly) if (q[k] !== undefined) (rule as unknown as Record<string, unknown>)[k] = q[k]
    // forbidFindings alone judges the nodes by their findings: no node rule, which would need a bound.
    if (q.forbidFindings === undefined || nodeOnly.some(k => q[k] !== undefined)) def.nodeRules = [rule]
  }
  if (q.forbidFindings !== undefined) def.forbidFindings = [...new Set(q.forbidFindings.split(','))]
  if (q.window !== undefined) def.window = q.window
  if (q.minSamples !== undefined) def.minSamples = q.minSamples
  if (q.maxStaleness !== undefined) def.maxStaleness = q.maxStaleness
  try {
    return compileGate(def, limits)
  } catch (err) {
    if (err instanceof DefinitionError) throw badQuery(adhocMessage(q, def, err))
    throw err
  }
}

/**
 * A definition error of an ad-hoc gate in query terms: the parameter and its value when the
 * pointer leads to one (`/rules/0/maxP99` is `maxP99=`), else the rule, then what was expected.
 */
function adhocMessage (q: AdhocQuery, def: GateDefinition, err: DefinitionError): string {
  const segments = err.pointer.split('/').slice(1)
  const param = segments.find((k): k is keyof AdhocQuery => Object.hasOwn(q, k))
  if (param !== undefined) return `${param}=${shown(q[param])} (gate "${ADHOC}"): expected ${err.message}`
  const rule = segments[0] === 'rules' ? ` rule ${def.rules![0]!.probe} ${def.rules![0]!.src}->${def.rules![0]!.dst}` : segments[0] === 'nodeRules' ? ` node rule ${q.probe}` : ''
  return `gate "${ADHOC}"${rule}: expected ${err.message}`
}
