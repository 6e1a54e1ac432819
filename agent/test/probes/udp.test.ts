import { createSocket, type RemoteInfo, type Socket } from 'node:dgram'
import t, { type Test } from 'tap'
import { createUdpProbe, udpTarget } from '../../src/probes/udp.ts'
import { UDP_DATAGRAM_BYTES, UDP_MAGIC, UdpEcho } from '../../src/udp-echo.ts'

type Reply = (data: Buffer, delayMs?: number) => void

/** A test echo on loopback whose handler decides what comes back (drop, delay, duplicate, alter). */
async function fakeEcho (t: Test, handler: (data: Buffer, reply: Reply) => void): Promise<number> {
  const socket: Socket = createSocket('udp4')
  const timers = new Set<NodeJS.Timeout>()
  socket.on('message', (data: Buffer, from: RemoteInfo) => {
    handler(data, (out, delayMs = 0) => {
      const send = (): void => { socket.send(out, from.port, from.address) }
      if (delayMs > 0) timers.add(setTimeout(send, delayMs))
      else send()
    })
  })
  await new Promise<void>(resolve => socket.bind(0, '127.0.0.1', resolve))
  t.teardown(() => {
    for (const timer of timers) clearTimeout(timer)
    return new Promise<void>(resolve => socket.close(() => resolve()))
  })
  return socket.address().port
}

const seqOf = (data: Buffer): number => data.readUInt32BE(12)
/** Aborts like the scheduler does, after `ms`. */
function deadline (t: Test, ms: number): AbortSignal {
  const controller = new AbortController()
  const timer = setTimeout(() => controller.abort(new DOMException('probe timeout', 'TimeoutError')), ms)
  t.teardown(() => clearTimeout(timer))
  return controller.signal
}
const target = (port: number) => udpTarget({ node: 'n2', podIp: '127.0.0.1', port })

t.test('the agent\'s echo answers a train: every datagram back, RTT and jitter measured', async t => {
  const echo = await UdpEcho.listen('127.0.0.1', 0)
  t.teardown(() => echo.close())
  const probe = createUdpProbe({ count: 5, spacingMs: 2, timeoutMs: 2000 })
  const result = await probe(target(echo.port), deadline(t, 2000))
  t.equal(result.ok, true)
  t.same({ ...result.datagrams, jitterUs: 0 }, { sent: 5, lost: 0, jitterUs: 0, jitterPairs: 4 })
  t.ok(result.seconds > 0 && result.seconds < 2, 'seconds is the median round trip')
  t.equal(echo.echoed, 5)
})

t.test('the echo ignores strays: wrong size or magic', async t => {
  const echo = await UdpEcho.listen('127.0.0.1', 0)
  t.teardown(() => echo.close())
  const client = createSocket('udp4')
  t.teardown(() => client.close())
  const replies: Buffer[] = []
  client.on('message', data => replies.push(data))
  const wrongMagic = Buffer.alloc(UDP_DATAGRAM_BYTES)
  const tooLong = Buffer.alloc(UDP_DATAGRAM_BYTES + 1)
  tooLong.writeUInt32BE(UDP_MAGIC, 0)
  const good = Buffer.alloc(UDP_DATAGRAM_BYTES)
  good.writeUInt32BE(UDP_MAGIC, 0)
  for (const d of [wrongMagic, tooLong, good]) client.send(d, echo.port, '127.0.0.1')
  // The good one is sent last: once its echo is back, the strays have been handled.
  while (replies.length === 0) await new Promise(resolve => setTimeout(resolve, 5))
  t.equal(echo.echoed, 1)
  t.same(replies, [good])
})

t.test('dropped echoes count as lost; jitter only over neighbours that both came back', async t => {
  const port = await fakeEcho(t, (data, reply) => { if (seqOf(data) !== 1) reply(data) })
  const probe = createUdpProbe({ count: 5, spacingMs: 2, timeoutMs: 300 })
  const result = await probe(target(port), deadline(t, 300))
  t.equal(result.ok, true)
  t.equal(result.datagrams?.sent, 5)
  t.equal(result.datagrams?.lost, 1)
  t.equal(result.datagrams?.jitterPairs, 2, 'pairs (2,3) and (3,4)')
})

t.test('a train with no echo at all fails as UDP_NO_ECHO, every datagram lost', async t => {
  const port = await fakeEcho(t, () => {})
  const probe = createUdpProbe({ count: 4, spacingMs: 2, timeoutMs: 300 })
  const result = await probe(target(port), deadline(t, 300))
  t.match(result, { ok: false, reason: 'UDP_NO_ECHO', raw: 'NO_ECHO', datagrams: { sent: 4, lost: 4, jitterPairs: 0 } })
})

t.test('duplicates, strays and another train\'s echoes are not counted', async t => {
  const port = await fakeEcho(t, (data, reply) => {
    const seq = seqOf(data)
    if (seq === 3) {
      reply(data, 60)
      return
    }
    reply(data)
    reply(data)
    reply(data)
    const otherTrain = Buffer.from(data)
    otherTrain.writeUInt8(otherTrain.readUInt8(4) ^ 0xff, 4)
    reply(otherTrain)
    reply(Buffer.from('stray'))
  })
  const probe = createUdpProbe({ count: 4, spacingMs: 2, timeoutMs: 1000 })
  const result = await probe(target(port), deadline(t, 1000))
  // Had duplicates counted, the train would have ended before the delayed echo of 3 and left it unjudged.
  t.same(result.datagrams && { sent: result.datagrams.sent, lost: result.datagrams.lost }, { sent: 4, lost: 0 })
})

t.test('an echo after the deadline is lost, and does not leak into the next train', async t => {
  let trains = 0
  const port = await fakeEcho(t, (data, reply) => {
    if (seqOf(data) === 0) trains++
    reply(data, trains === 1 && seqOf(data) === 2 ? 400 : 0)
  })
  const probe = createUdpProbe({ count: 3, spacingMs: 2, timeoutMs: 200 })
  const first = await probe(target(port), deadline(t, 200))
  t.match(first.datagrams, { sent: 3, lost: 1 })
  const second = await probe(target(port), deadline(t, 600))
  t.match(second.datagrams, { sent: 3, lost: 0 })
  t.equal(second.ok, true)
})

t.test('a datagram that did not wait long enough for its echo is left out, not lost', async t => {
  const port = await fakeEcho(t, () => {})
  // The deadline comes long before half of the probe timeout: nothing could be judged.
  const probe = createUdpProbe({ count: 3, spacingMs: 2, timeoutMs: 2000 })
  const result = await probe(target(port), deadline(t, 100))
  t.match(result, { ok: false, reason: 'UDP_NO_ECHO', datagrams: { sent: 0, lost: 0 } })
})

t.test('echoes waiting in the socket buffer after a stall are read before the verdict', async t => {
  const port = await fakeEcho(t, (data, reply) => {
    reply(data)
    // Stall the event loop past the probe deadline right after the echo left: it sits in the probe's buffer.
    const until = performance.now() + 350
    while (performance.now() < until) { /* stall */ }
  })
  const probe = createUdpProbe({ count: 1, spacingMs: 2, timeoutMs: 200 })
  const result = await probe(target(port), deadline(t, 200))
  t.equal(result.ok, true)
  t.match(result.datagrams, { sent: 1, lost: 0 })
})

t.test('an ICMP port unreachable fails as ECONNREFUSED', async t => {
  const closed = createSocket('udp4')
  await new Promise<void>(resolve => closed.bind(0, '127.0.0.1', resolve))
  const port = closed.address().port
  await new Promise<void>(resolve => closed.close(() => resolve()))
  const probe = createUdpProbe({ count: 3, spacingMs: 5, timeoutMs: 300 })
  const result = await probe(target(port), deadline(t, 300))
  t.match(result, { ok: false, reason: 'ECONNREFUSED', raw: 'ECONNREFUSED' })
})

t.test('an already aborted signal sends nothing', async t => {
  const probe = createUdpProbe({ count: 3, spacingMs: 5, timeoutMs: 300 })
  const result = await probe(target(9), AbortSignal.abort())
  t.match(result, { ok: false, reason: 'UDP_NO_ECHO', datagrams: { sent: 0, lost: 0 } })
})
