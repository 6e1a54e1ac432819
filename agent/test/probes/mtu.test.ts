import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import { pino } from 'pino'
import { createMtuProbe, mtuTarget } from '../../src/probes/mtu.ts'
import { buildServer } from '../../src/server.ts'
import { closedPort } from '../../../test/helpers/slow-peer.ts'
import { checkPhases, SLOW_FLOOR_SECONDS, SLOW_MS } from './phase-checks.ts'

const probe = createMtuProbe({ timeoutMs: 2000 })

async function listen (t: Test, handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<number> {
  const server = createServer(handler)
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => {
    server.closeAllConnections()
    await new Promise(resolve => server.close(resolve))
  })
  return (server.address() as AddressInfo).port
}

/**
 * A peer whose path cannot carry large packets, as far as HTTP can tell: small answers arrive;
 * for a size above `limit` it sends the headers and the first `limit` bytes, then nothing more.
 * `stallHeaders` makes it send nothing at all for large sizes.
 */
function blackHole (node: string, limit: number, stallHeaders = false) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    const size = Number(new URL(req.url!, 'http://x').searchParams.get('size') ?? 0)
    const base = JSON.stringify({ node, pod: node, labels: {}, pad: '' }).length
    const body = JSON.stringify({ node, pod: node, labels: {}, pad: 'x'.repeat(Math.max(0, size - base)) })
    if (size <= limit) {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body)
      return
    }
    if (stallHeaders) return
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
    res.write(body.slice(0, limit))
  }
}

t.test('target ids are <node>/<size>', async t => {
  t.same(mtuTarget({ node: 'node-a', podIp: '10.0.0.1', port: 8081 }, 8500), { kind: 'mtu', id: 'node-a/8500', node: 'node-a', podIp: '10.0.0.1', port: 8081, size: 8500 })
})

t.test('ok against a real agent server: both answers arrive, the large one at full size', async t => {
  const server = buildServer({
    identity: () => ({ node: 'n2', pod: 'n2', labels: {} }),
    status: () => { throw new Error('unused') },
    draining: () => false
  }, pino({ level: 'silent' }))
  await server.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(() => server.close())
  const port = (server.server.address() as AddressInfo).port
  const result = await probe(mtuTarget({ node: 'n2', podIp: '127.0.0.1', port }, 8500), AbortSignal.timeout(2000))
  t.match(result, { ok: true, phases: { connect: Number, firstByte: Number }, detail: { received: 8500 } })
})

t.test('phases: connect and first byte of the large answer; first byte covers the peer\'s wait for it', async t => {
  const port = await listen(t, (req, res) => {
    const size = Number(new URL(req.url!, 'http://x').searchParams.get('size') ?? 0)
    const body = JSON.stringify({ node: 'n2', pod: 'n2', labels: {}, pad: 'x'.repeat(size) })
    const send = (): void => { res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body) }
    if (size > 0) setTimeout(send, SLOW_MS)
    else send()
  })
  checkPhases(t, await probe(mtuTarget({ node: 'n2', podIp: '127.0.0.1', port }, 8500), AbortSignal.timeout(2000)), ['connect', 'firstByte'], { firstByte: SLOW_FLOOR_SECONDS })
})

t.test('a black hole: small answers work, the large body stalls -> MTU_BLACKHOLE, small sizes stay green', async t => {
  const port = await listen(t, blackHole('n2', 1400))
  const small = await probe(mtuTarget({ node: 'n2', podIp: '127.0.0.1', port }, 1200), AbortSignal.timeout(1000))
  t.match(small, { ok: true }, 'a size below the limit passes')
  const large = await probe(mtuTarget({ node: 'n2', podIp: '127.0.0.1', port }, 8500), AbortSignal.timeout(300))
  t.match(large, { ok: false, reason: 'MTU_BLACKHOLE', raw: 'BODY_TIMEOUT', detail: { received: 1400 } })
})

t.test('a black hole before the headers -> MTU_BLACKHOLE / HEADERS_TIMEOUT', async t => {
  const port = await listen(t, blackHole('n2', 1400, true))
  t.match(await probe(mtuTarget({ node: 'n2', podIp: '127.0.0.1', port }, 8500), AbortSignal.timeout(300)),
    { ok: false, reason: 'MTU_BLACKHOLE', raw: 'HEADERS_TIMEOUT' })
})

t.test('when the small exchange fails the failure is an ordinary one', async t => {
  const refused = await closedPort()
  t.match(await probe(mtuTarget({ node: 'n2', podIp: '127.0.0.1', port: refused }, 8500), AbortSignal.timeout(1000)), { ok: false, reason: 'ECONNREFUSED' })
  const silent = await listen(t, () => {})
  t.match(await probe(mtuTarget({ node: 'n2', podIp: '127.0.0.1', port: silent }, 8500), AbortSignal.timeout(200)), { ok: false, reason: 'RESPONSE_TIMEOUT' }, 'no answer at all is not an MTU problem')
  const other = await listen(t, blackHole('n9', 100_000))
  t.match(await probe(mtuTarget({ node: 'n2', podIp: '127.0.0.1', port: other }, 8500), AbortSignal.timeout(1000)), { ok: false, reason: 'BAD_RESPONSE', raw: 'NODE_MISMATCH', detail: { node: 'n9' } })
  const failing = await listen(t, (_req, res) => { res.writeHead(503).end() })
  t.match(await probe(mtuTarget({ node: 'n2', podIp: '127.0.0.1', port: failing }, 8500), AbortSignal.timeout(1000)), { ok: false, reason: 'HTTP_5XX' })
})

t.test('a short large body is a BAD_RESPONSE, not a black hole', async t => {
  const port = await listen(t, (req, res) => {
    const body = JSON.stringify({ node: 'n2', pod: 'n2', labels: {} })
    res.writeHead(200, { 'content-type': 'application/json' }).end(body)
  })
  t.match(await probe(mtuTarget({ node: 'n2', podIp: '127.0.0.1', port }, 8500), AbortSignal.timeout(1000)), { ok: false, reason: 'BAD_RESPONSE', raw: 'SHORT_BODY' })
})

t.test('one new connection per probe, carrying both requests', async t => {
  const server = createServer(blackHole('n2', 100_000))
  const perConnection: number[] = []
  server.on('connection', socket => {
    const index = perConnection.push(0) - 1
    socket.on('data', chunk => { perConnection[index]! += (chunk.toString().match(/^GET /gm) ?? []).length })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise(resolve => server.close(resolve)))
  const port = (server.address() as AddressInfo).port
  for (let i = 0; i < 3; i++) t.match(await probe(mtuTarget({ node: 'n2', podIp: '127.0.0.1', port }, 8500), AbortSignal.timeout(2000)), { ok: true })
  t.same(perConnection, [2, 2, 2], 'three connections, two GETs on each')
})
