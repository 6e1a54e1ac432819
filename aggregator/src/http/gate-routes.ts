// The gates API. A gate read is 200 whenever the aggregator is healthy, verdict in the body (what
// Argo Rollouts' web provider needs); the status form answers 412 unless the verdict is pass (what
// Flagger webhooks and curl -f need). A 5xx only ever means the aggregator itself is broken.

import type { ErrorObject } from 'ajv'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { AggregatorError, badQuery, ERR_NOT_FOUND } from '../errors.ts'
import { CRITERIA, VERDICTS } from '../gates/check.ts'
import type { GateResult } from '../gates/eval.ts'
import type { GateMonitor } from '../gates/monitor.ts'
import { adhocGate, adhocQuerySchema, nodeNames, scopeQuerySchema, type AdhocQuery, type ScopeQuery } from '../gates/adhoc.ts'
import { gateDefinitionSchema, GATE_NAME_PATTERN, type GateLimits } from '../gates/spec.ts'
import { brief, BRIEF_IDS } from '../gates/brief.ts'
import { expectedOf, shown } from '../gates/schema-errors.ts'
import { errorSchema, spanEdge } from './query.ts'

export interface GateRouteDeps {
  monitor: GateMonitor
  limits: GateLimits
}

/** Webhook bodies (Flagger's, say) are read and ignored; this bounds them. */
export const STATUS_BODY_LIMIT = 64 * 1024

const verdict = { type: 'string', enum: VERDICTS } as const
const optionalString = { type: 'string' } as const

export const checkSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'criterion', 'verdict', 'observed', 'threshold', 'samples', 'window', 'detail'],
  properties: {
    id: { type: 'string' },
    criterion: { type: 'string', enum: CRITERIA },
    verdict,
    observed: { type: ['number', 'null'] },
    threshold: { type: 'number' },
    samples: { type: ['integer', 'null'] },
    window: { type: ['string', 'null'] },
    probe: optionalString,
    src: optionalString,
    dst: optionalString,
    group: optionalString,
    reason: optionalString,
    service: optionalString,
    direction: { type: 'string', enum: ['inbound', 'outbound'] },
    peers: optionalString,
    kind: { type: 'string', description: 'forbidFindings checks: the finding kind' },
    findings: { type: 'array', items: { type: 'string' }, description: 'forbidFindings checks: ids of the active findings that fail it (GET /api/v1/findings), at most 10' },
    worst: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['node', 'verdict', 'observed', 'samples', 'peers', 'detail'],
        properties: {
          node: { type: 'string' },
          verdict,
          observed: { type: ['number', 'null'] },
          samples: { type: 'integer' },
          peers: { type: 'integer' },
          detail: { type: 'string' }
        }
      }
    },
    detail: { type: 'string' }
  }
} as const

export const gateResultSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'description', 'verdict', 'evaluatedAt', 'window', 'from', 'to', 'maxStaleness', 'summary', 'skipped', 'checks'],
  properties: {
    name: { type: 'string' },
    description: { type: 'string' },
    verdict,
    evaluatedAt: { type: 'string', format: 'date-time' },
    window: { type: 'string' },
    from: spanEdge('start'),
    to: spanEdge('end'),
    maxStaleness: { type: 'string' },
    summary: {
      type: 'object',
      additionalProperties: false,
      required: [...VERDICTS],
      properties: { pass: { type: 'integer' }, fail: { type: 'integer' }, insufficient_data: { type: 'integer' } }
    },
    nodes: { type: 'array', items: { type: 'string' }, description: 'scoped gates: the nodes judged' },
    skipped: {
      type: 'array',
      description: 'pairs a rule names that cannot have data (a one-member group to itself; an empty group when the gate judges a batch), not required',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['probe', 'src', 'dst', 'reason'],
        properties: { probe: { type: 'string' }, src: { type: 'string' }, dst: { type: 'string' }, reason: { type: 'string' } }
      }
    },
    checks: { type: 'array', items: checkSchema }
  }
} as const

const gateListSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['gates'],
  properties: {
    gates: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'description', 'verdict', 'evaluatedAt', 'definition'],
        properties: {
          name: { type: 'string' },
          description: { type: 'string' },
          verdict: { type: ['string', 'null'], enum: [...VERDICTS, null] },
          evaluatedAt: { type: ['string', 'null'], format: 'date-time' },
          definition: gateDefinitionSchema
        }
      }
    }
  }
} as const

const historySchema = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'transitions'],
  properties: {
    name: { type: 'string' },
    transitions: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['at', 'from', 'verdict', 'result'],
        properties: {
          at: { type: 'string', format: 'date-time' },
          from: { type: ['string', 'null'], enum: [...VERDICTS, null] },
          verdict,
          result: gateResultSchema
        }
      }
    }
  }
} as const

const nameParams = {
  type: 'object',
  additionalProperties: false,
  required: ['name'],
  properties: { name: { type: 'string', maxLength: 63, pattern: GATE_NAME_PATTERN } }
} as const

/**
 * The status form's `view=brief` answer: the verdict and the ids of the checks that did not pass,
 * a few hundred bytes, with the full evidence one GET away. Flagger copies a refused webhook's whole
 * body into its Kubernetes event and log, where a full answer (kilobytes of JSON) is noise.
 */
export const briefResultSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'verdict', 'evaluatedAt', 'summary', 'failing', 'insufficient', 'more', 'evidence'],
  properties: {
    name: { type: 'string' },
    verdict,
    evaluatedAt: { type: 'string', format: 'date-time' },
    summary: gateResultSchema.properties.summary,
    failing: { type: 'array', items: { type: 'string' }, description: `ids of failing checks, at most ${BRIEF_IDS}` },
    insufficient: { type: 'array', items: { type: 'string' }, description: `ids of checks without enough data, at most ${BRIEF_IDS}` },
    more: { type: 'integer', description: 'checks that did not pass and are not listed' },
    evidence: { type: 'string', description: 'path of the full answer (GET)' }
  }
} as const

const statusAnswer = { anyOf: [gateResultSchema, briefResultSchema] } as const
const statusResponses = { 200: statusAnswer, 412: statusAnswer, 400: errorSchema, 404: errorSchema, 413: errorSchema }

const viewParam = { type: 'string', enum: ['full', 'brief'], default: 'full', description: 'brief: the verdict and the ids of checks that did not pass (for Flagger)' } as const
const statusScopeQuerySchema = { ...scopeQuerySchema, properties: { ...scopeQuerySchema.properties, view: viewParam } } as const
const adhocStatusQuerySchema = { ...adhocQuerySchema, properties: { ...adhocQuerySchema.properties, view: viewParam } } as const

function sendStatus (reply: FastifyReply, result: GateResult, view: 'full' | 'brief' | undefined, evidence: string): FastifyReply {
  return reply.code(result.verdict === 'pass' ? 200 : 412).send(view === 'brief' ? brief(result, evidence) : result)
}

/** The request's path without `/status` and its query without `view`: where the full answer is. */
function evidencePath (url: string): string {
  const [path, query = ''] = url.split('?') as [string, string?]
  const params = new URLSearchParams(query)
  params.delete('view')
  const rest = params.toString()
  return path.replace(/\/status$/, '') + (rest === '' ? '' : `?${rest}`)
}

type PropertiesSchema = { properties: Record<string, unknown> }

/**
 * Fastify's schema validation (attachValidation), explained: a 400 whose message names the
 * parameter, its value, the gate and what was expected ("view=\"foo\" (gate \"x\"): expected one of
 * \"full\", \"brief\""), instead of ajv's "querystring/view must be equal to one of the allowed values".
 */
function explainInvalid (query: PropertiesSchema) {
  return async (request: FastifyRequest): Promise<void> => {
    const error = request.validationError as (Error & { validation?: ErrorObject[], validationContext?: string }) | undefined
    if (error === undefined) return
    const e = error.validation?.[0]
    if (e === undefined) throw badQuery(error.message)
    const inParams = error.validationContext === 'params'
    const source = (inParams ? request.params : request.query) as Record<string, unknown>
    const field = e.keyword === 'required' ? String(e.params.missingProperty) : e.instancePath.split('/')[1] ?? ''
    const schema = ((inParams ? nameParams : query).properties as Record<string, unknown>)[field] as Record<string, unknown> | undefined
    const gate = inParams ? 'the gate name' : `gate "${(request.params as { name?: string }).name ?? 'adhoc'}"`
    if (e.keyword === 'required') {
      const values = schema?.enum as unknown[] | undefined
      throw badQuery(`${field} is missing (${gate}): expected ${values === undefined ? 'a value' : `one of ${values.map(v => JSON.stringify(v)).join(', ')}`}`)
    }
    throw badQuery(`${field}=${shown(source[field])} (${gate}): expected ${expectedOf(e, schema)}`)
  }
}

export async function gateRoutes (app: FastifyInstance, deps: GateRouteDeps): Promise<void> {
  const { monitor, limits } = deps
  const known = (name: string): void => {
    if (!monitor.has(name)) throw new AggregatorError(ERR_NOT_FOUND, `no gate named ${JSON.stringify(name)}; GET /api/v1/gates lists them`, 404)
  }

  // Fastify strips unknown query parameters; gates refuse them instead, because a misspelt
  // criterion or scope would otherwise silently not apply.
  const refuse = (allowed: ReadonlySet<string>) => async (request: FastifyRequest): Promise<void> => {
    const unknown = Object.keys(request.query as object).filter(k => !allowed.has(k))
    if (unknown.length > 0) throw badQuery(`unknown query parameter ${unknown.map(k => JSON.stringify(k)).join(', ')}; expected ${[...allowed].join(', ')}`)
  }
  const refuseUnknown = refuse(new Set(Object.keys(adhocQuerySchema.properties)))
  const refuseUnknownScope = refuse(new Set(Object.keys(scopeQuerySchema.properties)))
  const refuseUnknownStatus = refuse(new Set(Object.keys(adhocStatusQuerySchema.properties)))
  const refuseUnknownScopeStatus = refuse(new Set(Object.keys(statusScopeQuerySchema.properties)))
  // A named gate asked with ?nodes= or ?nodeSelector= judges those nodes instead, once: no history, no metrics.
  const evaluateNamed = (name: string, query: ScopeQuery): GateResult => {
    known(name)
    if (query.nodes === undefined && query.nodeSelector === undefined) return monitor.evaluate(name)!
    return monitor.evaluateScoped(name, nodeNames(query.nodes), query.nodeSelector)!
  }

  // Any body a webhook posts is accepted unparsed and dropped, up to STATUS_BODY_LIMIT.
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: STATUS_BODY_LIMIT }, (_request, _body, done) => done(null, undefined))

  app.get('/api/v1/gates', {
    schema: { summary: 'Named gates from the gates file, with their latest verdict', tags: ['gates'], response: { 200: gateListSchema } }
  }, async () => ({
    gates: monitor.specs().map(spec => {
      const latest = monitor.latest(spec.name)
      return { name: spec.name, description: spec.description, verdict: latest?.verdict ?? null, evaluatedAt: latest?.evaluatedAt ?? null, definition: spec.definition }
    })
  }))

  app.get<{ Querystring: AdhocQuery }>('/api/v1/gates/adhoc', {
    schema: {
      summary: 'Evaluate an ad-hoc gate given by query parameters; 200 with the verdict in the body',
      tags: ['gates'],
      querystring: adhocQuerySchema,
      response: { 200: gateResultSchema, 400: errorSchema }
    },
    preValidation: refuseUnknown,
    attachValidation: true,
    preHandler: explainInvalid(adhocQuerySchema)
  }, async request => monitor.evaluateAdhoc(adhocGate(request.query, limits)))

  app.route<{ Querystring: AdhocQuery & { view?: 'full' | 'brief' } }>({
    method: ['GET', 'POST'],
    url: '/api/v1/gates/adhoc/status',
    bodyLimit: STATUS_BODY_LIMIT,
    schema: {
      summary: 'Ad-hoc gate as a status: 200 on pass, 412 on fail or insufficient data; a POSTed body is ignored; view=brief for a short answer',
      tags: ['gates'],
      querystring: adhocStatusQuerySchema,
      response: statusResponses
    },
    preValidation: refuseUnknownStatus,
    attachValidation: true,
    preHandler: explainInvalid(adhocStatusQuerySchema),
    handler: async (request, reply) => {
      const { view, ...query } = request.query
      return sendStatus(reply, monitor.evaluateAdhoc(adhocGate(query, limits)), view, evidencePath(request.url))
    }
  })

  app.get<{ Params: { name: string }, Querystring: ScopeQuery }>('/api/v1/gates/:name', {
    schema: {
      summary: 'Evaluate a named gate now; 200 whenever the aggregator is healthy, the verdict is in the body. nodes= or nodeSelector= judge other nodes (not recorded)',
      tags: ['gates'],
      params: nameParams,
      querystring: scopeQuerySchema,
      response: { 200: gateResultSchema, 400: errorSchema, 404: errorSchema }
    },
    preValidation: refuseUnknownScope,
    attachValidation: true,
    preHandler: explainInvalid(scopeQuerySchema)
  }, async request => evaluateNamed(request.params.name, request.query))

  app.route<{ Params: { name: string }, Querystring: ScopeQuery & { view?: 'full' | 'brief' } }>({
    method: ['GET', 'POST'],
    url: '/api/v1/gates/:name/status',
    bodyLimit: STATUS_BODY_LIMIT,
    schema: {
      summary: 'A named gate as a status: 200 on pass, 412 on fail or insufficient data; a POSTed body is ignored; view=brief for a short answer (Flagger)',
      tags: ['gates'],
      params: nameParams,
      querystring: statusScopeQuerySchema,
      response: statusResponses
    },
    preValidation: refuseUnknownScopeStatus,
    attachValidation: true,
    preHandler: explainInvalid(statusScopeQuerySchema),
    handler: async (request, reply) => {
      const { view, ...scope } = request.query
      return sendStatus(reply, evaluateNamed(request.params.name, scope), view, evidencePath(request.url))
    }
  })

  app.get<{ Params: { name: string } }>('/api/v1/gates/:name/history', {
    schema: {
      summary: 'Verdict transitions of a named gate with their evidence, oldest first (bounded ring)',
      tags: ['gates'],
      params: nameParams,
      response: { 200: historySchema, 400: errorSchema, 404: errorSchema }
    },
    attachValidation: true,
    preHandler: explainInvalid({ properties: {} })
  }, async request => {
    known(request.params.name)
    return { name: request.params.name, transitions: monitor.history(request.params.name) }
  })
}
