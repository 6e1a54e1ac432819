// The wire contract: every message either side sends, as a TypeScript type and a JSON Schema.
// A message is one JSON text in one websocket frame; `v` is the protocol version.

import { BUCKET_COUNT, type SparseHistogram } from './histogram.ts'
import { PHASE_NAMES, PROBE_KIND_NAMES, type Phase, type ProbeKind } from './probes.ts'
import { REASON_CODES, type Reason } from './reasons.ts'

export const PROTOCOL_VERSION = 1
/** Path of the agent's websocket on the aggregator, below the aggregator's base URL (which may carry a prefix). */
export const STREAM_PATH = '/api/v1/stream'
/** Largest frame either side accepts; a 5,000-target report stays well below it. */
export const MAX_FRAME_BYTES = 4 * 1024 * 1024
export const MAX_CELLS_PER_REPORT = 20_000
/** Distinct backends one service cell may name; more than a Service has behind it is a bug. */
export const MAX_BACKENDS_PER_CELL = 256

export type Labels = Record<string, string>
export type PeerState = 'ready' | 'draining' | 'terminating'

export interface Hello {
  type: 'hello'
  v: number
  node: string
  pod: string
  podIp: string
  /** Port of this agent's /ping server. */
  port: number
  labels: Labels
  version: string
  /** Random per process start, so the aggregator can tell a restart from a reconnect. */
  bootId: string
  /**
   * Milliseconds since this agent process started, on its monotonic clock, when the hello was sent.
   * When two processes claim one node, the aggregator keeps the newer boot (a DaemonSet maxSurge
   * rollout's new pod) without trusting either wall clock. Optional: older agents omit it.
   */
  uptimeMs?: number
}

export interface Welcome {
  type: 'welcome'
  v: number
  /** Highest report seq already accepted for this node and bootId; 0 when none. */
  lastSeq: number
  settings: { intervalMs: number }
  /** Labels the aggregator holds for this node (from Kubernetes when in-cluster). */
  labels: Labels
}

export interface Peer {
  node: string
  podIp: string
  port: number
  labels: Labels
  state: PeerState
}

export interface Peers {
  type: 'peers'
  v: number
  revision: number
  peers: Peer[]
}

export interface CellError {
  reason: Reason
  /** What the runtime said, for example EAI_NODATA or UND_ERR_CONNECT_TIMEOUT. */
  raw: string
  count: number
}

/** A backend that answered a service probe: the node its /ping answer named. */
export interface CellBackend {
  node: string
  count: number
}

export interface Cell {
  probe: ProbeKind
  /**
   * The matrix column. For `pod` the peer's node name; for `mtu` `<peer node>/<response size>`,
   * e.g. `node-a/8500` (node names never contain `/`); for the other kinds the probed target as configured.
   */
  target: string
  /** Probes that finished in the window, failed ones included. */
  count: number
  /** Latencies of successful probes that were not taken during event-loop lag. */
  latency: SparseHistogram
  errors?: CellError[]
  /** Probes whose timing is untrustworthy because the agent's event loop was late. */
  lagged?: number
  /** `service` cells: which backends answered the successful probes, and how often. */
  backends?: CellBackend[]
  /**
   * Kinds in CONNECT_PROBE_KINDS: of the successful probes not taken during lag, those whose TCP handshake
   * took SYN_RTO_SECONDS (1 s) or more, i.e. lost a SYN or SYN-ACK at least once. Feature `slow-connects`.
   */
  slowConnects?: number
  /** `udp` cells: datagrams sent over every train of the window, and those whose echo never came back. Feature `udp`. */
  sent?: number
  lost?: number
  /**
   * `udp` cells, trains not taken during lag: the sum of |RTT difference| between consecutive echoes of a train,
   * in whole microseconds, and how many such differences were summed (mean = jitterUs / jitterPairs).
   */
  jitterUs?: number
  jitterPairs?: number
  /**
   * Kinds in PHASE_PROBE_KINDS: per-phase latency histograms of the same probes as `latency` (successful,
   * not taken during lag), in its sparse layout; a phase the probe did not go through is absent
   * (`dns` without a name to resolve, `tls` without TLS). The total is `latency`. Feature `phases`.
   */
  phases?: Partial<Record<Phase, SparseHistogram>>
}

/**
 * The agent's CPU throttling, from its cgroup v2 `cpu.stat`: counters since the cgroup was created
 * (a restarted container starts again from zero). Optional in a report, and sent only to an
 * aggregator that announced `report-cpu` (see FEATURES_HEADER).
 */
export interface CpuThrottling {
  /** `nr_periods`: enforcement periods that ran (0 when the cgroup has no CPU limit). */
  periods: number
  /** `nr_throttled`: periods in which the cgroup used up its quota and was throttled. */
  throttledPeriods: number
  /** `throttled_usec`: total time the cgroup spent throttled, microseconds. */
  throttledUsec: number
}

export interface Report {
  type: 'report'
  v: number
  seq: number
  /** Window the cells cover, milliseconds since the epoch on the agent's clock. */
  start: number
  end: number
  /**
   * Milliseconds on the agent's monotonic clock from `end` until this frame was written: 0 for a
   * live report, the outage's length for a buffered re-send. The aggregator files the report at
   * (receive time − ageMs) on its own clock, so a wrong agent clock neither drops nor misplaces
   * data, and measures the agent's clock offset as end − (receive time − ageMs). Without it (older
   * agents) the report is filed at `end`.
   */
  ageMs?: number
  cells: Cell[]
  cpu?: CpuThrottling
}

/**
 * HTTP header on the aggregator's websocket upgrade answer (101) listing optional message fields it
 * accepts, comma-separated. The schemas reject unknown fields, so an agent sends an optional field an
 * older aggregator would not know only when this header names it; an older agent ignores the header.
 */
export const FEATURES_HEADER = 'pingfleet-features'
/** The feature name for Report.cpu. */
export const FEATURE_REPORT_CPU = 'report-cpu'
/** The feature name for Report.ageMs (reports placed by receive time minus their age). */
export const FEATURE_REPORT_AGE = 'report-age'
/** The feature name for Hello.uptimeMs (which of two agents claiming a node booted last). */
export const FEATURE_HELLO_UPTIME = 'hello-uptime'

export interface Ack {
  type: 'ack'
  v: number
  seq: number
}

export type AgentMessage = Hello | Report
export type AggregatorMessage = Welcome | Peers | Ack
export type Message = AgentMessage | AggregatorMessage

const name = { type: 'string', minLength: 1, maxLength: 253 } as const
const labels = {
  type: 'object',
  maxProperties: 64,
  propertyNames: { maxLength: 317 },
  additionalProperties: { type: 'string', maxLength: 63 }
} as const
const version = { type: 'integer', const: PROTOCOL_VERSION } as const
const seq = { type: 'integer', minimum: 1, maximum: Number.MAX_SAFE_INTEGER } as const
const count = { type: 'integer', minimum: 0, maximum: 1_000_000_000 } as const
const port = { type: 'integer', minimum: 1, maximum: 65535 } as const
const counter = { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER } as const
const ip = { type: 'string', minLength: 2, maxLength: 45 } as const
const sparseHistogram = { type: 'array', maxItems: BUCKET_COUNT * 2, items: { type: 'integer', minimum: 0 } } as const

export const helloSchema = {
  $id: 'pingfleet/hello',
  type: 'object',
  required: ['type', 'v', 'node', 'pod', 'podIp', 'port', 'labels', 'version', 'bootId'],
  additionalProperties: false,
  properties: {
    type: { const: 'hello' },
    v: version,
    node: name,
    pod: name,
    podIp: ip,
    port,
    labels,
    version: { type: 'string', maxLength: 64 },
    bootId: { type: 'string', minLength: 8, maxLength: 64 },
    uptimeMs: { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER }
  }
} as const

export const welcomeSchema = {
  $id: 'pingfleet/welcome',
  type: 'object',
  required: ['type', 'v', 'lastSeq', 'settings', 'labels'],
  additionalProperties: false,
  properties: {
    type: { const: 'welcome' },
    v: version,
    lastSeq: { type: 'integer', minimum: 0 },
    settings: {
      type: 'object',
      required: ['intervalMs'],
      additionalProperties: false,
      properties: { intervalMs: { type: 'integer', minimum: 10 } }
    },
    labels
  }
} as const

export const peersSchema = {
  $id: 'pingfleet/peers',
  type: 'object',
  required: ['type', 'v', 'revision', 'peers'],
  additionalProperties: false,
  properties: {
    type: { const: 'peers' },
    v: version,
    revision: { type: 'integer', minimum: 0 },
    peers: {
      type: 'array',
      maxItems: 20_000,
      items: {
        type: 'object',
        required: ['node', 'podIp', 'port', 'labels', 'state'],
        additionalProperties: false,
        properties: {
          node: name,
          podIp: ip,
          port,
          labels,
          state: { enum: ['ready', 'draining', 'terminating'] }
        }
      }
    }
  }
} as const

export const reportSchema = {
  $id: 'pingfleet/report',
  type: 'object',
  required: ['type', 'v', 'seq', 'start', 'end', 'cells'],
  additionalProperties: false,
  properties: {
    type: { const: 'report' },
    v: version,
    seq,
    start: { type: 'integer', minimum: 0 },
    end: { type: 'integer', minimum: 0 },
    ageMs: { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER },
    cpu: {
      type: 'object',
      required: ['periods', 'throttledPeriods', 'throttledUsec'],
      additionalProperties: false,
      properties: { periods: counter, throttledPeriods: counter, throttledUsec: counter }
    },
    cells: {
      type: 'array',
      maxItems: MAX_CELLS_PER_REPORT,
      items: {
        type: 'object',
        required: ['probe', 'target', 'count', 'latency'],
        additionalProperties: false,
        properties: {
          probe: { enum: PROBE_KIND_NAMES },
          target: name,
          count,
          latency: sparseHistogram,
          errors: {
            type: 'array',
            maxItems: 64,
            items: {
              type: 'object',
              required: ['reason', 'raw', 'count'],
              additionalProperties: false,
              properties: {
                reason: { enum: REASON_CODES },
                raw: { type: 'string', maxLength: 64 },
                count: { type: 'integer', minimum: 1, maximum: 1_000_000_000 }
              }
            }
          },
          lagged: count,
          slowConnects: count,
          sent: count,
          lost: count,
          jitterUs: { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER },
          jitterPairs: count,
          phases: {
            type: 'object',
            additionalProperties: false,
            properties: Object.fromEntries(PHASE_NAMES.map(p => [p, sparseHistogram]))
          },
          backends: {
            type: 'array',
            maxItems: MAX_BACKENDS_PER_CELL,
            items: {
              type: 'object',
              required: ['node', 'count'],
              additionalProperties: false,
              properties: { node: name, count: { type: 'integer', minimum: 1, maximum: 1_000_000_000 } }
            }
          }
        }
      }
    }
  }
} as const

export const ackSchema = {
  $id: 'pingfleet/ack',
  type: 'object',
  required: ['type', 'v', 'seq'],
  additionalProperties: false,
  properties: { type: { const: 'ack' }, v: version, seq }
} as const

export const MESSAGE_SCHEMAS = {
  hello: helloSchema,
  welcome: welcomeSchema,
  peers: peersSchema,
  report: reportSchema,
  ack: ackSchema
} as const
