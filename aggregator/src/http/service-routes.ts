// GET /api/v1/service: the service view (views/service.ts) over a window, by node or by a label.

import type { FastifyInstance } from 'fastify'
import type { Fleet } from '../fleet/fleet.ts'
import type { Store } from '../store/store.ts'
import { buildServiceView } from '../views/service.ts'
import { errorSchema, queryWindow, spanEdge } from './query.ts'

export interface ServiceDeps {
  nodes: Store
  fleet: Fleet
  maxWindowMs: number
  now: () => number
}

const counts = { type: 'object', additionalProperties: { type: 'integer' } } as const

export const serviceViewSchema = {
  type: 'object',
  required: ['window', 'from', 'to', 'groupBy', 'generatedAt', 'services', 'rows'],
  additionalProperties: false,
  properties: {
    window: { type: 'string' },
    from: spanEdge('start'),
    to: spanEdge('end'),
    groupBy: { type: 'string' },
    generatedAt: { type: 'string', format: 'date-time' },
    services: { type: 'array', items: { type: 'string' } },
    rows: {
      type: 'array',
      items: {
        type: 'object',
        required: ['service', 'src', 'samples', 'errors', 'errorsByReason', 'backends', 'flagged', 'judged'],
        additionalProperties: false,
        properties: {
          service: { type: 'string' },
          src: { type: 'string' },
          samples: { type: 'integer' },
          errors: { type: 'integer' },
          errorsByReason: counts,
          backends: {
            type: 'array',
            items: {
              type: 'object',
              required: ['node', 'count'],
              additionalProperties: false,
              properties: { node: { type: 'string' }, count: { type: 'integer' } }
            }
          },
          flagged: { type: 'array', items: { type: 'string' } },
          judged: { type: 'boolean' }
        }
      }
    }
  }
} as const

/** GET /api/v1/service; a bad window is a 400 PINGFLEET_ERR_BAD_QUERY. */
export async function serviceRoutes (app: FastifyInstance, deps: ServiceDeps): Promise<void> {
  app.get<{ Querystring: { window: string, groupBy: string, service?: string } }>('/api/v1/service', {
    schema: {
      summary: 'Backends answering through each Service target, per source group, and the ones that never do',
      querystring: {
        type: 'object',
        additionalProperties: false,
        properties: {
          window: { type: 'string', default: '5m' },
          groupBy: { type: 'string', minLength: 1, maxLength: 317, default: 'node' },
          service: { type: 'string', minLength: 1, maxLength: 253 }
        }
      },
      response: { 200: serviceViewSchema, 400: errorSchema }
    }
  }, async request => {
    const windowMs = queryWindow(request.query.window, deps.maxWindowMs)
    return buildServiceView(deps, { windowMs, groupBy: request.query.groupBy, service: request.query.service })
  })
}
