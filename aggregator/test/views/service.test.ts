import t, { type Test } from 'tap'
import { bucketIndex, type Cell } from '@pingfleet/protocol'
import { Store } from '../../src/store/store.ts'
import { aggregator, hello, RawAgent, report } from '../helpers.ts'

const fast = [bucketIndex(0.001)]
const ok = (probe: Cell['probe'], target: string, count: number, backends?: Cell['backends']): Cell =>
  ({ probe, target, count, latency: [fast[0]!, count], ...(backends === undefined ? {} : { backends }) })
const refused = (probe: Cell['probe'], target: string, count: number): Cell =>
  ({ probe, target, count, latency: [], errors: [{ reason: 'ECONNREFUSED', raw: 'ECONNREFUSED', count }] })

async function connect (t: Test, url: string, node: string, labels: Record<string, string>): Promise<RawAgent> {
  const agent = new RawAgent(url)
  await agent.opened()
  t.teardown(() => agent.socket.close())
  agent.send(hello(node, labels))
  await agent.waitFor(m => m.type === 'welcome')
  return agent
}

async function send (agent: RawAgent, seq: number, cells: Cell[]): Promise<void> {
  agent.send(report(seq, Date.now(), cells))
  await agent.waitFor(m => m.type === 'ack' && m.seq === seq)
}

const VIP = '10.96.0.20:8081'
const NAME = 'pingfleet-agent.pingfleet:8081'

t.test('the service view: backends per source group, and pod-reachable nodes the Service never hands out', async t => {
  const agg = await aggregator()
  t.teardown(() => agg.close())
  const url = agg.address()
  const n1 = await connect(t, url, 'n1', { cniplugin: 'aws' })
  const n2 = await connect(t, url, 'n2', { cniplugin: 'aws' })
  const n3 = await connect(t, url, 'n3', { cniplugin: 'cilium' })
  // aws reaches everyone directly, but through the Service only ever the aws backends.
  await send(n1, 1, [ok('pod', 'n2', 3), ok('pod', 'n3', 3), ok('service', VIP, 12, [{ node: 'n1', count: 6 }, { node: 'n2', count: 6 }])])
  await send(n2, 1, [ok('pod', 'n1', 3), ok('pod', 'n3', 3), { probe: 'service', target: VIP, count: 11, latency: [fast[0]!, 10], errors: [{ reason: 'CONNECT_TIMEOUT', raw: 'TIMEOUT', count: 1 }], backends: [{ node: 'n2', count: 10 }] }])
  // cilium reaches n1 directly but n2 refuses; through the Service only n3 answers.
  await send(n3, 1, [ok('pod', 'n1', 3), refused('pod', 'n2', 3), { probe: 'service', target: VIP, count: 6, latency: [fast[0]!, 6], backends: [{ node: 'n3', count: 6 }] },
    { probe: 'service', target: NAME, count: 2, latency: [fast[0]!, 2], backends: [{ node: 'n3', count: 2 }] }])

  const response = await agg.app.inject('/api/v1/service?window=1m&groupBy=cniplugin')
  t.equal(response.statusCode, 200)
  const view = response.json()
  t.match(view, { window: '1m', groupBy: 'cniplugin', generatedAt: String, services: [VIP, NAME] })
  t.same(view.rows, [
    { service: VIP, src: 'aws', samples: 23, errors: 1, errorsByReason: { CONNECT_TIMEOUT: 1 }, backends: [{ node: 'n1', count: 6 }, { node: 'n2', count: 16 }], flagged: ['n3'], judged: true },
    { service: VIP, src: 'cilium', samples: 6, errors: 0, errorsByReason: {}, backends: [{ node: 'n3', count: 6 }], flagged: ['n1'], judged: true },
    { service: NAME, src: 'cilium', samples: 2, errors: 0, errorsByReason: {}, backends: [{ node: 'n3', count: 2 }], flagged: [], judged: false }
  ], 'n2 is not flagged for cilium: pod probes to it fail too; two answers are too few to judge the name')

  const byNode = (await agg.app.inject(`/api/v1/service?window=1m&groupBy=node&service=${encodeURIComponent(VIP)}`)).json()
  t.same(byNode.services, [VIP])
  t.same(byNode.rows.map((r: { src: string, flagged: string[] }) => [r.src, r.flagged]), [['n1', ['n3']], ['n2', ['n1', 'n3']], ['n3', ['n1']]])

  t.match((await agg.app.inject('/api/v1/service?window=soon')).json(), { code: 'PINGFLEET_ERR_BAD_QUERY', message: /window="soon"/ })
  t.equal((await agg.app.inject('/api/v1/service?window=2d')).statusCode, 400, 'longer than the store keeps')
  const openapi = (await agg.app.inject('/api/v1/openapi.json')).json()
  t.ok(openapi.paths['/api/v1/service'], 'the route is in the OpenAPI document')
})

t.test('backend counts survive folding into coarser slots and compaction', async t => {
  const store = new Store([{ width: 1000, span: 3000 }, { width: 60_000, span: 600_000 }])
  store.advance(0)
  const id = store.cellId('n1', 'service', VIP)
  for (let at = 0; at < 3000; at += 1000) {
    store.advance(at)
    store.add(id, at, { count: 2, latency: [fast[0]!, 2], backends: [{ node: 'n1', count: 1 }, { node: at === 0 ? 'n2' : 'n1', count: 1 }] })
  }
  store.advance(200_000)
  t.equal(store.stats().slots, 1, 'everything folded into one minute slot')
  const read = store.read(600_000, 200_000)
  const backends = new Map<string, number>()
  read.addBackends(id, backends)
  t.same([...backends].sort(), [['n1', 5], ['n2', 1]])
  t.equal(read.count(id), 6)
})
