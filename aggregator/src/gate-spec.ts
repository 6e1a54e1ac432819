// What a gate is: its JSON Schema, the gates file (JSON or YAML) checked once at start-up, and
// ad-hoc gates built from query parameters. Everything here is plain, validated, frozen data.

import { readFileSync } from 'node:fs'
import { Ajv, type ErrorObject } from 'ajv'
import { parse as parseYaml } from 'yaml'
import { formatDuration, parseDuration, PEER_PROBE_KINDS, PROBE_KIND_NAMES, REASON_CODES, isProbeKind, isReason, type ProbeKind } from '@pingfleet/protocol'
import { AggregatorError, badQuery, ERR_CONFIG } from './errors.ts'

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

export interface CoverageRule { group: string, minRatio: number }
export interface ServiceRule { service: string, minBackendRatio: number }

export interface GateSpec {
  name: string
  description: string
  windowMs: number
  /** Gate-wide minimum; service checks use it, rules may set their own. */
  minSamples: number
  maxStalenessMs: number
  rules: readonly PairRule[]
  coverage: readonly CoverageRule[]
  services: readonly ServiceRule[]
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
}

export const ADHOC = 'adhoc'
export const DEFAULT_WINDOW = '5m'
export const DEFAULT_MIN_SAMPLES = 10
/** Without maxStaleness, a group's newest report may be this many report intervals old. */
export const DEFAULT_STALE_INTERVALS = 3
export const GATE_NAME_PATTERN = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$'

const duration = { type: 'string', pattern: '^\\d+(\\.\\d+)?(ms|s|m|h)$' } as const
const ratio = { type: 'number', minimum: 0, maximum: 1 } as const
const selector = { type: 'string', minLength: 1, maxLength: 253 } as const

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
    rules: {
      type: 'array',
      maxItems: 100,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['probe', 'src', 'dst'],
        properties: {
          probe: { type: 'string', enum: PROBE_KIND_NAMES },
          src: selector,
          dst: selector,
          window: duration,
          minSamples: { type: 'integer', minimum: 1 },
          maxErrorRatio: ratio,
          maxP50: duration,
          maxP99: duration,
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
    }
  }
} as const

const fileSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['gates'],
  properties: { gates: { type: 'array', maxItems: 200, items: gateDefinitionSchema } }
} as const

const validateFile = new Ajv({ allErrors: false, strict: true }).compile(fileSchema)

export interface GateLimits {
  intervalMs: number
  maxWindowMs: number
}

class DefinitionError extends Error {
  readonly pointer: string
  constructor (pointer: string, expected: string) {
    super(expected)
    this.pointer = pointer
  }
}

function expectedOf (e: ErrorObject): string {
  const p = e.params as Record<string, unknown>
  if (e.keyword === 'additionalProperties') return `no property ${JSON.stringify(p.additionalProperty)} (unknown field)`
  if (e.keyword === 'enum') return `one of ${(p.allowedValues as unknown[]).map(v => JSON.stringify(v)).join(', ')}`
  if (e.keyword === 'required') return `a property ${JSON.stringify(p.missingProperty)}`
  if (e.keyword === 'pattern' && e.schemaPath.includes('name')) return 'a lower-case DNS label such as cilium-batch-1'
  if (e.keyword === 'pattern') return 'a duration such as 500ms, 30s, 5m or 1h'
  const message = e.message ?? 'a valid value'
  if (e.keyword === 'type') return `a value of type ${String(p.type)}`
  return message.replace(/^must be ([<>]=?) /, 'a value $1 ').replace(/^must /, 'a value that must ')
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
    return Object.freeze(rule)
  })
  const coverage = (def.coverage ?? []).map(c => Object.freeze({ group: c.group, minRatio: c.minRatio }))
  const services = (def.services ?? []).map(s => Object.freeze({ service: s.service, minBackendRatio: s.minBackendRatio }))
  if (rules.length + coverage.length + services.length === 0) {
    throw new DefinitionError(base || '/', 'at least one entry in rules, coverage or services')
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
    rules: Object.freeze(rules),
    coverage: Object.freeze(coverage),
    services: Object.freeze(services),
    definition
  })
}

function configError (file: string, pointer: string, expected: string): AggregatorError {
  return new AggregatorError(ERR_CONFIG, `PINGFLEET_GATES_FILE=${JSON.stringify(file)} is invalid at ${pointer || '/'}: expected ${expected}`)
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
    const e = validateFile.errors![0]!
    const pointer = e.keyword === 'required' ? `${e.instancePath}/${String(e.params.missingProperty)}` : e.instancePath
    throw configError(file, pointer, expectedOf(e))
  }
  const seen = new Map<string, number>()
  const gates: GateSpec[] = []
  for (const [i, def] of (doc as { gates: GateDefinition[] }).gates.entries()) {
    if (def.name === ADHOC) throw configError(file, `/gates/${i}/name`, `a name other than "${ADHOC}" (reserved for ad-hoc gates)`)
    if (seen.has(def.name)) throw configError(file, `/gates/${i}/name`, `a unique name ("${def.name}" is also /gates/${seen.get(def.name)!}/name)`)
    seen.set(def.name, i)
    try {
      gates.push(compileGate(def, limits, `/gates/${i}`))
    } catch (err) {
      if (err instanceof DefinitionError) throw configError(file, err.pointer, err.message)
      throw err
    }
  }
  return Object.freeze(gates)
}

/** Query parameters of an ad-hoc gate: one rule, optional coverage of the groups it names. */
export interface AdhocQuery {
  probe: string
  src: string
  dst: string
  window?: string
  minSamples?: number
  maxErrorRatio?: number
  maxP50?: string
  maxP99?: string
  /** REASON:ratio pairs, comma separated: ENOTFOUND:0.001,EAI_AGAIN:0.01 */
  maxErrorRatioByReason?: string
  minCoverage?: number
  maxStaleness?: string
}

export const adhocQuerySchema = {
  type: 'object',
  additionalProperties: false,
  required: ['probe', 'src', 'dst'],
  properties: {
    probe: { type: 'string', enum: PROBE_KIND_NAMES },
    src: selector,
    dst: selector,
    window: duration,
    minSamples: { type: 'integer', minimum: 1 },
    maxErrorRatio: ratio,
    maxP50: duration,
    maxP99: duration,
    maxErrorRatioByReason: { type: 'string', pattern: '^[A-Z0-9_]+:[0-9.]+(,[A-Z0-9_]+:[0-9.]+)*$', maxLength: 1000 },
    minCoverage: ratio,
    maxStaleness: duration
  }
} as const

/** Builds the ad-hoc gate a query describes; a bad query is a 400 with the reason. */
export function adhocGate (q: AdhocQuery, limits: GateLimits): GateSpec {
  const rule: NonNullable<GateDefinition['rules']>[number] = { probe: q.probe, src: q.src, dst: q.dst }
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
  const def: GateDefinition = { name: ADHOC, rules: [rule] }
  if (q.window !== undefined) def.window = q.window
  if (q.minSamples !== undefined) def.minSamples = q.minSamples
  if (q.maxStaleness !== undefined) def.maxStaleness = q.maxStaleness
  if (q.minCoverage !== undefined) {
    const groups = new Set([q.src, (PEER_PROBE_KINDS as readonly string[]).includes(q.probe) ? q.dst : q.src])
    def.coverage = [...groups].map(group => ({ group, minRatio: q.minCoverage! }))
  }
  try {
    return compileGate(def, limits)
  } catch (err) {
    if (err instanceof DefinitionError) throw badQuery(`${err.pointer.split('/').pop()}: expected ${err.message}`)
    throw err
  }
}
