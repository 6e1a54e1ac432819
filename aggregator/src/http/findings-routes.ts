// GET /api/v1/findings (active and recently resolved findings) and GET /api/v1/incidents (the
// timeline of findings that opened and closed, with the fleet events of the same minutes).

import type { FastifyInstance } from 'fastify'
import { formatDuration, parseDuration, PROBE_KIND_NAMES } from '@pingfleet/protocol'
import { badQuery } from '../errors.ts'
import { FLEET_EVENT_TYPES } from '../fleet/events.ts'
import type { FindingsEngine } from '../findings/engine.ts'
import { FINDING_KIND_NAMES, type FindingKind, type FindingState } from '../findings/finding.ts'
import { INCIDENT_RETENTION_MS, MAX_INCIDENTS } from '../findings/incidents.ts'
import { errorSchema } from './query.ts'

export interface FindingsRouteDeps {
  engine: FindingsEngine
  now: () => number
}

const str = { type: 'string' } as const
const int = { type: 'integer' } as const
const iso = { type: 'string', format: 'date-time' } as const
const kind = { type: 'string', enum: FINDING_KIND_NAMES } as const

const subjectSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['type', 'id'],
  properties: {
    type: { type: 'string', enum: ['node', 'group-pair', 'group', 'resolver', 'dns-name', 'service', 'target'] },
    id: { ...str, description: 'stable while the fault lasts, e.g. node/node-17, groups/aws->cilium' },
    node: str,
    group: str,
    src: str,
    dst: str,
    bothWays: { type: 'boolean' },
    resolver: str,
    name: str,
    service: str,
    target: str
  }
} as const

const reasonSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['reason', 'raw', 'count'],
  properties: { reason: str, raw: str, count: int }
} as const

const evidenceSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['probe', 'scope', 'samples', 'errors', 'errorRatio', 'reasons'],
  properties: {
    probe: { type: 'string', enum: PROBE_KIND_NAMES },
    scope: { ...str, description: 'what the figures are: inbound, outbound, aws->cilium, large, wire…' },
    samples: int,
    errors: int,
    errorRatio: { type: ['number', 'null'] },
    agreeing: {
      type: 'object',
      additionalProperties: false,
      required: ['count', 'of'],
      properties: { count: int, of: int },
      description: 'distinct peers (or nodes) that agree, out of those with results'
    },
    reasons: { type: 'array', items: reasonSchema, description: 'dominant first, at most 3' },
    cells: {
      type: 'array',
      description: 'worst first, at most 10',
      items: { type: 'object', additionalProperties: false, required: ['src', 'target', 'samples', 'errors'], properties: { src: str, target: str, samples: int, errors: int } }
    },
    figures: { type: 'object', additionalProperties: { type: ['number', 'string'] } }
  }
} as const

const peakSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['errorRatio', 'agreeing', 'score', 'at'],
  description: 'the largest impact while active',
  properties: { errorRatio: { type: ['number', 'null'] }, agreeing: { type: ['integer', 'null'] }, score: { type: 'number' }, at: iso }
} as const

export const findingSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'kind', 'subject', 'state', 'firstSeen', 'lastSeen', 'summary', 'score', 'scoreBasis', 'evidence', 'nodes', 'groups', 'peak', 'firstReasons'],
  properties: {
    id: { ...str, description: '`${kind}:${subject.id}`' },
    kind,
    subject: subjectSchema,
    state: { type: 'string', enum: ['active', 'resolved'] },
    firstSeen: iso,
    lastSeen: iso,
    resolvedAt: iso,
    summary: { ...str, description: 'one line a person can act on: `<what> since HH:MM:SS (UTC) <detail>`' },
    score: { type: 'number', minimum: 0, maximum: 1 },
    scoreBasis: str,
    evidence: { type: 'array', items: evidenceSchema },
    nodes: { type: 'array', items: str },
    groups: { type: 'array', items: str },
    peak: peakSchema,
    firstReasons: { type: 'array', items: reasonSchema, description: 'the dominant reasons when it opened' }
  }
} as const

const findingsAnswerSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['generatedAt', 'evaluatedAt', 'active', 'findings'],
  properties: {
    generatedAt: iso,
    evaluatedAt: { type: ['string', 'null'], format: 'date-time', description: 'the last evaluation; null before the first' },
    active: { ...int, description: 'active findings among those listed' },
    findings: { type: 'array', items: findingSchema, description: 'active worst first (highest score), then resolved, latest first' }
  }
} as const

const incidentSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'kind', 'subject', 'start', 'end', 'lastSeen', 'durationSeconds', 'peak', 'firstReasons', 'summary', 'nodes', 'groups', 'events', 'moreEvents', 'timeline'],
  properties: {
    id: str,
    kind,
    subject: subjectSchema,
    start: iso,
    end: { type: ['string', 'null'], format: 'date-time', description: 'null while the finding is still active' },
    lastSeen: iso,
    durationSeconds: int,
    peak: peakSchema,
    firstReasons: { type: 'array', items: reasonSchema },
    summary: str,
    nodes: { type: 'array', items: str },
    groups: { type: 'array', items: str },
    events: {
      type: 'array',
      description: 'fleet events of its nodes and groups from 5 minutes before its start to its end, oldest first',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['at', 'node', 'type', 'group', 'text'],
        properties: { at: iso, node: str, type: { type: 'string', enum: FLEET_EVENT_TYPES }, group: str, from: str, text: str }
      }
    },
    moreEvents: { ...int, description: 'related events not listed' },
    timeline: { ...str, description: 'the events and the incident in one line, in time order' }
  }
} as const

const incidentsAnswerSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['generatedAt', 'since', 'complete', 'incidents'],
  properties: {
    generatedAt: iso,
    since: iso,
    complete: { type: 'boolean', description: `false when incidents after since were dropped (more than ${MAX_INCIDENTS} kept) or since is before the ${formatDuration(INCIDENT_RETENTION_MS)} kept` },
    incidents: { type: 'array', items: incidentSchema, description: 'closed incidents that ended at or after since, oldest first, then the open ones' }
  }
} as const

const NODE_NAME = '^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$'

/** `since=`: an ISO 8601 time, or a duration back from now (`24h`). Returns ms since the epoch. */
function sinceOf (text: string, now: number): number {
  const ago = parseDuration(text)
  if (ago !== null) return now - ago
  const at = /^\d{4}-\d\d-\d\dT/.test(text) ? Date.parse(text) : Number.NaN
  if (Number.isNaN(at)) throw badQuery(`since=${JSON.stringify(text)} is neither a time (2026-11-29T10:00:00Z) nor a duration back from now (24h)`)
  return at
}

/** GET /api/v1/findings and /api/v1/incidents; a bad or unknown query parameter is a 400 PINGFLEET_ERR_BAD_QUERY. */
export async function findingsRoutes (app: FastifyInstance, deps: FindingsRouteDeps): Promise<void> {
  const { engine, now } = deps

  app.get<{ Querystring: { kind?: FindingKind, state?: FindingState, node?: string } }>('/api/v1/findings', {
    schema: {
      summary: 'Findings: the faults the aggregator diagnosed, active and recently resolved (docs/findings.md)',
      tags: ['findings'],
      querystring: {
        type: 'object',
        additionalProperties: false,
        properties: {
          kind,
          state: { type: 'string', enum: ['active', 'resolved'] },
          node: { type: 'string', minLength: 1, maxLength: 253, pattern: NODE_NAME, description: 'only findings that concern this node' }
        }
      },
      response: { 200: findingsAnswerSchema, 400: errorSchema }
    }
  }, async request => {
    const { kind: k, state, node } = request.query
    const findings = engine.findings().filter(f =>
      (k === undefined || f.kind === k) && (state === undefined || f.state === state) &&
      (node === undefined || f.nodes.includes(node) || f.subject.node === node))
    return {
      generatedAt: new Date(now()).toISOString(),
      evaluatedAt: engine.evaluatedAt,
      active: findings.filter(f => f.state === 'active').length,
      findings
    }
  })

  app.get<{ Querystring: { since: string } }>('/api/v1/incidents', {
    schema: {
      summary: `Incident timeline: findings that opened and closed (kept ${formatDuration(INCIDENT_RETENTION_MS)}, at most ${MAX_INCIDENTS}), and the open ones, with the fleet events of the same minutes`,
      tags: ['findings'],
      querystring: {
        type: 'object',
        additionalProperties: false,
        properties: {
          since: { type: 'string', minLength: 1, maxLength: 64, default: '24h', description: 'an ISO 8601 time, or a duration back from now such as 1h' }
        }
      },
      response: { 200: incidentsAnswerSchema, 400: errorSchema }
    }
  }, async request => {
    const t = now()
    const since = sinceOf(request.query.since, t)
    const answer = engine.incidents(since)
    return {
      generatedAt: new Date(t).toISOString(),
      since: new Date(since).toISOString(),
      complete: answer.complete && t - since <= INCIDENT_RETENTION_MS,
      incidents: answer.incidents
    }
  })
}
