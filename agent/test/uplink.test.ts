import type { Socket } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import type { Peers, Welcome } from '@pingfleet/protocol'
import { backoffDelay, streamUrl, Uplink, type UplinkOptions } from '../src/uplink.ts'
import { FEATURE_HELLO_UPTIME, FEATURE_REPORT_AGE, FEATURE_REPORT_CPU, MAX_FRAME_BYTES } from '@pingfleet/protocol'
import { startEndlessPeer } from '../../test/helpers/slow-peer.ts'
import { FakeAggregator, memoryLogger } from './fake-aggregator.ts'

const window = (n: number) => ({ start: n * 1000, end: (n + 1) * 1000, cells: [] })

async function aggregator (t: Test, options: ConstructorParameters<typeof FakeAggregator>[0] = {}): Promise<FakeAggregator> {
  const agg = await new FakeAggregator(options).listen()
  t.teardown(() => agg.close())
  return agg
}

function uplink (t: Test, url: string, options: Partial<UplinkOptions> = {}) {
  const { logger, lines } = memoryLogger()
  const up = new Uplink({
    url,
    token: 'secret',
    bootId: 'boot-0123456789',
    hello: () => ({ node: 'n1', pod: 'agent-n1', podIp: '127.0.0.1', port: 8081, labels: { cniplugin: 'aws' }, version: '0.1.0' }),
    bufferSize: 100,
    heartbeatMs: 1000,
    reconnectMinMs: 10,
    reconnectMaxMs: 40,
    logger,
    ...options
  })
  t.teardown(() => up.close())
  return { up, lines }
}

const closedUrl = 'http://127.0.0.1:9' // discard port: nothing listens in the test environment

t.test('stream URL from the aggregator base URL', async t => {
  t.equal(streamUrl('http://127.0.0.1:8080'), 'ws://127.0.0.1:8080/api/v1/stream')
  t.equal(streamUrl('https://agg.example/prefix/'), 'wss://agg.example/prefix/api/v1/stream')
})

t.test('full-jitter exponential backoff', async t => {
  t.same([0, 1, 2, 3, 4, 40].map(n => backoffDelay(n, 100, 1000, () => 1)), [100, 200, 400, 800, 1000, 1000])
  t.equal(backoffDelay(5, 100, 1000, () => 0), 0)
  t.equal(backoffDelay(1, 100, 1000, () => 0.5), 100)
})

t.test('hello, welcome, peers; reports produced while disconnected arrive in order and are acked', async t => {
  const agg = await aggregator(t, { peers: [{ node: 'n2', podIp: '127.0.0.2', port: 8081, labels: {}, state: 'ready' }], labels: { zone: 'a' } })
  const welcomes: Welcome[] = []
  const rosters: Peers[] = []
  const { up } = uplink(t, agg.url, { onWelcome: w => welcomes.push(w), onPeers: p => rosters.push(p) })
  t.equal(up.push(window(1)), 1)
  t.equal(up.push(window(2)), 2)
  t.match(up.status(), { seq: 2, acked: 0, buffered: 2, connected: false, reportsSent: 0 })
  up.start()
  await agg.until(() => agg.reports.length === 2, 'two reports')
  up.push(window(3))
  t.equal(await up.waitForAck(3, 2000), true)
  t.same(agg.seqs(), [1, 2, 3])
  t.same(agg.authorizations, ['Bearer secret'])
  t.match(agg.hellos, [{ type: 'hello', node: 'n1', bootId: 'boot-0123456789', port: 8081, labels: { cniplugin: 'aws' } }])
  t.match(welcomes, [{ lastSeq: 0, labels: { zone: 'a' } }])
  t.match(rosters, [{ peers: [{ node: 'n2' }] }])
  t.same(up.status(), { seq: 3, acked: 3, buffered: 0, dropped: 0, connected: true, reportsSent: 3 })
})

t.test('a full buffer drops the oldest reports and counts them', async t => {
  const agg = await aggregator(t)
  const { up, lines } = uplink(t, agg.url, { bufferSize: 3 })
  for (let i = 1; i <= 5; i++) up.push(window(i))
  t.match(up.status(), { seq: 5, buffered: 3, dropped: 2 })
  t.equal(lines.filter(l => l.code === 'PINGFLEET_ERR_AGENT_REPORT_DROPPED').length, 1, 'one log line, not one per drop')
  up.start()
  t.equal(await up.waitForAck(5, 2000), true)
  t.same(agg.seqs(), [3, 4, 5], 'the newest three survive')
})

t.test('after a reconnect only reports beyond welcome.lastSeq are re-sent', async t => {
  // The aggregator stores reports but its acks get lost: the agent cannot know what arrived.
  let acking = false
  const agg = await aggregator(t, { ack: () => acking })
  const { up } = uplink(t, agg.url)
  up.start()
  for (let i = 1; i <= 3; i++) up.push(window(i))
  await agg.until(() => agg.reports.length === 3, 'three reports')
  t.equal(up.status().buffered, 3, 'nothing acked yet')
  agg.lastSeq = 2 // seq 1 and 2 were stored before the connection broke
  agg.terminateAll()
  await agg.until(() => !up.status().connected, 'the agent to notice')
  up.push(window(4)) // produced while disconnected
  acking = true
  t.equal(await up.waitForAck(4, 3000), true)
  t.equal(agg.connections, 2)
  t.same(agg.seqs(2), [3, 4], 'the second connection carries only what had not arrived')
  t.match(up.status(), { acked: 4, buffered: 0, reportsSent: 5 })
})

t.test('reconnect backoff grows while the aggregator refuses and resets after a welcome', async t => {
  let refusals = 3
  const agg = await aggregator(t, { refuse: () => refusals-- > 0 ? 503 : undefined })
  const { up, lines } = uplink(t, agg.url, { random: () => 1 })
  up.start()
  await agg.until(() => agg.connections === 1, 'a connection after three refusals')
  await sleep(20)
  agg.terminateAll()
  await agg.until(() => agg.connections === 2, 'the reconnect')
  const delays = lines.filter(l => l.code === 'PINGFLEET_ERR_AGENT_UPLINK_CLOSED' && l.retryInMs !== undefined).map(l => l.retryInMs)
  t.same(delays, [10, 20, 40, 10])
  t.match(lines.filter(l => l.retryInMs !== undefined).slice(0, 3), [{ status: 503 }, { status: 503 }, { status: 503 }])
})

t.test('a rejected token is logged as unauthorized and retried', async t => {
  const agg = await aggregator(t, { token: 'other' })
  const { up, lines } = uplink(t, agg.url)
  up.start()
  await agg.until(() => agg.authorizations.length >= 2, 'a retry')
  const line = lines.find(l => l.code === 'PINGFLEET_ERR_AGENT_UPLINK_UNAUTHORIZED')
  t.match(line, { status: 401, level: 50 })
  t.notOk(JSON.stringify(lines).includes('secret'), 'the token never appears in the log')
  t.equal(up.status().connected, false)
})

t.test('a frame over the protocol limit closes the connection with 1009 and the agent reconnects', async t => {
  const agg = await aggregator(t)
  const { up } = uplink(t, agg.url)
  up.start()
  await agg.until(() => up.status().connected, 'welcome')
  const codes: number[] = []
  for (const ws of agg.sockets) ws.on('close', code => codes.push(code))
  agg.send({ type: 'peers', v: 1, revision: 1, peers: [], pad: 'x'.repeat(MAX_FRAME_BYTES) })
  await agg.until(() => agg.hellos.length === 2, 'a fresh connection')
  t.same(codes, [1009], 'the agent refused the frame as too big, without buffering 100 MiB first')
})

t.test('a refused upgrade with an endless body is not read: the socket is closed and the agent retries', async t => {
  const peer = await startEndlessPeer('HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\n\r\n')
  t.teardown(peer.close)
  const { up, lines } = uplink(t, `http://127.0.0.1:${peer.port}`)
  up.start()
  for (let i = 0; i < 500 && peer.closedByClient() < 2; i++) await new Promise(resolve => setTimeout(resolve, 10))
  t.ok(peer.closedByClient() >= 2, 'each attempt was closed under the streaming peer, and retried')
  t.ok(peer.written() < 32 * 1024 * 1024 * peer.closedByClient(), `the peer got ${peer.written()} bytes out`)
  t.match(lines.find(l => l.code === 'PINGFLEET_ERR_AGENT_UPLINK_CLOSED'), { status: 503 })
})

t.test('a silent aggregator is dropped by the heartbeat', async t => {
  const agg = await aggregator(t)
  const { up, lines } = uplink(t, agg.url, { heartbeatMs: 60 })
  up.start()
  await agg.until(() => agg.hellos.length === 1, 'the first hello')
  // Stop reading on the server side: pings pile up unanswered.
  for (const ws of agg.sockets) (ws as unknown as { _socket: Socket })._socket.pause()
  await agg.until(() => agg.hellos.length === 2, 'a fresh connection')
  t.ok(lines.some(l => l.code === 'PINGFLEET_ERR_AGENT_UPLINK_SILENT'))
})

t.test('invalid frames are logged and ignored', async t => {
  const agg = await aggregator(t, { ack: () => false })
  const { up, lines } = uplink(t, agg.url)
  up.start()
  up.push(window(1))
  await agg.until(() => agg.reports.length === 1, 'the report')
  agg.send({ type: 'ack', v: 1, seq: 0 })
  for (const ws of agg.sockets) {
    ws.send('not json')
    ws.send(Buffer.from([1, 2, 3]))
  }
  agg.send({ type: 'ack', v: 1, seq: 99 }) // an ack for a report never produced changes nothing
  agg.send({ type: 'ack', v: 1, seq: 1 })
  t.equal(await up.waitForAck(1, 2000), true)
  t.equal(up.status().acked, 1)
  t.equal(lines.filter(l => l.code === 'PINGFLEET_ERR_AGENT_UPLINK_PROTOCOL').length, 3)
})

t.test('waiting for an ack ends on timeout and on close', async t => {
  const { up } = uplink(t, closedUrl)
  up.start()
  const seq = up.push(window(1))
  t.equal(await up.waitForAck(seq, 30), false)
  const pending = up.waitForAck(seq, 10_000)
  await up.close()
  t.equal(await pending, false)
  t.equal(await up.waitForAck(0, 10), true, 'seq 0 is always acked')
})

t.test('a report larger than a frame is dropped, not sent', async t => {
  const { up } = uplink(t, closedUrl)
  const cells = Array.from({ length: 18_000 }, (_, i) => ({ probe: 'pod' as const, target: `${i}-${'x'.repeat(240)}`, count: 0, latency: [] }))
  up.push({ start: 0, end: 1, cells })
  t.match(up.status(), { seq: 1, buffered: 0, dropped: 1 })
})

t.test('closing while the handshake is under way', async t => {
  const agg = await aggregator(t)
  const { up } = uplink(t, agg.url)
  up.start()
  await up.close()
  t.equal(up.status().connected, false)
  up.start() // a closed uplink stays closed
  t.equal(agg.hellos.length, 0)
})

t.test('backpressure: reports wait in the buffer while the socket is congested, then all arrive in order', async t => {
  const agg = await aggregator(t)
  const { up } = uplink(t, agg.url)
  up.start()
  await agg.until(() => up.status().connected, 'the welcome')
  for (const ws of agg.sockets) (ws as unknown as { _socket: Socket })._socket.pause()
  const cells = Array.from({ length: 12_000 }, (_, i) => ({ probe: 'pod' as const, target: `${i}-${'x'.repeat(240)}`, count: 0, latency: [] }))
  for (let i = 0; i < 8; i++) up.push({ start: i, end: i + 1, cells })
  t.ok(up.status().reportsSent < 8, 'some reports are held back')
  for (const ws of agg.sockets) (ws as unknown as { _socket: Socket })._socket.resume()
  t.equal(await up.waitForAck(8, 8000), true)
  t.same(agg.seqs(), [1, 2, 3, 4, 5, 6, 7, 8])
  t.equal(up.status().reportsSent, 8)
})

t.test('a token file is re-read on every connect, so a rotated projected token is used', async t => {
  const { mkdtempSync, rmSync, writeFileSync } = await import('node:fs')
  const { tmpdir } = await import('node:os')
  const { join } = await import('node:path')
  const dir = mkdtempSync(join(tmpdir(), 'pingfleet-uplink-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'token')
  writeFileSync(file, 'first-token\n')
  let accepted = 'first-token'
  const agg = await aggregator(t, { get token () { return accepted } })
  const { up, lines } = uplink(t, agg.url, { token: '', tokenFile: file })
  up.start()
  await agg.until(() => agg.connections === 1, 'a connection with the first token')
  // The kubelet rotates the token; the aggregator now only accepts the new one.
  writeFileSync(file, 'second-token\n')
  accepted = 'second-token'
  agg.terminateAll()
  await agg.until(() => agg.connections === 2, 'a reconnect with the rotated token')
  t.same(agg.authorizations, ['Bearer first-token', 'Bearer second-token'])
  t.notOk(JSON.stringify(lines).includes('-token'), 'no token in the log')

  // An unreadable file is logged and retried with backoff, not a crash.
  rmSync(file)
  agg.terminateAll()
  await t.resolves(agg.until(() => lines.some(l => l.msg === 'cannot read the token file'), 'the log line'))
  writeFileSync(file, 'second-token\n')
  await agg.until(() => agg.connections === 3, 'back once the file is there')
})

t.test('optional report content goes only to an aggregator that accepts it', async t => {
  const cells = [
    { probe: 'pod' as const, target: 'n2', count: 2, latency: [300, 2], slowConnects: 1 },
    { probe: 'udp' as const, target: 'n2', count: 1, latency: [300, 1], sent: 5, lost: 1, jitterUs: 10, jitterPairs: 3 },
    { probe: 'tcp' as const, target: 'db:5432', count: 1, latency: [300, 1], phases: { dns: [200, 1], connect: [250, 1] } }
  ]
  const tcpBare = { probe: 'tcp', target: 'db:5432', count: 1, latency: [300, 1] }
  for (const [features, want] of [
    [undefined, [{ probe: 'pod', target: 'n2', count: 2, latency: [300, 2] }, tcpBare]],
    [['slow-connects'], [cells[0], tcpBare]],
    [['report-cpu', 'slow-connects', 'udp'], [cells[0], cells[1], tcpBare]],
    [['report-cpu', 'slow-connects', 'udp', 'phases'], cells]
  ] as const) {
    const agg = await aggregator(t, features === undefined ? {} : { features: [...features] })
    const { up } = uplink(t, agg.url)
    up.push({ start: 0, end: 1000, cells })
    up.start()
    await agg.until(() => agg.reports.length === 1, 'a report')
    t.same(agg.reports[0]!.cells, want, `features: ${features?.join(',') ?? 'none (an older aggregator)'}`)
    await up.close()
  }
})

t.test('a frame the websocket refuses (here not UTF-8) is logged at warn with its code, and the agent reconnects', async t => {
  const agg = await aggregator(t)
  const { up, lines } = uplink(t, agg.url)
  up.start()
  await agg.until(() => up.status().connected, 'the welcome')
  for (const ws of agg.sockets) ws.send(Buffer.from([0x7b, 0xff, 0x7d]), { binary: false })
  await agg.until(() => agg.connections === 2, 'a reconnect')
  const warned = lines.filter(l => l.reason === 'PINGFLEET_ERR_PROTOCOL_UTF8')
  t.equal(warned.length, 1, 'one line')
  t.match(warned[0], { level: 40, code: 'PINGFLEET_ERR_AGENT_UPLINK_PROTOCOL' })
})

t.test('told another agent holds the node (4009): backs off long, logs once per run, and a welcome ends the run', async t => {
  let refusals = 3
  const agg = await aggregator(t, { closeOnHello: () => refusals-- > 0 ? 4009 : undefined })
  const { up, lines } = uplink(t, agg.url, { random: () => 0, duplicateBackoffMs: 150 })
  up.start()
  await agg.until(() => up.status().connected, 'a welcome after three refusals', 5000)
  const duplicate = lines.filter(l => l.code === 'PINGFLEET_ERR_AGENT_UPLINK_DUPLICATE_NODE')
  t.same(duplicate.map(l => l.retryInMs), [150, 150, 150], 'each wait is the long one, not the usual 0 ms with this jitter')
  t.same(duplicate.map(l => l.level), [40, 20, 20], 'warn once, then debug')
  t.match(duplicate[0], { node: 'n1', wsCode: 4009 })
  refusals = 1
  agg.terminateAll()
  await agg.until(() => lines.filter(l => l.code === 'PINGFLEET_ERR_AGENT_UPLINK_DUPLICATE_NODE').length === 4, 'a refusal after the welcome')
  t.equal(lines.filter(l => l.code === 'PINGFLEET_ERR_AGENT_UPLINK_DUPLICATE_NODE').at(-1)!.level, 40, 'a new run is warned about again')
})

t.test('hello carries the process uptime, and every report its age on the monotonic clock when written', async t => {
  let mono = 1000
  const agg = await aggregator(t, { features: [FEATURE_HELLO_UPTIME, FEATURE_REPORT_AGE] })
  const { up } = uplink(t, agg.url, { monotonic: () => mono })
  up.push(window(1)) // produced at 1 s, while disconnected
  mono = 61_000
  up.push(window(2))
  mono = 62_500
  up.start()
  await agg.until(() => agg.reports.length === 2, 'both reports')
  t.equal(agg.hellos[0]!.uptimeMs, 62_500)
  t.same(agg.reports.map(r => r.ageMs), [61_500, 1500], 'the buffered report is a minute older')
  t.same(agg.reports.map(r => r.end), [2000, 3000], 'end is left as the agent\'s clock said')
})

t.test('uptimeMs and ageMs go only to an aggregator that announced them (an older one rejects unknown fields)', async t => {
  const old = await aggregator(t)
  const { up } = uplink(t, old.url)
  up.push(window(1))
  up.start()
  await old.until(() => old.reports.length === 1, 'the report')
  t.equal(old.hellos[0]!.uptimeMs, undefined, 'no uptimeMs in the hello')
  t.equal(old.reports[0]!.ageMs, undefined, 'no ageMs in the report')
  t.match(old.reports[0], { seq: 1, start: 1000, end: 2000 })
})

t.test('report.cpu goes only to an aggregator that announced it, also for reports buffered before', async t => {
  const cpu = { periods: 600, throttledPeriods: 41, throttledUsec: 3_895_000 }
  const old = await aggregator(t)
  const { up } = uplink(t, old.url)
  up.push(window(1), cpu)
  up.start()
  await old.until(() => old.reports.length === 1, 'the report')
  t.equal(old.reports[0]!.cpu, undefined, 'an aggregator that did not announce report-cpu never sees the field')
  t.match(old.reports[0], { seq: 1, start: 1000, end: 2000, cells: [] })

  const current = await aggregator(t, { features: ['other', FEATURE_REPORT_CPU] })
  const second = uplink(t, current.url).up
  second.push(window(1), cpu)
  second.push(window(2), null)
  second.start()
  await current.until(() => current.reports.length === 2, 'two reports')
  t.same(current.reports[0]!.cpu, cpu, 'one that did gets it')
  t.equal(current.reports[1]!.cpu, undefined, 'no counters, no field')
})
