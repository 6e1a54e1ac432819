// The same event gets the same reason and raw code from every probe kind that reads an answer, proven
// against real sockets on loopback: a peer that resets (RST) must read differently from one that
// closes early (FIN), in the head and in the body, in the TLS handshake, and over DNS on TCP.

import { createServer, type AddressInfo, type Socket } from 'node:net'
import t, { type Test } from 'tap'
import { LookupPool } from '../../src/lookup-pool.ts'
import type { Probe, ProbeResult, Target } from '../../src/probe.ts'
import { dnsWireProbe, dnsWireTarget } from '../../src/probes/dns-wire.ts'
import { createHttpProbe, httpTarget } from '../../src/probes/http.ts'
import { createMtuProbe, mtuTarget } from '../../src/probes/mtu.ts'
import { createPodProbe } from '../../src/probes/pod.ts'
import { createServiceProbe, serviceTarget } from '../../src/probes/service.ts'

type Mode = 'rst-head' | 'fin-head' | 'rst-body' | 'fin-body' | 'status-503'

const HEAD = 'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"node":"n2"'

/** A raw TCP peer: once the first bytes of a request arrive, it misbehaves as `mode` says. */
async function rawPeer (t: Test, mode: Mode | 'rst' | 'fin'): Promise<number> {
  const sockets = new Set<Socket>()
  const server = createServer(socket => {
    sockets.add(socket)
    socket.on('error', () => {})
    socket.once('data', () => {
      switch (mode) {
        case 'rst':
        case 'rst-head':
          socket.resetAndDestroy()
          break
        case 'fin':
        case 'fin-head':
          socket.end()
          break
        // Some of the body, then the close: the head has been read by the time it comes.
        case 'rst-body':
          socket.write(HEAD, () => setTimeout(() => socket.resetAndDestroy(), 20))
          break
        case 'fin-body':
          socket.write(HEAD, () => setTimeout(() => socket.end(), 20))
          break
        case 'status-503':
          socket.end('HTTP/1.1 503 Service Unavailable\r\nContent-Length: 2\r\nConnection: close\r\n\r\nno')
          break
      }
    })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => {
    for (const socket of sockets) socket.destroy()
    return new Promise(resolve => server.close(resolve))
  })
  return (server.address() as AddressInfo).port
}

const pool = new LookupPool()
const kinds: Record<string, { probe: Probe, target: (port: number) => Target }> = {
  pod: { probe: createPodProbe({ timeoutMs: 2000 }) as Probe, target: port => ({ kind: 'pod', id: 'n2', podIp: '127.0.0.1', port }) as Target },
  service: { probe: createServiceProbe(pool, { timeoutMs: 2000 }) as Probe, target: port => serviceTarget('127.0.0.1', port) },
  mtu: { probe: createMtuProbe({ timeoutMs: 2000 }) as Probe, target: port => mtuTarget({ node: 'n2', podIp: '127.0.0.1', port }, 1400) },
  http: { probe: createHttpProbe(pool) as Probe, target: port => httpTarget(`http://127.0.0.1:${port}/`) }
}

const expected: Record<Mode, { reason: string, raw: string }> = {
  'rst-head': { reason: 'ECONNRESET', raw: 'ECONNRESET' },
  'fin-head': { reason: 'ECONNRESET', raw: 'EOF' },
  'rst-body': { reason: 'ECONNRESET', raw: 'ECONNRESET' },
  'fin-body': { reason: 'ECONNRESET', raw: 'EOF' },
  'status-503': { reason: 'HTTP_5XX', raw: 'HTTP_503' }
}

for (const [kind, { probe, target }] of Object.entries(kinds)) {
  t.test(`${kind}: a reset, an early close and a 503 read the same as from every other probe kind`, async t => {
    for (const [mode, want] of Object.entries(expected) as Array<[Mode, { reason: string, raw: string }]>) {
      const port = await rawPeer(t, mode)
      const result: ProbeResult = await probe(target(port), AbortSignal.timeout(5000))
      t.match(result, { ok: false, ...want }, mode)
    }
  })
}

t.test('http over TLS: a reset and an early close in the handshake are told apart too', async t => {
  const probe = createHttpProbe(pool)
  t.match(await probe(httpTarget(`https://127.0.0.1:${await rawPeer(t, 'rst')}/`), AbortSignal.timeout(5000)), { ok: false, reason: 'ECONNRESET', raw: 'ECONNRESET' })
  t.match(await probe(httpTarget(`https://127.0.0.1:${await rawPeer(t, 'fin')}/`), AbortSignal.timeout(5000)), { ok: false, reason: 'ECONNRESET', raw: 'EOF' })
})

t.test('dns-wire over TCP: a reset and an early close are told apart too', async t => {
  const target = (port: number) => dnsWireTarget({ name: 'x.example', type: 'A', server: '127.0.0.1', port, transport: 'tcp' })
  t.match(await dnsWireProbe(target(await rawPeer(t, 'rst')), AbortSignal.timeout(5000)), { ok: false, reason: 'ECONNRESET', raw: 'ECONNRESET' })
  t.match(await dnsWireProbe(target(await rawPeer(t, 'fin')), AbortSignal.timeout(5000)), { ok: false, reason: 'ECONNRESET', raw: 'EOF' })
})
