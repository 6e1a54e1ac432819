import t from 'tap'
import { LookupPool } from '../../src/lookup-pool.ts'
import { createTcpProbe, hostPort, parseHostPort, parseTcpTarget, tcpTarget, transportReason } from '../../src/probes/tcp.ts'
import { closedPort, startEndlessPeer, startSilentPeer, startUnansweredPort } from '../../../test/helpers/slow-peer.ts'

const probe = createTcpProbe(new LookupPool())

t.test('target ids and parsing', async t => {
  t.same(tcpTarget('example.com', 443), { kind: 'tcp', id: 'example.com:443', host: 'example.com', port: 443, family: 0 })
  t.equal(hostPort('2001:db8::1', 443), '[2001:db8::1]:443')
  t.same(parseHostPort('[::1]:8443'), { host: '::1', port: 8443 })
  t.same(parseTcpTarget('10.0.0.1:5432'), tcpTarget('10.0.0.1', 5432))
  for (const bad of ['example.com', 'example.com:0', 'example.com:70000', '[nope]:80', '::1:80', 'a b:80', '[10.0.0.1]:80']) {
    t.equal(parseHostPort(bad), null, `rejects ${bad}`)
  }
})

t.test('transport errors map to reasons', async t => {
  const err = (code: string): Error => Object.assign(new Error(code), { code })
  t.same(transportReason(err('EHOSTUNREACH'), false), { reason: 'EHOSTUNREACH', raw: 'EHOSTUNREACH' })
  t.same(transportReason(err('ENETUNREACH'), false), { reason: 'ENETUNREACH', raw: 'ENETUNREACH' })
  t.same(transportReason(err('EPIPE'), true), { reason: 'ECONNRESET', raw: 'EPIPE' })
  t.same(transportReason(err('ETIMEDOUT'), false), { reason: 'CONNECT_TIMEOUT', raw: 'ETIMEDOUT' })
  t.same(transportReason(err('ETIMEDOUT'), true), { reason: 'RESPONSE_TIMEOUT', raw: 'ETIMEDOUT' })
  t.same(transportReason(err('EPERM'), false), { reason: 'OTHER', raw: 'EPERM' })
  t.same(transportReason(null, false), { reason: 'OTHER', raw: 'UNKNOWN' })
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
