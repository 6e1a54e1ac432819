// The agent's own HTTP server: /ping for peers to probe, health and readiness for the kubelet,
// and /status with the uplink counters that tests and operators read.

import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { fastify, LogController } from 'fastify'
import type { Logger } from 'pino'
import { boundWaitingConnections, type Labels } from '@pingfleet/protocol'

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

/** What /status answers: the agent's counters and its process's memory (bytes), so a soak can watch both. */
export interface StatusAnswer extends AgentStatus {
  memory: { rssBytes: number, heapUsedBytes: number }
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
      required: ['node', 'bootId', 'seq', 'acked', 'buffered', 'dropped', 'connected', 'peers', 'targets', 'reportsSent', 'memory'],
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
        },
        memory: {
          type: 'object',
          required: ['rssBytes', 'heapUsedBytes'],
          additionalProperties: false,
          properties: { rssBytes: count, heapUsedBytes: count }
        }
      }
    }
  }
} as const

/**
 * Bounds per connection on the agent's server (ms), so idle, slow or half-open clients cannot pile up
 * (issue 14: slowloris, half-open sockets, 10k idle connections). A peer's probe opens a connection,
 * sends one small request at once and reads a small answer, all within its probe timeout (2 s by
 * default): 10 s of silence, 5 s for headers or 10 s for a request is never a healthy peer. Headers
 * and request deadlines are checked every second (Node checks every 30 s by default).
 */
export const PING_SERVER_LIMITS = {
  connectionTimeout: 10_000,
  requestTimeout: 10_000,
  keepAliveTimeout: 5_000,
  http: { headersTimeout: 5_000, connectionsCheckingInterval: 1_000 }
} as const
/**
 * Connections that have not sent a request yet, past which the oldest of them is closed to make room:
 * about 8 KiB each, so ~8 MiB at most. A peer sends its request the moment it connects, so only idle
 * or slow clients are ever the oldest; a well-behaved probe keeps getting its answer during a flood.
 */
export const PING_SERVER_MAX_WAITING = 1024
/** All open connections past which new ones are refused (reset at once): the backstop, ~32 MiB. */
export const PING_SERVER_MAX_CONNECTIONS = 4096

/**
 * The bare /ping answer (`{node, pod, labels}` as JSON, the bytes the route's schema serialises) for
 * the identity `current()` returns, made again only when its node, pod or labels object changes
 * (labels change when the aggregator welcomes the agent).
 */
function pingAnswerCache (current: () => Identity): () => Buffer {
  let made: { identity: Identity, body: Buffer } | undefined
  return () => {
    const identity = current()
    if (made === undefined || made.identity.labels !== identity.labels || made.identity.node !== identity.node || made.identity.pod !== identity.pod) {
      made = { identity, body: Buffer.from(JSON.stringify({ node: identity.node, pod: identity.pod, labels: identity.labels })) }
    }
    return made.body
  }
}

/**
 * The agent's server: fastify with a schema on every route, behind a node:http server that answers the
 * bare `GET /ping` itself with the cached answer (same status, headers and body as the route). Every
 * peer probes it every interval, 200 answers a second at 1,000 peers; skipping fastify's routing,
 * request and reply objects and serialisation saves about a tenth of the server's CPU per answer
 * (bench/ping-server-micro.ts; BENCHMARKS.md, "Agent CPU (issue 11)"). Everything else (`/ping?size=`, HEAD, the other routes, inject()) goes through fastify.
 */
export function buildServer (serverState: ServerState, logger: Logger) {
  const pingBody = pingAnswerCache(serverState.identity)
  const serverFactory = (handler: (req: IncomingMessage, res: ServerResponse) => void) => {
    // What fastify does to a server it makes itself (lib/server.js), with the same limits.
    const server = createServer(PING_SERVER_LIMITS.http, (req, res) => {
      if (req.url === '/ping' && req.method === 'GET') {
        const body = pingBody()
        res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': body.length }).end(body)
        return
      }
      handler(req, res)
    })
    server.keepAliveTimeout = PING_SERVER_LIMITS.keepAliveTimeout
    server.requestTimeout = PING_SERVER_LIMITS.requestTimeout
    server.setTimeout(PING_SERVER_LIMITS.connectionTimeout)
    return server
  }
  // Peers hit /ping every few seconds each: request logs would drown everything else. Through a
  // LogController: fastify 5.8 deprecated the top-level disableRequestLogging option (FSTDEP023).
  const app = fastify({ loggerInstance: logger, logController: new LogController({ disableRequestLogging: true }), serverFactory, ...PING_SERVER_LIMITS })
  app.server.maxConnections = PING_SERVER_MAX_CONNECTIONS
  boundWaitingConnections(app.server, PING_SERVER_MAX_WAITING)

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

  app.get('/status', { schema: statusSchema }, async (): Promise<StatusAnswer> => {
    const { rss, heapUsed } = process.memoryUsage()
    return { ...serverState.status(), memory: { rssBytes: rss, heapUsedBytes: heapUsed } }
  })

  return app
}
