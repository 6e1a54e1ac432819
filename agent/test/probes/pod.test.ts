import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { createServer as createNetServer, type AddressInfo, type Socket } from 'node:net'
import t, { type Test } from 'tap'
import { createPodProbe, type PodTarget } from '../../src/probes/pod.ts'
import { checkPhases, SLOW_FLOOR_SECONDS, SLOW_MS } from './phase-checks.ts'

interface Peer { port: number, connections: () => number, close: () => Promise<void> }

async function peer (handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<Peer> {
  const server = createServer(handler)
  let connections = 0
  server.on('connection', () => { connections++ })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  return {
    port: (server.address() as AddressInfo).port,
    connections: () => connections,
    close: async () => {
      server.closeAllConnections()
      await new Promise(resolve => server.close(resolve))
    }
  }
}

const answer = (node: string, status = 200) => (_req: IncomingMessage, res: ServerResponse) => {
  res.writeHead(status, { 'content-type': 'application/json' })
  res.end(JSON.stringify({ node, pod: node, labels: {} }))
}

const target = (port: number, id = 'n2', podIp = '127.0.0.1'): PodTarget => ({ kind: 'pod', id, podIp, port })
const probe = createPodProbe({ timeoutMs: 2000 })
const signal = () => AbortSignal.timeout(2000)

t.test('ok: the expected node answers, with phase timings', async t => {
  const p = await peer(answer('n2'))
  t.teardown(p.close)
  const result = await probe(target(p.port), signal())
  t.equal(result.ok, true)
  t.ok(result.seconds > 0)
  t.ok(result.phases?.connect !== undefined && result.phases.connect >= 0)
  t.ok(result.phases?.firstByte !== undefined && result.phases.firstByte >= 0)
  t.ok(result.phases!.connect! <= result.seconds)
})

t.test('phases: connect and first byte only (a pod IP is not resolved, /ping is not TLS); first byte covers the peer\'s wait', async t => {
  const p = await peer((req, res) => { setTimeout(() => answer('n2')(req, res), SLOW_MS) })
  t.teardown(p.close)
  checkPhases(t, await probe(target(p.port), signal()), ['connect', 'firstByte'], { firstByte: SLOW_FLOOR_SECONDS })
})

t.test('every probe opens a new connection', async t => {
  const p = await peer(answer('n2'))
  t.teardown(p.close)
  for (let i = 0; i < 5; i++) t.equal((await probe(target(p.port), signal())).ok, true)
  t.equal(p.connections(), 5)
})

t.test('refused: nothing listens on the port', async t => {
  const p = await peer(answer('n2'))
  const port = p.port
  await p.close()
  const result = await probe(target(port), signal())
  t.match(result, { ok: false, reason: 'ECONNREFUSED', raw: 'ECONNREFUSED' })
  t.equal(result.phases?.connect, undefined)
})

t.test('slow peer: connected but no answer in time is a response timeout', async t => {
  const p = await peer(() => { /* never answers */ })
  t.teardown(p.close)
  const result = await probe(target(p.port), AbortSignal.timeout(150))
  t.match(result, { ok: false, reason: 'RESPONSE_TIMEOUT' })
  t.ok(result.phases?.connect !== undefined, 'it had connected')
})

t.test('a probe out of time before connecting is a connect timeout', async t => {
  const p = await peer(answer('n2'))
  t.teardown(p.close)
  const result = await probe(target(p.port), AbortSignal.abort(new DOMException('late', 'TimeoutError')))
  t.match(result, { ok: false, reason: 'CONNECT_TIMEOUT' })
})

t.test('the probe\'s own idle timeout is a response timeout', async t => {
  const p = await peer(() => { /* never answers */ })
  t.teardown(p.close)
  const result = await createPodProbe({ timeoutMs: 100 })(target(p.port), signal())
  t.match(result, { ok: false, reason: 'RESPONSE_TIMEOUT', raw: 'ETIMEDOUT' })
})

t.test('a body that stops half-way is a response timeout, not a reset', async t => {
  const p = await peer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': 1000 })
    res.write('{"node":"n2"')
  })
  t.teardown(p.close)
  const result = await probe(target(p.port), AbortSignal.timeout(200))
  t.match(result, { ok: false, reason: 'RESPONSE_TIMEOUT', raw: 'BODY_TIMEOUT', phases: { connect: Number, firstByte: Number } })
})

t.test('peer resets the connection', async t => {
  const p = await peer(req => { req.socket.resetAndDestroy() })
  t.teardown(p.close)
  const result = await probe(target(p.port), signal())
  t.match(result, { ok: false, reason: 'ECONNRESET' })
})

t.test('5xx and 4xx answers', async t => {
  const five = await peer(answer('n2', 503))
  t.teardown(five.close)
  t.match(await probe(target(five.port), signal()), { ok: false, reason: 'HTTP_5XX', raw: 'HTTP_503' })
  const four = await peer(answer('n2', 404))
  t.teardown(four.close)
  t.match(await probe(target(four.port), signal()), { ok: false, reason: 'HTTP_4XX', raw: 'HTTP_404' })
  const three = await peer(answer('n2', 302))
  t.teardown(three.close)
  t.match(await probe(target(three.port), signal()), { ok: false, reason: 'HTTP_OTHER', raw: 'HTTP_302' })
})

t.test('the wrong node answers: BAD_RESPONSE', async t => {
  const p = await peer(answer('n3'))
  t.teardown(p.close)
  t.match(await probe(target(p.port), signal()), { ok: false, reason: 'BAD_RESPONSE', raw: 'NODE_MISMATCH', detail: { node: 'n3' } })
  const garbage = await peer((_req, res) => res.end('not json'))
  t.teardown(garbage.close)
  t.match(await probe(target(garbage.port), signal()), { ok: false, reason: 'BAD_RESPONSE', raw: 'INVALID_JSON' })
})

t.test('IPv6 peers are addressed in brackets', async t => {
  const server = createServer(answer('n6'))
  const listening = await new Promise<boolean>(resolve => {
    server.once('error', () => resolve(false))
    server.listen(0, '::1', () => resolve(true))
  })
  if (!listening) {
    t.pass('no IPv6 loopback here')
    return
  }
  t.teardown(() => new Promise(resolve => server.close(resolve)))
  const port = (server.address() as AddressInfo).port
  t.match(await probe(target(port, 'n6', '::1'), signal()), { ok: true })
})

t.test('a chunked answer is read in full', async t => {
  const p = await peer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' })
    res.write('{"node":')
    res.end('"n2","pod":"n2","labels":{}}')
  })
  t.teardown(p.close)
  t.match(await probe(target(p.port), signal()), { ok: true })
})

t.test('an answer cut short by the peer is a reset; a non-HTTP answer is BAD_RESPONSE', async t => {
  const cut = await peer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': 1000 })
    res.write('{"node":"n2"', () => req.socket.end())
  })
  t.teardown(cut.close)
  t.match(await probe(target(cut.port), signal()), { ok: false, reason: 'ECONNRESET', phases: { connect: Number, firstByte: Number } })
  const ssh = await rawPeer(t, 'SSH-2.0-OpenSSH_9.6\r\n\r\n')
  t.match(await probe(target(ssh), signal()), { ok: false, reason: 'BAD_RESPONSE', raw: 'HPE_INVALID_CONSTANT' })
  const silent = await rawPeer(t, '')
  t.match(await probe(target(silent), signal()), { ok: false, reason: 'ECONNRESET' }, 'closed without a word')
})

/** A TCP listener that answers every connection with `text` and closes it. */
async function rawPeer (t: Test, text: string): Promise<number> {
  const sockets = new Set<Socket>()
  const server = createNetServer(socket => {
    sockets.add(socket)
    socket.end(text)
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => {
    for (const socket of sockets) socket.destroy()
    return new Promise(resolve => server.close(resolve))
  })
  return (server.address() as AddressInfo).port
}
