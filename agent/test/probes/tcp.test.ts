import t from 'tap'
import { LookupPool } from '../../src/lookup-pool.ts'
import { createTcpProbe, parseTcpTarget, tcpTarget } from '../../src/probes/tcp.ts'
import { closedPort, startEndlessPeer, startSilentPeer, startUnansweredPort } from '../../../test/helpers/slow-peer.ts'
import { checkPhases, SLOW_FLOOR_SECONDS, SLOW_MS, slowLookupPool } from './phase-checks.ts'

const probe = createTcpProbe(new LookupPool())

t.test('target ids and parsing', async t => {
  t.same(tcpTarget('example.com', 443), { kind: 'tcp', id: 'example.com:443', host: 'example.com', port: 443, family: 0 })
  t.same(tcpTarget('2001:db8::1', 443).id, '[2001:db8::1]:443')
  t.same(parseTcpTarget('10.0.0.1:5432'), tcpTarget('10.0.0.1', 5432))
  t.same(parseTcpTarget('[::1]:8443'), tcpTarget('::1', 8443))
  t.equal(parseTcpTarget('example.com'), null)
})

t.test('connects to a listening port and times the handshake', async t => {
  const peer = await startSilentPeer('127.0.0.1')
  t.teardown(peer.close)
  const result = await probe(tcpTarget('127.0.0.1', peer.port), AbortSignal.timeout(5000))
  t.match(result, { ok: true, phases: { connect: Number }, detail: { address: '127.0.0.1' } })
  t.notOk(result.phases && 'dns' in result.phases, 'an IP literal has no DNS phase')
})

t.test('a peer that streams on accept is never read: the socket closes at the handshake', async t => {
  const peer = await startEndlessPeer('banner', { afterRequest: false })
  t.teardown(peer.close)
  t.match(await probe(tcpTarget('127.0.0.1', peer.port), AbortSignal.timeout(5000)), { ok: true })
  for (let i = 0; i < 500 && peer.closedByClient() === 0; i++) await new Promise(resolve => setTimeout(resolve, 10))
  t.equal(peer.closedByClient(), 1, 'closed under the streaming peer')
})

t.test('a name goes through getaddrinfo first', async t => {
  const peer = await startSilentPeer('127.0.0.1')
  t.teardown(peer.close)
  const result = await probe(tcpTarget('localhost', peer.port, 4), AbortSignal.timeout(5000))
  t.match(result, { ok: true, phases: { dns: Number, connect: Number }, detail: { address: '127.0.0.1' } })
})

t.test('phases: dns (a name only) and connect, nothing else: the socket closes at the handshake', async t => {
  const peer = await startSilentPeer('127.0.0.1')
  t.teardown(peer.close)
  checkPhases(t, await probe(tcpTarget('127.0.0.1', peer.port), AbortSignal.timeout(5000)), ['connect'])
  checkPhases(t, await probe(tcpTarget('localhost', peer.port, 4), AbortSignal.timeout(5000)), ['dns', 'connect'])
  const slow = createTcpProbe(slowLookupPool(SLOW_MS))
  checkPhases(t, await slow(tcpTarget('db.example', peer.port), AbortSignal.timeout(5000)), ['dns', 'connect'], { dns: SLOW_FLOOR_SECONDS })
})

t.test('a lookup taken while the threadpool was saturated flags the sample', async t => {
  const peer = await startSilentPeer('127.0.0.1')
  t.teardown(peer.close)
  // A negative threshold counts every canary as late, standing in for a saturated pool.
  const flagged = createTcpProbe(new LookupPool({ lagThresholdMs: -1 }))
  t.match(await flagged(tcpTarget('localhost', peer.port, 4), AbortSignal.timeout(5000)), { ok: true, lagged: true })
})

t.test('a closed port is ECONNREFUSED', async t => {
  const port = await closedPort('127.0.0.1')
  t.match(await probe(tcpTarget('127.0.0.1', port), AbortSignal.timeout(5000)), { ok: false, reason: 'ECONNREFUSED', raw: 'ECONNREFUSED' })
})

t.test('an unanswered SYN is CONNECT_TIMEOUT', async t => {
  const peer = await startUnansweredPort('127.0.0.1')
  t.teardown(peer.close)
  const result = await probe(tcpTarget('127.0.0.1', peer.port), AbortSignal.timeout(300))
  t.match(result, { ok: false, reason: 'CONNECT_TIMEOUT', raw: 'TIMEOUT' })
  t.match(await probe(tcpTarget('127.0.0.1', peer.port), AbortSignal.abort()), { ok: false, reason: 'CONNECT_TIMEOUT' }, 'an already-expired signal')
})

t.test('a failed lookup is the probe result', async t => {
  const failing = createTcpProbe(new LookupPool({ resolve: () => Promise.reject(Object.assign(new Error('x'), { code: 'EAI_AGAIN' })) }))
  t.match(await failing(tcpTarget('db.example', 5432), AbortSignal.timeout(5000)), { ok: false, reason: 'EAI_AGAIN', phases: { dns: Number } })
})
