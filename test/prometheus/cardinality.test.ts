// /metrics of a simulated 1,000-node fleet stays within the cardinality formula of docs/metrics.md:
// O(groups² + nodes), never per node pair. The fleet is bench/fleet-sim.ts over real websockets
// against an in-test aggregator (one full mesh report per agent), plus a simulated DNS agent.

import t from 'tap'
import pino from 'pino'
import { PEER_PROBE_KINDS, PROBE_KIND_NAMES } from '@pingfleet/protocol'
import { startAggregator } from '../../aggregator/src/app.ts'
import { loadConfig } from '../../aggregator/src/config.ts'
import { FINDING_KIND_NAMES } from '../../aggregator/src/findings/finding.ts'
import { MAX_SUBJECT_SERIES } from '../../aggregator/src/findings/metrics.ts'
import { LATENCY_BUCKETS } from '../../aggregator/src/views/metrics.ts'
import { runFleet } from '../../bench/fleet-sim.ts'
import { dnsAgent } from './harness.ts'

t.setTimeout(300_000)

const TOKEN = 'cardinality-token-01'
const NODES = 1000

interface Series { family: string, labels: Record<string, string> }

function parse (text: string): { series: Series[], types: Map<string, string> } {
  const types = new Map<string, string>()
  const series: Series[] = []
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line)
    if (type !== null) types.set(type[1]!, type[2]!)
    if (line === '' || line.startsWith('#')) continue
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? \S+$/.exec(line)
    if (m === null) throw new Error(`unparsable line: ${line}`)
    const labels = Object.fromEntries([...(m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)].map(x => [x[1]!, x[2]!]))
    const name = m[1]!
    const family = types.has(name) ? name : name.replace(/_(bucket|sum|count)$/, '')
    series.push({ family, labels })
  }
  return { series, types }
}

t.test(`/metrics of a ${NODES}-node fleet stays within O(G² + N)`, async t => {
  const config = loadConfig({ PINGFLEET_LISTEN: '127.0.0.1:0', PINGFLEET_TOKEN: TOKEN, PINGFLEET_INTERVAL: '5s', PINGFLEET_LOG_LEVEL: 'silent' })
  const agg = await startAggregator(config, pino({ level: 'silent' }))
  t.teardown(() => agg.close())
  const dns = await dnsAgent({ aggregatorUrl: agg.address(), token: TOKEN, node: 'dns-sim', group: 'aws', ip: '127.0.3.40' })
  t.teardown(() => dns.stop())
  const now = Date.now()
  const sim = await runFleet({ url: agg.address(), token: TOKEN, agents: NODES, targets: NODES, reports: 1, inFlight: 1, from: now, to: now })
  t.equal(sim.cells, NODES * NODES, 'a full mesh report from every agent')
  await new Promise(resolve => setTimeout(resolve, 1500)) // at least one DNS report

  const text = await (await fetch(`${agg.address()}/metrics`)).text()
  const { series } = parse(text)
  const count = (family: string): number => series.filter(s => s.family === family).length
  const distinct = (pick: (s: Series) => string | undefined): number => new Set(series.map(pick).filter(v => v !== undefined)).size

  // The formula's inputs, as observed.
  const G = new Set(series.flatMap(s => [s.labels.src_group, s.labels.dst_group, s.labels.group]).filter(v => v !== undefined)).size
  const N = distinct(s => s.labels.node)
  const Kp = PEER_PROBE_KINDS.length
  const K = PROBE_KIND_NAMES.length
  const T = distinct(s => s.labels.target)
  const R = distinct(s => s.labels.reason)
  const D = distinct(s => s.labels.resolver === undefined ? undefined : `${s.labels.path} ${s.labels.resolver}`)
  const pairs = Kp * G * G + G * T
  const B = LATENCY_BUCKETS.length + 1 + 2
  t.comment(`G=${G} N=${N} T=${T} R=${R} D=${D}: ${series.length} series, ${text.length} bytes`)
  // aws, cilium, and "(none)" for targets probed before their own hello reached the aggregator.
  t.ok(G <= 3, 'two groups, and at most the unknown group')
  t.equal(N, NODES + 1)

  const bounds: Record<string, number> = {
    pingfleet_build_info: 1,
    pingfleet_probes_total: pairs,
    pingfleet_probe_errors_total: pairs * R,
    pingfleet_probe_duration_seconds: pairs * B,
    // Loss: pod and mtu are the connecting peer kinds; service, http and tcp targets are among T.
    pingfleet_probe_slow_connects_total: 2 * G * G + G * T,
    // Phases (issue 13): the connecting kinds' pairs (pod and mtu peers, service, http and tcp targets) × 4 phases.
    pingfleet_probe_phase_duration_seconds: (2 * G * G + G * T) * 4 * B,
    pingfleet_udp_datagrams_sent_total: G * G,
    pingfleet_udp_datagrams_lost_total: G * G,
    pingfleet_udp_jitter_seconds: 2 * G * G,
    pingfleet_dns_queries_total: G * D,
    pingfleet_dns_errors_total: G * D * R,
    pingfleet_node_probes_total: N * (K + Kp),
    pingfleet_node_probe_errors_total: N * (K + Kp),
    pingfleet_agents_expected: G,
    pingfleet_agents_connected: G,
    pingfleet_agents_stale: G,
    pingfleet_node_last_report_timestamp_seconds: N,
    pingfleet_node_lagged_ratio: N,
    pingfleet_agent_degraded: N,
    pingfleet_agent_cpu_throttled_periods_total: N,
    pingfleet_agent_cpu_throttled_seconds_total: N,
    pingfleet_node_clock_offset_seconds: N,
    pingfleet_last_report_timestamp_seconds: 1,
    // Findings: one per kind, at most K subjects, the dropped count.
    pingfleet_findings_active: FINDING_KIND_NAMES.length,
    pingfleet_finding_active_score: MAX_SUBJECT_SERIES,
    pingfleet_findings_active_subjects_dropped: 1
  }
  const families = new Set(series.map(s => s.family))
  for (const [family, bound] of Object.entries(bounds)) {
    t.ok(count(family) <= bound, `${family}: ${count(family)} series ≤ ${bound}`)
  }
  const others = [...families].filter(f => !(f in bounds))
  const processSeries = ['process_resident_memory_bytes', 'process_open_fds', 'nodejs_heap_size_used_bytes']
  t.ok(others.every(f => f.startsWith('pingfleet_ingest_') || processSeries.includes(f)), `the rest are ingest self-metrics and the aggregator's own memory and fds: ${others.join(', ')}`)
  const selfSeries = others.reduce((n, f) => n + count(f), 0)
  t.ok(selfSeries <= 20, `${selfSeries} ingest self-metric series`)

  const total = Object.values(bounds).reduce((a, b) => a + b, 0) + 20
  t.ok(series.length <= total, `${series.length} series within the formula's ${total}`)
  t.ok(series.length <= 30_000, `${series.length} series within the 30,000 budget at ${NODES} nodes`)
  t.ok(series.length < N * N / 10, 'nowhere near per node pair')
  const perNodePair = series.filter(s => s.labels.node !== undefined && (s.labels.target !== undefined || s.labels.dst_group !== undefined))
  t.same(perNodePair, [], 'no series carries a node together with a destination')
})
