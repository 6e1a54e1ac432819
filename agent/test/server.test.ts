import { connect, type AddressInfo, type Socket } from 'node:net'
import t, { type Test } from 'tap'
import { pino } from 'pino'
import { buildServer, MAX_PING_SIZE, PING_SERVER_LIMITS, PING_SERVER_MAX_WAITING, type AgentStatus } from '../src/server.ts'

const status: AgentStatus = { node: 'n1', bootId: 'b', seq: 3, acked: 2, buffered: 1, dropped: 0, connected: true, peers: 4, targets: 14, reportsSent: 3 }

async function serve (t: Test, draining = () => false): Promise<string> {
  const app = buildServer({
    identity: () => ({ node: 'n1', pod: 'agent-n1', labels: { cniplugin: 'aws', 'topology.kubernetes.io/zone': 'a' } }),
    status: () => ({ ...status, secret: 'never shown' }) as AgentStatus,
    draining
  }, pino({ level: 'silent' }))
  await app.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(() => app.close())
  return `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
}

t.test('/ping answers who this agent is', async t => {
  const base = await serve(t)
  const res = await fetch(`${base}/ping`)
  t.equal(res.status, 200)
  t.same(await res.json(), { node: 'n1', pod: 'agent-n1', labels: { cniplugin: 'aws', 'topology.kubernetes.io/zone': 'a' } })
})

t.test('/ping?size=N pads the body to exactly N bytes', async t => {
  const base = await serve(t)
  for (const size of [200, 1500, 9000, MAX_PING_SIZE]) {
    const body = Buffer.from(await (await fetch(`${base}/ping?size=${size}`)).arrayBuffer())
    t.equal(body.length, size, `size=${size}`)
    t.match(JSON.parse(body.toString()), { node: 'n1' })
  }
  const small = await (await fetch(`${base}/ping?size=10`)).json() as { pad: string }
  t.same(small.pad, '', 'a size below the bare answer adds nothing')
  t.equal((await fetch(`${base}/ping?size=${MAX_PING_SIZE + 1}`)).status, 400)
  t.equal((await fetch(`${base}/ping?size=abc`)).status, 400)
  t.equal((await fetch(`${base}/ping?other=1`)).status, 200, 'unknown query parameters are stripped')
})

t.test('health, readiness and status', async t => {
  let draining = false
  const base = await serve(t, () => draining)
  t.same(await (await fetch(`${base}/healthz`)).json(), { status: 'ok' })
  const ready = await fetch(`${base}/readyz`)
  t.equal(ready.status, 200)
  t.same(await ready.json(), { status: 'ready' })
  draining = true
  const notReady = await fetch(`${base}/readyz`)
  t.equal(notReady.status, 503)
  t.same(await notReady.json(), { status: 'draining' })
  const answer = await (await fetch(`${base}/status`)).json() as Record<string, unknown> & { memory: { rssBytes: number, heapUsedBytes: number } }
  const { memory, ...counters } = answer
  t.same(counters, status, 'the response schema keeps unknown fields out')
  t.ok(memory.rssBytes > memory.heapUsedBytes && memory.heapUsedBytes > 0, 'and the process\'s memory is there')
})

t.test('building the server raises no deprecation warning (FSTDEP023)', async t => {
  const warnings: string[] = []
  const onWarning = (w: Error & { code?: string }): void => { warnings.push(`${w.name} ${w.code ?? ''}`) }
  process.on('warning', onWarning)
  t.teardown(() => process.off('warning', onWarning))
  await serve(t)
  // Warnings are emitted on process.nextTick; give them a turn to arrive.
  await new Promise(resolve => setImmediate(resolve))
  t.same(warnings.filter(w => w.startsWith('FastifyDeprecation')), [])
})

t.test('/status shows the cgroup\'s CPU throttling when the agent can read it', async t => {
  const app = buildServer({
    identity: () => ({ node: 'n1', pod: 'agent-n1', labels: {} }),
    status: () => ({ ...status, cpu: { periods: 600, throttledPeriods: 41, throttledSeconds: 3.895 } }),
    draining: () => false
  }, pino({ level: 'silent' }))
  t.teardown(() => app.close())
  const res = await app.inject('/status')
  t.same({ ...res.json(), memory: undefined }, { ...status, memory: undefined, cpu: { periods: 600, throttledPeriods: 41, throttledSeconds: 3.895 } })
})

/** Opens a TCP connection to `base` and resolves once connected; `ended` resolves when the server ends it. */
function rawConnection (base: string, first?: string): Promise<{ socket: Socket, ended: Promise<string> }> {
  const url = new URL(base)
  return new Promise((resolve, reject) => {
    const socket = connect({ host: url.hostname, port: Number(url.port) })
    let answer = ''
    socket.on('data', chunk => { answer += chunk.toString() })
    const ended = new Promise<string>(done => socket.once('close', () => done(answer)))
    socket.once('error', reject)
    socket.once('connect', () => {
      if (first !== undefined) socket.write(first)
      resolve({ socket, ended })
    })
  })
}

t.test('a flood of connections that send nothing cannot crowd out peers: the oldest are closed to make room', async t => {
  const base = await serve(t)
  const flood: Array<{ socket: Socket, ended: Promise<string> }> = []
  for (let i = 0; i < PING_SERVER_MAX_WAITING + 50; i++) flood.push(await rawConnection(base))
  t.teardown(() => { for (const c of flood) c.socket.destroy() })
  const res = await fetch(`${base}/ping`)
  t.equal(res.status, 200, 'a peer still gets its answer')
  // The 50 oldest idle connections (and one more for the peer's own) went; the newest are still open.
  await Promise.all(flood.slice(0, 50).map(c => c.ended))
  t.pass('the oldest idle connections were closed by the server')
  t.notOk(flood.at(-1)!.socket.destroyed, 'the newest are kept')
})

t.test('a request whose headers never finish is answered 408 and closed within the headers bound', async t => {
  const base = await serve(t)
  const started = Date.now()
  const { ended } = await rawConnection(base, 'GET /ping HTTP/1.1\r\nHost: x\r\n')
  const answer = await ended
  t.match(answer, /^HTTP\/1\.1 408 /)
  const bound = PING_SERVER_LIMITS.http.headersTimeout + PING_SERVER_LIMITS.http.connectionsCheckingInterval
  t.ok(Date.now() - started <= bound + 1000, `closed within ${bound} ms and a second of slack`)
})
