import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import { pino } from 'pino'
import { LookupPool } from '../../src/lookup-pool.ts'
import { createServiceProbe, parseServiceTarget, serviceTarget } from '../../src/probes/service.ts'
import { buildServer } from '../../src/server.ts'
import { startServiceVip } from '../../../scripts/stand-ins/service-vip.ts'
import { closedPort } from '../../../test/helpers/slow-peer.ts'
import { checkPhases, SLOW_FLOOR_SECONDS, SLOW_MS, slowLookupPool } from './phase-checks.ts'

const probe = createServiceProbe(new LookupPool(), { timeoutMs: 2000 })
const signal = (): AbortSignal => AbortSignal.timeout(2000)

async function agentServer (t: Test, node: string): Promise<number> {
  const server = buildServer({
    identity: () => ({ node, pod: `agent-${node}`, labels: {} }),
    status: () => { throw new Error('unused') },
    draining: () => false
  }, pino({ level: 'silent' }))
  await server.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(() => server.close())
  return (server.server.address() as AddressInfo).port
}

t.test('targets are host:port, host an IP or a name', async t => {
  t.same(parseServiceTarget(' 10.96.0.20:8081 '), { kind: 'service', id: '10.96.0.20:8081', host: '10.96.0.20', port: 8081, family: 0 })
  t.same(parseServiceTarget('pingfleet-agent.pingfleet:8081'), serviceTarget('pingfleet-agent.pingfleet', 8081))
  t.equal(serviceTarget('fd00::20', 80).id, '[fd00::20]:80')
  for (const bad of ['10.96.0.20', 'svc:0', 'svc:http', '']) t.equal(parseServiceTarget(bad), null, `rejects ${JSON.stringify(bad)}`)
})

t.test('through a round-robin VIP, by IP and by name: each probe a new connection, each answer names its backend', async t => {
  const ports = [await agentServer(t, 'n1'), await agentServer(t, 'n2')]
  const vip = await startServiceVip(['127.0.0.1'], 0, () => ports.map(port => ({ host: '127.0.0.1', port })))
  t.teardown(vip.close)
  const vipPort = Number(vip.listening[0]!.split(':').at(-1))
  const backends: string[] = []
  for (let i = 0; i < 4; i++) {
    const result = await probe(serviceTarget('127.0.0.1', vipPort), signal())
    t.match(result, { ok: true, phases: { connect: Number, firstByte: Number } })
    if (result.ok) backends.push(result.backend!)
  }
  t.same(backends.sort(), ['n1', 'n1', 'n2', 'n2'], 'both backends answered, in turn')
  t.equal([...vip.forwarded.values()].reduce((a, b) => a + b, 0), 4, 'one new connection per probe')

  const byName = await probe(serviceTarget('localhost', vipPort, 4), signal())
  t.match(byName, { ok: true, backend: /^n[12]$/, phases: { dns: Number, connect: Number } }, 'a name is looked up first, with its own phase')
})

t.test('phases: dns only for a name, then connect and first byte', async t => {
  const port = await agentServer(t, 'n1')
  checkPhases(t, await probe(serviceTarget('127.0.0.1', port), signal()), ['connect', 'firstByte'])
  checkPhases(t, await probe(serviceTarget('localhost', port, 4), signal()), ['dns', 'connect', 'firstByte'])
  // The lookup's own time is the dns phase, not connect's.
  const slow = createServiceProbe(slowLookupPool(SLOW_MS), { timeoutMs: 2000 })
  checkPhases(t, await slow(serviceTarget('agents.example', port), signal()), ['dns', 'connect', 'firstByte'], { dns: SLOW_FLOOR_SECONDS })
})

t.test('failures: refused, not an agent, an error status', async t => {
  t.match(await probe(serviceTarget('127.0.0.1', await closedPort()), signal()), { ok: false, reason: 'ECONNREFUSED' })
  const other = createServer((_req, res) => { res.end('hello') })
  await new Promise<void>(resolve => other.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise(resolve => other.close(resolve)))
  const port = (other.address() as AddressInfo).port
  t.match(await probe(serviceTarget('127.0.0.1', port), signal()), { ok: false, reason: 'BAD_RESPONSE', raw: 'INVALID_JSON' }, 'not JSON: the same raw code as pod and mtu')
  const vip = await startServiceVip(['127.0.0.1'], 0, () => [])
  t.teardown(vip.close)
  t.match(await probe(serviceTarget('127.0.0.1', Number(vip.listening[0]!.split(':').at(-1))), signal()), { ok: false, reason: 'ECONNRESET' }, 'a Service without endpoints resets')
})
