import t, { type Test } from 'tap'
import { once } from 'node:events'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import { createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net'
import { LookupPool } from '../../src/lookup-pool.ts'
import { createHttpProbe, HTTP_MAX_BODY_BYTES, HTTP_MAX_HEAD_BYTES, httpTarget, parseHttpTarget } from '../../src/probes/http.ts'
import { classifyStatus } from '../../src/layers/classify.ts'
import { closedPort, startEndlessPeer, startResettingPeer, startSilentPeer, startUnansweredPort } from '../../../test/helpers/slow-peer.ts'
import { selfSignedCert } from '../../../test/helpers/tls-cert.ts'
import { checkPhases, SLOW_FLOOR_SECONDS, SLOW_MS, slowLookupPool } from './phase-checks.ts'

const probe = createHttpProbe(new LookupPool())

function timeout (ms: number): AbortSignal {
  const ac = new AbortController()
  setTimeout(() => ac.abort(new DOMException('probe timeout', 'TimeoutError')), ms).unref()
  return ac.signal
}

async function serve (server: Server, host = '127.0.0.1'): Promise<{ port: number, connections: () => number }> {
  let connections = 0
  const sockets = new Set<Socket>()
  server.on('connection', (socket: Socket) => {
    connections++
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })
  server.listen(0, host)
  await once(server, 'listening')
  t.teardown(async () => {
    for (const socket of sockets) socket.destroy()
    server.close()
  })
  return { port: (server.address() as AddressInfo).port, connections: () => connections }
}

function routes (req: IncomingMessage, res: ServerResponse): void {
  const path = req.url ?? '/'
  if (path === '/ok') { res.end('fine'); return }
  if (path === '/slow') { setTimeout(() => res.end('late'), SLOW_MS); return }
  if (path === '/private') { res.writeHead(req.headers.authorization === `Basic ${Buffer.from('u:p@ss').toString('base64')}` ? 200 : 401).end(); return }
  if (path === '/big') { res.end(Buffer.alloc(256 * 1024, 'x')); return }
  if (path === '/big-404') { res.writeHead(404).end(Buffer.alloc(256 * 1024, 'x')); return }
  if (path === '/big-chunked') { res.write(Buffer.alloc(128 * 1024, 'x')); res.end(Buffer.alloc(128 * 1024, 'x')); return }
  if (path === '/stall-body') { res.writeHead(200, { 'content-length': '100' }); res.write('partial'); return }
  if (path === '/close') { req.socket.destroy(); return }
  const status = Number(path.slice(1))
  res.writeHead(status >= 100 ? status : 500, status >= 300 && status < 400 ? { location: '/ok' } : {})
  res.end('status body')
}

t.test('targets and status classes', async t => {
  t.same(httpTarget('https://Example.com/healthz'), { kind: 'http', id: 'https://example.com/healthz', url: 'https://example.com/healthz', family: 0 })
  t.same(parseHttpTarget(' http://10.0.0.1:8080/x?y=1 '), httpTarget('http://10.0.0.1:8080/x?y=1'))
  for (const bad of ['example.com', 'ftp://example.com/', 'http://', 'file:///etc/hosts']) t.equal(parseHttpTarget(bad), null, `rejects ${bad}`)
  t.equal(classifyStatus(204), null)
  t.equal(classifyStatus(404)?.reason, 'HTTP_4XX')
  t.equal(classifyStatus(503)?.reason, 'HTTP_5XX')
  t.equal(classifyStatus(302)?.reason, 'HTTP_OTHER')
  t.equal(classifyStatus(600)?.reason, 'HTTP_OTHER')
})

t.test('http over loopback', async t => {
  const { port, connections } = await serve(createServer(routes))
  const base = `http://127.0.0.1:${port}`

  t.test('a 200 with connect and first-byte phases', async t => {
    const result = await probe(httpTarget(`${base}/ok`), timeout(5000))
    t.match(result, { ok: true, phases: { connect: Number, firstByte: Number }, detail: { status: 200, address: '127.0.0.1' } })
    t.notOk(result.phases && 'dns' in result.phases, 'no DNS phase for an IP literal')
  })

  t.test('phases: connect and first byte for an IP, dns first for a name, no tls over http', async t => {
    checkPhases(t, await probe(httpTarget(`${base}/ok`), timeout(5000)), ['connect', 'firstByte'])
    checkPhases(t, await probe(httpTarget(`${base}/slow`), timeout(5000)), ['connect', 'firstByte'], { firstByte: SLOW_FLOOR_SECONDS })
    checkPhases(t, await probe(httpTarget(`http://localhost:${port}/ok`, 4), timeout(5000)), ['dns', 'connect', 'firstByte'])
    const slow = createHttpProbe(slowLookupPool(SLOW_MS))
    checkPhases(t, await slow(httpTarget(`http://web.example:${port}/ok`), timeout(5000)), ['dns', 'connect', 'firstByte'], { dns: SLOW_FLOOR_SECONDS })
  })

  t.test('a name adds the DNS phase', async t => {
    t.match(await probe(httpTarget(`http://localhost:${port}/ok`, 4), timeout(5000)), { ok: true, phases: { dns: Number, connect: Number, firstByte: Number } })
  })

  t.test('every probe opens a new connection', async t => {
    const before = connections()
    await probe(httpTarget(`${base}/ok`), timeout(5000))
    await probe(httpTarget(`${base}/ok`), timeout(5000))
    t.equal(connections() - before, 2)
  })

  t.test('userinfo is sent as Basic credentials and shown redacted', async t => {
    const target = httpTarget(`http://u:p%40ss@127.0.0.1:${new URL(base).port}/private`)
    t.equal(target.id, `http://u:***@127.0.0.1:${new URL(base).port}/private`)
    t.match(await probe(target, timeout(5000)), { ok: true, detail: { status: 200 } })
    t.match(await probe(httpTarget(`${base}/private`), timeout(5000)), { ok: false, reason: 'HTTP_4XX', raw: 'HTTP_401' })
  })

  t.test('status classes', async t => {
    t.match(await probe(httpTarget(`${base}/404`), timeout(5000)), { ok: false, reason: 'HTTP_4XX', raw: 'HTTP_404', detail: { status: 404 } })
    t.match(await probe(httpTarget(`${base}/503`), timeout(5000)), { ok: false, reason: 'HTTP_5XX', raw: 'HTTP_503' })
    t.match(await probe(httpTarget(`${base}/301`), timeout(5000)), { ok: false, reason: 'HTTP_OTHER', raw: 'HTTP_301' }, 'redirects are not followed')
  })

  t.test('a body larger than the limit fails as BODY_TOO_LARGE, whether declared or streamed', async t => {
    const small = createHttpProbe(new LookupPool(), { maxBodyBytes: 1024 })
    t.match(await small(httpTarget(`${base}/big`), timeout(5000)), { ok: false, reason: 'BAD_RESPONSE', raw: 'BODY_TOO_LARGE', detail: { status: 200 } })
    t.match(await small(httpTarget(`${base}/big-chunked`), timeout(5000)), { ok: false, reason: 'BAD_RESPONSE', raw: 'BODY_TOO_LARGE' })
    t.match(await createHttpProbe(new LookupPool(), { maxBodyBytes: 256 * 1024 })(httpTarget(`${base}/big`), timeout(5000)), { ok: true }, 'at the limit it passes')
    t.match(await small(httpTarget(`${base}/big-404`), timeout(5000)), { ok: false, reason: 'HTTP_4XX', raw: 'HTTP_404' }, 'a failing status wins over its large body, which is not read')
  })

  t.test('a body that stalls is RESPONSE_TIMEOUT', async t => {
    t.match(await probe(httpTarget(`${base}/stall-body`), timeout(300)), { ok: false, reason: 'RESPONSE_TIMEOUT', raw: 'BODY_TIMEOUT' })
  })

  t.test('a server that closes without answering is ECONNRESET', async t => {
    t.match(await probe(httpTarget(`${base}/close`), timeout(5000)), { ok: false, reason: 'ECONNRESET' })
  })
})

t.test('endless answers: reading stops at the cap', async t => {
  // Loopback socket buffers on both ends hold a few MiB; an endless peer left alone writes gigabytes.
  const slack = 32 * 1024 * 1024
  const check = async (t: Test, head: string, raw: string, cap: number, block?: Buffer): Promise<void> => {
    const peer = await startEndlessPeer(head, { block })
    t.teardown(peer.close)
    t.match(await probe(httpTarget(`http://127.0.0.1:${peer.port}/health`), timeout(10_000)), { ok: false, reason: 'BAD_RESPONSE', raw })
    for (let i = 0; i < 500 && peer.closedByClient() === 0; i++) await new Promise(resolve => setTimeout(resolve, 10))
    t.equal(peer.closedByClient(), 1, 'the probe closed the connection under the streaming peer')
    t.ok(peer.written() < cap + slack, `the peer got ${peer.written()} bytes out`)
  }
  t.test('an endless body (no length)', t => check(t, 'HTTP/1.1 200 OK\r\n\r\n', 'BODY_TOO_LARGE', HTTP_MAX_BODY_BYTES))
  t.test('an endless chunked body', t => check(t, 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n', 'BODY_TOO_LARGE', HTTP_MAX_BODY_BYTES,
    Buffer.from(`3ff8\r\n${'x'.repeat(0x3ff8)}\r\n`)))
  t.test('endless headers', t => check(t, 'HTTP/1.1 200 OK\r\nx-endless: ', 'HEADERS_TOO_LARGE', HTTP_MAX_HEAD_BYTES))
})

t.test('transport failures', async t => {
  t.test('refused', async t => {
    const port = await closedPort()
    t.match(await probe(httpTarget(`http://127.0.0.1:${port}/`), timeout(5000)), { ok: false, reason: 'ECONNREFUSED', raw: 'ECONNREFUSED' })
  })

  t.test('a SYN nobody answers is CONNECT_TIMEOUT', async t => {
    const peer = await startUnansweredPort()
    t.teardown(peer.close)
    t.match(await probe(httpTarget(`http://127.0.0.1:${peer.port}/`), timeout(300)), { ok: false, reason: 'CONNECT_TIMEOUT', raw: 'TIMEOUT' })
  })

  t.test('a peer that accepts and stays silent is RESPONSE_TIMEOUT', async t => {
    const peer = await startSilentPeer()
    t.teardown(peer.close)
    const result = await probe(httpTarget(`http://127.0.0.1:${peer.port}/`), timeout(300))
    t.match(result, { ok: false, reason: 'RESPONSE_TIMEOUT', raw: 'HEADERS_TIMEOUT', phases: { connect: Number } })
  })

  t.test('a reset after the request is ECONNRESET', async t => {
    const peer = await startResettingPeer()
    t.teardown(peer.close)
    t.match(await probe(httpTarget(`http://127.0.0.1:${peer.port}/`), timeout(5000)), { ok: false, reason: 'ECONNRESET' })
  })

  t.test('an answer that is not HTTP is BAD_RESPONSE', async t => {
    const server = createTcpServer(socket => { socket.on('error', () => {}); socket.end('SSH-2.0-OpenSSH_9.6\r\n\r\n') })
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    t.teardown(() => server.close())
    t.match(await probe(httpTarget(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`), timeout(5000)), { ok: false, reason: 'BAD_RESPONSE', raw: /^HPE_|HTTP_PARSE_ERROR$/ })
  })

  t.test('an expired signal does not connect', async t => {
    t.match(await probe(httpTarget('http://127.0.0.1:9/'), AbortSignal.abort()), { ok: false, reason: 'CONNECT_TIMEOUT' })
  })

  t.test('a failed lookup is the probe result', async t => {
    const failing = createHttpProbe(new LookupPool({ resolve: () => Promise.reject(Object.assign(new Error('x'), { code: 'EAI_FAIL' })) }))
    t.match(await failing(httpTarget('http://api.example/'), timeout(5000)), { ok: false, reason: 'EAI_FAIL' })
  })
})

const cert = selfSignedCert()
// CI installs openssl, so there a missing CLI is a failure, not a skip.
if (cert === null && process.env.CI === 'true') t.fail('the openssl CLI is needed to make a test certificate (CI=true)')
t.test('https', { skip: cert === null ? 'the openssl CLI is not available to make a test certificate' : false }, async t => {
  const { port } = await serve(createHttpsServer({ key: cert!.key, cert: cert!.cert }, routes) as unknown as Server)

  t.test('an untrusted certificate is TLS_ERROR', async t => {
    t.match(await probe(httpTarget(`https://localhost:${port}/ok`, 4), timeout(5000)), { ok: false, reason: 'TLS_ERROR', raw: 'DEPTH_ZERO_SELF_SIGNED_CERT', phases: { connect: Number } })
  })

  t.test('a trusted certificate gives a TLS phase', async t => {
    const target = { ...httpTarget(`https://localhost:${port}/ok`, 4), ca: cert!.cert }
    t.match(await probe(target, timeout(5000)), { ok: true, phases: { dns: Number, connect: Number, tls: Number, firstByte: Number }, detail: { status: 200 } })
    checkPhases(t, await probe(target, timeout(5000)), ['dns', 'connect', 'tls', 'firstByte'])
    checkPhases(t, await probe({ ...target, url: target.url.replace('/ok', '/slow') }, timeout(5000)), ['dns', 'connect', 'tls', 'firstByte'], { firstByte: SLOW_FLOOR_SECONDS })
  })

  t.test('a certificate for another name is TLS_ERROR', async t => {
    const target = { ...httpTarget(`https://127.0.0.1:${port}/ok`), ca: cert!.cert }
    t.match(await probe(target, timeout(5000)), { ok: false, reason: 'TLS_ERROR', raw: 'ERR_TLS_CERT_ALTNAME_INVALID' })
  })

  t.test('a handshake that never completes is RESPONSE_TIMEOUT', async t => {
    const peer = await startSilentPeer()
    t.teardown(peer.close)
    t.match(await probe(httpTarget(`https://127.0.0.1:${peer.port}/`), timeout(300)), { ok: false, reason: 'RESPONSE_TIMEOUT', raw: 'TLS_HANDSHAKE_TIMEOUT' })
  })

  t.test('a reset during the handshake is ECONNRESET', async t => {
    const peer = await startResettingPeer()
    t.teardown(peer.close)
    t.match(await probe(httpTarget(`https://127.0.0.1:${peer.port}/`), timeout(5000)), { ok: false, reason: 'ECONNRESET' })
  })
})
