import t from 'tap'
import { connect } from 'node:net'
import { bucketIndex } from '@pingfleet/protocol'
import WebSocket from 'ws'
import { aggregator, captureLog, hello, RawAgent, report, TOKEN } from '../helpers.ts'

t.test('an agent says hello, gets welcome and peers, and every report is acked once applied', async t => {
  const agg = await aggregator()
  t.teardown(() => agg.close())
  const a = new RawAgent(agg.address())
  await a.opened()
  a.send(hello('n1', { cniplugin: 'aws' }))
  const welcome = await a.waitFor(m => m.type === 'welcome')
  t.match(welcome, { type: 'welcome', lastSeq: 0, settings: { intervalMs: 1000 }, labels: { cniplugin: 'aws' } })
  await a.waitFor(m => m.type === 'peers')
  const now = Date.now()
  const cells = [{ probe: 'pod' as const, target: 'n1', count: 2, latency: [bucketIndex(0.001), 2] }]
  a.send(report(1, now, cells))
  a.send(report(1, now, cells))
  a.send(report(2, now, cells))
  await a.waitFor(m => m.type === 'ack' && m.seq === 2)
  t.equal(a.received.filter(m => m.type === 'ack').length, 3, 'duplicates are acked too')
  const agents = await agg.app.inject('/api/v1/agents')
  t.match(agents.json(), { agents: [{ node: 'n1', group: 'aws', connected: true, reports: { accepted: 2, duplicates: 1, lastSeq: 2 } }] })
  const matrix = (await agg.app.inject('/api/v1/matrix?probe=pod&groupBy=node&window=10s')).json()
  t.match(matrix.cells, [{ src: 'n1', dst: 'n1', samples: 4, errors: 0, errorRatio: 0 }])
  t.ok(Math.abs(matrix.cells[0].latency.p50 - 0.001) / 0.001 < 0.05, 'p50 near 1 ms')
  const metrics = (await agg.app.inject('/metrics')).body
  t.match(metrics, /pingfleet_ingest_store_cells\{store="node"\} 1\n/, 'one node-store cell')
  t.match(metrics, /pingfleet_ingest_store_bytes\{store="node"\} [1-9]\d*\n/, 'its bytes are counted')
  a.socket.close()
})

t.test('reports an agent dropped during an outage (a seq gap in one boot) are counted, logged with a code, and reset by a new boot', async t => {
  const { log, lines } = captureLog('warn')
  const agg = await aggregator({}, undefined, log)
  t.teardown(() => agg.close())
  const cells = [{ probe: 'pod' as const, target: 'n1', count: 1, latency: [bucketIndex(0.001), 1] }]
  const a = new RawAgent(agg.address())
  await a.opened()
  a.send(hello('n1'))
  await a.waitFor(m => m.type === 'welcome')
  for (const seq of [1, 2, 6, 7, 9]) a.send(report(seq, Date.now(), cells))
  await a.waitFor(m => m.type === 'ack' && m.seq === 9)
  const row = () => agg.app.inject('/api/v1/agents').then(r => r.json().agents[0].reports)
  t.match(await row(), { accepted: 5, missed: 4, firstSeq: 1, lastSeq: 9 }, 'seqs 3-5 and 8 never arrived')
  t.match((await agg.app.inject('/metrics')).body, /pingfleet_ingest_missed_reports_total 4\n/)
  t.same(lines.filter(l => l.code === 'PINGFLEET_ERR_REPORTS_MISSED').map(l => l.missed), [3, 1])
  a.socket.close()
  await a.closed
  // A restarted agent starts its seqs over: nothing is missed, and its own count starts at zero.
  const b = new RawAgent(agg.address())
  await b.opened()
  b.send(hello('n1', {}, 'boot-n1-0002'))
  await b.waitFor(m => m.type === 'welcome')
  b.send(report(1, Date.now(), cells))
  await b.waitFor(m => m.type === 'ack' && m.seq === 1)
  t.match(await row(), { accepted: 1, missed: 0, firstSeq: 1, lastSeq: 1 })
  b.socket.close()
})

t.test('a client without the token is refused before the upgrade', async t => {
  const agg = await aggregator()
  t.teardown(() => agg.close())
  for (const token of [null, 'wrong-token-000000', TOKEN.slice(0, -1)]) {
    const a = new RawAgent(agg.address(), token)
    const status = await new Promise<number>(resolve => {
      a.socket.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0))
      a.socket.on('open', () => resolve(101))
      a.socket.on('error', () => {})
    })
    t.equal(status, 401, `token ${JSON.stringify(token)} gets 401`)
  }
  const metrics = (await agg.app.inject('/metrics')).body
  t.match(metrics, /pingfleet_ingest_rejected_total\{code="unauthorized"\} 3/)
})

t.test('a garbage frame closes only that connection', async t => {
  const agg = await aggregator()
  t.teardown(() => agg.close())
  const good = new RawAgent(agg.address())
  const bad = new RawAgent(agg.address())
  await Promise.all([good.opened(), bad.opened()])
  good.send(hello('good'))
  bad.send(hello('bad'))
  await Promise.all([good.waitFor(m => m.type === 'welcome'), bad.waitFor(m => m.type === 'welcome')])
  bad.send('{"type":"report","v":1,"seq":"one"}')
  const closed = await bad.closed
  t.equal(closed.code, 1008)
  t.match(closed.reason, /PINGFLEET_ERR_PROTOCOL_SCHEMA/)
  good.send(report(1, Date.now(), []))
  await good.waitFor(m => m.type === 'ack' && m.seq === 1)
  t.equal(good.socket.readyState, good.socket.OPEN, 'the other agent is still served')
  const metrics = (await agg.app.inject('/metrics')).body
  t.match(metrics, /pingfleet_ingest_rejected_total\{code="PINGFLEET_ERR_PROTOCOL_SCHEMA"\} 1/)
  good.socket.close()
})

t.test('a report before hello is refused', async t => {
  const agg = await aggregator()
  t.teardown(() => agg.close())
  const a = new RawAgent(agg.address())
  await a.opened()
  a.send(report(1, Date.now(), []))
  t.match((await a.closed).reason, /PROTOCOL_HELLO/)
})

t.test('clients that reset their socket while being refused do not bring the aggregator down', async t => {
  const agg = await aggregator()
  t.teardown(() => agg.close())
  const { hostname, port } = new URL(agg.address())
  const requests = [
    '/api/v1/stream', // no token: refused with 401
    '/elsewhere' // not the stream: refused with 404
  ]
  for (let i = 0; i < 40; i++) {
    const path = requests[i % requests.length]!
    await new Promise<void>(resolve => {
      const socket = connect(Number(port), hostname, () => {
        socket.write(`GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`)
        // A RST instead of a FIN, while the aggregator is still answering.
        setImmediate(() => { socket.resetAndDestroy(); resolve() })
      })
      socket.on('error', () => resolve())
    })
  }
  await new Promise(resolve => setTimeout(resolve, 200))
  t.equal((await agg.app.inject('/healthz')).statusCode, 200, 'still serving')
})

t.test('a burst of joins is coalesced into few peer pushes, and the last one lists everyone', async t => {
  const agg = await aggregator()
  t.teardown(() => agg.close())
  const first = new RawAgent(agg.address())
  await first.opened()
  first.send(hello('first'))
  await first.waitFor(m => m.type === 'peers')
  const others: RawAgent[] = []
  t.teardown(() => { for (const a of others) a.socket.close() })
  for (let i = 0; i < 20; i++) {
    const a = new RawAgent(agg.address())
    others.push(a)
    await a.opened()
    a.send(hello(`joiner-${i}`))
    await new Promise(resolve => setTimeout(resolve, 100))
  }
  const pushes = (): Array<{ peers: unknown[] }> => first.received.filter(m => m.type === 'peers') as unknown as Array<{ peers: unknown[] }>
  t.ok(pushes().length <= 3, `${pushes().length} peer messages for 20 joins over 2 s (its own and at most two pushes)`)
  const last = await first.waitFor(m => m.type === 'peers' && m.peers.length === 21, 8000)
  t.ok(last, 'the newest list reaches every agent')
  first.socket.close()
})

interface AgentRow { node: string, state: string, connected: boolean }
const agentRows = async (base: string): Promise<AgentRow[]> => ((await (await fetch(`${base}/api/v1/agents`)).json()) as { agents: AgentRow[] }).agents
async function until (what: string, check: () => Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`)
    await new Promise(resolve => setTimeout(resolve, 20))
  }
}
type PeersMessage = { type: 'peers', peers: Array<{ node: string, state: string }> }
const stateIn = (m: { type: string }, node: string): string | undefined => m.type === 'peers' ? (m as PeersMessage).peers.find(p => p.node === node)?.state : undefined

t.test('an agent that closes with 1001 is terminating at once; a broken connection is not; a new hello is ready again', async t => {
  const agg = await aggregator()
  t.teardown(() => agg.close())
  const base = agg.address()
  const join = async (node: string, bootId?: string): Promise<RawAgent> => {
    const a = new RawAgent(base)
    await a.opened()
    a.send(hello(node, {}, bootId))
    await a.waitFor(m => m.type === 'welcome')
    return a
  }
  const a = await join('a')
  const b = await join('b')
  const c = await join('c')
  t.teardown(() => { for (const x of [a, b, c]) x.socket.terminate() })
  await a.waitFor(m => m.type === 'peers' && m.peers.length === 3, 8000)
  // Past the minimum gap between two urgent pushes, so this departure goes out at once.
  await new Promise(resolve => setTimeout(resolve, 600))

  b.socket.close(1001, 'agent shutting down')
  await until('b terminating', async () => (await agentRows(base)).find(r => r.node === 'b')?.state === 'terminating')
  // The push left when the roster changed, before the ack of a report sent after that: the socket keeps order.
  a.send(report(1, Date.now(), []))
  await a.waitFor(m => m.type === 'ack' && m.seq === 1)
  const ackAt = a.received.findIndex(m => m.type === 'ack' && m.seq === 1)
  const pushAt = a.received.findIndex(m => stateIn(m, 'b') === 'terminating')
  t.ok(pushAt !== -1 && pushAt < ackAt, 'the list with b terminating reached a before the ack')

  // A connection that just breaks (a crash, a network fault) is no announcement: c stays ready.
  c.socket.terminate()
  await until('c disconnected', async () => (await agentRows(base)).find(r => r.node === 'c')?.connected === false)
  t.equal((await agentRows(base)).find(r => r.node === 'c')!.state, 'ready', 'a crashed agent is still probed, and shows red')

  const b2 = await join('b', 'boot-b-0002')
  t.teardown(() => b2.socket.terminate())
  t.equal((await agentRows(base)).find(r => r.node === 'b')!.state, 'ready', 'its next hello brings it back')
  await a.waitFor(m => stateIn(m, 'b') === 'ready' && a.received.indexOf(m) > pushAt, 8000)
})

t.test('an agent that answers no ping is terminated within two heartbeats, logged with its code', async t => {
  const { log, lines } = captureLog('info')
  const agg = await aggregator({ PINGFLEET_HEARTBEAT: '100ms' }, undefined, log)
  t.teardown(() => agg.close())
  // autoPong off: the client stays open but never answers the aggregator's pings, as a hung agent.
  const socket = new WebSocket(agg.address().replace(/^http/, 'ws') + '/api/v1/stream', { headers: { authorization: `Bearer ${TOKEN}` }, autoPong: false })
  const closed = new Promise<number>(resolve => socket.on('close', code => resolve(code)))
  await new Promise(resolve => socket.once('open', resolve))
  socket.send(JSON.stringify(hello('hung')))
  t.equal(await closed, 1006, 'terminated, not closed with a handshake')
  t.match(lines.filter(l => l.msg === 'agent silent past heartbeat, terminating'), [{ level: 40, code: 'PINGFLEET_ERR_AGENT_SILENT', node: 'hung' }])
})
