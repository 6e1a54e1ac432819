// Per-phase latency (issue 13) through the public surfaces: reports with and without phases over a
// real websocket, the matrix API's `phases`, and /metrics' phase histograms, bounded by groups.

import t from 'tap'
import { Ajv } from 'ajv'
import { bucketIndex, type Report } from '@pingfleet/protocol'
import { matrixSchema } from '../../src/http/api-routes.ts'
import { aggregator, hello, RawAgent, report } from '../helpers.ts'

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

const b = bucketIndex
interface Quantiles { p50: number | null, p90: number | null, p99: number | null }
interface PhasedCell { src: string, dst: string, samples: number, latency: Quantiles, phases?: Record<string, Quantiles> }
interface Answer { phasesIncluded: boolean, cells: PhasedCell[] }

t.test('matrix: phase quantiles per cell, summed over reports and agents; absent phases absent; agents without phases still counted', async t => {
  const agg = await aggregator()
  t.teardown(() => agg.close())
  const a1 = await connect(agg.address(), 'n1', 'aws')
  const a2 = await connect(agg.address(), 'n2', 'cilium')
  const a3 = await connect(agg.address(), 'n3', 'cilium')
  t.teardown(() => { a1.socket.close(); a2.socket.close(); a3.socket.close() })
  // Two reports from n1 toward n2: connect 1 ms then 3 ms, first byte 2 ms each; n3's agent sends no phases.
  await send(a1, 1, [
    { probe: 'pod', target: 'n2', count: 1, latency: [b(0.003), 1], phases: { connect: [b(0.001), 1], firstByte: [b(0.002), 1] } },
    { probe: 'http', target: 'https://example.com/', count: 1, latency: [b(0.1), 1], phases: { dns: [b(0.01), 1], connect: [b(0.02), 1], tls: [b(0.03), 1], firstByte: [b(0.04), 1] } },
    { probe: 'dns-lookup', target: 'kubernetes.default@getaddrinfo', count: 1, latency: [b(0.001), 1] }
  ])
  await send(a1, 2, [{ probe: 'pod', target: 'n2', count: 1, latency: [b(0.005), 1], phases: { connect: [b(0.003), 1], firstByte: [b(0.002), 1] } }])
  await send(a3, 1, [{ probe: 'pod', target: 'n1', count: 2, latency: [b(0.004), 2] }])
  // A cell with one phase only (protocol's reportProblem refuses phases that do not add up, before ingest).
  await send(a2, 1, [{ probe: 'pod', target: 'n1', count: 1, latency: [b(0.002), 1], phases: { connect: [b(0.001), 1] } }])

  // The route serialises with JSON.stringify, so the schema is checked here, not by fastify.
  const validate = new Ajv({ strict: false }).addFormat('date-time', /./).compile(matrixSchema)
  const get = async (query: string): Promise<Answer> => {
    const response = await agg.app.inject(`/api/v1/matrix?${query}`)
    t.equal(response.statusCode, 200, query)
    const body = response.json()
    t.ok(validate(body), `${query}: the answer fits the schema ${JSON.stringify(validate.errors)}`)
    return body
  }
  const byNode = await get('probe=pod&groupBy=node&window=1m')
  t.equal(byNode.phasesIncluded, true)
  const n1n2 = byNode.cells.find(c => c.src === 'n1' && c.dst === 'n2')!
  t.equal(n1n2.samples, 2)
  t.same(Object.keys(n1n2.phases!), ['connect', 'firstByte', 'total'], 'only the phases the probes went through, and total')
  t.same(n1n2.phases!.total, n1n2.latency, 'total is the latency')
  const near = (x: number | null, want: number): boolean => x !== null && Math.abs(x - want) / want < 0.07
  t.ok(near(n1n2.phases!.connect!.p50, 0.001) && near(n1n2.phases!.connect!.p99, 0.003), `connect p50 ${n1n2.phases!.connect!.p50}, p99 ${n1n2.phases!.connect!.p99}: both reports summed`)
  t.ok(near(n1n2.phases!.firstByte!.p90, 0.002), 'first byte')
  const n3n1 = byNode.cells.find(c => c.src === 'n3')!
  t.same(n3n1.phases, { total: n3n1.latency }, 'an agent without phases: its cell counts, with only total')
  t.equal(n3n1.samples, 2)
  const n2n1 = byNode.cells.find(c => c.src === 'n2')!
  t.equal(n2n1.samples, 1)
  t.same(Object.keys(n2n1.phases!), ['connect', 'total'], 'one phase, and total')

  const byGroup = await get('probe=pod&groupBy=cniplugin&window=15m')
  t.equal(byGroup.phasesIncluded, true, 'the group store keeps phases at every window')
  const awsCilium = byGroup.cells.find(c => c.src === 'aws' && c.dst === 'cilium')!
  t.ok(near(awsCilium.phases!.connect!.p99, 0.003), 'group cells sum phases too')

  const http = (await get('probe=http&groupBy=node&window=1m')).cells[0]!
  t.same(Object.keys(http.phases!), ['dns', 'connect', 'tls', 'firstByte', 'total'])
  t.ok(near(http.phases!.tls!.p50, 0.03))

  const dns = await get('probe=dns-lookup&groupBy=node&window=1m')
  t.equal(dns.phasesIncluded, false, 'a kind without phases')
  t.equal(dns.cells[0]!.phases, undefined)

  const long = await get('probe=pod&groupBy=node&window=15m')
  t.equal(long.phasesIncluded, true, 'the data is still in the exact tier, so a long node window keeps it')

  const openapi = (await agg.app.inject('/api/v1/openapi.json')).json()
  t.match(JSON.stringify(openapi.paths['/api/v1/matrix']), /"phasesIncluded".*"firstByte"/, 'the OpenAPI document has phasesIncluded and the cells\' phases')
})

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

t.test('/metrics: a phase histogram per group pair or target and phase; more nodes add no phase series', async t => {
  const agg = await aggregator()
  t.teardown(() => agg.close())
  const phased = (target: string): Report['cells'][number] =>
    ({ probe: 'pod', target, count: 1, latency: [b(0.004), 1], phases: { connect: [b(0.0008), 1], firstByte: [b(0.003), 1] } })
  const phaseSeries = async (): Promise<string[]> =>
    [...samples((await agg.app.inject('/metrics')).body).keys()].filter(k => k.startsWith('pingfleet_probe_phase_duration_seconds'))

  const agents: RawAgent[] = []
  t.teardown(() => { for (const a of agents) a.socket.close() })
  // Two nodes per group first, then eight: each probes every other node.
  const round = async (nodes: number, seq: number): Promise<void> => {
    while (agents.length < nodes) agents.push(await connect(agg.address(), `n${agents.length}`, agents.length % 2 === 0 ? 'aws' : 'cilium'))
    for (let i = 0; i < nodes; i++) {
      await send(agents[i]!, seq, Array.from({ length: nodes }, (_, j) => j).filter(j => j !== i).map(j => phased(`n${j}`)))
    }
  }
  await round(4, 1)
  const few = await phaseSeries()
  await round(16, 2)
  const many = await phaseSeries()
  t.same(many, few, 'the same series at 16 nodes as at 4: per group pair and phase, never per node')
  // 4 group pairs × 2 phases × (15 buckets + +Inf + _sum + _count).
  t.equal(few.length, 4 * 2 * (15 + 3))
  const m = samples((await agg.app.inject('/metrics')).body)
  const key = (suffix: string, extra = ''): string => `pingfleet_probe_phase_duration_seconds_${suffix}{dst_group="cilium",${extra}phase="connect",probe="pod",src_group="aws"}`
  // aws → cilium: round 1, n0 and n2 probe n1 and n3 (4 probes); round 2, 8 aws nodes × 8 cilium nodes.
  t.equal(m.get(key('count')), 4 + 64)
  t.equal(m.get(key('bucket', 'le="0.0005",')), 0)
  t.equal(m.get(key('bucket', 'le="0.001",')), 68, 'connects of 0.8 ms in the 1 ms bucket')
  t.equal(m.get(key('count').replace('connect', 'firstByte')), 68)
  t.equal(m.get('pingfleet_probe_phase_duration_seconds_count{dst_group="cilium",phase="dns",probe="pod",src_group="aws"}'), undefined, 'no series for a phase nobody reported')
  t.match((await agg.app.inject('/metrics')).body, /# TYPE pingfleet_probe_phase_duration_seconds histogram/)
  t.same(many.filter(k => /\bnode="|n\d+"/.test(k)), [], 'no phase series names a node')
})
