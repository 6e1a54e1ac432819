import t from 'tap'
import { Registry } from 'prom-client'
import { bucketIndex, type Report } from '@pingfleet/protocol'
import { dnsKey, LATENCY_BUCKETS, registerFleetMetrics } from '../../src/views/metrics.ts'
import { Fleet } from '../../src/fleet/fleet.ts'
import { Roster } from '../../src/fleet/roster.ts'
import { Totals } from '../../src/store/totals.ts'
import { aggregator, hello, RawAgent, report } from '../helpers.ts'

/** Parses exposition text into `name{labels}` → value, labels sorted by name. */
function samples (text: string): Map<string, number> {
  const out = new Map<string, number>()
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (m === null) throw new Error(`unparsable line: ${line}`)
    const labels = [...(m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)].map(x => `${x[1]}="${x[2]}"`).sort()
    out.set(`${m[1]}{${labels.join(',')}}`, Number(m[3]))
  }
  return out
}

async function connect (base: string, node: string, group: string): Promise<RawAgent> {
  const a = new RawAgent(base)
  await a.opened()
  a.send(hello(node, { cniplugin: group }))
  await a.waitFor(m => m.type === 'welcome')
  return a
}

async function send (a: RawAgent, seq: number, cells: Report['cells']): Promise<void> {
  a.send(report(seq, Date.now(), cells))
  await a.waitFor(m => m.type === 'ack' && m.seq === seq)
}

t.test('dns target ids map to a resolver path and a resolver', async t => {
  t.same(dnsKey('dns-lookup', 'aws', 'kubernetes.default@getaddrinfo'), { src_group: 'aws', path: 'getaddrinfo', resolver: 'system' })
  t.same(dnsKey('dns-lookup', 'aws', 'example.com@getaddrinfo/6'), { src_group: 'aws', path: 'getaddrinfo', resolver: 'system' })
  t.same(dnsKey('dns-wire', 'aws', 'example.internal@198.18.0.53:53/A'), { src_group: 'aws', path: 'wire', resolver: '198.18.0.53:53' })
  t.same(dnsKey('dns-wire', 'aws', 'x@[fd00::a]:5353/AAAA/tcp'), { src_group: 'aws', path: 'wire', resolver: '[fd00::a]:5353' })
  t.same(dnsKey('dns-wire', 'aws', 'odd'), { src_group: 'aws', path: 'wire', resolver: 'unknown' })
  t.equal(dnsKey('pod', 'aws', 'n1'), null)
})

t.test('/metrics: group pairs, targets, DNS, nodes and agents, never node pairs', async t => {
  const agg = await aggregator()
  t.teardown(() => agg.close())
  const a1 = await connect(agg.address(), 'n1', 'aws')
  const a2 = await connect(agg.address(), 'n2', 'cilium')
  t.teardown(() => { a1.socket.close(); a2.socket.close() })
  const ms = (s: number): number => bucketIndex(s)
  await send(a1, 1, [
    { probe: 'pod', target: 'n2', count: 3, latency: [ms(0.002), 1], errors: [{ reason: 'ECONNREFUSED', raw: 'ECONNREFUSED', count: 2 }] },
    { probe: 'pod', target: 'n1', count: 2, latency: [ms(3.2), 2] },
    { probe: 'dns-lookup', target: 'kubernetes.default@getaddrinfo', count: 4, latency: [ms(0.001), 4] },
    { probe: 'dns-lookup', target: 'missing.example@getaddrinfo', count: 2, latency: [], errors: [{ reason: 'ENOTFOUND', raw: 'EAI_NONAME', count: 2 }] },
    { probe: 'dns-wire', target: 'kubernetes.default@10.96.0.10:53/A', count: 5, latency: [ms(0.001), 3], errors: [{ reason: 'DNS_TIMEOUT', raw: 'UDP_TIMEOUT', count: 2 }] }
  ])
  await send(a2, 1, [
    { probe: 'pod', target: 'n1', count: 4, latency: [ms(0.001), 4] },
    { probe: 'dns-lookup', target: 'kubernetes.default@getaddrinfo', count: 1, latency: [ms(0.001), 1] }
  ])
  const response = await agg.app.inject('/metrics')
  t.equal(response.statusCode, 200)
  const m = samples(response.body)
  const get = (key: string): number | undefined => m.get(key)

  t.equal(get('pingfleet_probes_total{dst_group="cilium",probe="pod",src_group="aws"}'), 3)
  t.equal(get('pingfleet_probes_total{dst_group="aws",probe="pod",src_group="aws"}'), 2)
  t.equal(get('pingfleet_probes_total{dst_group="aws",probe="pod",src_group="cilium"}'), 4)
  t.equal(get('pingfleet_probe_errors_total{dst_group="cilium",probe="pod",reason="ECONNREFUSED",src_group="aws"}'), 2)
  t.equal(get('pingfleet_probes_total{probe="dns-wire",src_group="aws",target="kubernetes.default@10.96.0.10:53/A"}'), 5, 'non-peer probes are labelled by target')

  t.equal(get('pingfleet_dns_queries_total{path="getaddrinfo",resolver="system",src_group="aws"}'), 6)
  t.equal(get('pingfleet_dns_queries_total{path="wire",resolver="10.96.0.10:53",src_group="aws"}'), 5)
  t.equal(get('pingfleet_dns_errors_total{path="getaddrinfo",reason="ENOTFOUND",resolver="system",src_group="aws"}'), 2)
  t.equal(get('pingfleet_dns_errors_total{path="getaddrinfo",reason="ENOTFOUND",resolver="system",src_group="cilium"}'), 0, 'getaddrinfo ENOTFOUND starts at zero')
  t.equal(get('pingfleet_dns_errors_total{path="wire",reason="DNS_TIMEOUT",resolver="10.96.0.10:53",src_group="aws"}'), 2)

  // Histogram: the 1/3/5/10 s signatures are bucket boundaries, and cumulative counts add up.
  for (const le of [1, 3, 5, 10]) t.ok(LATENCY_BUCKETS.includes(le as never), `bucket at ${le} s`)
  const bucket = (le: string): number | undefined => get(`pingfleet_probe_duration_seconds_bucket{dst_group="aws",le="${le}",probe="pod",src_group="aws"}`)
  t.equal(bucket('1'), 0)
  t.equal(bucket('5'), 2, 'the 3.2 s probes land between 3 and 5 s')
  t.equal(bucket('+Inf'), 2)
  t.equal(get('pingfleet_probe_duration_seconds_count{dst_group="aws",probe="pod",src_group="aws"}'), 2)

  t.equal(get('pingfleet_node_probes_total{direction="out",group="aws",node="n1",probe="pod"}'), 5)
  t.equal(get('pingfleet_node_probes_total{direction="in",group="cilium",node="n2",probe="pod"}'), 3)
  t.equal(get('pingfleet_node_probe_errors_total{direction="in",group="cilium",node="n2",probe="pod"}'), 2)
  t.equal(get('pingfleet_node_probe_errors_total{direction="out",group="aws",node="n1",probe="dns-lookup"}'), 2)

  t.equal(get('pingfleet_agents_expected{group="aws"}'), 1)
  t.equal(get('pingfleet_agents_connected{group="cilium"}'), 1)
  t.equal(get('pingfleet_agents_stale{group="aws"}'), 0)
  const newest = get('pingfleet_last_report_timestamp_seconds{}')!
  t.ok(Math.abs(newest - Date.now() / 1000) < 10, 'fleet freshness is a recent unix time')
  t.ok(get('pingfleet_node_last_report_timestamp_seconds{group="cilium",node="n2"}')! <= newest)
  t.match(response.body, /pingfleet_build_info\{version="[^"]+",nodejs="[^"]+"\} 1/)
  t.match(response.body, /# TYPE pingfleet_probes_total counter/)
  t.match(response.body, /# TYPE pingfleet_probe_duration_seconds histogram/)
  t.match(response.body, /# TYPE pingfleet_agents_connected gauge/)

  // A node label never meets a second node, a target or a destination group: no node-pair series.
  const pairish = [...m.keys()].filter(key => /\bnode="/.test(key) && /\b(src_node|dst_node|target|dst_group|pod_ip)="/.test(key))
  t.same(pairish, [], 'no series is per node pair or per node × target')
})

t.test('agents: disconnected agents are expected but not connected; silent ones turn stale', async t => {
  let clock = Date.now()
  const agg = await aggregator({ PINGFLEET_PEER_TTL: '10m' }, () => clock)
  t.teardown(() => agg.close())
  const a1 = await connect(agg.address(), 'n1', 'aws')
  const a2 = await connect(agg.address(), 'n2', 'aws')
  t.teardown(() => { a1.socket.close(); a2.socket.close() })
  await send(a1, 1, [{ probe: 'pod', target: 'n2', count: 1, latency: [bucketIndex(0.001), 1] }])
  a2.socket.close()
  await a2.closed
  // Wait until the aggregator has seen the close.
  for (let i = 0; i < 50; i++) {
    if (samples((await agg.app.inject('/metrics')).body).get('pingfleet_agents_connected{group="aws"}') === 1) break
    await new Promise(resolve => setTimeout(resolve, 20))
  }
  let m = samples((await agg.app.inject('/metrics')).body)
  t.equal(m.get('pingfleet_agents_expected{group="aws"}'), 2)
  t.equal(m.get('pingfleet_agents_connected{group="aws"}'), 1)
  t.equal(m.get('pingfleet_agents_stale{group="aws"}'), 0)
  clock += 31_000
  m = samples((await agg.app.inject('/metrics')).body)
  t.equal(m.get('pingfleet_agents_stale{group="aws"}'), 1, 'connected but silent for over 30 s')
})

t.test('agents: one that announced a planned shutdown (close 1001) is not expected, as the gates read it', async t => {
  const agg = await aggregator({ PINGFLEET_PEER_TTL: '10m' })
  t.teardown(() => agg.close())
  const a1 = await connect(agg.address(), 'n1', 'aws')
  const a2 = await connect(agg.address(), 'n2', 'aws')
  t.teardown(() => { a1.socket.close(); a2.socket.close() })
  a2.socket.close(1001)
  await a2.closed
  let m = samples((await agg.app.inject('/metrics')).body)
  for (let i = 0; i < 50 && m.get('pingfleet_agents_connected{group="aws"}') !== 1; i++) {
    await new Promise(resolve => setTimeout(resolve, 20))
    m = samples((await agg.app.inject('/metrics')).body)
  }
  t.equal(m.get('pingfleet_agents_connected{group="aws"}'), 1)
  t.equal(m.get('pingfleet_agents_expected{group="aws"}'), 1, 'n2 is terminating: not expected, though within the peer TTL')
})

t.test('expected agents come from the seam when one is given; agents without the group label are "(none)"', async t => {
  const registry = new Registry()
  const roster = new Roster(60_000)
  let clock = 1_000_000
  // Discovery has listed: three aws nodes and two cilium nodes should run an agent.
  const expectedNodes = new Map([['a1', 'aws'], ['a2', 'aws'], ['a3', 'aws'], ['c1', 'cilium'], ['c2', 'cilium']].map(([n, g]) => [n!, { cniplugin: g! }]))
  const fleet = new Fleet({ roster, groupLabel: 'cniplugin', kube: { expectedNodes: () => expectedNodes, nodeFacts: () => new Map(), missing: () => [], unexpectedReason: () => null } })
  registerFleetMetrics({ registry, totals: new Totals(), fleet, version: 'test', now: () => clock, staleAfterMs: 5000 })
  let m = samples(await registry.metrics())
  t.equal(m.get('pingfleet_agents_expected{group="aws"}'), 3, 'discovery says 3, with no agent connected yet')
  t.equal(m.get('pingfleet_agents_connected{group="aws"}'), 0, 'connected is exported at 0 for an expected group')
  t.equal(m.get('pingfleet_agents_expected{group="cilium"}'), 2)
  t.equal(m.get('pingfleet_last_report_timestamp_seconds{}'), undefined, 'no freshness before the first report')
  roster.join(hello('n9'), clock)
  clock += 6000
  m = samples(await registry.metrics())
  t.equal(m.get('pingfleet_agents_connected{group="(none)"}'), 1)
  t.equal(m.get('pingfleet_agents_stale{group="(none)"}'), 1, 'connected 6 s without a report, stale after 5 s')
  t.equal(m.get('pingfleet_agents_expected{group="(none)"}'), 0, 'not expected by discovery')
})

t.test('/metrics: the loss signal per group pair, never per node pair', async t => {
  const agg = await aggregator()
  t.teardown(() => agg.close())
  const a1 = await connect(agg.address(), 'n1', 'aws')
  const a2 = await connect(agg.address(), 'n2', 'cilium')
  const a3 = await connect(agg.address(), 'n3', 'cilium')
  t.teardown(() => { a1.socket.close(); a2.socket.close(); a3.socket.close() })
  const ms = (s: number): number => bucketIndex(s)
  await send(a1, 1, [
    { probe: 'pod', target: 'n2', count: 5, latency: [ms(0.002), 3, ms(1.01), 2], slowConnects: 2 },
    { probe: 'pod', target: 'n3', count: 5, latency: [ms(0.002), 4, ms(1.01), 1], slowConnects: 1 },
    { probe: 'tcp', target: 'example.com:443', count: 2, latency: [ms(0.02), 2] },
    { probe: 'udp', target: 'n2', count: 2, latency: [ms(0.0002), 2], sent: 10, lost: 2, jitterUs: 50, jitterPairs: 5 },
    { probe: 'udp', target: 'n3', count: 2, latency: [ms(0.0002), 2], sent: 10, lost: 1, jitterUs: 70, jitterPairs: 6 }
  ])
  const m = samples((await agg.app.inject('/metrics')).body)
  t.equal(m.get('pingfleet_probe_slow_connects_total{dst_group="cilium",probe="pod",src_group="aws"}'), 3)
  t.equal(m.get('pingfleet_probe_slow_connects_total{probe="tcp",src_group="aws",target="example.com:443"}'), 0, 'zero from the first report on: a baseline for rate()')
  t.equal(m.get('pingfleet_probe_duration_seconds_count{dst_group="cilium",probe="pod",src_group="aws"}'), 10, 'the denominator of the retransmit ratio')
  t.equal(m.get('pingfleet_udp_datagrams_sent_total{dst_group="cilium",src_group="aws"}'), 20)
  t.equal(m.get('pingfleet_udp_datagrams_lost_total{dst_group="cilium",src_group="aws"}'), 3)
  t.equal(m.get('pingfleet_udp_jitter_seconds_sum{dst_group="cilium",src_group="aws"}'), 120e-6)
  t.equal(m.get('pingfleet_udp_jitter_seconds_count{dst_group="cilium",src_group="aws"}'), 11)
  t.equal(m.get('pingfleet_probes_total{dst_group="cilium",probe="udp",src_group="aws"}'), 4, 'udp is a peer kind: labelled by destination group')
  const loss = [...m.keys()].filter(k => /slow_connects|udp_/.test(k))
  t.same(loss.filter(k => /node="|dst_node|n2|n3/.test(k)), [], 'no loss series names a node')
})
