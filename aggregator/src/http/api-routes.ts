// The JSON API: the matrix and the agent list. Every route has request and response schemas.

import type { FastifyInstance } from 'fastify'
import { formatDuration, PEER_PROBE_KINDS, PROBE_KIND_NAMES, type ProbeKind } from '@pingfleet/protocol'
import type { AgentHealth } from '../fleet/agent-health.ts'
import type { Discovery } from '../kube/discovery.ts'
import { AggregatorError, ERR_MATRIX_TOO_LARGE } from '../errors.ts'
import { BY_NODE, type Fleet } from '../fleet/fleet.ts'
import { peerNode } from '../store/ingest.ts'
import { buildMatrix, type MatrixCell } from '../views/matrix.ts'
import type { Store } from '../store/store.ts'
import { errorSchema, queryWindow, spanEdge } from './query.ts'

export interface ApiDeps {
  nodes: Store
  groups: Store
  fleet: Fleet
  maxWindowMs: number
  /** PINGFLEET_MAX_MATRIX_CELLS: larger answers are refused with a hint to filter. */
  maxMatrixCells?: number
  now: () => number
  /** In-cluster discovery: expected agents that never connected are listed too. */
  discovery?: Discovery | null
  /** Each agent's degraded verdict and CPU throttling; without it every agent reads not degraded. */
  health?: AgentHealth
}

const nullableSeconds = { type: ['number', 'null'] } as const
const counts = { type: 'object', additionalProperties: { type: 'integer' } } as const

export const matrixSchema = {
  type: 'object',
  required: ['probe', 'groupBy', 'window', 'from', 'to', 'generatedAt', 'rows', 'cols', 'cells'],
  additionalProperties: false,
  properties: {
    probe: { type: 'string' },
    groupBy: { type: 'string' },
    window: { type: 'string' },
    from: spanEdge('start'),
    to: spanEdge('end'),
    generatedAt: { type: 'string', format: 'date-time' },
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
          latency: {
            type: 'object',
            required: ['p50', 'p90', 'p99'],
            additionalProperties: false,
            properties: { p50: nullableSeconds, p90: nullableSeconds, p99: nullableSeconds }
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
      required: ['accepted', 'duplicates', 'firstSeq', 'lastSeq'],
      additionalProperties: false,
      properties: { accepted: { type: 'integer' }, duplicates: { type: 'integer' }, firstSeq: { type: ['integer', 'null'] }, lastSeq: { type: 'integer' } }
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

export async function apiRoutes (app: FastifyInstance, deps: ApiDeps): Promise<void> {
  const peerKinds = new Set<string>(PEER_PROBE_KINDS)

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
    const windowMs = queryWindow(request.query.window, deps.maxWindowMs)
    const now = deps.now()
    const peer = peerKinds.has(probe)
    // Filters apply to row and column names before any data is read, so a row costs a row.
    const only = (wanted: string | undefined, name: string): string | null => wanted === undefined || wanted === name ? name : null
    const keep = failing ? (cell: MatrixCell) => cell.errors > 0 : undefined
    const limit = {
      maxCells: deps.maxMatrixCells,
      tooLarge: (cells: number) => new AggregatorError(ERR_MATRIX_TOO_LARGE,
        `the matrix has ${cells} cells, more than PINGFLEET_MAX_MATRIX_CELLS=${deps.maxMatrixCells}: ask for one row (src=), one column (dst=), failing=true, or group by a label`, 400)
    }
    let result
    if (groupBy === deps.fleet.groupLabel) {
      // Pre-summed per group at ingest: cheap at any fleet size.
      result = buildMatrix(deps.groups, { probe, windowMs, now, rowOf: name => only(src, name), colOf: name => only(dst, name), keep, failingOnly: failing, ...limit })
    } else {
      const labelOf = deps.fleet.grouping(groupBy)
      // By node, an mtu column keeps its size (`node/8500`); by a label, sizes fold into the peer's group.
      const colOf = (target: string): string => peer && groupBy !== BY_NODE ? labelOf(peerNode(target)) : target
      result = buildMatrix(deps.nodes, { probe, windowMs, now, rowOf: name => only(src, labelOf(name)), colOf: name => only(dst, colOf(name)), keep, failingOnly: failing, ...limit })
    }
    // Field order as in matrixSchema: the serialiser is plain JSON.stringify.
    return {
      probe,
      groupBy,
      window: formatDuration(windowMs),
      from: new Date(result.from).toISOString(),
      to: new Date(result.to).toISOString(),
      generatedAt: new Date(now).toISOString(),
      rows: result.rows,
      cols: result.cols,
      cells: result.cells
    }
  })

  app.get('/api/v1/agents', {
    schema: {
      summary: 'Agents known to the aggregator, with delivery counters',
      response: { 200: { type: 'object', required: ['agents'], additionalProperties: false, properties: { agents: { type: 'array', items: agentSchema } } } }
    }
  }, async () => {
    const healthOf = (node: string) => {
      const verdict = deps.health?.verdict(node)
      const cpu = deps.health?.cpu(node) ?? null
      return {
        degraded: verdict?.degraded ?? false,
        degradedReason: verdict?.degradedReason ?? null,
        degradedDetail: verdict?.degradedDetail ?? null,
        laggedRatio: verdict?.laggedRatio ?? null,
        cpu: cpu === null ? null : { periods: cpu.periods, throttledPeriods: cpu.throttledPeriods, throttledSeconds: cpu.throttledUsec / 1e6 }
      }
    }
    const discovery = deps.discovery ?? null
    const missing = new Map((discovery?.missing() ?? []).map(m => [m.node, m]))
    const roster = deps.fleet.roster
    const known = roster.all().map(a => ({
      node: a.node,
      pod: a.pod,
      podIp: a.podIp,
      port: a.port,
      labels: a.labels,
      group: deps.fleet.groupOfAgent(a),
      version: a.version,
      bootId: a.bootId,
      state: a.state,
      connected: a.connected,
      reason: a.connected ? null : missing.get(a.node)?.reason ?? discovery?.unexpectedReason(a.node) ?? 'disconnected; kept until PINGFLEET_PEER_TTL',
      lastReportAt: a.lastReportAt === null ? null : new Date(a.lastReportAt).toISOString(),
      clockOffsetSeconds: a.clockOffsetMs === null ? null : a.clockOffsetMs / 1000,
      reports: { accepted: a.accepted, duplicates: a.duplicates, firstSeq: a.firstSeq, lastSeq: a.lastSeq.get(a.bootId) ?? 0 },
      ...healthOf(a.node)
    }))
    // Expected by Kubernetes but never heard from: the nodes whose agent cannot reach us.
    for (const m of missing.values()) {
      if (roster.get(m.node) !== undefined) continue
      known.push({
        node: m.node, pod: m.pod, podIp: m.podIp, port: 0, labels: m.labels, group: deps.fleet.groupOfLabels(m.labels), version: '', bootId: '',
        state: 'ready', connected: false, reason: m.reason, lastReportAt: null, clockOffsetSeconds: null, reports: { accepted: 0, duplicates: 0, firstSeq: null, lastSeq: 0 },
        ...healthOf(m.node)
      })
    }
    return { agents: known.sort((a, b) => a.node.localeCompare(b.node)) }
  })
}
