// Every read from a peer's /ping is bounded: the pod, service and mtu probes against peers that never
// stop talking (an endless body, endless headers, a chunked stream), and the caps against the largest
// answer the protocol allows.

import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import { pino } from 'pino'
import { helloSchema } from '@pingfleet/protocol'
import { MAX_PING_BODY_BYTES, MAX_PING_HEAD_BYTES, parseAnswer } from '../src/ping-client.ts'
import { createMtuProbe, mtuTarget } from '../src/probes/mtu.ts'
import { createPodProbe } from '../src/probes/pod.ts'
import { createServiceProbe, serviceTarget } from '../src/probes/service.ts'
import { LookupPool } from '../src/lookup-pool.ts'
import { buildServer, MAX_PING_SIZE, type Identity } from '../src/server.ts'
import { startEndlessPeer, type EndlessPeer } from '../../test/helpers/slow-peer.ts'

const pod = createPodProbe({ timeoutMs: 5000 })
const service = createServiceProbe(new LookupPool(), { timeoutMs: 5000 })
const mtu = createMtuProbe({ timeoutMs: 5000 })
const signal = (): AbortSignal => AbortSignal.timeout(10_000)

// What the peer may have put on the wire before the client closed: the cap, plus what the kernel's
// socket buffers on both ends hold (loopback autotuning reaches a few MiB each). An endless peer that
// was not stopped writes gigabytes in the 10 s the probe would otherwise wait.
const KERNEL_SLACK = 32 * 1024 * 1024

async function endless (t: Test, head: string): Promise<EndlessPeer> {
  const peer = await startEndlessPeer(head)
  t.teardown(peer.close)
  return peer
}

async function stopped (t: Test, peer: EndlessPeer, cap: number): Promise<void> {
  // The probe destroyed its socket; the peer sees the close once its pending write fails.
  for (let i = 0; i < 500 && peer.closedByClient() === 0; i++) await new Promise(resolve => setTimeout(resolve, 10))
  t.equal(peer.closedByClient(), 1, 'the client closed the connection while the peer was still sending')
  t.ok(peer.written() < cap + KERNEL_SLACK, `reading stopped: the peer got ${peer.written()} bytes out`)
}

const OK_HEAD = 'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\r\n'

t.test('the largest identity the protocol accepts fits the /ping cap, with margin', async t => {
  const { labels } = helloSchema.properties
  const name = 'n'.repeat(253)
  const identity: Identity = { node: name, pod: name, labels: {} }
  for (let i = 0; i < labels.maxProperties; i++) {
    identity.labels[`${String(i).padStart(3, '0')}${'k'.repeat(labels.propertyNames.maxLength - 3)}`] = 'v'.repeat(labels.additionalProperties.maxLength)
  }
  const size = Buffer.byteLength(JSON.stringify(identity))
  t.ok(size < MAX_PING_BODY_BYTES * 0.8, `${size} bytes is well under the ${MAX_PING_BODY_BYTES}-byte cap`)

  // And a real agent server answering it passes the pod probe.
  const server = buildServer({ identity: () => identity, status: () => { throw new Error('unused') }, draining: () => false }, pino({ level: 'silent' }))
  await server.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(() => server.close())
  const port = (server.server.address() as AddressInfo).port
  t.match(await pod({ kind: 'pod', id: name, podIp: '127.0.0.1', port }, signal()), { ok: true })
  t.match(await mtu(mtuTarget({ node: name, podIp: '127.0.0.1', port }, MAX_PING_SIZE), signal()), { ok: true, detail: { received: MAX_PING_SIZE } })
})

for (const [kind, run] of [
  ['pod', (port: number) => pod({ kind: 'pod', id: 'n2', podIp: '127.0.0.1', port }, signal())],
  ['service', (port: number) => service(serviceTarget('127.0.0.1', port), signal())]
] as const) {
  t.test(`${kind}: an endless body fails as BODY_TOO_LARGE and reading stops`, async t => {
    const peer = await endless(t, OK_HEAD)
    t.match(await run(peer.port), { ok: false, reason: 'BAD_RESPONSE', raw: 'BODY_TOO_LARGE' })
    await stopped(t, peer, MAX_PING_BODY_BYTES)
  })

  t.test(`${kind}: endless headers fail as HEADERS_TOO_LARGE and reading stops`, async t => {
    const peer = await endless(t, 'HTTP/1.1 200 OK\r\nx-endless: ')
    t.match(await run(peer.port), { ok: false, reason: 'BAD_RESPONSE', raw: 'HEADERS_TOO_LARGE' })
    await stopped(t, peer, MAX_PING_HEAD_BYTES)
  })
}

t.test('pod: a body at the cap passes, one byte more fails', async t => {
  const { createServer } = await import('node:http')
  let size = MAX_PING_BODY_BYTES
  const server = createServer((_req, res) => {
    const base = JSON.stringify({ node: 'n2', pad: '' }).length
    res.end(JSON.stringify({ node: 'n2', pad: 'x'.repeat(size - base) }))
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise(resolve => server.close(resolve)))
  const port = (server.address() as AddressInfo).port
  t.match(await pod({ kind: 'pod', id: 'n2', podIp: '127.0.0.1', port }, signal()), { ok: true })
  size = MAX_PING_BODY_BYTES + 1
  t.match(await pod({ kind: 'pod', id: 'n2', podIp: '127.0.0.1', port }, signal()), { ok: false, reason: 'BAD_RESPONSE', raw: 'BODY_TOO_LARGE' })
})

t.test('mtu: an endless large answer fails as BODY_TOO_LARGE, not as a black hole, and reading stops', async t => {
  // A small answer that names the peer, then an endless one for the large request.
  const { createServer } = await import('node:http')
  let written = 0
  let closed = 0
  const server = createServer((req, res) => {
    if (!req.url!.includes('size=')) {
      res.end(JSON.stringify({ node: 'n2', pod: 'n2', labels: {} }))
      return
    }
    res.writeHead(200, { 'content-type': 'application/json' })
    const block = Buffer.alloc(16 * 1024, 'x')
    let done = false
    res.once('close', () => { done = true; closed++ })
    const pump = (): void => {
      while (!done) {
        written += block.length
        if (!res.write(block)) { res.once('drain', pump); return }
      }
    }
    pump()
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => {
    server.closeAllConnections()
    await new Promise(resolve => server.close(resolve))
  })
  const port = (server.address() as AddressInfo).port
  const result = await mtu(mtuTarget({ node: 'n2', podIp: '127.0.0.1', port }, 8500), signal())
  t.match(result, { ok: false, reason: 'BAD_RESPONSE', raw: 'BODY_TOO_LARGE' })
  t.ok(Number(result.detail?.received) <= 8500 + MAX_PING_BODY_BYTES + 64 * 1024, 'received at most the cap plus one chunk')
  for (let i = 0; i < 500 && closed === 0; i++) await new Promise(resolve => setTimeout(resolve, 10))
  t.equal(closed, 1, 'the connection was closed under the streaming peer')
  t.ok(written < 8500 + MAX_PING_BODY_BYTES + KERNEL_SLACK, `the peer got ${written} bytes out`)
})

t.test('mtu: an endless small answer fails as BODY_TOO_LARGE', async t => {
  const peer = await endless(t, OK_HEAD)
  t.match(await mtu(mtuTarget({ node: 'n2', podIp: '127.0.0.1', port: peer.port }, 8500), signal()), { ok: false, reason: 'BAD_RESPONSE', raw: 'BODY_TOO_LARGE' })
  await stopped(t, peer, MAX_PING_BODY_BYTES)
})

t.test('mtu: endless headers fail as HEADERS_TOO_LARGE', async t => {
  const peer = await endless(t, 'HTTP/1.1 200 OK\r\nx-endless: ')
  t.match(await mtu(mtuTarget({ node: 'n2', podIp: '127.0.0.1', port: peer.port }, 8500), signal()), { ok: false, reason: 'BAD_RESPONSE', raw: 'HEADERS_TOO_LARGE' })
  await stopped(t, peer, MAX_PING_HEAD_BYTES)
})

t.test('parseAnswer still reads complete answers', async t => {
  t.same(parseAnswer(Buffer.from('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok')), { status: 200, body: 'ok' })
})
