// Field report 3: two agent processes claim one node (a DaemonSet maxSurge rollout, or one node name
// configured twice). One keeps the node, the other is closed with CLOSE_DUPLICATE_NODE and not let
// back in while the first holds it: the pod IP in the peer list and the delivery counters stay put,
// the conflict is warned about and counted, and nothing counts as a protocol rejection.

import t from 'tap'
import type { Socket } from 'node:net'
import { bucketIndex, CLOSE_DUPLICATE_NODE, CLOSE_REPLACED, type Hello } from '@pingfleet/protocol'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join as joinPath } from 'node:path'
import { aggregator, captureLog, hello, RawAgent, report } from '../helpers.ts'
import { API_TOKEN, FakeKube, NAMESPACE, node, pod, until } from '../kube-fake.ts'

/** An agent's hello for node n1 from one pod, started `uptimeMs` ago. */
function claim (pod: string, podIp: string, bootId: string, uptimeMs?: number): Hello {
  const h: Hello = { ...hello('n1', { cniplugin: 'aws' }, bootId), pod, podIp }
  if (uptimeMs !== undefined) h.uptimeMs = uptimeMs
  return h
}

async function join (base: string, h: Hello): Promise<RawAgent> {
  const a = new RawAgent(base)
  await a.opened()
  a.send(h)
  await Promise.race([a.waitFor(m => m.type === 'welcome'), a.closed])
  return a
}

type Agg = Awaited<ReturnType<typeof aggregator>>
async function agents (agg: Agg): Promise<Array<{ node: string, pod: string, podIp: string, bootId: string, connected: boolean, reports: { accepted: number } }>> {
  return (await agg.app.inject('/api/v1/agents')).json().agents
}
const rejections = async (agg: Agg): Promise<string[]> =>
  (await agg.app.inject('/metrics')).body.split('\n').filter(l => l.startsWith('pingfleet_ingest_rejected_total{'))
const claims = async (agg: Agg): Promise<string | undefined> =>
  (await agg.app.inject('/metrics')).body.split('\n').find(l => l.startsWith('pingfleet_ingest_duplicate_node_claims_total{'))

const cells = [{ probe: 'pod' as const, target: 'n1', count: 1, latency: [bucketIndex(0.001), 1] }]

t.test('the newer boot keeps the node; the older one is told to back off and stays out; nothing else moves', async t => {
  const { log, lines } = captureLog()
  const agg = await aggregator({}, undefined, log)
  t.teardown(() => agg.close())
  // The old pod has run for an hour; the surge pod started a second ago.
  const old = await join(agg.address(), claim('agent-old', '127.0.0.10', 'boot-old-00000', 3_600_000))
  old.send(report(1, Date.now(), cells))
  await old.waitFor(m => m.type === 'ack' && m.seq === 1)
  const surge = await join(agg.address(), claim('agent-new', '127.0.0.11', 'boot-new-00000', 1000))
  t.match(await old.closed, { code: CLOSE_DUPLICATE_NODE }, 'the old pod is told to back off')
  t.ok(surge.received.some(m => m.type === 'welcome'), 'the surge pod is welcomed')
  surge.send(report(1, Date.now(), cells))
  surge.send(report(2, Date.now(), cells))
  await surge.waitFor(m => m.type === 'ack' && m.seq === 2)
  const revision = (await surge.waitFor(m => m.type === 'peers')) as { revision: number }

  // The old agent comes back (as an agent that ignores the close code would), several times.
  for (let i = 0; i < 5; i++) {
    const again = await join(agg.address(), claim('agent-old', '127.0.0.10', 'boot-old-00000', 3_600_000 + i * 100))
    t.match(await again.closed, { code: CLOSE_DUPLICATE_NODE }, `return ${i + 1} is refused`)
    t.notOk(again.received.some(m => m.type === 'welcome'), 'and never welcomed')
  }
  t.equal(surge.socket.readyState, surge.socket.OPEN, 'the holder is never kicked out')
  const [entry] = await agents(agg)
  t.match(entry, { pod: 'agent-new', podIp: '127.0.0.11', bootId: 'boot-new-00000', connected: true, reports: { accepted: 2 } },
    'pod IP and delivery counters are the holder\'s, unchanged by the returns')
  const peers = await agg.app.inject('/api/v1/agents')
  t.equal(peers.json().agents.length, 1)
  t.notOk(surge.received.some(m => m.type === 'peers' && m.revision > revision.revision && m.peers[0]?.podIp !== '127.0.0.11'), 'no peer push ever names the old pod IP again')
  t.equal(await claims(agg), 'pingfleet_ingest_duplicate_node_claims_total{node="n1"} 6', 'every claim is counted')
  const warned = lines.filter(l => l.code === 'PINGFLEET_ERR_DUPLICATE_NODE')
  t.equal(warned.length, 6, 'and warned about')
  t.match(warned[0], { level: 40, node: 'n1', kept: { pod: 'agent-new' }, closed: { pod: 'agent-old' } })
  t.same(await rejections(agg), [], 'no protocol rejection is counted')
  surge.socket.close()
})

t.test('an older boot that connects second does not take the node', async t => {
  const agg = await aggregator()
  t.teardown(() => agg.close())
  const holder = await join(agg.address(), claim('agent-new', '127.0.0.11', 'boot-new-00000', 5000))
  const older = await join(agg.address(), claim('agent-old', '127.0.0.10', 'boot-old-00000', 7_200_000))
  t.match(await older.closed, { code: CLOSE_DUPLICATE_NODE })
  t.equal(holder.socket.readyState, holder.socket.OPEN)
  t.match(await agents(agg), [{ pod: 'agent-new', podIp: '127.0.0.11' }])
  holder.socket.close()
})

t.test('once the holder is gone, the other agent gets the node at its next try', async t => {
  const agg = await aggregator()
  t.teardown(() => agg.close())
  const holder = await join(agg.address(), claim('agent-new', '127.0.0.11', 'boot-new-00000', 5000))
  const older = await join(agg.address(), claim('agent-old', '127.0.0.10', 'boot-old-00000', 7_200_000))
  await older.closed
  holder.socket.close()
  await holder.closed
  for (let i = 0; i < 50 && (await agents(agg))[0]?.connected === true; i++) await new Promise(resolve => setTimeout(resolve, 20))
  const back = await join(agg.address(), claim('agent-old', '127.0.0.10', 'boot-old-00000', 7_200_500))
  t.ok(back.received.some(m => m.type === 'welcome'), 'welcomed')
  t.match(await agents(agg), [{ pod: 'agent-old', connected: true }])
  back.socket.close()
})

t.test('reports in flight on a connection that was just replaced are neither applied nor counted as rejections', async t => {
  const agg = await aggregator()
  t.teardown(() => agg.close())
  for (const [what, second, code] of [
    ['the same agent reconnecting', claim('agent-a', '127.0.0.10', 'boot-same-0000', 2000), CLOSE_REPLACED],
    ['a newer agent process', claim('agent-b', '127.0.0.11', 'boot-other-000', 10), CLOSE_DUPLICATE_NODE]
  ] as const) {
    const first = await join(agg.address(), claim('agent-a', '127.0.0.10', 'boot-same-0000', 1000))
    // The first connection stops reading, so it keeps writing as if nothing happened.
    const raw = (first.socket as unknown as { _socket: Socket })._socket
    raw.pause()
    const next = await join(agg.address(), second)
    t.ok(next.received.some(m => m.type === 'welcome'), `${what}: the new connection is welcomed`)
    first.send(report(50, Date.now(), cells))
    first.send({ type: 'hello' })
    await new Promise(resolve => setTimeout(resolve, 100))
    raw.resume()
    t.match(await first.closed, { code }, `${what}: the old one is closed with ${code}`)
    t.notOk(first.received.some(m => m.type === 'ack'), 'nothing it sent after being replaced is acked')
    t.same(await rejections(agg), [], `${what}: no rejection counted`)
    next.socket.close()
    await next.closed
  }
})

t.test('a replaced connection is not rejected later for "no hello in time"', async t => {
  // The hello timer (10 s) of a connection replaced before it ran out used to fire anyway.
  const agg = await aggregator()
  t.teardown(() => agg.close())
  const first = await join(agg.address(), claim('agent-a', '127.0.0.10', 'boot-same-0000', 1000))
  const second = await join(agg.address(), claim('agent-a', '127.0.0.10', 'boot-same-0000', 1100))
  await first.closed
  await new Promise(resolve => setTimeout(resolve, 10_500))
  t.same(await rejections(agg), [], 'no rejection counted')
  second.socket.close()
})

t.test('with discovery, the pod Kubernetes places on the node wins over a newer boot that is terminating or elsewhere', async t => {
  const fake = new FakeKube()
  const url = await fake.listen()
  const dir = mkdtempSync(joinPath(tmpdir(), 'pingfleet-duplicate-'))
  writeFileSync(joinPath(dir, 'token'), API_TOKEN)
  fake.put('Node', node('n1', { cniplugin: 'aws' }))
  fake.put('Node', node('n2', { cniplugin: 'aws' }))
  fake.put('Pod', pod('agent-n1', 'n1'))
  fake.put('Pod', pod('agent-elsewhere', 'n2'))
  fake.put('Pod', pod('agent-leaving', 'n1', { deleting: true }))
  const agg = await aggregator({ PINGFLEET_KUBE_API_URL: url, PINGFLEET_KUBE_TOKEN_FILE: joinPath(dir, 'token'), PINGFLEET_NAMESPACE: NAMESPACE })
  t.teardown(async () => {
    await agg.close()
    await fake.close()
    rmSync(dir, { recursive: true, force: true })
  })
  await until('discovery listed', async () => (await agg.app.inject('/api/v1/agents')).json().agents.length > 0)
  const holder = await join(agg.address(), claim('agent-n1', '127.0.0.10', 'boot-n1-000000', 3_600_000))
  t.ok(holder.received.some(m => m.type === 'welcome'))
  // Both booted a second ago, so by boot age they would win; Kubernetes says otherwise.
  for (const [pod, why] of [['agent-elsewhere', 'scheduled to n2'], ['agent-leaving', 'terminating']]) {
    const claimant = await join(agg.address(), claim(pod!, '127.0.0.20', `boot-${pod}`, 1000))
    t.match(await claimant.closed, { code: CLOSE_DUPLICATE_NODE }, `a pod ${why} is told to back off`)
  }
  t.equal(holder.socket.readyState, holder.socket.OPEN, 'the pod on the node keeps it')
  t.match((await agents(agg)).find(a => a.node === 'n1'), { pod: 'agent-n1', podIp: '127.0.0.10', connected: true })
  holder.socket.close()
})
