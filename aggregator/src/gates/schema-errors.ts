// Turns ajv's errors on gate definitions (gates file, Helm values) and gate query parameters into
// "what was expected" in words, so no raw JSON-schema text ("must be <= 1") reaches a user.

import type { ErrorObject } from 'ajv'

type Schema = Record<string, unknown>

const DURATION = 'a duration such as 500ms, 30s, 5m or 1h'

function noun (type: unknown): string {
  const t = Array.isArray(type) ? type[0] : type
  if (t === 'integer') return 'an integer'
  if (t === 'array') return 'a list'
  if (t === 'object') return 'a mapping'
  return `a ${String(t)}`
}

/** What a rule without a bound lacks, in words (a `rule` or a `node rule`, with its possible bounds). */
export function unbounded (what: string, bounds: readonly string[]): string {
  return `a ${what} with at least one bound (${bounds.slice(0, -1).join(', ')} or ${bounds.at(-1)!}): without one it would pass whatever its probes found (${what === 'rule' ? 'minSamples only asks' : 'minSamples and minPeers only ask'} for enough of them)`
}

/**
 * What a value failing `error` should have been, in words: "a ratio from 0 to 1", "one of "full",
 * "brief"", "a duration such as 500ms, 30s, 5m or 1h". `schema` is the schema of the failing value
 * (ajv's `parentSchema` with `verbose: true`, or looked up by the caller); without it the words come
 * from the error's keyword and params only. `additionalProperties` names the known fields.
 */
export function expectedOf (error: ErrorObject, schema?: Schema): string {
  const p = error.params as Record<string, unknown>
  const s = schema ?? (error.parentSchema as Schema | undefined) ?? {}
  switch (error.keyword) {
    case 'additionalProperties': {
      const known = Object.keys((s.properties as Schema | undefined) ?? {})
      return `no field ${JSON.stringify(p.additionalProperty)} here (a misspelling?)${known.length > 0 ? `; known fields: ${known.join(', ')}` : ''}`
    }
    case 'required': return `a field ${JSON.stringify(p.missingProperty)}`
    case 'enum': return `one of ${(p.allowedValues as unknown[]).map(v => JSON.stringify(v)).join(', ')}`
    case 'type': return noun(p.type)
    case 'minimum':
    case 'maximum':
    case 'exclusiveMinimum':
    case 'exclusiveMaximum':
      if (s.minimum === 0 && s.maximum === 1) return 'a ratio from 0 to 1'
      return `${noun(s.type ?? 'number')} ${String(p.comparison)} ${String(p.limit)}`
    case 'minLength': return p.limit === 1 ? 'a non-empty string' : `at least ${String(p.limit)} characters`
    case 'maxLength': return `at most ${String(p.limit)} characters`
    case 'minItems': return `at least ${String(p.limit)} ${p.limit === 1 ? 'entry' : 'entries'}`
    case 'maxItems': return `at most ${String(p.limit)} entries`
    case 'minProperties': return `at least ${String(p.limit)} ${p.limit === 1 ? 'entry' : 'entries'}`
    case 'pattern': {
      const pattern = String(p.pattern)
      if (pattern.includes('(ms|s|m|h)')) return DURATION
      if (pattern.includes('(,[a-z0-9]')) return 'node names (lower-case DNS subdomains), comma separated'
      if (pattern.includes('[-a-z0-9.]')) return 'a node name (a lower-case DNS subdomain)'
      if (pattern.includes('[A-Z0-9_]+:')) return 'REASON:ratio pairs, comma separated, such as ENOTFOUND:0.001,EAI_AGAIN:0.01'
      if (pattern.includes('[-a-z0-9]')) return 'a lower-case DNS label such as cilium-batch-1'
      return `a value matching ${pattern}`
    }
    case 'anyOf': {
      // The schemas use anyOf only for "at least one of these fields": the rule bounds (gates/spec.ts).
      const fields = ((s.anyOf as Array<{ required?: string[] }> | undefined) ?? []).flatMap(b => b.required ?? [])
      return unbounded(fields.some(f => f.startsWith('maxNode')) ? 'node rule' : 'rule', fields)
    }
    default: return `a value that ${error.message ?? 'is valid'}`
  }
}

/** The value at a JSON pointer (RFC 6901) in `doc`; undefined when there is none. */
export function valueAt (doc: unknown, pointer: string): unknown {
  let value = doc
  for (const raw of pointer.split('/').slice(1)) {
    if (value === null || typeof value !== 'object') return undefined
    value = (value as Record<string, unknown>)[raw.replaceAll('~1', '/').replaceAll('~0', '~')]
  }
  return value
}

/** A value for a one-line message: JSON, at most 80 characters. */
export function shown (value: unknown): string {
  const text = JSON.stringify(value) ?? String(value)
  return text.length > 80 ? `${text.slice(0, 77)}...` : text
}
