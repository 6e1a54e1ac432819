import { mock } from 'node:test'
import t from 'tap'
import { bucketIndex, type Report } from '@pingfleet/protocol'
import { Ajv } from 'ajv'
import { matrixSchema } from '../../src/http/api-routes.ts'
import type { MatrixAnswer } from '../../src/views/fleet-matrix.ts'
import type { MatrixCell } from '../../src/views/matrix.ts'
import { aggregator, hello, RawAgent, report } from '../helpers.ts'

const ok = (target: string, count = 2): Report['cells'][number] => ({ probe: 'pod', target, count, latency: [bucketIndex(0.002), count] })
const refused = (target: string): Report['cells'][number] => ({ probe: 'pod', target, count: 2, latency: [], errors: [{ reason: 'ECONNREFUSED', raw: 'ECONNREFUSED', count: 2 }] })

t.test('the matrix by node, by the group label, by another label, and filtered', async t => {
  const agg = await aggregator()
  t.teardown(() => agg.close())
  const nodes = [['a1', 'aws', 'z1'], ['a2', 'aws', 'z2'], ['c1', 'cilium', 'z1']] as const
  const agents = nodes.map(() => new RawAgent(agg.address()))
  await Promise.all(agents.map(a => a.opened()))
  for (const [i, [node, group, zone]] of nodes.entries()) {
    agents[i]!.send(hello(node, { cniplugin: group, zone }))
    await agents[i]!.waitFor(m => m.type === 'welcome')
  }
  const now = Date.now()
  agents[0]!.send(report(1, now, [ok('a2'), refused('c1')]))
  agents[1]!.send(report(1, now, [ok('a1'), ok('c1')]))
  agents[2]!.send(report(1, now, [ok('a1'), ok('a2')]))
  await Promise.all(agents.map(a => a.waitFor(m => m.type === 'ack')))
  const get = async (query: string): Promise<{ statusCode: number, body: MatrixAnswer & { code?: string } }> => {
    const r = await agg.app.inject(`/api/v1/matrix?${query}`)
    return { statusCode: r.statusCode, body: r.json() }
  }

  const byNode = (await get('probe=pod&groupBy=node&window=30s')).body
  // The matrix route serialises with JSON.stringify, so the schema is checked here instead.
  const validate = new Ajv({ strict: false }).compile(matrixSchema)
  t.ok(validate(byNode), `the matrix matches its response schema ${JSON.stringify(validate.errors)}`)
  t.equal(byNode.cells.length, 6)
  t.same(byNode.rows, ['a1', 'a2', 'c1'])
  t.match(byNode.cells.find((c: MatrixCell) => c.src === 'a1' && c.dst === 'c1'), { errors: 2, errorRatio: 1, errorsByReason: { ECONNREFUSED: 2 }, latency: { p50: null } })

  const byGroup = (await get('groupBy=cniplugin&window=30s')).body
  const cell = (m: MatrixAnswer, src: string, dst: string): MatrixCell | undefined => m.cells.find((c: MatrixCell) => c.src === src && c.dst === dst)
  t.match(cell(byGroup, 'aws', 'cilium'), { samples: 4, errors: 2, errorRatio: 0.5 })
  t.match(cell(byGroup, 'aws', 'aws'), { samples: 4, errors: 0 })
  t.match(cell(byGroup, 'cilium', 'aws'), { samples: 4, errors: 0 })

  const byZone = (await get('groupBy=zone&window=30s')).body
  t.match(cell(byZone, 'z1', 'z1'), { samples: 4, errors: 2 }, 'a1→c1 and c1→a1 are both z1→z1')

  const failing = (await get('groupBy=node&window=30s&failing=true')).body
  t.same(failing.cells.map((c: MatrixCell) => `${c.src}>${c.dst}`), ['a1>c1'])
  const row = (await get('groupBy=node&window=30s&src=c1')).body
  t.same(row.rows, ['c1'])
  t.equal(row.cells.length, 2)
  const one = (await get('groupBy=cniplugin&window=30s&src=aws&dst=cilium')).body
  t.equal(one.cells.length, 1)

  for (const bad of ['window=soon', 'window=2h', 'probe=icmp', 'groupBy=']) {
    const r = await get(bad)
    t.equal(r.statusCode, 400, `${bad} is refused`)
    t.equal(r.body.code, 'PINGFLEET_ERR_BAD_QUERY')
  }
  for (const a of agents) a.socket.close()
})

t.test('a matrix larger than PINGFLEET_MAX_MATRIX_CELLS is refused with a hint, and filters get under it', async t => {
  const agg = await aggregator({ PINGFLEET_MAX_MATRIX_CELLS: '4' })
  t.teardown(() => agg.close())
  const nodes = ['a1', 'a2', 'c1']
  const agents = nodes.map(() => new RawAgent(agg.address()))
  await Promise.all(agents.map(a => a.opened()))
  for (const [i, node] of nodes.entries()) {
    agents[i]!.send(hello(node, { cniplugin: node.startsWith('a') ? 'aws' : 'cilium' }))
    await agents[i]!.waitFor(m => m.type === 'welcome')
    agents[i]!.send(report(1, Date.now(), nodes.filter(n => n !== node).map(n => ok(n))))
    await agents[i]!.waitFor(m => m.type === 'ack')
  }
  const all = await agg.app.inject('/api/v1/matrix?groupBy=node&window=30s')
  t.equal(all.statusCode, 400)
  t.match(all.json(), { code: 'PINGFLEET_ERR_MATRIX_TOO_LARGE', message: /6 cells, more than PINGFLEET_MAX_MATRIX_CELLS=4: ask for one row \(src=\)/ })
  t.equal((await agg.app.inject('/api/v1/matrix?groupBy=node&window=30s&src=a1')).statusCode, 200, 'one row fits')
  t.equal((await agg.app.inject('/api/v1/matrix?groupBy=cniplugin&window=30s')).statusCode, 200, 'the group view fits')
  for (const a of agents) a.socket.close()
})

t.test('window=1m answers hold a minute of samples at any moment, and every answer says the span it covers (issue 11)', async t => {
  // A fake clock for the aggregator and a mocked setInterval for its once-a-second store tick, so
  // minutes of one-probe-a-second reports run through the real websocket, ingest and HTTP routes.
  const start = Date.UTC(2026, 0, 1, 12, 0, 0)
  let clock = start
  mock.timers.enable({ apis: ['setInterval'] })
  const agg = await aggregator({ PINGFLEET_HEARTBEAT: '1h', PINGFLEET_PEER_TTL: '1h' }, () => clock)
  t.teardown(async () => {
    await agg.close()
    mock.timers.reset()
  })
  const nodes = [['a1', 'aws', 'c1', 200], ['c1', 'cilium', 'a1', 600]] as const
  const agents = nodes.map(() => new RawAgent(agg.address()))
  await Promise.all(agents.map(a => a.opened()))
  for (const [i, [node, group]] of nodes.entries()) {
    agents[i]!.send(hello(node, { cniplugin: group }))
    await agents[i]!.waitFor(m => m.type === 'welcome')
  }
  const seq = [0, 0]
  const get = async <T>(url: string): Promise<T> => (await agg.app.inject(url)).json()
  const validate = new Ajv({ strict: false }).compile(matrixSchema)
  const span = (body: { from: string, to: string }): { from: number, to: number } => ({ from: Date.parse(body.from), to: Date.parse(body.to) })
  const problems: string[] = []
  let rounds = 0
  let fewest = Infinity
  let most = 0
  for (let step = 0; clock < start + 6.5 * 60_000; step++, clock += 100) {
    const ms = clock % 1000
    for (const [i, [, , peer, phase]] of nodes.entries()) {
      if (ms !== phase) continue
      const n = ++seq[i]!
      agents[i]!.send(report(n, clock, [ok(peer, 1)]))
      await agents[i]!.waitFor(m => m.type === 'ack' && m.seq === n)
    }
    if (ms === 900) mock.timers.tick(1000)
    const age = clock - start
    if (age < 61_000 || step % 13 !== 0) continue
    rounds++
    const at = `+${age} ms`
    // One probe a second per cell: 60 in a minute, give or take the one interval the issue allows.
    const node = await get<MatrixAnswer>('/api/v1/matrix?probe=pod&groupBy=node&window=1m')
    if (!validate(node)) problems.push(`${at}: the matrix does not match its schema: ${JSON.stringify(validate.errors)}`)
    const { from, to } = span(node)
    if (to !== clock || from <= clock - 61_000 || from > clock - 60_000) problems.push(`${at}: node matrix covers ${from - clock}..${to - clock} ms`)
    for (const cell of node.cells) {
      fewest = Math.min(fewest, cell.samples)
      most = Math.max(most, cell.samples)
      if (Math.abs(cell.samples - 60) > 1) problems.push(`${at}: ${cell.src}→${cell.dst} has ${cell.samples} samples in 1m`)
    }
    if (node.cells.length !== 2) problems.push(`${at}: ${node.cells.length} node cells`)
    const gate = await get<{ from: string, to: string, checks: Array<{ criterion: string, samples: number }> }>('/api/v1/gates/adhoc?probe=pod&src=aws&dst=cilium&window=1m&minSamples=1&maxErrorRatio=0')
    const g = span(gate)
    const samples = gate.checks.find(c => c.criterion === 'minSamples')?.samples ?? -1
    if (g.to !== clock || g.from <= clock - 61_000 || g.from > clock - 60_000 || Math.abs(samples - 60) > 1) problems.push(`${at}: the 1m gate covers ${g.from - clock}..${g.to - clock} ms with ${samples} samples`)
    const service = await get<{ from: string, to: string }>('/api/v1/service?window=1m')
    const s = span(service)
    if (s.to !== clock || s.from <= clock - 61_000 || s.from > clock - 60_000) problems.push(`${at}: the service view covers ${s.from - clock}..${s.to - clock} ms`)
    if (age >= 301_000) {
      // The group store, which gates read, is exact to one interval for 5 minutes too.
      const groups = await get<MatrixAnswer>('/api/v1/matrix?probe=pod&groupBy=cniplugin&window=5m')
      const gs = span(groups)
      if (gs.from <= clock - 301_000 || gs.from > clock - 300_000) problems.push(`${at}: group matrix 5m covers ${gs.from - clock}..${gs.to - clock} ms`)
      for (const cell of groups.cells) if (Math.abs(cell.samples - 300) > 1) problems.push(`${at}: ${cell.src}→${cell.dst} has ${cell.samples} samples in 5m`)
    }
  }
  t.same(problems.slice(0, 10), [], `${rounds} moments over 5.5 minutes: node cells held ${fewest}–${most} samples in 1m; every answer's from/to is within one interval of its window`)
  t.ok(rounds > 200)
  for (const a of agents) a.socket.close()
})

t.test('the loss signal: retransmit ratio on connecting kinds, datagram loss and jitter on udp, by node and by group', async t => {
  const agg = await aggregator()
  t.teardown(() => agg.close())
  const nodes = [['a1', 'aws'], ['a2', 'aws'], ['c1', 'cilium']] as const
  const agents = nodes.map(() => new RawAgent(agg.address()))
  t.teardown(() => { for (const a of agents) a.socket.close() })
  const features = new Promise<string | undefined>(resolve => agents[0]!.socket.once('upgrade', res => resolve(res.headers['pingfleet-features'] as string | undefined)))
  await Promise.all(agents.map(a => a.opened()))
  t.same((await features)?.split(',').map(f => f.trim()).sort(), ['hello-uptime', 'phases', 'report-age', 'report-cpu', 'slow-connects', 'udp'], 'the upgrade answer names the accepted features')
  for (const [i, [node, group]] of nodes.entries()) {
    agents[i]!.send(hello(node, { cniplugin: group }))
    await agents[i]!.waitFor(m => m.type === 'welcome')
  }
  const ms = (s: number): number => bucketIndex(s)
  const now = Date.now()
  agents[0]!.send(report(1, now, [
    { probe: 'pod', target: 'a2', count: 4, latency: [ms(0.002), 4] },
    { probe: 'pod', target: 'c1', count: 10, latency: [ms(0.002), 6, ms(1.004), 2], slowConnects: 2, errors: [{ reason: 'CONNECT_TIMEOUT', raw: 'TIMEOUT', count: 2 }] },
    { probe: 'udp', target: 'a2', count: 2, latency: [ms(0.0002), 2], sent: 10, lost: 0, jitterUs: 80, jitterPairs: 8 },
    { probe: 'udp', target: 'c1', count: 2, latency: [ms(0.0003), 1], errors: [{ reason: 'UDP_NO_ECHO', raw: 'NO_ECHO', count: 1 }], sent: 10, lost: 7, jitterUs: 30, jitterPairs: 1 }
  ]))
  agents[1]!.send(report(1, now, [
    { probe: 'pod', target: 'c1', count: 4, latency: [ms(0.002), 4] },
    { probe: 'udp', target: 'c1', count: 2, latency: [ms(0.0002), 2], sent: 10, lost: 1, jitterUs: 60, jitterPairs: 7 }
  ]))
  await Promise.all(agents.slice(0, 2).map(a => a.waitFor(m => m.type === 'ack')))
  const cell = async (query: string, src: string, dst: string): Promise<MatrixCell | undefined> => {
    const r = await agg.app.inject(`/api/v1/matrix?window=1m&${query}`)
    t.equal(r.statusCode, 200)
    const body = r.json() as MatrixAnswer
    t.ok(new Ajv({ strict: false }).addFormat('date-time', /./).validate(matrixSchema, body), 'answer fits the schema')
    return body.cells.find(c => c.src === src && c.dst === dst)
  }
  t.same((await cell('probe=pod&groupBy=node', 'a1', 'c1'))?.loss, { slowConnects: 2, retransmitRatio: 0.25, sent: 0, lost: 0, lossRatio: null, jitter: null })
  t.same((await cell('probe=pod&groupBy=node', 'a1', 'a2'))?.loss, { slowConnects: 0, retransmitRatio: 0, sent: 0, lost: 0, lossRatio: null, jitter: null })
  t.match((await cell('probe=pod&groupBy=cniplugin', 'aws', 'cilium'))?.loss, { slowConnects: 2, retransmitRatio: 2 / 12 }, 'over the 8 + 4 latency samples toward cilium')
  t.match((await cell('probe=udp&groupBy=node', 'a1', 'c1'))?.loss, { sent: 10, lost: 7, lossRatio: 0.7, jitter: 30e-6, retransmitRatio: null })
  t.match((await cell('probe=udp&groupBy=node', 'a1', 'c1')), { samples: 2, errors: 1, errorsByReason: { UDP_NO_ECHO: 1 } })
  // By the group label (pre-summed at ingest) and by a label read per node, udp columns fold into the peer's group.
  for (const query of ['probe=udp&groupBy=cniplugin', 'probe=udp&groupBy=cniplugin&dst=cilium']) {
    const group = await cell(query, 'aws', 'cilium')
    t.match(group?.loss, { sent: 20, lost: 8, lossRatio: 0.4 }, query)
    t.equal(group!.loss!.jitter, 90e-6 / 8, 'jitter is the mean over every pair')
  }
  t.match((await cell('probe=udp&groupBy=cniplugin', 'aws', 'aws'))?.loss, { sent: 10, lost: 0, lossRatio: 0 })
  t.equal((await cell('probe=dns-lookup&groupBy=node', 'a1', 'x')), undefined)
})

t.test('an unknown query parameter is a 400 with a code on every JSON route, not silently ignored', async t => {
  const agg = await aggregator()
  t.teardown(() => agg.close())
  // fastify's ajv strips unknown properties by default; each of these answered 200 before.
  for (const url of ['/api/v1/matrix?windw=5m', '/api/v1/agents?x=1', '/api/v1/service?bogus=1']) {
    const r = await agg.app.inject(url)
    t.equal(r.statusCode, 400, url)
    t.match(r.json(), { code: 'PINGFLEET_ERR_BAD_QUERY', message: /windw|x|bogus|additional/ }, url)
  }
  t.equal((await agg.app.inject('/api/v1/matrix?window=5m')).statusCode, 200, 'known parameters still pass')
})
