import t from 'tap'
import { dnsWireProbe, dnsWireTarget, parseDnsServer, type DnsWireTarget } from '../../src/probes/dns-wire.ts'
import { TestDnsServer, type DnsBehaviour } from '../../../test/helpers/dns-server.ts'
import { closedPort, startEndlessPeer } from '../../../test/helpers/slow-peer.ts'

// Short, so timeouts are quick; the delayed modes use 300 ms, comfortably past it.
const TIMEOUT_MS = 200
const HOST = '127.0.0.53'

const server = await TestDnsServer.start({ host: HOST })
t.teardown(() => server.close())

const answer = (...addresses: string[]): DnsBehaviour => ({ kind: 'answer', addresses })

function target (name: string, type: 'A' | 'AAAA' = 'A', transport: 'udp' | 'tcp' = 'udp'): DnsWireTarget {
  return dnsWireTarget({ name, type, server: server.host, port: server.port, transport })
}

function timeout (ms = TIMEOUT_MS): AbortSignal {
  const ac = new AbortController()
  setTimeout(() => ac.abort(new DOMException('probe timeout', 'TimeoutError')), ms)
  return ac.signal
}

t.test('target ids and server parsing', async t => {
  t.equal(dnsWireTarget({ name: 'example.internal', type: 'A', server: '198.18.0.53' }).id, 'example.internal@198.18.0.53:53/A')
  t.equal(dnsWireTarget({ name: 'example.internal', type: 'AAAA', server: 'fd00::53', port: 5353, transport: 'tcp' }).id, 'example.internal@[fd00::53]:5353/AAAA/tcp')
  t.same(parseDnsServer('10.96.0.10'), { server: '10.96.0.10', port: 53 })
  t.same(parseDnsServer('127.0.0.53:5353'), { server: '127.0.0.53', port: 5353 })
  t.same(parseDnsServer('fd00::53'), { server: 'fd00::53', port: 53 })
  t.same(parseDnsServer('[fd00::53]'), { server: 'fd00::53', port: 53 })
  t.same(parseDnsServer('[fd00::53]:5353'), { server: 'fd00::53', port: 5353 })
  for (const bad of ['dns.example', 'dns.example:53', '[10.0.0.1]', '10.0.0.1:0', '']) t.equal(parseDnsServer(bad), null, `rejects ${JSON.stringify(bad)}`)
})

// Each server mode and the reason it must produce.
const modes: Array<[string, DnsBehaviour, 'A' | 'AAAA', object]> = [
  ['answer', answer('10.0.0.1', 'fd00::1'), 'A', { ok: true, detail: { transport: 'udp', answers: 1, address: '10.0.0.1' } }],
  ['answer over AAAA', answer('10.0.0.1', 'fd00::1'), 'AAAA', { ok: true, detail: { address: 'fd00::1' } }],
  ['no record of that type', answer('10.0.0.1'), 'AAAA', { ok: false, reason: 'NODATA', raw: 'NOERROR' }],
  ['NXDOMAIN', { kind: 'rcode', rcode: 'NXDOMAIN' }, 'A', { ok: false, reason: 'NXDOMAIN', raw: 'NXDOMAIN' }],
  ['SERVFAIL', { kind: 'rcode', rcode: 'SERVFAIL' }, 'A', { ok: false, reason: 'SERVFAIL', raw: 'SERVFAIL' }],
  ['REFUSED', { kind: 'rcode', rcode: 'REFUSED' }, 'A', { ok: false, reason: 'REFUSED', raw: 'REFUSED' }],
  ['another rcode', { kind: 'rcode', rcode: 'NOTIMP' }, 'A', { ok: false, reason: 'DNS_OTHER_RCODE', raw: 'NOTIMP' }],
  ['drop', { kind: 'drop' }, 'A', { ok: false, reason: 'DNS_TIMEOUT', raw: 'UDP_TIMEOUT' }],
  ['wrong id', { kind: 'wrong-id' }, 'A', { ok: false, reason: 'MISMATCH', raw: 'ID_MISMATCH' }],
  ['wrong question', { kind: 'wrong-question' }, 'A', { ok: false, reason: 'MISMATCH', raw: 'QUESTION_MISMATCH' }],
  ['garbage', { kind: 'garbage' }, 'A', { ok: false, reason: 'MALFORMED', raw: 'DECODE_ERROR' }],
  ['truncated, answered over TCP', { kind: 'truncate', tcp: answer('10.0.0.2') }, 'A', { ok: true, detail: { transport: 'tcp', truncated: 1, address: '10.0.0.2' } }],
  ['truncated, TCP dropped', { kind: 'truncate', tcp: { kind: 'drop' } }, 'A', { ok: false, reason: 'TRUNCATED', raw: 'TCP_TIMEOUT' }],
  ['truncated, TCP closed', { kind: 'truncate', tcp: { kind: 'close' } }, 'A', { ok: false, reason: 'TRUNCATED', raw: 'TCP_EOF' }],
  ['truncated, TCP NXDOMAIN', { kind: 'truncate', tcp: { kind: 'rcode', rcode: 'NXDOMAIN' } }, 'A', { ok: false, reason: 'NXDOMAIN', detail: { transport: 'tcp' } }],
  ['reply from the wrong port only', { kind: 'wrong-source' }, 'A', { ok: false, reason: 'DNS_TIMEOUT' }],
  ['reply from the wrong port, then the right one', { kind: 'wrong-source', then: answer('10.0.0.3') }, 'A', { ok: true, detail: { address: '10.0.0.3' } }],
  ['wrong id, then the right reply', { kind: 'wrong-id', then: answer('10.0.0.4') }, 'A', { ok: true, detail: { address: '10.0.0.4' } }],
  ['garbage, then the right reply', { kind: 'garbage', then: answer('10.0.0.5') }, 'A', { ok: true, detail: { address: '10.0.0.5' } }]
]

for (const [i, [what, behaviour, type, expected]] of modes.entries()) {
  t.test(`udp: ${what}`, async t => {
    const name = `mode-${i}.example.internal`
    server.set(name, behaviour)
    t.match(await dnsWireProbe(target(name, type), timeout()), expected)
  })
}

t.test('the truncated answer was really fetched over TCP', async t => {
  server.set('big.example.internal', { kind: 'truncate', tcp: answer('10.0.0.9') })
  const before = server.queries.length
  await dnsWireProbe(target('big.example.internal'), timeout())
  t.same(server.queries.slice(before).map(q => q.transport), ['udp', 'tcp'])
})

t.test('the conntrack race signature: A answers, AAAA is late', async t => {
  server.set('race.example.internal', answer('10.0.0.7', 'fd00::7'))
  server.set('race.example.internal', { kind: 'delay', ms: 300, then: answer('fd00::7') }, 'AAAA')
  t.match(await dnsWireProbe(target('race.example.internal', 'A'), timeout()), { ok: true })
  t.match(await dnsWireProbe(target('race.example.internal', 'AAAA'), timeout()), { ok: false, reason: 'DNS_TIMEOUT' })
  t.match(await dnsWireProbe(target('race.example.internal', 'AAAA'), timeout(2000)), { ok: true, detail: { address: 'fd00::7' } }, 'with a longer timeout the late answer counts')
})

t.test('tcp only', async t => {
  server.set('tcp.example.internal', answer('10.0.1.1'))
  server.set('tcp-gone.example.internal', { kind: 'close' })
  server.set('tcp-silent.example.internal', { kind: 'drop' })
  server.set('tcp-garbage.example.internal', { kind: 'garbage' })
  server.set('tcp-wrong.example.internal', { kind: 'wrong-id' })
  const before = server.queries.length
  t.match(await dnsWireProbe(target('tcp.example.internal', 'A', 'tcp'), timeout()), { ok: true, detail: { transport: 'tcp', address: '10.0.1.1' } })
  t.same(server.queries.slice(before).map(q => q.transport), ['tcp'], 'no UDP at all')
  t.match(await dnsWireProbe(target('tcp-gone.example.internal', 'A', 'tcp'), timeout()), { ok: false, reason: 'ECONNRESET', raw: 'EOF' })
  t.match(await dnsWireProbe(target('tcp-silent.example.internal', 'A', 'tcp'), timeout()), { ok: false, reason: 'DNS_TIMEOUT', raw: 'TCP_TIMEOUT' })
  t.match(await dnsWireProbe(target('tcp-garbage.example.internal', 'A', 'tcp'), timeout()), { ok: false, reason: 'MALFORMED' })
  t.match(await dnsWireProbe(target('tcp-wrong.example.internal', 'A', 'tcp'), timeout()), { ok: false, reason: 'MISMATCH', raw: 'ID_MISMATCH' })
  const port = await closedPort(HOST)
  t.match(await dnsWireProbe(dnsWireTarget({ name: 'x.example', type: 'A', server: HOST, port, transport: 'tcp' }), timeout()), { ok: false, reason: 'ECONNREFUSED' })
})

t.test('tcp: a server that never stops sending is read up to one length-prefixed message, then dropped', async t => {
  // The two-byte length prefix bounds a DNS message on TCP to 65,535 bytes (RFC 1035 4.2.2); after it
  // the probe stops reading, decodes, and closes, while the peer would go on for ever.
  const slack = 32 * 1024 * 1024
  for (const [what, head] of [['the largest length prefix', Buffer.from([0xff, 0xff])], ['garbage from the first byte', Buffer.alloc(0)]] as const) {
    const peer = await startEndlessPeer(head, { host: HOST })
    t.teardown(peer.close)
    const result = await dnsWireProbe(dnsWireTarget({ name: 'x.example', type: 'A', server: HOST, port: peer.port, transport: 'tcp' }), timeout(10_000))
    t.match(result, { ok: false, reason: 'MALFORMED', raw: 'DECODE_ERROR' }, what)
    for (let i = 0; i < 500 && peer.closedByClient() === 0; i++) await new Promise(resolve => setTimeout(resolve, 10))
    t.equal(peer.closedByClient(), 1, `${what}: the probe closed the connection`)
    t.ok(peer.written() < 65_537 + slack, `${what}: the peer got ${peer.written()} bytes out`)
  }
})

t.test('expected negative answers: normal for the query, so not a failure; the wrong one still is', async t => {
  server.set('v4only.example.internal', answer('10.0.9.1'))
  server.set('absent.example.internal', { kind: 'rcode', rcode: 'NXDOMAIN' })
  const probe = (name: string, type: 'A' | 'AAAA', expect: 'answer' | 'nodata' | 'nxdomain', transport: 'udp' | 'tcp' = 'udp') =>
    dnsWireProbe(dnsWireTarget({ name, type, server: server.host, port: server.port, transport, expect }), timeout())
  // The field case: A,AAAA on an IPv4-only cluster. AAAA gets NOERROR without records.
  for (const transport of ['udp', 'tcp'] as const) {
    t.match(await probe('v4only.example.internal', 'AAAA', 'nodata', transport), { ok: true, detail: { rcode: 'NODATA', transport } }, `${transport}: NODATA where it is normal`)
  }
  t.match(await probe('v4only.example.internal', 'AAAA', 'answer'), { ok: false, reason: 'NODATA', raw: 'NOERROR' }, 'NODATA where records are required')
  t.match(await probe('v4only.example.internal', 'A', 'nodata'), { ok: true, detail: { address: '10.0.9.1' } }, 'an answer where NODATA is allowed')
  t.match(await probe('absent.example.internal', 'AAAA', 'nodata'), { ok: false, reason: 'NXDOMAIN' }, 'nodata still needs the name to exist')
  // A deliberately absent name.
  t.match(await probe('absent.example.internal', 'A', 'nxdomain'), { ok: true, detail: { rcode: 'NXDOMAIN' } })
  t.match(await probe('v4only.example.internal', 'A', 'nxdomain'), { ok: false, reason: 'BAD_RESPONSE', raw: 'UNEXPECTED_ANSWER', detail: { address: '10.0.9.1' } }, 'an absent name that resolves (a wildcard, a hijack)')
  t.match(await probe('v4only.example.internal', 'AAAA', 'nxdomain'), { ok: false, reason: 'BAD_RESPONSE', raw: 'UNEXPECTED_NODATA' })
  // Failures of the resolver itself stay failures whatever is expected.
  server.set('broken.example.internal', { kind: 'rcode', rcode: 'SERVFAIL' })
  for (const expect of ['nodata', 'nxdomain'] as const) t.match(await probe('broken.example.internal', 'A', expect), { ok: false, reason: 'SERVFAIL' }, `SERVFAIL with ${expect} expected`)
})

t.test('names are matched without regard to case or a trailing dot', async t => {
  server.set('Case.Example.Internal', answer('10.0.2.1'))
  t.match(await dnsWireProbe(target('case.example.internal.'), timeout()), { ok: true, detail: { address: '10.0.2.1' } })
})

t.test('a fresh socket and a random id per probe', async t => {
  server.set('fresh.example.internal', answer('10.0.3.1'))
  const results = await Promise.all(Array.from({ length: 5 }, () => dnsWireProbe(target('fresh.example.internal'), timeout(2000))))
  t.ok(results.every(r => r.ok), 'concurrent probes each get their own reply')
})

t.test('an already expired signal sends nothing', async t => {
  const before = server.queries.length
  t.match(await dnsWireProbe(target('never.example.internal'), AbortSignal.abort()), { ok: false, reason: 'DNS_TIMEOUT' })
  t.equal(server.queries.length, before)
})
