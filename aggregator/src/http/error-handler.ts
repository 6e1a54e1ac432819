// The aggregator's one fastify error handler and its not-found handler: every failed request is
// answered `{code, message}` (query.ts errorSchema) with a code from errors.ts, and only a failure of
// our own (500) is logged.

import type { ErrorObject } from 'ajv'
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import { AggregatorError, ERR_BAD_QUERY, ERR_BODY_TOO_LARGE, ERR_INTERNAL, ERR_NOT_FOUND } from '../errors.ts'
import { expectedOf, shown, valueAt } from '../gates/schema-errors.ts'

const PART: Record<string, string> = { querystring: 'query parameter', params: 'path parameter', body: 'body field', headers: 'header' }

/**
 * A schema validation failure in words that name the parameter, the value given and what was
 * expected, like every other 400 here (docs/errors.md): `unknown query parameter "knd" (a
 * misspelling?); known: kind, state, node` or `query parameter kind: got "node-inbond", expected one
 * of …`. Falls back to fastify's own message when ajv's error is not there.
 */
export function validationMessage (validation: readonly ErrorObject[], context: string | undefined, request: FastifyRequest, fallback: string): string {
  const e = validation[0]
  if (e === undefined) return fallback
  const part = PART[context ?? ''] ?? 'field'
  const source = context === 'querystring' ? request.query : context === 'params' ? request.params : context === 'body' ? request.body : request.headers
  if (e.keyword === 'additionalProperties') {
    const known = Object.keys(((e.parentSchema as { properties?: object } | undefined)?.properties) ?? {})
    return `unknown ${part} ${JSON.stringify((e.params as { additionalProperty: string }).additionalProperty)} (a misspelling?)${known.length > 0 ? `; known: ${known.join(', ')}` : ''}`
  }
  const name = e.keyword === 'required' ? (e.params as { missingProperty: string }).missingProperty : e.instancePath.replace(/^\//, '').replaceAll('/', '.')
  if (e.keyword === 'required') return `${part} ${name} is required`
  const value = valueAt(source, e.instancePath)
  return `${part} ${name}: got ${shown(value)}, expected ${expectedOf(e)}`
}

/**
 * Maps an error thrown by a route, a hook or fastify itself to an answer: an AggregatorError keeps its
 * code and status; a schema validation failure is 400 PINGFLEET_ERR_BAD_QUERY; fastify's 413 (a body
 * over the route's `bodyLimit`, in bytes) is PINGFLEET_ERR_BODY_TOO_LARGE; any other 4xx fastify
 * raises is PINGFLEET_ERR_BAD_QUERY with that status; anything else is a 500 PINGFLEET_ERR_INTERNAL,
 * logged with its stack and answered without details.
 */
export function errorHandler (error: FastifyError | AggregatorError | Error, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  if (error instanceof AggregatorError) return reply.code(error.statusCode).send({ code: error.code, message: error.message })
  const e = error as { validation?: ErrorObject[], validationContext?: string, statusCode?: number, message?: string }
  if (e.validation !== undefined) {
    return reply.code(400).send({ code: ERR_BAD_QUERY, message: validationMessage(e.validation, e.validationContext, request, e.message ?? 'bad request') })
  }
  if (e.statusCode === 413) return reply.code(413).send({ code: ERR_BODY_TOO_LARGE, message: `request body larger than ${request.routeOptions.bodyLimit} bytes` })
  if (e.statusCode !== undefined && e.statusCode >= 400 && e.statusCode < 500) {
    return reply.code(e.statusCode).send({ code: ERR_BAD_QUERY, message: e.message ?? 'bad request' })
  }
  request.log.error({ err: error, code: ERR_INTERNAL }, 'request failed')
  return reply.code(500).send({ code: ERR_INTERNAL, message: 'internal error' })
}

/**
 * Answers a request no route matches (an unknown path, or a known path with a method it does not
 * serve: fastify routes by method and path together) with 404 PINGFLEET_ERR_NOT_FOUND instead of
 * fastify's default body, which has no code. The message names the method and the path without the
 * query string. Not logged: a client's mistake, not ours.
 */
export function notFoundHandler (request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const path = request.url.split('?', 1)[0]
  return reply.code(404).send({ code: ERR_NOT_FOUND, message: `no route ${request.method} ${path}` })
}
