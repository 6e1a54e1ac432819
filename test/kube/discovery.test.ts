// Discovery on a real kube-apiserver: the aggregator runs with in-cluster settings (service host
// and port, a ServiceAccount token file, the CA) and RBAC exactly as the chart ships it, and follows
// Nodes and agent Pods through relabels, cordons, deletions, an API server restart (watch resume)
// and an etcd compaction (410 Gone, relist).

import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import pino from 'pino'
import t from 'tap'
import { startAggregator } from '../../aggregator/src/app.ts'
import { loadConfig } from '../../aggregator/src/config.ts'
import { hello, RawAgent, TOKEN } from '../../aggregator/test/helpers.ts'
import { needsControlPlane, startControlPlane } from './control-plane.ts'
import { applyAgentPod, applyChartAccess, applyNode, createNamespace, setPodStatus } from './fixtures.ts'

const NAMESPACE = 'pingfleet'
/** How long a change in the API may take to show in the aggregator (watch latency, not a poll). */
const BOUND_MS = 10_000

interface AgentView { node: string, group: string, labels: Record<string, string>, state: string, connected: boolean, reason: string | null }

async function until<T> (what: string, check: () => Promise<T | undefined>, timeoutMs = BOUND_MS): Promise<{ value: T, ms: number }> {
  const start = Date.now()
  for (;;) {
    const value = await check().catch(() => undefined)
    if (value !== undefined) return { value, ms: Date.now() - start }
    if (Date.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting until ${what}`)
    await new Promise(resolve => setTimeout(resolve, 100))
  }
}

/** etcd's JSON gateway: the current revision, then a compaction up to it. */
async function compactEtcd (etcdUrl: string): Promise<number> {
  const range = await fetch(`${etcdUrl}/v3/kv/range`, { method: 'POST', body: JSON.stringify({ key: Buffer.from('/registry/').toString('base64') }) })
  const revision = Number(((await range.json()) as { header: { revision: string } }).header.revision)
  const compacted = await fetch(`${etcdUrl}/v3/kv/compaction`, { method: 'POST', body: JSON.stringify({ revision: String(revision), physical: true }) })
  if (!compacted.ok) throw new Error(`etcd compaction failed: ${compacted.status} ${await compacted.text()}`)
  return revision
}

t.test('discovery follows a real API server', needsControlPlane(), async t => {
  const plane = await startControlPlane()
  t.teardown(plane.stop)
  const dir = mkdtempSync(join(tmpdir(), 'pingfleet-kube-discovery-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  createNamespace(plane, NAMESPACE)
  // Pods are named as the hello's pod (agent-<node>), so the roster can tie a connection to its Pod.
  // Static agent auth here (TokenReview has its own suite); the chart's RBAC for discovery.
  const tokenFile = applyChartAccess(plane, NAMESPACE, dir, ['auth.mode=static', 'auth.static.token=not-used-here'])
  applyNode(plane, 'node-a', { cniplugin: 'aws', 'topology.kubernetes.io/zone': 'z1' })
  applyNode(plane, 'node-b', { cniplugin: 'aws', 'topology.kubernetes.io/zone': 'z2' })
  applyNode(plane, 'node-c', { cniplugin: 'cilium', 'topology.kubernetes.io/zone': 'z1' })
  applyAgentPod(plane, NAMESPACE, 'agent-node-a', 'node-a', '127.0.3.1')
  applyAgentPod(plane, NAMESPACE, 'agent-node-b', 'node-b', '127.0.3.2')
  applyAgentPod(plane, NAMESPACE, 'agent-node-c', 'node-c', '127.0.3.3')

  const logs: Array<{ msg?: string }> = []
  const sink = new Writable({ write (chunk: Buffer, _enc, done) { for (const line of chunk.toString().split('\n')) if (line !== '') logs.push(JSON.parse(line)); done() } })
  const port = new URL(plane.url).port
  const config = loadConfig({
    PINGFLEET_LISTEN: '127.0.0.1:0',
    PINGFLEET_TOKEN: TOKEN,
    PINGFLEET_INTERVAL: '1s',
    PINGFLEET_DISCOVERY: 'kubernetes',
    PINGFLEET_NAMESPACE: NAMESPACE,
    // In-cluster settings, as a pod gets them.
    KUBERNETES_SERVICE_HOST: '127.0.0.1',
    KUBERNETES_SERVICE_PORT: port,
    PINGFLEET_KUBE_TOKEN_FILE: tokenFile,
    PINGFLEET_KUBE_CA_FILE: plane.caFile
  })
  const agg = await startAggregator(config, pino({ level: 'info' }, sink))
  const base = agg.address()
  const sockets: RawAgent[] = []
  t.teardown(async () => {
    for (const s of sockets) s.socket.terminate()
    await agg.close()
  })
  const agents = async (): Promise<AgentView[]> => ((await (await fetch(`${base}/api/v1/agents`)).json()) as { agents: AgentView[] }).agents
  const agent = async (node: string): Promise<AgentView | undefined> => (await agents()).find(a => a.node === node)
  const metrics = async (): Promise<string> => (await fetch(`${base}/metrics`)).text()

  await t.test('expected agents and groups come from Nodes and Pods', async t => {
    const { value, ms } = await until('three expected agents', async () => {
      const all = await agents()
      return all.length === 3 ? all : undefined
    })
    t.comment(`listed after ${ms} ms`)
    t.same(value.map(a => [a.node, a.group, a.connected]), [['node-a', 'aws', false], ['node-b', 'aws', false], ['node-c', 'cilium', false]])
    t.match(value[0]!.reason, /agent pod agent-node-a is Running but has not connected/)
    t.match(await metrics(), /pingfleet_agents_expected\{group="aws"\} 2/)
  })

  const a = new RawAgent(base)
  sockets.push(a)
  await a.opened()
  a.send(hello('node-a', { cniplugin: 'stale-from-hello' }))
  await a.waitFor(m => m.type === 'welcome')

  await t.test('Node labels win over the hello', async t => {
    const row = await until('node-a connected', async () => { const r = await agent('node-a'); return r?.connected === true ? r : undefined })
    t.equal(row.value.group, 'aws')
    t.equal(row.value.labels.cniplugin, 'aws')
  })

  await t.test('a relabelled node moves between groups', async t => {
    plane.kubectl(['label', 'node', 'node-b', 'cniplugin=cilium', '--overwrite'])
    const { ms } = await until('node-b in cilium', async () => (await agent('node-b'))?.group === 'cilium' ? true : undefined)
    t.ok(ms <= BOUND_MS, `relabel seen after ${ms} ms (bound ${BOUND_MS} ms)`)
    t.match(await metrics(), /pingfleet_agents_expected\{group="cilium"\} 2/)
  })

  await t.test('a cordoned node is draining and no longer expected', async t => {
    plane.kubectl(['cordon', 'node-a'])
    const { ms } = await until('node-a draining', async () => (await agent('node-a'))?.state === 'draining' ? true : undefined)
    t.comment(`cordon seen after ${ms} ms`)
    t.match(await metrics(), /pingfleet_agents_expected\{group="aws"\} 0/)
    plane.kubectl(['uncordon', 'node-a'])
    await until('node-a ready', async () => (await agent('node-a'))?.state === 'ready' ? true : undefined)
  })

  await t.test('a pod that is not Running says so', async t => {
    plane.kubectl(['patch', 'pod', 'agent-node-c', '-n', NAMESPACE, '--subresource=status', '--type=merge', '-p', JSON.stringify({ status: { phase: 'Pending' } })])
    const { value } = await until('agent-c pending', async () => { const r = await agent('node-c'); return r?.reason?.includes('Pending') === true ? r : undefined })
    t.match(value.reason, 'agent pod agent-node-c is Pending')
    setPodStatus(plane, NAMESPACE, 'agent-node-c', '127.0.3.3', false)
    const notReady = await until('agent-c not ready', async () => { const r = await agent('node-c'); return r?.reason?.includes('not Ready') === true ? r : undefined })
    t.equal(notReady.value.reason, 'agent pod agent-node-c is Running but not Ready', 'a Running pod that turned not Ready says so')
    setPodStatus(plane, NAMESPACE, 'agent-node-c', '127.0.3.3', true)
    const running = await until('agent-c running', async () => { const r = await agent('node-c'); return r?.reason?.includes('has not connected') === true ? r : undefined })
    t.match(running.value.reason, 'is Running but has not connected', 'and Ready again')
  })

  await t.test('a deleted agent pod turns terminating (graceful deletion: no kubelet confirms it)', async t => {
    plane.kubectl(['delete', 'pod', 'agent-node-a', '-n', NAMESPACE, '--wait=false'])
    const { ms } = await until('node-a terminating', async () => (await agent('node-a'))?.state === 'terminating' ? true : undefined)
    t.ok(ms <= BOUND_MS, `deletion seen after ${ms} ms (bound ${BOUND_MS} ms)`)
  })

  await t.test('a deleted node is no longer expected', async t => {
    plane.kubectl(['delete', 'node', 'node-c', '--wait=false'])
    await until('node-c gone', async () => (await agent('node-c')) === undefined ? true : undefined)
    t.pass('node-c dropped out')
  })

  await t.test('watches resume after an API server restart', async t => {
    await plane.restartApiServer()
    plane.kubectl(['label', 'node', 'node-b', 'cniplugin=aws', '--overwrite'])
    const { ms } = await until('node-b back in aws', async () => (await agent('node-b'))?.group === 'aws' ? true : undefined, 30_000)
    t.ok(ms <= 30_000, `a change after the restart seen after ${ms} ms (bound 30 s: the watch's reconnect backoff)`)
  })

  await t.test('a watch whose resourceVersion was compacted away relists (410 Gone)', async t => {
    const relistsBefore = logs.filter(l => l.msg?.includes('410 Gone') === true).length
    // Writes the aggregator does not watch move etcd's revision past the one it holds.
    plane.kubectl(['create', 'configmap', 'bump', '-n', NAMESPACE, '--from-literal=a=b'])
    await plane.restartApiServer(async () => { await compactEtcd(plane.etcdUrl) })
    plane.kubectl(['label', 'node', 'node-b', 'cniplugin=cilium', '--overwrite'])
    const { ms } = await until('node-b in cilium after the relist', async () => (await agent('node-b'))?.group === 'cilium' ? true : undefined, 30_000)
    t.comment(`change after the compaction seen after ${ms} ms`)
    t.ok(logs.filter(l => l.msg?.includes('410 Gone') === true).length > relistsBefore, 'the aggregator logged a 410 and relisted')
  })
})
