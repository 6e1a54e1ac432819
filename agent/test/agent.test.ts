import t, { type Test } from 'tap'
import { pino } from 'pino'
import { PROTOCOL_VERSION, sparseTotal, type Peer } from '@pingfleet/protocol'
import { createServer } from 'node:http'
import { createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net'
import { podTargets, startAgent, type AgentHandle } from '../src/agent.ts'
import { loadConfig } from '../src/config.ts'
import type { AgentStatus } from '../src/server.ts'
import { FakeAggregator } from './fake-aggregator.ts'
import { startServiceVip } from '../../scripts/stand-ins/service-vip.ts'
import { TestDnsServer } from '../../test/helpers/dns-server.ts'

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
    // Nothing may leave loopback: the defaults would look up cluster names through the machine's resolver.
    PINGFLEET_DNS_NAMES: '',
    PINGFLEET_DNS_WIRE_NAMES: '',
    // Most tests do not look at the drain; the one that does sets its own.
    PINGFLEET_SHUTDOWN_DRAIN: '10ms',
    ...extra
  })
  const handle = await startAgent(config, pino({ level: 'silent' }))
  t.teardown(() => handle.shutdown())
  return handle
}

const peer = (node: string, port: number, state: Peer['state'] = 'ready'): Peer => ({ node, podIp: '127.0.0.1', port, labels: {}, state })

t.test('roster to targets: ready and draining peers except this node; terminating ones are not probed', async t => {
  t.same(podTargets([peer('a', 1), peer('b', 2), peer('c', 3, 'draining'), peer('d', 4, 'terminating')], 'a'), [
    { kind: 'pod', id: 'b', podIp: '127.0.0.1', port: 2 },
    // A cordoned node is the batch a migration gate judges: it must be probed.
    { kind: 'pod', id: 'c', podIp: '127.0.0.1', port: 3 }
  ])
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

t.test('shutdown announces the departure with close 1001 and keeps answering /ping for the drain', async t => {
  const agg = await new FakeAggregator({ intervalMs: 150 }).listen()
  t.teardown(() => agg.close())
  const a = await agent(t, agg, 'leaving', { PINGFLEET_SHUTDOWN_DRAIN: '1500ms' })
  await agg.until(() => agg.hellos.length === 1, 'hello')
  const ping = async (): Promise<number> => (await fetch(`http://127.0.0.1:${a.port}/ping`)).status
  // What a peer sees between the announcement and the end of the drain: every /ping still answered.
  const afterClose = new Promise<number[]>(resolve => {
    agg.onClose = () => {
      void (async () => {
        const statuses: number[] = []
        for (let i = 0; i < 5; i++) statuses.push(await ping().catch(() => 0))
        resolve(statuses)
      })()
    }
  })
  let stopped = false
  const stopping = a.shutdown().then(() => { stopped = true })
  t.same(await afterClose, [200, 200, 200, 200, 200], 'peers that probe after the announcement get answers')
  t.same(agg.closes, [1001], 'the agent said it is going away')
  t.equal(stopped, false, 'shutdown is still draining')
  t.equal((await fetch(`http://127.0.0.1:${a.port}/readyz`)).status, 503, 'not ready while draining')
  await stopping
  await t.rejects(ping(), 'after the drain /ping is closed')
})

t.test('a probe in flight to a peer that turns terminating is dropped; a peer that crashed is an error', async t => {
  const agg = await new FakeAggregator({ intervalMs: 150 }).listen()
  t.teardown(() => agg.close())
  // The leaving peer accepts connections and never answers, so a probe to it stays in flight.
  const held: Socket[] = []
  const leaving = createTcpServer(socket => { held.push(socket) })
  await new Promise<void>(resolve => leaving.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise(resolve => { for (const s of held) s.destroy(); leaving.close(resolve) }))
  // The crashed peer: a port nobody listens on any more.
  const gone = createTcpServer()
  await new Promise<void>(resolve => gone.listen(0, '127.0.0.1', resolve))
  const gonePort = (gone.address() as AddressInfo).port
  await new Promise(resolve => gone.close(resolve))

  const a = await agent(t, agg, 'node-a', { PINGFLEET_PROBE_TIMEOUT: '10s', PINGFLEET_MTU_SIZES: '' })
  await agg.until(() => agg.hellos.length === 1, 'hello')
  const leavingPort = (leaving.address() as AddressInfo).port
  agg.send({ type: 'peers', v: PROTOCOL_VERSION, revision: 2, peers: [peer('node-a', a.port), peer('leaving', leavingPort), peer('crashed', gonePort)] })
  await agg.until(() => held.length > 0, 'a probe in flight to the leaving peer')

  agg.send({ type: 'peers', v: PROTOCOL_VERSION, revision: 3, peers: [peer('node-a', a.port), peer('leaving', leavingPort, 'terminating'), peer('crashed', gonePort)] })
  await agg.until(() => a.status().peers === 1, 'the new list applied')
  // Its /ping goes away now, mid-probe: the connection is reset.
  for (const s of held) s.resetAndDestroy()
  const after = agg.reports.length
  const cells = () => agg.reports.flatMap(r => r.cells).filter(c => c.probe === 'pod')
  await agg.until(() => agg.reports.length >= after + 3 && cells().some(c => c.target === 'crashed' && (c.errors?.length ?? 0) > 0), 'three more reports and an error toward the crashed peer')
  t.same(cells().filter(c => c.target === 'leaving'), [], 'nothing recorded toward the peer that left')
  t.match(cells().find(c => c.target === 'crashed' && c.errors !== undefined)!.errors, [{ reason: 'ECONNREFUSED' }], 'a crash still counts')
})

t.test('shutdown without an aggregator gives up after the shutdown timeout', async t => {
  const agg = await new FakeAggregator().listen()
  const url = agg.url
  await agg.close()
  const a = await agent(t, { url } as FakeAggregator, 'lonely', { PINGFLEET_SHUTDOWN_TIMEOUT: '50ms' })
  await a.shutdown()
  t.match(a.status(), { seq: 1, acked: 0, buffered: 1, connected: false })
})

// Twice: to an aggregator from before phases (cells must carry none) and to one that announced them.
for (const features of [['slow-connects', 'udp'], ['slow-connects', 'udp', 'phases']]) t.test(`every probe kind runs and is reported per target, on loopback only (features ${features.join(', ')})`, async t => {
  const agg = await new FakeAggregator({ intervalMs: 200, features }).listen()
  t.teardown(() => agg.close())
  const dns = await TestDnsServer.start()
  t.teardown(() => dns.close())
  dns.set('kubernetes.default.svc.cluster.local', { kind: 'answer', addresses: ['127.0.0.1'] })
  const external = createServer((_req, res) => { res.end('ok') })
  await new Promise<void>(resolve => external.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise(resolve => { external.closeAllConnections(); external.close(resolve) }))
  const externalPort = (external.address() as AddressInfo).port
  const ports: number[] = []
  const vip = await startServiceVip(['127.0.0.1'], 0, () => ports.map(port => ({ host: '127.0.0.1', port })))
  t.teardown(vip.close)
  const vipPort = vip.listening[0]!.split(':').at(-1)!

  const suite = {
    PINGFLEET_MTU_SIZES: '1400,8500',
    PINGFLEET_SERVICE_TARGETS: `127.0.0.1:${vipPort},localhost:${vipPort}`,
    PINGFLEET_DNS_NAMES: 'localhost/4',
    PINGFLEET_DNS_SERVERS: `127.0.0.1:${dns.port}`,
    PINGFLEET_DNS_WIRE_NAMES: 'kubernetes.default.svc.cluster.local',
    PINGFLEET_HTTP_TARGETS: `http://127.0.0.1:${externalPort}/`,
    PINGFLEET_TCP_TARGETS: `localhost:${externalPort}`,
    PINGFLEET_PROBE_TIMEOUT: '2s',
    // mtu and udp at the aggregator's cadence, as the other kinds (their defaults are a slower 30 s).
    PINGFLEET_MTU_INTERVAL: '100ms',
    PINGFLEET_UDP_INTERVAL: '100ms'
  }
  const a = await agent(t, agg, 'node-a', suite)
  const b = await agent(t, agg, 'node-b')
  ports.push(a.port, b.port)
  await agg.until(() => agg.hellos.length === 2, 'both hellos')
  agg.send({ type: 'peers', v: PROTOCOL_VERSION, revision: 2, peers: [peer('node-a', a.port), peer('node-b', b.port)] })

  const cells = () => agg.reports.filter(r => agg.hellos[r.connection - 1]!.bootId === a.bootId).flatMap(r => r.cells)
  const ok = (probe: string, target: string) => cells().some(c => c.probe === probe && c.target === target && sparseTotal(c.latency) > 0)
  const wanted: Array<[string, string]> = [
    ['pod', 'node-b'], ['mtu', 'node-b/1400'], ['mtu', 'node-b/8500'],
    ['service', `127.0.0.1:${vipPort}`], ['service', `localhost:${vipPort}`],
    ['dns-lookup', 'localhost@getaddrinfo/4'],
    ['dns-wire', `kubernetes.default.svc.cluster.local@127.0.0.1:${dns.port}/A`],
    ['http', `http://127.0.0.1:${externalPort}/`], ['tcp', `localhost:${externalPort}`],
    ['udp', 'node-b']
  ]
  // Many probes on a loaded machine: allow more than the default five seconds, and say what is missing.
  await agg.until(() => wanted.every(([probe, target]) => ok(probe, target)), 'a successful sample of every kind', 20_000)
    .catch(err => { throw new Error(`${(err as Error).message}; missing: ${wanted.filter(([p, x]) => !ok(p, x)).map(w => w.join(' ')).join(', ')}`) })
  const backends = new Set(cells().filter(c => c.probe === 'service').flatMap(c => (c.backends ?? []).map(x => x.node)))
  await agg.until(() => {
    for (const c of cells()) if (c.probe === 'service') for (const x of c.backends ?? []) backends.add(x.node)
    return backends.size === 2
  }, 'both agents answering through the Service', 20_000)
  t.same([...backends].sort(), ['node-a', 'node-b'])
  t.ok(cells().every(c => c.errors === undefined), 'no errors anywhere')
  t.ok(dns.queries.every(q => q.name === 'kubernetes.default.svc.cluster.local'), 'the wire probe asked the stand-in resolver')
  const udp = cells().filter(c => c.probe === 'udp')
  t.ok(udp.some(c => (c.sent ?? 0) > 0) && udp.every(c => c.lost === 0), 'the peer\'s echo answers every datagram')
  t.match(a.status(), { peers: 1, targets: 4 + 6 })

  if (!features.includes('phases')) {
    t.ok(cells().every(c => c.phases === undefined), 'an aggregator that did not announce phases gets none')
    return
  }
  // Each kind's phases, every one from every trusted success (so each phase counts what latency counts):
  // dns only where a name was resolved, no tls over plain http, none for kinds outside PHASE_PROBE_KINDS.
  const expected: Record<string, string[]> = {
    'pod node-b': ['connect', 'firstByte'],
    'mtu node-b/1400': ['connect', 'firstByte'],
    'mtu node-b/8500': ['connect', 'firstByte'],
    [`service 127.0.0.1:${vipPort}`]: ['connect', 'firstByte'],
    [`service localhost:${vipPort}`]: ['dns', 'connect', 'firstByte'],
    [`http http://127.0.0.1:${externalPort}/`]: ['connect', 'firstByte'],
    [`tcp localhost:${externalPort}`]: ['dns', 'connect']
  }
  for (const c of cells()) {
    const key = `${c.probe} ${c.target}`
    if (sparseTotal(c.latency) === 0) {
      t.equal(c.phases, undefined, `${key}: no phases without a trusted success`)
      continue
    }
    t.same(Object.keys(c.phases ?? {}), expected[key] ?? [], `${key}: its phases`)
    for (const [phase, hist] of Object.entries(c.phases ?? {})) t.equal(sparseTotal(hist), sparseTotal(c.latency), `${key}: ${phase} counts every success`)
  }
})
