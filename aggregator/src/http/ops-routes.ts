// Routes for operators and tooling: liveness, readiness, Prometheus' /metrics and the OpenAPI document.

import type { FastifyInstance } from 'fastify'
import type { Registry } from 'prom-client'

const status = { type: 'object', required: ['status'], properties: { status: { type: 'string' } } } as const

/** GET /healthz, /readyz (always ok once listening), /metrics (`deps.registry`) and /api/v1/openapi.json. */
export async function opsRoutes (app: FastifyInstance, deps: { registry: Registry }): Promise<void> {
  app.get('/healthz', { schema: { response: { 200: status } } }, async () => ({ status: 'ok' }))
  app.get('/readyz', { schema: { response: { 200: status } } }, async () => ({ status: 'ready' }))
  app.get('/metrics', { schema: { hide: true } }, async (_request, reply) => {
    reply.type(deps.registry.contentType)
    return deps.registry.metrics()
  })
  app.get('/api/v1/openapi.json', { schema: { hide: true } }, async () => app.swagger())
}
