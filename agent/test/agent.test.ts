import t, { type Test } from 'tap'
import { pino } from 'pino'
import { PROTOCOL_VERSION, sparseTotal, type Peer } from '@pingfleet/protocol'
import { podTargets, startAgent, type AgentHandle } from '../src/agent.ts'
import { loadConfig } from '../src/config.ts'
import type { AgentStatus } from '../src/server.ts'
import { FakeAggregator } from './fake-aggregator.ts'

async function agent (t: Test, agg: FakeAggregator, node: string, extra: Record<string, string> = {}): Promise<AgentHandle> {
  const config = loadConfig({
    PINGFLEET_AGGREGATOR_URL: agg.url,
    PINGFLEET_TOKEN: 'secret',
    PINGFLEET_NODE_NAME: node,
    PINGFLEET_POD_IP: '127.0.0.1',
    PINGFLEET_LISTEN: '127.0.0.1:0',
    PINGFLEET_LABELS: 'cniplugin=aws',
    PINGFLEET_INTERVAL: '5s', // the aggregator's welcome sets the real cadence
    PINGFLEET_PROBE_TIMEOUT: '500ms',
    ...extra
  })
  const handle = await startAgent(config, pino({ level: 'silent' }))
  t.teardown(() => handle.shutdown())
  return handle
}

const peer = (node: string, port: number, state: Peer['state'] = 'ready'): Peer => ({ node, podIp: '127.0.0.1', port, labels: {}, state })

t.test('roster to targets: ready peers except this node', async t => {
  t.same(podTargets([peer('a', 1), peer('b', 2), peer('c', 3, 'draining')], 'a'), [{ kind: 'pod', id: 'b', podIp: '127.0.0.1', port: 2 }])
})

t.test('two agents probe each other and every report arrives once', async t => {
  const agg = await new FakeAggregator({ intervalMs: 150, labels: { 'topology.kubernetes.io/zone': 'a' } }).listen()
  t.teardown(() => agg.close())
  const a = await agent(t, agg, 'node-a')
  const b = await agent(t, agg, 'node-b')
  await agg.until(() => agg.hellos.length === 2, 'both hellos')
  t.match(agg.hellos.find(h => h.node === 'node-a'), { pod: 'node-a', port: a.port, labels: { cniplugin: 'aws' }, bootId: a.bootId })
  agg.send({ type: 'peers', v: PROTOCOL_VERSION, revision: 2, peers: [peer('node-a', a.port), peer('node-b', b.port)] })

  const probed = (from: string, to: string) => agg.reports.some(r =>
    agg.hellos.find(h => h.bootId === bootOf(r))?.node === from &&
    r.cells.some(c => c.probe === 'pod' && c.target === to && sparseTotal(c.latency) > 0))
  // Reports do not carry the node; the fake tells connections apart, one per agent here.
  const bootOf = (r: { connection: number }) => agg.hellos[r.connection - 1]!.bootId
  await agg.until(() => probed('node-a', 'node-b') && probed('node-b', 'node-a'), 'successful probes both ways')

  const ping = await (await fetch(`http://127.0.0.1:${a.port}/ping`)).json()
  t.same(ping, { node: 'node-a', pod: 'node-a', labels: { cniplugin: 'aws', 'topology.kubernetes.io/zone': 'a' } }, 'welcome labels are merged in')

  const status = await (await fetch(`http://127.0.0.1:${a.port}/status`)).json() as AgentStatus
  t.match(status, { node: 'node-a', bootId: a.bootId, peers: 1, connected: true, dropped: 0 })

  await a.shutdown()
  const final = a.status()
  t.equal(final.acked, final.seq, 'the last report was acknowledged before shutdown returned')
  const seqs = agg.reports.filter(r => bootOf(r) === a.bootId).map(r => r.seq)
  t.same(seqs, Array.from({ length: final.seq }, (_, i) => i + 1), 'seq 1..N, each exactly once')
  await t.rejects(fetch(`http://127.0.0.1:${a.port}/ping`), 'the server is closed')
})

t.test('shutdown without an aggregator gives up after the shutdown timeout', async t => {
  const agg = await new FakeAggregator().listen()
  const url = agg.url
  await agg.close()
  const a = await agent(t, { url } as FakeAggregator, 'lonely', { PINGFLEET_SHUTDOWN_TIMEOUT: '50ms' })
  await a.shutdown()
  t.match(a.status(), { seq: 1, acked: 0, buffered: 1, connected: false })
})
