// The fleet metrics on /metrics: per group pair, per configured target and per node, never per
// node pair, so the exposition stays O(groups² + nodes). Values come from the running totals at
// scrape time. docs/metrics.md lists every family with its cardinality.

import { Gauge, type Registry } from 'prom-client'
import { CONNECT_PROBE_KINDS, PEER_PROBE_KINDS, PHASE_NAMES, PrometheusBuckets, PROBE_KIND_NAMES, type Histogram } from '@pingfleet/protocol'
import type { AgentHealth } from '../fleet/agent-health.ts'
import type { Fleet } from '../fleet/fleet.ts'
import type { NodeTotals, PairTotals, Totals } from '../store/totals.ts'

/** Prometheus buckets; 1, 3, 5 and 10 s are there to show SYN retransmits and DNS timeouts. */
export const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 3, 5, 10, 30] as const

/** Connected agents with no accepted report for this long count as stale. */
export const DEFAULT_STALE_AFTER_MS = 30_000

const PROM_BUCKETS = new PrometheusBuckets(LATENCY_BUCKETS)

const isPeerKind = new Set<string>(PEER_PROBE_KINDS)
const isConnectKind = new Set<string>(CONNECT_PROBE_KINDS)

type Labels = Readonly<Record<string, string | number>>
/** `sharedLabels` carries a series' labels: prom-client caches their rendering per object. */
type Value = { value: number, labels: Labels, sharedLabels: Labels, metricName?: string }

const NO_LABELS: Labels = Object.freeze({})
const LE_LABELS: Labels[] = [...LATENCY_BUCKETS.map(le => Object.freeze({ le })), Object.freeze({ le: '+Inf' })]

/**
 * Label objects kept from one scrape to the next, by key. prom-client renders (escapes and joins) a
 * sharedLabels object once and caches the text by identity, so a stable object renders once, not
 * every scrape. Entries not used in a scrape are dropped at its end.
 */
class LabelCache {
  private previous = new Map<string, Labels>()
  private current = new Map<string, Labels>()

  get (key: string, make: () => Record<string, string | number>): Labels {
    let labels = this.current.get(key)
    if (labels === undefined) {
      labels = this.previous.get(key) ?? Object.freeze(make())
      this.current.set(key, labels)
    }
    return labels
  }

  sweep (): void {
    this.previous = this.current
    this.current = new Map()
  }
}

function family (registry: Registry, name: string, help: string, type: 'counter' | 'gauge' | 'histogram' | 'summary', values: (labels: LabelCache) => Value[]): void {
  const cache = new LabelCache()
  registry.registerMetric({
    name,
    get: async () => {
      const out = values(cache)
      cache.sweep()
      return { name, help, type, values: out, aggregator: 'sum' }
    }
  } as unknown as Parameters<Registry['registerMetric']>[0])
}

const series = (value: number, sharedLabels: Labels, metricName?: string): Value =>
  metricName === undefined ? { value, labels: NO_LABELS, sharedLabels } : { value, labels: NO_LABELS, sharedLabels, metricName }

/**
 * Peer probes (pod, mtu) are labelled by destination group; every other kind by its target id,
 * which comes from the agents' configuration and so is a bounded set.
 */
function pairLabels (p: PairTotals): Record<string, string> {
  return isPeerKind.has(p.probe)
    ? { probe: p.probe, src_group: p.src, dst_group: p.dst }
    : { probe: p.probe, src_group: p.src, target: p.dst }
}

const pairKey = (p: PairTotals): string => p.probe + '\u0000' + p.src + '\u0000' + p.dst

/** The DNS reason every getaddrinfo series starts at zero with, so a spike from nothing has a baseline. */
const DNS_PRIMED_REASON = 'ENOTFOUND'

interface DnsKey { src_group: string, path: 'getaddrinfo' | 'wire', resolver: string }

/**
 * Splits a DNS target id into resolver path and resolver: `<name>@getaddrinfo[/4|/6]` is the
 * system resolver through getaddrinfo; `<name>@<server>:<port>/<type>[/tcp]` is one server on the wire.
 */
export function dnsKey (probe: string, src: string, target: string): DnsKey | null {
  if (probe !== 'dns-lookup' && probe !== 'dns-wire') return null
  if (probe === 'dns-lookup') return { src_group: src, path: 'getaddrinfo', resolver: 'system' }
  const at = target.indexOf('@')
  const rest = at === -1 ? '' : target.slice(at + 1)
  const slash = rest.indexOf('/')
  return { src_group: src, path: 'wire', resolver: (slash === -1 ? rest : rest.slice(0, slash)) || 'unknown' }
}

interface DnsSums { key: DnsKey, count: number, errors: Map<string, number> }

function dnsSums (totals: Totals): Map<string, DnsSums> {
  const out = new Map<string, DnsSums>()
  for (const p of totals.pairs.values()) {
    const key = dnsKey(p.probe, p.src, p.dst)
    if (key === null) continue
    const id = key.src_group + '\u0000' + key.path + '\u0000' + key.resolver
    let sums = out.get(id)
    if (sums === undefined) {
      out.set(id, sums = { key, count: 0, errors: new Map() })
      if (key.path === 'getaddrinfo') sums.errors.set(DNS_PRIMED_REASON, 0)
    }
    sums.count += p.count
    for (const [reason, n] of p.errors) sums.errors.set(reason, (sums.errors.get(reason) ?? 0) + n)
  }
  return out
}

export interface FleetMetricsOptions {
  registry: Registry
  totals: Totals
  /** Agents, their groups, and the agents each group should have (Fleet.expectedAgents, as gates read it). */
  fleet: Fleet
  /** Per-node lagged ratio, degraded flag and CPU throttling; those families are left out without it. */
  health?: AgentHealth
  version: string
  now?: () => number
  staleAfterMs?: number
}

/**
 * Registers the fleet's families on `registry`; values are computed at scrape time from the totals
 * and the fleet model. Staleness is in ms (default DEFAULT_STALE_AFTER_MS). Throws nothing.
 */
export function registerFleetMetrics (options: FleetMetricsOptions): void {
  const { registry, totals, fleet } = options
  const roster = fleet.roster
  const now = options.now ?? Date.now
  const staleAfterMs = options.staleAfterMs ?? DEFAULT_STALE_AFTER_MS

  new Gauge({
    name: 'pingfleet_build_info',
    help: 'Always 1; labels carry the running version.',
    labelNames: ['version', 'nodejs'],
    registers: [registry]
  }).set({ version: options.version, nodejs: process.versions.node }, 1)

  family(registry, 'pingfleet_probes_total', 'Probes finished, failed ones included, by probe kind, source group and destination group (peer probes) or target (other probes).', 'counter', cache => {
    const out: Value[] = []
    for (const p of totals.pairs.values()) out.push(series(p.count, cache.get(pairKey(p), () => pairLabels(p))))
    return out
  })

  family(registry, 'pingfleet_probe_errors_total', 'Failed probes by reason; every failure has exactly one reason.', 'counter', cache => {
    const out: Value[] = []
    for (const p of totals.pairs.values()) {
      const key = pairKey(p)
      for (const [reason, n] of p.errors) out.push(series(n, cache.get(key + '\u0000' + reason, () => ({ ...pairLabels(p), reason }))))
    }
    return out
  })

  /** Histogram series of `hist` under `labels`: the buckets, _sum and _count of family `name`. */
  const histogramSeries = (out: Value[], name: string, hist: Histogram, labels: Labels, counts: Float64Array): void => {
    const { sum, count: total } = PROM_BUCKETS.cumulative(hist, counts)
    for (let b = 0; b < LATENCY_BUCKETS.length; b++) {
      out.push({ value: counts[b]!, labels: LE_LABELS[b]!, sharedLabels: labels, metricName: name + '_bucket' })
    }
    out.push({ value: total, labels: LE_LABELS[LATENCY_BUCKETS.length]!, sharedLabels: labels, metricName: name + '_bucket' })
    out.push(series(sum, labels, name + '_sum'))
    out.push(series(total, labels, name + '_count'))
  }

  family(registry, 'pingfleet_probe_duration_seconds', 'Latency of successful probes, by probe kind, source group and destination group or target.', 'histogram', cache => {
    const out: Value[] = []
    const counts = new Float64Array(LATENCY_BUCKETS.length + 1)
    for (const p of totals.pairs.values()) histogramSeries(out, 'pingfleet_probe_duration_seconds', p.latency, cache.get(pairKey(p), () => pairLabels(p)), counts)
    return out
  })

  // Per phase, the same pairs and buckets: a pair gets a phase's series once its probes reported that phase.
  family(registry, 'pingfleet_probe_phase_duration_seconds', 'Latency of each phase of successful probes (dns, connect, tls, firstByte), by probe kind, source group and destination group or target, and phase; the same probes as pingfleet_probe_duration_seconds.', 'histogram', cache => {
    const out: Value[] = []
    const counts = new Float64Array(LATENCY_BUCKETS.length + 1)
    for (const p of totals.pairs.values()) {
      for (const phase of PHASE_NAMES) {
        const hist = p.phases[phase]
        if (hist === undefined) continue
        histogramSeries(out, 'pingfleet_probe_phase_duration_seconds', hist, cache.get(pairKey(p) + '\u0000' + phase, () => ({ ...pairLabels(p), phase })), counts)
      }
    }
    return out
  })

  // Loss apart from errors: the SYN-retransmit signature of connecting probes, and the udp probe's datagrams.
  family(registry, 'pingfleet_probe_slow_connects_total', 'Successful probes whose TCP handshake took 1 s or more (a SYN or SYN-ACK retransmit), by probe kind, source group and destination group or target; divided by the rate of pingfleet_probe_duration_seconds_count it is the retransmit ratio.', 'counter', cache => {
    const out: Value[] = []
    for (const p of totals.pairs.values()) {
      if (isConnectKind.has(p.probe)) out.push(series(p.loss?.slowConnects ?? 0, cache.get(pairKey(p), () => pairLabels(p))))
    }
    return out
  })

  const udpPairs = (): PairTotals[] => [...totals.pairs.values()].filter(p => p.probe === 'udp')
  const udpLabels = (cache: LabelCache, p: PairTotals): Labels => cache.get(pairKey(p), () => ({ src_group: p.src, dst_group: p.dst }))
  family(registry, 'pingfleet_udp_datagrams_sent_total', 'Datagrams the udp probe sent and judged (echoed, or waited for long enough), by source and destination group.', 'counter', cache =>
    udpPairs().map(p => series(p.loss?.sent ?? 0, udpLabels(cache, p))))
  family(registry, 'pingfleet_udp_datagrams_lost_total', 'Datagrams the udp probe sent that were never echoed (lost in either direction), by source and destination group.', 'counter', cache =>
    udpPairs().map(p => series(p.loss?.lost ?? 0, udpLabels(cache, p))))
  family(registry, 'pingfleet_udp_jitter_seconds', 'The udp probe\'s |RTT difference| between consecutive echoes of a train (RFC 3393 delay variation), by source and destination group: _sum over _count is the mean jitter.', 'summary', cache => {
    const out: Value[] = []
    for (const p of udpPairs()) {
      const labels = udpLabels(cache, p)
      out.push(series((p.loss?.jitterUs ?? 0) / 1e6, labels, 'pingfleet_udp_jitter_seconds_sum'))
      out.push(series(p.loss?.jitterPairs ?? 0, labels, 'pingfleet_udp_jitter_seconds_count'))
    }
    return out
  })

  family(registry, 'pingfleet_dns_queries_total', 'DNS probes by source group, resolver path (getaddrinfo or wire) and resolver (system, or server:port).', 'counter', () =>
    [...dnsSums(totals).values()].map(s => series(s.count, { ...s.key })))

  family(registry, 'pingfleet_dns_errors_total', 'Failed DNS probes by source group, resolver path, resolver and reason; getaddrinfo ENOTFOUND starts at 0.', 'counter', () => {
    const out: Value[] = []
    for (const s of dnsSums(totals).values()) {
      for (const [reason, n] of s.errors) out.push(series(n, { ...s.key, reason }))
    }
    return out
  })

  const perNode = (pick: (n: NodeTotals, direction: 'in' | 'out') => Float64Array) => (cache: LabelCache): Value[] => {
    const out: Value[] = []
    for (const n of totals.nodes.values()) {
      const group = fleet.groupOf(n.node)
      for (const direction of ['out', 'in'] as const) {
        const values = pick(n, direction)
        const counts = direction === 'out' ? n.outCount : n.inCount
        for (let k = 0; k < PROBE_KIND_NAMES.length; k++) {
          if (counts[k] === 0) continue
          const probe = PROBE_KIND_NAMES[k]!
          out.push(series(values[k]!, cache.get(n.node + '\u0000' + group + '\u0000' + direction + probe, () => ({ node: n.node, group, direction, probe }))))
        }
      }
    }
    return out
  }
  family(registry, 'pingfleet_node_probes_total', 'Probes from (direction="out") or toward (direction="in", peer probes only) each node, by probe kind.', 'counter',
    perNode((n, d) => d === 'out' ? n.outCount : n.inCount))
  family(registry, 'pingfleet_node_probe_errors_total', 'Failed probes from (out) or toward (in) each node, by probe kind.', 'counter',
    perNode((n, d) => d === 'out' ? n.outErrors : n.inErrors))

  // Expected, connected and stale agents per group share one pass over the roster per scrape.
  const agentCounts = (): Map<string, { expected: number, connected: number, stale: number }> => {
    const t = now()
    const out = new Map<string, { expected: number, connected: number, stale: number }>()
    const entry = (group: string): { expected: number, connected: number, stale: number } => {
      let e = out.get(group)
      if (e === undefined) out.set(group, e = { expected: 0, connected: 0, stale: 0 })
      return e
    }
    for (const [group, n] of fleet.expectedAgents()) entry(group).expected = n
    for (const a of roster.all()) {
      if (!a.connected) continue
      const e = entry(fleet.groupOfAgent(a))
      e.connected++
      const since = a.lastReportAt ?? a.connectedAt ?? t
      if (t - since > staleAfterMs) e.stale++
    }
    return out
  }
  family(registry, 'pingfleet_agents_expected', 'Agents each group should have (from discovery in-cluster, else the agents the roster knows).', 'gauge', () =>
    [...agentCounts()].map(([group, c]) => series(c.expected, { group })))
  family(registry, 'pingfleet_agents_connected', 'Agents with an open websocket to the aggregator, by group.', 'gauge', () =>
    [...agentCounts()].map(([group, c]) => series(c.connected, { group })))
  family(registry, 'pingfleet_agents_stale', `Connected agents with no accepted report for ${staleAfterMs / 1000} s, by group.`, 'gauge', () =>
    [...agentCounts()].map(([group, c]) => series(c.stale, { group })))

  family(registry, 'pingfleet_node_last_report_timestamp_seconds', 'Unix time of each known node\'s last accepted report.', 'gauge', cache =>
    roster.all().filter(a => a.lastReportAt !== null).map(a => {
      const group = fleet.groupOfAgent(a)
      return series(a.lastReportAt! / 1000, cache.get(a.node + '\u0000' + group, () => ({ node: a.node, group })))
    }))

  family(registry, 'pingfleet_node_clock_offset_seconds', 'Each connected agent\'s clock minus the aggregator\'s, measured from its reports (negative: behind). Reports are placed by receive time, so this is for the operator.', 'gauge', cache =>
    roster.all().filter(a => a.connected && a.clockOffsetMs !== null).map(a => {
      const group = fleet.groupOfAgent(a)
      return series(a.clockOffsetMs! / 1000, cache.get(a.node + '\u0000' + group, () => ({ node: a.node, group })))
    }))

  const health = options.health
  if (health !== undefined) {
    const perAgent = (value: (node: string) => number | null) => (cache: LabelCache): Value[] => {
      const out: Value[] = []
      for (const node of health.nodes()) {
        const v = value(node)
        if (v === null) continue
        const group = fleet.groupOf(node)
        out.push(series(v, cache.get(node + '\u0000' + group, () => ({ node, group }))))
      }
      return out
    }
    family(registry, 'pingfleet_node_lagged_ratio', `Share of each node's own samples in the last ${Math.round(health.windowMs / 1000)} s that were lagged (its event loop stalled), 0 to 1.`, 'gauge',
      perAgent(node => health.verdict(node).laggedRatio))
    family(registry, 'pingfleet_agent_degraded', 'Whether each node\'s agent is degraded: most of its recent samples lagged or AGENT_OVERLOADED (1), or not (0). GET /api/v1/agents says why.', 'gauge',
      perAgent(node => health.verdict(node).degraded ? 1 : 0))
    family(registry, 'pingfleet_agent_cpu_throttled_periods_total', 'CPU enforcement periods in which each node\'s agent cgroup was throttled (cpu.stat nr_throttled), as the agent reports it.', 'counter',
      perAgent(node => health.cpu(node)?.throttledPeriods ?? null))
    family(registry, 'pingfleet_agent_cpu_throttled_seconds_total', 'Time each node\'s agent cgroup spent CPU-throttled (cpu.stat throttled_usec), as the agent reports it.', 'counter',
      perAgent(node => { const cpu = health.cpu(node); return cpu === null ? null : cpu.throttledUsec / 1e6 }))
  }

  // Kept past the roster's TTL, so a fleet that went silent keeps an old timestamp instead of none.
  let newest = -Infinity
  family(registry, 'pingfleet_last_report_timestamp_seconds', 'Unix time of the newest accepted report from any agent (fleet data freshness).', 'gauge', () => {
    for (const a of roster.all()) if (a.lastReportAt !== null && a.lastReportAt > newest) newest = a.lastReportAt
    return newest === -Infinity ? [] : [series(newest / 1000, NO_LABELS)]
  })
}
