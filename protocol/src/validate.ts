// Decoding of incoming frames: JSON parse, schema check, then the invariants a schema cannot say.

import { Ajv, type ValidateFunction } from 'ajv'
import { ProtocolError, PROTOCOL_ERR_JSON, PROTOCOL_ERR_SCHEMA, PROTOCOL_ERR_SEMANTIC, PROTOCOL_ERR_TYPE } from './errors.ts'
import { sparseProblem, sparseTotal } from './histogram.ts'
import { MESSAGE_SCHEMAS, type AgentMessage, type AggregatorMessage, type Report } from './messages.ts'
import { PHASE_PROBE_KINDS, type ProbeKind } from './probes.ts'

const phaseKinds = new Set<ProbeKind>(PHASE_PROBE_KINDS)

const ajv = new Ajv({ allErrors: false, strict: true })
const validators = new Map<string, ValidateFunction>()
for (const [type, schema] of Object.entries(MESSAGE_SCHEMAS)) validators.set(type, ajv.compile(schema))

function decode (text: string, allowed: readonly string[]): unknown {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    throw new ProtocolError(PROTOCOL_ERR_JSON, 'frame is not valid JSON')
  }
  const type = typeof value === 'object' && value !== null ? (value as { type?: unknown }).type : undefined
  if (typeof type !== 'string' || !allowed.includes(type)) {
    throw new ProtocolError(PROTOCOL_ERR_TYPE, `unexpected message type ${JSON.stringify(type)}`)
  }
  const validate = validators.get(type)!
  if (!validate(value)) {
    const first = validate.errors?.[0]
    throw new ProtocolError(PROTOCOL_ERR_SCHEMA, `invalid ${type}: ${first?.instancePath || '/'} ${first?.message ?? ''}`.trim())
  }
  return value
}

/**
 * Invariants of a report beyond its schema: time order and histograms that fit their counts. A cell's
 * `phases` (kinds in PHASE_PROBE_KINDS only) time the same probes as its `latency`, so no phase holds
 * more samples than `latency` does.
 */
export function reportProblem (report: Report): string | null {
  if (report.end < report.start) return 'report ends before it starts'
  for (let i = 0; i < report.cells.length; i++) {
    const cell = report.cells[i]!
    const problem = sparseProblem(cell.latency)
    if (problem !== null) return `cell ${i}: ${problem}`
    let failed = 0
    if (cell.errors !== undefined) for (const e of cell.errors) failed += e.count
    if (sparseTotal(cell.latency) + failed + (cell.lagged ?? 0) > cell.count) {
      return `cell ${i}: latency observations, errors and lagged probes exceed count`
    }
    if ((cell.slowConnects ?? 0) > cell.count) return `cell ${i}: slowConnects exceeds count`
    if ((cell.lost ?? 0) > (cell.sent ?? 0)) return `cell ${i}: more datagrams lost than sent`
    if ((cell.jitterPairs ?? 0) > (cell.sent ?? 0)) return `cell ${i}: more jitter pairs than datagrams sent`
    if (cell.backends !== undefined) {
      // Backends are named by successful answers only, so they cannot outnumber the probes that did not fail.
      let answered = 0
      for (const b of cell.backends) answered += b.count
      if (answered + failed > cell.count) return `cell ${i}: backend answers and errors exceed count`
    }
    if (cell.phases !== undefined) {
      if (!phaseKinds.has(cell.probe)) return `cell ${i}: ${cell.probe} cells carry no phases`
      const samples = sparseTotal(cell.latency)
      for (const [phase, hist] of Object.entries(cell.phases)) {
        const bad = sparseProblem(hist)
        if (bad !== null) return `cell ${i}: phase ${phase}: ${bad}`
        if (sparseTotal(hist) > samples) return `cell ${i}: phase ${phase} has more samples than latency`
      }
    }
  }
  return null
}

/**
 * Decodes one text frame an agent sent: a `hello` or a `report` (messages.ts), checked against its JSON
 * Schema and, for a report, against reportProblem's invariants. Times in the result are as sent:
 * `start`/`end` in epoch milliseconds on the agent's clock, `ageMs` in milliseconds, each cell's `latency` a
 * SparseHistogram over the shared bucket layout (seconds). The text is at most MAX_FRAME_BYTES (ws enforces it).
 *
 * Throws ProtocolError with PROTOCOL_ERR_JSON (not JSON), PROTOCOL_ERR_TYPE (no known `type`),
 * PROTOCOL_ERR_SCHEMA (the first schema violation, with its JSON pointer) or PROTOCOL_ERR_SEMANTIC
 * (a report that contradicts itself, e.g. more errors than probes). Ordering (hello first) is the
 * receiver's to check: PROTOCOL_ERR_HELLO.
 */
export function decodeAgentMessage (text: string): AgentMessage {
  const message = decode(text, ['hello', 'report']) as AgentMessage
  if (message.type === 'report') {
    const problem = reportProblem(message)
    if (problem !== null) throw new ProtocolError(PROTOCOL_ERR_SEMANTIC, `invalid report: ${problem}`)
  }
  return message
}

/**
 * Decodes one text frame the aggregator sent: `welcome`, `peers` or `ack`, checked against its JSON
 * Schema. Throws ProtocolError with PROTOCOL_ERR_JSON, PROTOCOL_ERR_TYPE or PROTOCOL_ERR_SCHEMA.
 */
export function decodeAggregatorMessage (text: string): AggregatorMessage {
  return decode(text, ['welcome', 'peers', 'ack']) as AggregatorMessage
}
