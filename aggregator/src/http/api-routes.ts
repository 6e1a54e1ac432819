// The JSON API: the matrix (views/fleet-matrix.ts) and the agent list (views/agents.ts). Every
// route has request and response schemas.

import type { FastifyInstance } from 'fastify'
import { PROBE_KIND_NAMES, type ProbeKind } from '@pingfleet/protocol'
import { listAgents, type AgentSources } from '../views/agents.ts'
import { matrixView, type MatrixSources } from '../views/fleet-matrix.ts'
import { errorSchema, queryWindow, spanEdge } from './query.ts'

export interface ApiDeps extends MatrixSources, AgentSources {
  maxWindowMs: number
}

const nullableSeconds = { type: ['number', 'null'] } as const
const counts = { type: 'object', additionalProperties: { type: 'integer' } } as const
const quantiles = {
  type: 'object',
  required: ['p50', 'p90', 'p99'],
  additionalProperties: false,
  properties: { p50: nullableSeconds, p90: nullableSeconds, p99: nullableSeconds }
} as const

export const matrixSchema = {
  type: 'object',
  required: ['probe', 'groupBy', 'window', 'from', 'to', 'generatedAt', 'phasesIncluded', 'rows', 'cols', 'cells'],
  additionalProperties: false,
  properties: {
    probe: { type: 'string' },
    groupBy: { type: 'string' },
    window: { type: 'string' },
    from: spanEdge('start'),
    to: spanEdge('end'),
    generatedAt: { type: 'string', format: 'date-time' },
    phasesIncluded: {
      type: 'boolean',
      description: 'whether cells carry `phases`: kinds pod, service, mtu, http and tcp, at any window when grouped by the group label, and by node or another label only up to the node store\'s exact window (1m at a 5 s interval)'
    },
    rows: { type: 'array', items: { type: 'string' } },
    cols: { type: 'array', items: { type: 'string' } },
    cells: {
      type: 'array',
      items: {
        type: 'object',
        required: ['src', 'dst', 'samples', 'errors', 'errorRatio', 'errorsByReason', 'errorsByCode', 'lagged', 'latency'],
        additionalProperties: false,
        properties: {
          src: { type: 'string' },
          dst: { type: 'string' },
          samples: { type: 'integer' },
          errors: { type: 'integer' },
          errorRatio: { type: 'number' },
          errorsByReason: counts,
          errorsByCode: counts,
          lagged: { type: 'integer' },
          latency: quantiles,
          phases: {
            type: 'object',
            description: 'when phasesIncluded: latency quantiles (seconds) per phase the probes went through (dns, connect, tls, firstByte; a phase without observations is absent) and total, the same as latency',
            required: ['total'],
            additionalProperties: false,
            properties: { dns: quantiles, connect: quantiles, tls: quantiles, firstByte: quantiles, total: quantiles }
          },
          loss: {
            type: 'object',
            description: 'kinds that open a TCP connection (pod, mtu, service, http, tcp) and udp: packet loss apart from errors',
            required: ['slowConnects', 'retransmitRatio', 'sent', 'lost', 'lossRatio', 'jitter'],
            additionalProperties: false,
            properties: {
              slowConnects: { type: 'integer', description: 'successful probes whose TCP handshake took 1 s or more: a SYN or SYN-ACK was retransmitted' },
              retransmitRatio: { type: ['number', 'null'], description: 'slowConnects over the latency samples; null without samples or for udp' },
              sent: { type: 'integer', description: 'udp: datagrams sent and judged' },
              lost: { type: 'integer', description: 'udp: datagrams never echoed' },
              lossRatio: { type: ['number', 'null'], description: 'udp: lost / sent; null when none were sent' },
              jitter: { ...nullableSeconds, description: 'udp: mean |RTT difference| of consecutive echoes, seconds' }
            }
          }
        }
      }
    }
  }
} as const

const agentSchema = {
  type: 'object',
  required: ['node', 'pod', 'podIp', 'port', 'labels', 'group', 'version', 'bootId', 'state', 'connected', 'lastReportAt', 'reports', 'degraded', 'degradedReason', 'degradedDetail', 'laggedRatio', 'cpu'],
  additionalProperties: false,
  properties: {
    node: { type: 'string' },
    pod: { type: 'string' },
    podIp: { type: 'string' },
    port: { type: 'integer' },
    labels: { type: 'object', additionalProperties: { type: 'string' } },
    group: { type: 'string' },
    version: { type: 'string' },
    bootId: { type: 'string' },
    state: { type: 'string' },
    connected: { type: 'boolean' },
    reason: { type: ['string', 'null'], description: 'why a disconnected agent is not connected (from Kubernetes when in-cluster); null when connected' },
    lastReportAt: { type: ['string', 'null'], format: 'date-time' },
    clockOffsetSeconds: { type: ['number', 'null'], description: 'the agent\'s clock minus the aggregator\'s, measured on its current connection; null until a report says (reports are filed by receive time whatever it is)' },
    reports: {
      type: 'object',
      required: ['accepted', 'duplicates', 'missed', 'firstSeq', 'lastSeq'],
      additionalProperties: false,
      properties: { accepted: { type: 'integer' }, duplicates: { type: 'integer' }, missed: { type: 'integer' }, firstSeq: { type: ['integer', 'null'] }, lastSeq: { type: 'integer' } }
    },
    degraded: { type: 'boolean', description: 'most of this agent\'s recent samples are lagged or AGENT_OVERLOADED: it is itself the finding (docs/metrics.md)' },
    degradedReason: { type: ['string', 'null'], enum: ['lagged', 'overloaded', null] },
    degradedDetail: { type: ['string', 'null'], description: 'the figures behind degradedReason, for people' },
    laggedRatio: { type: ['number', 'null'], description: 'share of its samples in the health window that were lagged; null without samples' },
    cpu: {
      type: ['object', 'null'],
      description: 'CPU throttling of the agent\'s cgroup (cpu.stat, counters since the container started); null when it does not report it',
      required: ['periods', 'throttledPeriods', 'throttledSeconds'],
      additionalProperties: false,
      properties: { periods: { type: 'integer' }, throttledPeriods: { type: 'integer' }, throttledSeconds: { type: 'number' } }
    }
  }
} as const

/** GET /api/v1/matrix and /api/v1/agents; a bad query is a 400 PINGFLEET_ERR_BAD_QUERY, too large a matrix 400 PINGFLEET_ERR_MATRIX_TOO_LARGE. */
export async function apiRoutes (app: FastifyInstance, deps: ApiDeps): Promise<void> {
  app.get<{ Querystring: { probe: ProbeKind, groupBy: string, window: string, src?: string, dst?: string, failing: boolean } }>('/api/v1/matrix', {
    schema: {
      summary: 'Latency and error matrix for one probe kind, by node or by a node label',
      querystring: {
        type: 'object',
        additionalProperties: false,
        properties: {
          probe: { type: 'string', enum: PROBE_KIND_NAMES, default: 'pod' },
          groupBy: { type: 'string', minLength: 1, maxLength: 317, default: 'node' },
          window: { type: 'string', default: '1m' },
          src: { type: 'string', minLength: 1, maxLength: 253, description: 'only the row with this name (node or label value)' },
          dst: { type: 'string', minLength: 1, maxLength: 253, description: 'only the column with this name' },
          failing: { type: 'boolean', default: false, description: 'only cells with at least one error' }
        }
      },
      response: { 200: matrixSchema, 400: errorSchema }
    },
    // A node matrix can hold a million cells; the built-in JSON.stringify serialises those about
    // ten times faster than the schema-compiled serialiser. buildMatrix emits exactly the schema's fields.
    serializerCompiler: () => data => JSON.stringify(data)
  }, async request => {
    const { probe, groupBy, src, dst, failing } = request.query
    return matrixView(deps, { probe, groupBy, windowMs: queryWindow(request.query.window, deps.maxWindowMs), src, dst, failing })
  })

  app.get('/api/v1/agents', {
    schema: {
      summary: 'Agents known to the aggregator, with delivery counters',
      querystring: { type: 'object', additionalProperties: false, properties: {} },
      response: { 200: { type: 'object', required: ['agents'], additionalProperties: false, properties: { agents: { type: 'array', items: agentSchema } } } }
    }
  }, async () => ({ agents: listAgents(deps) }))
}
