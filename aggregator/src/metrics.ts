// The fleet metrics on /metrics: per group pair and per node, never per node pair, so the
// exposition stays O(groups² + nodes). Values come from the running totals at scrape time.

import { Gauge, Registry } from 'prom-client'
import { bucketValue, BUCKET_COUNT, PROBE_KIND_NAMES } from '@pingfleet/protocol'
import type { Roster } from './roster.ts'
import type { NodeTotals, Totals } from './totals.ts'
import { UNKNOWN_GROUP } from './ingest.ts'

/** Prometheus buckets; 1, 3, 5 and 10 s are there to show SYN retransmits and DNS timeouts. */
export const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 3, 5, 10, 30] as const

// Which Prometheus bucket each fine bucket falls in, by the fine bucket's midpoint.
const PROM_BUCKET_OF = new Int32Array(BUCKET_COUNT)
for (let i = 0; i < BUCKET_COUNT; i++) {
  const v = bucketValue(i)
  let b = LATENCY_BUCKETS.findIndex(le => v <= le)
  if (b === -1) b = LATENCY_BUCKETS.length
  PROM_BUCKET_OF[i] = b
}

type Value = { value: number, labels: Record<string, string | number>, metricName?: string }

function family (registry: Registry, name: string, help: string, type: 'counter' | 'gauge' | 'histogram', values: () => Value[]): void {
  registry.registerMetric({
    name,
    get: async () => ({ name, help, type, values: values(), aggregator: 'sum' })
  } as unknown as Parameters<Registry['registerMetric']>[0])
}

export interface FleetMetricsOptions {
  registry: Registry
  totals: Totals
  roster: Roster
  groupLabel: string
  version: string
  now?: () => number
}

export function registerFleetMetrics (options: FleetMetricsOptions): void {
  const { registry, totals, roster, groupLabel } = options
  const now = options.now ?? Date.now

  new Gauge({
    name: 'pingfleet_build_info',
    help: 'Always 1; labels carry the running version.',
    labelNames: ['version', 'nodejs'],
    registers: [registry]
  }).set({ version: options.version, nodejs: process.versions.node }, 1)

  family(registry, 'pingfleet_probes_total', 'Probes finished, by probe kind, source group and destination (group, or target for non-peer probes).', 'counter', () => {
    const out: Value[] = []
    for (const p of totals.pairs.values()) out.push({ value: p.count, labels: { probe: p.probe, src_group: p.src, dst_group: p.dst } })
    return out
  })

  family(registry, 'pingfleet_probe_errors_total', 'Failed probes by reason; every failure has exactly one reason.', 'counter', () => {
    const out: Value[] = []
    for (const p of totals.pairs.values()) {
      for (const [reason, n] of p.errors) out.push({ value: n, labels: { probe: p.probe, src_group: p.src, dst_group: p.dst, reason } })
    }
    return out
  })

  family(registry, 'pingfleet_probe_duration_seconds', 'Latency of successful probes, by group pair.', 'histogram', () => {
    const out: Value[] = []
    const counts = new Float64Array(LATENCY_BUCKETS.length + 1)
    for (const p of totals.pairs.values()) {
      counts.fill(0)
      let sum = 0
      let total = 0
      for (let i = 0; i < BUCKET_COUNT; i++) {
        const n = p.latency[i]!
        if (n === 0) continue
        counts[PROM_BUCKET_OF[i]!]! += n
        sum += n * bucketValue(i)
        total += n
      }
      const labels = { probe: p.probe, src_group: p.src, dst_group: p.dst }
      let cumulative = 0
      for (let b = 0; b < LATENCY_BUCKETS.length; b++) {
        cumulative += counts[b]!
        out.push({ value: cumulative, labels: { ...labels, le: LATENCY_BUCKETS[b]! }, metricName: 'pingfleet_probe_duration_seconds_bucket' })
      }
      out.push({ value: total, labels: { ...labels, le: '+Inf' }, metricName: 'pingfleet_probe_duration_seconds_bucket' })
      out.push({ value: sum, labels, metricName: 'pingfleet_probe_duration_seconds_sum' })
      out.push({ value: total, labels, metricName: 'pingfleet_probe_duration_seconds_count' })
    }
    return out
  })

  const perNode = (pick: (n: NodeTotals, direction: 'in' | 'out') => Float64Array) => (): Value[] => {
    const out: Value[] = []
    for (const n of totals.nodes.values()) {
      for (const direction of ['out', 'in'] as const) {
        const values = pick(n, direction)
        for (let k = 0; k < PROBE_KIND_NAMES.length; k++) {
          if (n[direction === 'out' ? 'outCount' : 'inCount'][k] === 0) continue
          out.push({ value: values[k]!, labels: { node: n.node, direction, probe: PROBE_KIND_NAMES[k]! } })
        }
      }
    }
    return out
  }
  family(registry, 'pingfleet_node_probes_total', 'Probes from (out) or toward (in) each node, by probe kind.', 'counter',
    perNode((n, d) => d === 'out' ? n.outCount : n.inCount))
  family(registry, 'pingfleet_node_probe_errors_total', 'Failed probes from (out) or toward (in) each node, by probe kind.', 'counter',
    perNode((n, d) => d === 'out' ? n.outErrors : n.inErrors))

  family(registry, 'pingfleet_agents', 'Agents known to the aggregator, by group and state.', 'gauge', () => {
    const counts = new Map<string, number>()
    for (const a of roster.all()) {
      const key = (a.labels[groupLabel] ?? UNKNOWN_GROUP) + '\u0000' + (a.connected ? 'connected' : 'disconnected')
      counts.set(key, (counts.get(key) ?? 0) + 1)
    }
    return [...counts].map(([key, value]) => {
      const [group, state] = key.split('\u0000')
      return { value, labels: { group: group!, state: state! } }
    })
  })

  family(registry, 'pingfleet_node_last_report_age_seconds', 'Seconds since each known node\'s last accepted report (data freshness).', 'gauge', () => {
    const t = now()
    return roster.all().filter(a => a.lastReportAt !== null).map(a => ({ value: (t - a.lastReportAt!) / 1000, labels: { node: a.node } }))
  })
}
