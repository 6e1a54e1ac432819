// In-cluster discovery through the aggregator's public surfaces: welcome and peers on the agent
// websocket, /api/v1/agents, the group matrix, the gates and /metrics, with a fake API server.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { bucketIndex, type AggregatorMessage, type Peers, type Report, type Welcome } from '@pingfleet/protocol'
import { aggregator, hello, RawAgent, report } from '../helpers.ts'
import { PEERS_MIN_GAP_MS } from '../../src/http/stream.ts'
import { API_TOKEN, FakeKube, NAMESPACE, node, pod, until } from '../kube-fake.ts'

const ok = (target: string): Report['cells'][number] => ({ probe: 'pod', target, count: 2, latency: [bucketIndex(0.002), 2] })

interface AgentView { node: string, group: string, labels: Record<string, string>, state: string, connected: boolean, reason: string | null, pod: string }

async function setup (t: Test, options: { apiDown?: boolean } = {}) {
  const fake = new FakeKube()
  const url = await fake.listen()
  fake.down = options.apiDown === true
  const dir = mkdtempSync(join(tmpdir(), 'pingfleet-discovery-'))
  writeFileSync(join(dir, 'token'), API_TOKEN)
  fake.put('Node', node('a', { cniplugin: 'aws', 'topology.kubernetes.io/zone': 'z1' }))
  fake.put('Node', node('b', { cniplugin: 'aws', 'topology.kubernetes.io/zone': 'z2' }))
  fake.put('Node', node('c', { cniplugin: 'cilium', 'topology.kubernetes.io/zone': 'z1' }))
  // A node without an agent pod (say, excluded by the DaemonSet's nodeSelector) is not expected.
  fake.put('Node', node('d', { cniplugin: 'cilium' }))
  fake.put('Pod', pod('agent-a', 'a'))
  fake.put('Pod', pod('agent-b', 'b'))
  fake.put('Pod', pod('agent-c', 'c'))
  const agg = await aggregator({ PINGFLEET_KUBE_API_URL: url, PINGFLEET_KUBE_TOKEN_FILE: join(dir, 'token'), PINGFLEET_NAMESPACE: NAMESPACE })
  const base = agg.address()
  const sockets: RawAgent[] = []
  t.teardown(async () => {
    for (const s of sockets) s.socket.terminate()
    await agg.close()
    await fake.close()
    rmSync(dir, { recursive: true, force: true })
  })
  const agents = async (): Promise<AgentView[]> => ((await (await fetch(`${base}/api/v1/agents`)).json()) as { agents: AgentView[] }).agents
  const connect = async (name: string, labels: Record<string, string> = {}): Promise<RawAgent> => {
    const agent = new RawAgent(base)
    sockets.push(agent)
    await agent.opened()
    agent.send(hello(name, labels))
    await agent.waitFor(m => m.type === 'welcome')
    return agent
  }
  if (options.apiDown !== true) await until('discovery listed', async () => (await agents()).some(a => a.node === 'c'))
  return { fake, base, agents, connect }
}

const lastPeers = (agent: RawAgent): Peers => agent.received.filter((m): m is Peers => m.type === 'peers').at(-1)!
// A push follows the previous one by PEERS_MIN_GAP_MS at least: waiting only that long raced the timer.
const peersWhere = (agent: RawAgent, check: (p: Peers) => boolean) =>
  agent.waitFor((m: AggregatorMessage) => m.type === 'peers' && check(m), PEERS_MIN_GAP_MS + 3000)

t.test('Kubernetes labels win over the hello, and expected agents that never connected are listed', async t => {
  const s = await setup(t)
  const a = await s.connect('a', { cniplugin: 'stale', rack: 'r1' })
  const welcome = a.received.find((m): m is Welcome => m.type === 'welcome')!
  t.same(welcome.labels, { cniplugin: 'aws', 'topology.kubernetes.io/zone': 'z1', rack: 'r1' }, 'group and zone from the Node; other hello labels kept')
  await s.connect('b')

  const agents = await s.agents()
  t.same(agents.map(x => [x.node, x.group, x.connected]), [['a', 'aws', true], ['b', 'aws', true], ['c', 'cilium', false]])
  const c = agents.find(x => x.node === 'c')!
  t.equal(c.pod, 'agent-c')
  t.match(c.reason, /agent pod agent-c is Running but has not connected/)
  t.equal(agents.find(x => x.node === 'a')!.reason, null)

  s.fake.put('Pod', pod('agent-c', 'c', { phase: 'Pending', scheduled: false }))
  await until('pending reason', async () => (await s.agents()).find(x => x.node === 'c')?.reason === 'agent pod agent-c is Pending')

  const metrics = await (await fetch(`${s.base}/metrics`)).text()
  t.match(metrics, /pingfleet_agents_expected\{group="aws"\} 2/)
  t.match(metrics, /pingfleet_agents_expected\{group="cilium"\} 1/, 'node d has no agent pod')
  t.match(metrics, /pingfleet_agents_connected\{group="cilium"\} 0/)
})

t.test('relabelling a node moves it between groups live', async t => {
  const s = await setup(t)
  const a = await s.connect('a')
  const b = await s.connect('b', { cniplugin: 'aws' })
  await peersWhere(a, p => p.peers.length === 2)
  const now = Date.now()
  a.send(report(1, now, [ok('b')]))
  await a.waitFor(m => m.type === 'ack' && m.seq === 1)

  s.fake.put('Node', node('b', { cniplugin: 'cilium', 'topology.kubernetes.io/zone': 'z2' }))
  const peers = await peersWhere(a, p => p.peers.find(x => x.node === 'b')?.labels.cniplugin === 'cilium') as Peers
  t.equal(peers.peers.find(x => x.node === 'b')!.state, 'ready')
  t.equal((await s.agents()).find(x => x.node === 'b')!.group, 'cilium')

  a.send(report(2, Date.now(), [ok('b')]))
  b.send(report(1, Date.now(), [ok('a')]))
  await a.waitFor(m => m.type === 'ack' && m.seq === 2)
  await b.waitFor(m => m.type === 'ack' && m.seq === 1)
  const matrix = await (await fetch(`${s.base}/api/v1/matrix?probe=pod&groupBy=cniplugin&window=1m`)).json() as { cells: Array<{ src: string, dst: string, samples: number }> }
  const cells = Object.fromEntries(matrix.cells.map(c => [`${c.src}->${c.dst}`, c.samples]))
  t.same(cells, { 'aws->aws': 2, 'aws->cilium': 2, 'cilium->aws': 2 }, 'samples before the move stay aws->aws; new ones use the new group')

  // cilium now expects b and c; only b is connected.
  const gate = await (await fetch(`${s.base}/api/v1/gates/adhoc?probe=pod&src=cilium&dst=aws&minCoverage=0.9&minSamples=1`)).json() as { checks: Array<{ id: string, observed: number | null, detail: string }> }
  const coverage = gate.checks.find(c => c.id === 'coverage cilium')!
  t.equal(coverage.observed, 0.5)
  t.match(coverage.detail, '1 of 2 agents')
})

t.test('one readiness rule: Ready=Unknown is not ready, like False, for the agent list and the gates alike', async t => {
  const s = await setup(t)
  await s.connect('a')
  const NOT_READY = 'agent pod agent-c is Running but not Ready'
  for (const ready of ['Unknown', 'False', 'True'] as const) {
    s.fake.put('Pod', pod('agent-c', 'c', { ready }))
    const want = ready === 'True' ? 'agent pod agent-c is Running but has not connected to the aggregator' : NOT_READY
    await until(`agents reason with Ready=${ready}`, async () => (await s.agents()).find(x => x.node === 'c')?.reason === want)
    const gate = await (await fetch(`${s.base}/api/v1/gates/adhoc?probe=pod&nodes=c&maxNodeErrorRatio=0.1`)).json() as { checks: Array<{ id: string, worst?: Array<{ node: string, detail: string }> }> }
    const coverage = gate.checks.find(c => c.id === 'coverage nodes')!
    t.equal(coverage.worst?.[0]?.detail, ready === 'True' ? 'its agent has never connected' : NOT_READY, `gate with Ready=${ready}`)
  }
})

t.test('a cordoned node is draining and a deleted agent pod terminating, and neither is expected', async t => {
  const s = await setup(t)
  const a = await s.connect('a')
  await s.connect('b')
  const c = await s.connect('c')
  await peersWhere(a, p => p.peers.length === 3 && p.peers.every(x => x.state === 'ready'))

  s.fake.put('Node', node('b', { cniplugin: 'aws', 'topology.kubernetes.io/zone': 'z2' }, true))
  await peersWhere(a, p => p.peers.find(x => x.node === 'b')?.state === 'draining')
  s.fake.put('Pod', pod('agent-c', 'c', { deleting: true }))
  await peersWhere(a, p => p.peers.find(x => x.node === 'c')?.state === 'terminating')
  t.same(lastPeers(a).peers.map(x => [x.node, x.state]).sort(), [['a', 'ready'], ['b', 'draining'], ['c', 'terminating']])

  const metrics = await (await fetch(`${s.base}/metrics`)).text()
  t.match(metrics, /pingfleet_agents_expected\{group="aws"\} 1/, 'the cordoned node is not expected')
  t.match(metrics, /pingfleet_agents_expected\{group="cilium"\} 0/, 'nor the node whose agent pod is going away')

  // Uncordon: back to ready, live.
  s.fake.put('Node', node('b', { cniplugin: 'aws', 'topology.kubernetes.io/zone': 'z2' }))
  await peersWhere(a, p => p.peers.find(x => x.node === 'b')?.state === 'ready')

  // The pod is gone and its agent disconnects: the reason says why nobody should worry.
  s.fake.remove('Pod', 'agent-c')
  c.socket.close()
  await until('c disconnected', async () => (await s.agents()).find(x => x.node === 'c')?.connected === false)
  t.equal((await s.agents()).find(x => x.node === 'c')!.reason, 'no live agent pod on node c')
})

t.test('a deleted node loses its Kubernetes labels and is no longer expected', async t => {
  const s = await setup(t)
  s.fake.remove('Node', 'c')
  await until('c gone', async () => !(await s.agents()).some(x => x.node === 'c'))
  t.pass('an expected agent whose node is deleted drops out of the list')
})

t.test('with the API down at start, the aggregator serves and counts the roster until discovery lists', async t => {
  const s = await setup(t, { apiDown: true })
  await s.connect('a', { cniplugin: 'aws' })
  let metrics = await (await fetch(`${s.base}/metrics`)).text()
  t.match(metrics, /pingfleet_agents_expected\{group="aws"\} 1/, 'the roster stands in')
  t.notMatch(metrics, /group="cilium"/)
  t.same((await s.agents()).map(x => x.node), ['a'])

  s.fake.down = false
  await until('discovery listed', async () => (await s.agents()).some(a => a.node === 'c'))
  metrics = await (await fetch(`${s.base}/metrics`)).text()
  t.match(metrics, /pingfleet_agents_expected\{group="aws"\} 2/)
  t.match(metrics, /pingfleet_agents_expected\{group="cilium"\} 1/)
})

t.test('an agent pod turning terminating is pushed at once, and stays terminating after the pod is gone until its agent says hello again', async t => {
  const s = await setup(t)
  const a = await s.connect('a')
  await s.connect('b')
  const c = await s.connect('c')
  await peersWhere(a, p => p.peers.length === 3 && p.peers.every(x => x.state === 'ready'))
  // Past the minimum gap between two urgent pushes, so this departure goes out at once.
  await new Promise(resolve => setTimeout(resolve, 600))

  s.fake.put('Pod', pod('agent-c', 'c', { deleting: true }))
  await until('c terminating', async () => (await s.agents()).find(x => x.node === 'c')?.state === 'terminating')
  // The push left when the roster changed, before the ack of a report sent after that: the socket keeps order.
  a.send(report(1, Date.now(), []))
  await a.waitFor(m => m.type === 'ack' && m.seq === 1)
  const ackAt = a.received.findIndex(m => m.type === 'ack' && m.seq === 1)
  const pushAt = a.received.findIndex(m => m.type === 'peers' && m.peers.find(x => x.node === 'c')?.state === 'terminating')
  t.ok(pushAt !== -1 && pushAt < ackAt, 'the list with c terminating reached a before the ack: no coalescing delay')

  // The pod is deleted and its agent has gone: the node's entry must not turn ready again, or its
  // peers would probe an address where nothing answers until the new pod's agent connects.
  // (It drops the connection without announcing: only what Kubernetes said marks it.)
  c.socket.terminate()
  s.fake.remove('Pod', 'agent-c')
  await until('c disconnected', async () => (await s.agents()).find(x => x.node === 'c')?.connected === false)
  s.fake.put('Pod', pod('agent-c2', 'c', { podIP: '10.244.0.9' }))
  await until('the new pod is known', async () => (await s.agents()).find(x => x.node === 'c')?.reason?.includes('agent-c2') === true)
  t.equal((await s.agents()).find(x => x.node === 'c')!.state, 'terminating', 'still terminating: the old agent is gone')
  t.equal(lastPeers(a).peers.find(x => x.node === 'c')!.state, 'terminating')

  const c2 = new RawAgent(s.base)
  t.teardown(() => c2.socket.terminate())
  await c2.opened()
  c2.send({ ...hello('c'), pod: 'agent-c2', podIp: '127.0.0.2', bootId: 'boot-c-0002' })
  await c2.waitFor(m => m.type === 'welcome')
  t.equal((await s.agents()).find(x => x.node === 'c')!.state, 'ready', 'the new agent is ready')
})
