// The agent's own HTTP server: /ping for peers to probe, health and readiness for the kubelet,
// and /status with the uplink counters that tests and operators read.

import { fastify, LogController } from 'fastify'
import type { Logger } from 'pino'
import type { Labels } from '@pingfleet/protocol'

/** Largest /ping?size= a peer may ask for (an MTU probe needs a few segments, not more). */
export const MAX_PING_SIZE = 65_536

export interface Identity {
  node: string
  pod: string
  labels: Labels
}

export interface AgentStatus {
  node: string
  bootId: string
  seq: number
  acked: number
  buffered: number
  dropped: number
  connected: boolean
  /** Peers in the roster that are probed (ready or draining). */
  peers: number
  /** Every running probe target: pod, mtu and static ones. */
  targets: number
  reportsSent: number
  /** The agent cgroup's CPU throttling (cpu.stat), when it can be read. */
  cpu?: { periods: number, throttledPeriods: number, throttledSeconds: number }
}

export interface ServerState {
  identity: () => Identity
  status: () => AgentStatus
  /** True once shutdown began: readiness fails so the Service stops routing here. */
  draining: () => boolean
}

const labels = { type: 'object', additionalProperties: { type: 'string' } } as const
const count = { type: 'integer', minimum: 0 } as const
const state = { type: 'object', required: ['status'], additionalProperties: false, properties: { status: { type: 'string' } } } as const

const pingSchema = {
  querystring: {
    type: 'object',
    additionalProperties: false,
    properties: { size: { type: 'integer', minimum: 0, maximum: MAX_PING_SIZE } }
  },
  response: {
    200: {
      type: 'object',
      required: ['node', 'pod', 'labels'],
      additionalProperties: false,
      properties: { node: { type: 'string' }, pod: { type: 'string' }, labels, pad: { type: 'string' } }
    }
  }
} as const

const statusSchema = {
  response: {
    200: {
      type: 'object',
      required: ['node', 'bootId', 'seq', 'acked', 'buffered', 'dropped', 'connected', 'peers', 'targets', 'reportsSent'],
      additionalProperties: false,
      properties: {
        node: { type: 'string' },
        bootId: { type: 'string' },
        seq: count,
        acked: count,
        buffered: count,
        dropped: count,
        connected: { type: 'boolean' },
        peers: count,
        targets: count,
        reportsSent: count,
        cpu: {
          type: 'object',
          required: ['periods', 'throttledPeriods', 'throttledSeconds'],
          additionalProperties: false,
          properties: { periods: count, throttledPeriods: count, throttledSeconds: { type: 'number', minimum: 0 } }
        }
      }
    }
  }
} as const

export function buildServer (serverState: ServerState, logger: Logger) {
  // Peers hit /ping every few seconds each: request logs would drown everything else. Through a
  // LogController: fastify 5.8 deprecated the top-level disableRequestLogging option (FSTDEP023).
  const app = fastify({ loggerInstance: logger, logController: new LogController({ disableRequestLogging: true }) })

  app.get<{ Querystring: { size?: number } }>('/ping', { schema: pingSchema }, async request => {
    const identity = serverState.identity()
    const size = request.query.size
    if (size === undefined) return identity
    // Pad the JSON body to exactly `size` bytes (or leave it as is when it is already larger).
    const base = Buffer.byteLength(JSON.stringify({ ...identity, pad: '' }))
    return { ...identity, pad: 'x'.repeat(Math.max(0, size - base)) }
  })

  app.get('/healthz', { schema: { response: { 200: state } } }, async () => ({ status: 'ok' }))

  app.get('/readyz', { schema: { response: { 200: state, 503: state } } }, async (_request, reply) => {
    if (serverState.draining()) return reply.code(503).send({ status: 'draining' })
    return { status: 'ready' }
  })

  app.get('/status', { schema: statusSchema }, async () => serverState.status())

  return app
}
