import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import { pino } from 'pino'
import { buildServer, MAX_PING_SIZE, type AgentStatus } from '../src/server.ts'

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
  t.same(await (await fetch(`${base}/status`)).json(), status, 'the response schema keeps unknown fields out')
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
  t.same(res.json(), { ...status, cpu: { periods: 600, throttledPeriods: 41, throttledSeconds: 3.895 } })
})
