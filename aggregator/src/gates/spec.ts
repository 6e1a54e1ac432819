// What a gate is: its JSON Schema and the gates file (JSON or YAML), checked once at start-up into
// plain, validated, frozen data. Ad-hoc gates from query parameters are built in adhoc.ts.

import { readFileSync } from 'node:fs'
import { Ajv } from 'ajv'
import { parse as parseYaml } from 'yaml'
import { formatDuration, parseDuration, PEER_PROBE_KINDS, PROBE_KIND_NAMES, REASON_CODES, isProbeKind, isReason, type ProbeKind } from '@pingfleet/protocol'
import { AggregatorError, badQuery, ERR_CONFIG } from '../errors.ts'
import { FINDING_KIND_NAMES, type FindingKind } from '../findings/finding.ts'
import { parseSelector, SelectorError, type LabelSelector } from '../fleet/label-selector.ts'
import { expectedOf, shown, unbounded, valueAt } from './schema-errors.ts'

/** One probe kind between source groups and destinations (groups for pod/mtu, targets otherwise). */
export interface PairRule {
  probe: ProbeKind
  /** A group, or '*' for every group. */
  src: string
  dst: string
  windowMs: number
  minSamples: number
  maxErrorRatio?: number
  /** Seconds, like the matrix latencies. */
  maxP50?: number
  maxP99?: number
  maxErrorRatioByReason?: Readonly<Record<string, number>>
}

/**
 * One probe kind judged for each selected node on its own. For `pod` and `mtu`, inbound (peers
 * probing the node) and outbound (the node probing peers) separately, over peers in one group or
 * all ('*'); for the other kinds outbound only, over one target or all ('*').
 */
export interface NodeRule {
  probe: ProbeKind
  /** Peer group (pod, mtu) or target (other kinds); '*' for all. */
  peers: string
  windowMs: number
  /** Per node and direction. */
  minSamples: number
  maxNodeErrorRatio?: number
  /** Seconds. */
  maxNodeP99?: number
  /** Distinct peers (targets for other kinds) with results, per node and direction. */
  minPeers?: number
  /** How far a node's error ratio may exceed the rest of the fleet's (same probe, direction, peers). */
  maxNodeExcessErrorRatio?: number
}

/** Which nodes a gate judges: named nodes and/or a label selector (both given: a node must satisfy both). */
export interface NodeScope {
  nodes: readonly string[] | null
  selector: LabelSelector | null
}

export interface CoverageRule { group: string, minRatio: number }
export interface ServiceRule { service: string, minBackendRatio: number }

export interface GateSpec {
  name: string
  description: string
  windowMs: number
  /** Gate-wide minimum; service checks use it, rules may set their own. */
  minSamples: number
  maxStalenessMs: number
  /** How long every check must have passed without a break before the gate passes; 0: at once. */
  passForMs: number
  rules: readonly PairRule[]
  coverage: readonly CoverageRule[]
  services: readonly ServiceRule[]
  /** Null: the gate judges groups only. */
  scope: NodeScope | null
  nodeRules: readonly NodeRule[]
  /**
   * Finding kinds that fail the gate while an active finding of that kind concerns the gate: a
   * selected node or its group (scoped gates), or a group its rules and coverage name (group gates).
   */
  forbidFindings: readonly FindingKind[]
  /** The definition as written, defaults filled in; what GET /api/v1/gates shows. */
  definition: GateDefinition
}

/** A gate as written in the gates file. */
export interface GateDefinition {
  name: string
  description?: string
  window?: string
  minSamples?: number
  maxStaleness?: string
  passFor?: string
  rules?: Array<{
    probe: string
    src: string
    dst: string
    window?: string
    minSamples?: number
    maxErrorRatio?: number
    maxP50?: string
    maxP99?: string
    maxErrorRatioByReason?: Record<string, number>
  }>
  coverage?: Array<{ group: string, minRatio: number }>
  services?: Array<{ service: string, minBackendRatio: number }>
  nodes?: string[]
  nodeSelector?: string
  nodeRules?: NodeRuleDefinition[]
  forbidFindings?: string[]
}

export interface NodeRuleDefinition {
  probe: string
  peers?: string
  window?: string
  minSamples?: number
  maxNodeErrorRatio?: number
  maxNodeP99?: string
  minPeers?: number
  maxNodeExcessErrorRatio?: number
}

export const ADHOC = 'adhoc'
export const DEFAULT_WINDOW = '5m'
export const DEFAULT_MIN_SAMPLES = 10
/** Without maxStaleness, a group's newest report may be this many report intervals old. */
export const DEFAULT_STALE_INTERVALS = 3
export const GATE_NAME_PATTERN = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$'

export const duration = { type: 'string', pattern: '^\\d+(\\.\\d+)?(ms|s|m|h)$' } as const
export const ratio = { type: 'number', minimum: 0, maximum: 1 } as const
export const selector = { type: 'string', minLength: 1, maxLength: 253 } as const
const nodeName = { type: 'string', minLength: 1, maxLength: 253, pattern: '^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$' } as const
export const nodeSelector = { type: 'string', minLength: 1, maxLength: 1000 } as const
/** Finding kinds (docs/findings.md) a gate forbids. */
export const forbidFindingsSchema = {
  type: 'array',
  minItems: 1,
  maxItems: FINDING_KIND_NAMES.length,
  uniqueItems: true,
  items: { type: 'string', enum: FINDING_KIND_NAMES }
} as const

/**
 * The criteria that can fail a rule. minSamples and minPeers only ask for enough evidence (too few is
 * insufficient, never fail), so a rule without one of these would pass whatever its probes found: a
 * canary that lies. The schemas say so (`anyOf`, so `helm install` refuses such values too) and
 * compileGate says it again for the ad-hoc query, which has its own schema.
 */
export const PAIR_BOUNDS = ['maxErrorRatio', 'maxP50', 'maxP99', 'maxErrorRatioByReason'] as const
export const NODE_BOUNDS = ['maxNodeErrorRatio', 'maxNodeP99', 'maxNodeExcessErrorRatio'] as const

/**
 * The fields of a group-pair rule, written once for the gates file and the ad-hoc query (which
 * differ only in how maxErrorRatioByReason is spelled: an object there, REASON:ratio pairs here).
 */
export const pairRuleProperties = {
  probe: { type: 'string', enum: PROBE_KIND_NAMES },
  src: selector,
  dst: selector,
  window: duration,
  minSamples: { type: 'integer', minimum: 1 },
  maxErrorRatio: ratio,
  maxP50: duration,
  maxP99: duration
} as const

/** The bounds of a node rule, written once for the gates file and the ad-hoc query. */
export const nodeRuleBoundProperties = {
  maxNodeErrorRatio: ratio,
  maxNodeP99: duration,
  minPeers: { type: 'integer', minimum: 1 },
  maxNodeExcessErrorRatio: ratio
} as const

const nodeRuleSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['probe'],
  anyOf: NODE_BOUNDS.map(k => ({ required: [k] })),
  properties: {
    probe: { type: 'string', enum: PROBE_KIND_NAMES },
    peers: selector,
    window: duration,
    minSamples: { type: 'integer', minimum: 1 },
    ...nodeRuleBoundProperties
  }
} as const

export const gateDefinitionSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['name'],
  properties: {
    name: { type: 'string', maxLength: 63, pattern: GATE_NAME_PATTERN },
    description: { type: 'string', maxLength: 1000 },
    window: duration,
    minSamples: { type: 'integer', minimum: 1 },
    maxStaleness: duration,
    passFor: duration,
    rules: {
      type: 'array',
      maxItems: 100,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['probe', 'src', 'dst'],
        anyOf: PAIR_BOUNDS.map(k => ({ required: [k] })),
        properties: {
          ...pairRuleProperties,
          maxErrorRatioByReason: {
            type: 'object',
            minProperties: 1,
            // Keys are reason codes; compileGate checks them (OpenAPI 3.0 has no propertyNames).
            additionalProperties: ratio
          }
        }
      }
    },
    coverage: {
      type: 'array',
      maxItems: 100,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['group', 'minRatio'],
        properties: { group: selector, minRatio: ratio }
      }
    },
    services: {
      type: 'array',
      maxItems: 100,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['service', 'minBackendRatio'],
        properties: { service: selector, minBackendRatio: ratio }
      }
    },
    nodes: { type: 'array', minItems: 1, maxItems: 5000, items: nodeName },
    nodeSelector,
    nodeRules: { type: 'array', maxItems: 50, items: nodeRuleSchema },
    forbidFindings: forbidFindingsSchema
  }
} as const

const fileSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['gates'],
  properties: { gates: { type: 'array', maxItems: 200, items: gateDefinitionSchema } }
} as const

// verbose: each error carries the failing value's schema, which expectedOf puts in words.
// strictRequired off: the bounds' anyOf branches name fields defined beside them, which strict mode cannot see.
// allErrors: a missing field must win over a missing bound, whichever ajv checks first.
const validateFile = new Ajv({ allErrors: true, strict: true, strictRequired: false, verbose: true }).compile(fileSchema)

export interface GateLimits {
  intervalMs: number
  maxWindowMs: number
}


/** A definition that breaks a rule the schema cannot say; `pointer` is where (JSON pointer), the message what was expected. */
export class DefinitionError extends Error {
  readonly pointer: string
  constructor (pointer: string, expected: string) {
    super(expected)
    this.pointer = pointer
  }
}

function ms (text: string | undefined, fallback: number, pointer: string): number {
  if (text === undefined) return fallback
  const value = parseDuration(text)
  if (value === null) throw new DefinitionError(pointer, 'a duration such as 500ms, 30s, 5m or 1h')
  return value
}

/** Turns a schema-valid definition into a gate, checking what a schema cannot say. */
export function compileGate (def: GateDefinition, limits: GateLimits, base = ''): GateSpec {
  const window = def.window ?? DEFAULT_WINDOW
  const windowMs = ms(window, 0, `${base}/window`)
  const checkWindow = (value: number, pointer: string): void => {
    if (value > limits.maxWindowMs) throw new DefinitionError(pointer, `a window of at most ${formatDuration(limits.maxWindowMs)} (PINGFLEET_MAX_WINDOW)`)
    if (value < limits.intervalMs) throw new DefinitionError(pointer, `a window of at least one report interval (${formatDuration(limits.intervalMs)})`)
  }
  checkWindow(windowMs, `${base}/window`)
  const minSamples = def.minSamples ?? DEFAULT_MIN_SAMPLES
  const maxStalenessMs = ms(def.maxStaleness, DEFAULT_STALE_INTERVALS * limits.intervalMs, `${base}/maxStaleness`)
  const passForMs = ms(def.passFor, 0, `${base}/passFor`)
  if (passForMs > 60 * 60_000) throw new DefinitionError(`${base}/passFor`, 'a duration of at most 1h')
  const rules = (def.rules ?? []).map((r, i): PairRule => {
    const at = `${base}/rules/${i}`
    if (!isProbeKind(r.probe)) throw new DefinitionError(`${at}/probe`, `one of ${PROBE_KIND_NAMES.join(', ')}`)
    const rule: PairRule = {
      probe: r.probe,
      src: r.src,
      dst: r.dst,
      windowMs: ms(r.window, windowMs, `${at}/window`),
      minSamples: r.minSamples ?? minSamples
    }
    checkWindow(rule.windowMs, `${at}/window`)
    if (r.maxErrorRatio !== undefined) rule.maxErrorRatio = r.maxErrorRatio
    if (r.maxP50 !== undefined) rule.maxP50 = ms(r.maxP50, 0, `${at}/maxP50`) / 1000
    if (r.maxP99 !== undefined) rule.maxP99 = ms(r.maxP99, 0, `${at}/maxP99`) / 1000
    if (r.maxErrorRatioByReason !== undefined) {
      for (const reason of Object.keys(r.maxErrorRatioByReason)) {
        if (!isReason(reason)) throw new DefinitionError(`${at}/maxErrorRatioByReason/${reason}`, `a reason code from docs/reasons.md (${REASON_CODES.join(', ')})`)
      }
      rule.maxErrorRatioByReason = Object.freeze({ ...r.maxErrorRatioByReason })
    }
    if (PAIR_BOUNDS.every(k => r[k] === undefined)) throw new DefinitionError(at, unbounded('rule', PAIR_BOUNDS))
    return Object.freeze(rule)
  })
  const coverage = (def.coverage ?? []).map(c => Object.freeze({ group: c.group, minRatio: c.minRatio }))
  const services = (def.services ?? []).map(s => Object.freeze({ service: s.service, minBackendRatio: s.minBackendRatio }))
  const scope = compileScope(def.nodes, def.nodeSelector, base)
  const nodeRules = (def.nodeRules ?? []).map((r, i): NodeRule => {
    const at = `${base}/nodeRules/${i}`
    if (!isProbeKind(r.probe)) throw new DefinitionError(`${at}/probe`, `one of ${PROBE_KIND_NAMES.join(', ')}`)
    if (r.minPeers !== undefined && !(PEER_PROBE_KINDS as readonly string[]).includes(r.probe)) {
      throw new DefinitionError(`${at}/minPeers`, `no minPeers for probe ${r.probe}: distinct peers are counted for ${PEER_PROBE_KINDS.join(' and ')} only`)
    }
    const rule: NodeRule = { probe: r.probe, peers: r.peers ?? '*', windowMs: ms(r.window, windowMs, `${at}/window`), minSamples: r.minSamples ?? minSamples }
    checkWindow(rule.windowMs, `${at}/window`)
    if (r.maxNodeErrorRatio !== undefined) rule.maxNodeErrorRatio = r.maxNodeErrorRatio
    if (r.maxNodeP99 !== undefined) rule.maxNodeP99 = ms(r.maxNodeP99, 0, `${at}/maxNodeP99`) / 1000
    if (r.minPeers !== undefined) rule.minPeers = r.minPeers
    if (r.maxNodeExcessErrorRatio !== undefined) rule.maxNodeExcessErrorRatio = r.maxNodeExcessErrorRatio
    if (NODE_BOUNDS.every(k => r[k] === undefined)) throw new DefinitionError(at, unbounded('node rule', NODE_BOUNDS))
    return Object.freeze(rule)
  })
  if (nodeRules.length > 0 && scope === null) {
    throw new DefinitionError(`${base}/nodeRules`, 'nodes or nodeSelector next to nodeRules: node rules judge the nodes a gate selects')
  }
  const forbidFindings = (def.forbidFindings ?? []).map((kind, i): FindingKind => {
    if (!(FINDING_KIND_NAMES as readonly string[]).includes(kind)) throw new DefinitionError(`${base}/forbidFindings/${i}`, `a finding kind from docs/findings.md (${FINDING_KIND_NAMES.join(', ')})`)
    return kind as FindingKind
  })
  if (rules.length + coverage.length + services.length + nodeRules.length + forbidFindings.length === 0 && scope === null) {
    throw new DefinitionError(base || '/', 'at least one entry in rules, coverage, services, nodeRules or forbidFindings, or nodes or nodeSelector')
  }
  const definition: GateDefinition = {
    ...def,
    window,
    minSamples,
    maxStaleness: def.maxStaleness ?? formatDuration(maxStalenessMs)
  }
  return Object.freeze({
    name: def.name,
    description: def.description ?? '',
    windowMs,
    minSamples,
    maxStalenessMs,
    passForMs,
    rules: Object.freeze(rules),
    coverage: Object.freeze(coverage),
    services: Object.freeze(services),
    scope,
    nodeRules: Object.freeze(nodeRules),
    forbidFindings: Object.freeze([...new Set(forbidFindings)]),
    definition
  })
}

function compileScope (nodes: readonly string[] | undefined, selectorText: string | undefined, base: string): NodeScope | null {
  if (nodes === undefined && selectorText === undefined) return null
  let selector: LabelSelector | null = null
  if (selectorText !== undefined) {
    try {
      selector = parseSelector(selectorText)
    } catch (err) {
      if (err instanceof SelectorError) throw new DefinitionError(`${base}/nodeSelector`, `a Kubernetes label selector such as migration-batch=7 (${err.message})`)
      throw err
    }
  }
  return Object.freeze({ nodes: nodes === undefined ? null : Object.freeze([...new Set(nodes)].sort()), selector })
}

/**
 * The same gate judging other nodes: `nodes` and/or `nodeSelector` (as in a definition) replace
 * its scope. Used by `?nodes=`/`?nodeSelector=` on a named gate; a bad selector is a 400.
 */
export function withScope (spec: GateSpec, nodes: readonly string[] | undefined, selectorText: string | undefined): GateSpec {
  let scope: NodeScope | null
  try {
    scope = compileScope(nodes, selectorText, '')
  } catch (err) {
    if (err instanceof DefinitionError) throw badQuery(`nodeSelector=${shown(selectorText)} (gate "${spec.name}"): expected ${err.message}`)
    throw err
  }
  const definition: GateDefinition = { ...spec.definition }
  delete definition.nodes
  delete definition.nodeSelector
  if (nodes !== undefined) definition.nodes = [...nodes]
  if (selectorText !== undefined) definition.nodeSelector = selectorText
  return Object.freeze({ ...spec, scope, definition })
}

/**
 * Where in a gates file, in words: the gate's name (Helm values' `aggregator.gates[i]` is `/gates/i`)
 * and the rule's probe and pair, when the pointer is inside one.
 */
function whereIn (doc: unknown, pointer: string): string {
  const m = /^\/gates\/(\d+)(?:\/(rules|nodeRules)\/(\d+))?/.exec(pointer)
  if (m === null) return ''
  const gate = valueAt(doc, `/gates/${m[1]!}`) as { name?: unknown } | undefined
  const name = typeof gate?.name === 'string' ? `gate ${JSON.stringify(gate.name)}` : `gate ${m[1]!}`
  if (m[2] === undefined) return ` (${name})`
  const rule = valueAt(doc, `/gates/${m[1]!}/${m[2]}/${m[3]!}`) as Record<string, unknown> | undefined
  const probe = typeof rule?.probe === 'string' ? rule.probe : '?'
  const what = m[2] === 'rules' ? `rule ${probe} ${String(rule?.src ?? '?')}->${String(rule?.dst ?? '?')}` : `node rule ${probe}`
  return ` (${name}, ${what})`
}

/**
 * One line naming the file, the JSON pointer, the gate (and rule), the value found there and what
 * was expected. `doc` is the parsed file, when it parsed.
 */
function configError (file: string, pointer: string, expected: string, doc?: unknown): AggregatorError {
  const value = doc === undefined || pointer === '' ? undefined : valueAt(doc, pointer)
  const got = value === undefined ? '' : `got ${shown(value)}, `
  return new AggregatorError(ERR_CONFIG, `PINGFLEET_GATES_FILE=${JSON.stringify(file)} is invalid at ${pointer || '/'}${doc === undefined ? '' : whereIn(doc, pointer)}: ${got}expected ${expected}`)
}

/** Reads, validates and compiles a gates file; throws one AggregatorError naming file, pointer and expectation. */
export function loadGatesFile (file: string, limits: GateLimits): readonly GateSpec[] {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    throw configError(file, '/', `a readable file (${(err as NodeJS.ErrnoException).code ?? String(err)})`)
  }
  let doc: unknown
  try {
    // YAML is a superset of JSON, so one parser reads both.
    doc = parseYaml(text, { prettyErrors: true, uniqueKeys: true })
  } catch (err) {
    // The pretty message's first line ends with "at line L, column C:".
    throw configError(file, '/', `JSON or YAML (${(err as Error).message.split('\n')[0]!.replace(/:$/, '')})`)
  }
  if (!validateFile(doc)) {
    // Ajv checks a rule's anyOf (its bounds) before its required fields: a missing field is told
    // first; a rule without a bound fails each anyOf branch, and the anyOf error says what is meant.
    const errors = validateFile.errors!
    const e = errors.find(x => !x.schemaPath.includes('/anyOf')) ?? errors.find(x => x.keyword === 'anyOf') ?? errors[0]!
    const field = e.keyword === 'required' ? e.params.missingProperty : e.keyword === 'additionalProperties' ? e.params.additionalProperty : undefined
    const pointer = field === undefined ? e.instancePath : `${e.instancePath}/${String(field).replaceAll('~', '~0').replaceAll('/', '~1')}`
    throw configError(file, pointer, expectedOf(e), doc)
  }
  const seen = new Map<string, number>()
  const gates: GateSpec[] = []
  for (const [i, def] of (doc as { gates: GateDefinition[] }).gates.entries()) {
    if (def.name === ADHOC) throw configError(file, `/gates/${i}/name`, `a name other than "${ADHOC}" (reserved for ad-hoc gates)`, doc)
    if (seen.has(def.name)) throw configError(file, `/gates/${i}/name`, `a unique name ("${def.name}" is also /gates/${seen.get(def.name)!}/name)`, doc)
    seen.set(def.name, i)
    try {
      gates.push(compileGate(def, limits, `/gates/${i}`))
    } catch (err) {
      if (err instanceof DefinitionError) throw configError(file, err.pointer, err.message, doc)
      throw err
    }
  }
  return Object.freeze(gates)
}
