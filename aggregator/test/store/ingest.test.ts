import t from 'tap'
import { bucketIndex, PROBE_KIND_NAMES, type Cell } from '@pingfleet/protocol'
import { peerNode } from '../../src/store/ingest.ts'
import { aggregator, hello, RawAgent, report } from '../helpers.ts'

const b = bucketIndex(0.002)
const ok = (probe: Cell['probe'], target: string, count: number): Cell => ({ probe, target, count, latency: [b, count] })
const failed = (probe: Cell['probe'], target: string, count: number, reason: NonNullable<Cell['errors']>[number]['reason'], raw: string): Cell =>
  ({ probe, target, count, latency: [], errors: [{ reason, raw, count }] })

interface MatrixCell { src: string, dst: string, samples: number, errors: number, errorsByReason: Record<string, number> }

t.test('peerNode splits an mtu size off and leaves node names alone', async t => {
  t.equal(peerNode('node-a/8500'), 'node-a')
  t.equal(peerNode('ip-10-0-1-2.ec2.internal'), 'ip-10-0-1-2.ec2.internal')
})

t.test('the matrix serves every probe kind: columns are targets, or peer groups for peer kinds', async t => {
  const agg = await aggregator()
  t.teardown(() => agg.close())
  const agents: RawAgent[] = []
  for (const [node, group, zone] of [['n1', 'aws', 'a'], ['n2', 'cilium', 'b']] as const) {
    const agent = new RawAgent(agg.address())
    await agent.opened()
    t.teardown(() => agent.socket.close())
    agent.send(hello(node, { cniplugin: group, 'topology.kubernetes.io/zone': zone }))
    await agent.waitFor(m => m.type === 'welcome')
    agents.push(agent)
  }
  const dnsName = 'kubernetes.default@getaddrinfo'
  const wire = 'kubernetes.default.svc.cluster.local@10.96.0.10:53/A'
  agents[0]!.send(report(1, Date.now(), [
    ok('pod', 'n2', 4),
    ok('mtu', 'n2/1400', 4),
    failed('mtu', 'n2/8500', 4, 'MTU_BLACKHOLE', 'BODY_TIMEOUT'),
    ok('service', '10.96.0.20:8081', 4),
    ok('dns-lookup', dnsName, 4),
    { probe: 'dns-wire', target: wire, count: 4, latency: [b, 3], errors: [{ reason: 'DNS_TIMEOUT', raw: 'TIMEOUT', count: 1 }] },
    ok('http', 'https://example.com/', 4),
    ok('tcp', 'example.com:443', 4),
    { ...ok('udp', 'n2', 4), sent: 20, lost: 1, jitterUs: 100, jitterPairs: 14 }
  ]))
  agents[1]!.send(report(1, Date.now(), [ok('dns-lookup', dnsName, 2), failed('dns-wire', wire, 2, 'SERVFAIL', 'SERVFAIL')]))
  for (const agent of agents) await agent.waitFor(m => m.type === 'ack')

  const matrix = async (query: string): Promise<{ rows: string[], cols: string[], cells: MatrixCell[] }> => {
    const response = await agg.app.inject(`/api/v1/matrix?window=1m&${query}`)
    t.equal(response.statusCode, 200, query)
    return response.json()
  }
  for (const probe of PROBE_KIND_NAMES) {
    t.ok((await matrix(`probe=${probe}&groupBy=node`)).cells.length > 0, `${probe} has cells`)
  }

  const dnsByNode = await matrix('probe=dns-lookup&groupBy=node')
  t.same(dnsByNode.rows, ['n1', 'n2'])
  t.same(dnsByNode.cols, [dnsName])
  const wireByGroup = await matrix('probe=dns-wire&groupBy=cniplugin')
  t.same(wireByGroup.cols, [wire], 'DNS columns stay the targets when grouped')
  t.match(wireByGroup.cells.find(c => c.src === 'aws'), { samples: 4, errors: 1, errorsByReason: { DNS_TIMEOUT: 1 } })
  t.match(wireByGroup.cells.find(c => c.src === 'cilium'), { samples: 2, errors: 2, errorsByReason: { SERVFAIL: 2 } })
  const wireByZone = await matrix('probe=dns-wire&groupBy=topology.kubernetes.io/zone')
  t.same(wireByZone.rows, ['a', 'b'])
  t.same(wireByZone.cols, [wire])

  const mtuByNode = await matrix('probe=mtu&groupBy=node')
  t.same(mtuByNode.cols, ['n2/1400', 'n2/8500'], 'by node, each size is its own column')
  t.match(mtuByNode.cells.find(c => c.dst === 'n2/8500'), { errors: 4, errorsByReason: { MTU_BLACKHOLE: 4 } })
  t.match(mtuByNode.cells.find(c => c.dst === 'n2/1400'), { errors: 0 })
  const mtuByGroup = await matrix('probe=mtu&groupBy=cniplugin')
  t.same(mtuByGroup.cols, ['cilium'], 'by the group label, sizes fold into the peer\'s group')
  t.match(mtuByGroup.cells, [{ src: 'aws', dst: 'cilium', samples: 8, errors: 4, errorsByReason: { MTU_BLACKHOLE: 4 } }])
  const mtuByZone = await matrix('probe=mtu&groupBy=topology.kubernetes.io/zone')
  t.match(mtuByZone.cells, [{ src: 'a', dst: 'b', samples: 8, errors: 4 }], 'likewise by any other label')

  const udpByZone = await matrix('probe=udp&groupBy=topology.kubernetes.io/zone')
  t.match(udpByZone.cells, [{ src: 'a', dst: 'b', samples: 4, loss: { sent: 20, lost: 1 } }], 'udp columns are peers: by a label, the peer\'s value')

  const metrics = (await agg.app.inject('/metrics')).body
  t.notMatch(metrics, /n2\/8500/, 'mtu sizes never become metric label values')
})
