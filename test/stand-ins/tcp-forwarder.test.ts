// The stand-ins' TCP forwarder under hundreds of concurrent connections on loopback: every answer
// arrives whole however slowly its client reads, a FIN ends one direction only, a reset arrives as a
// reset, a refused upstream closes the client, and no socket outlives its connection.

import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net'
import t, { type Test } from 'tap'
import { startTcpForwarder, type TcpForwarder } from '../../scripts/stand-ins/tcp-forwarder.ts'
import { until } from '../helpers/wait.ts'

const HOST = '127.0.0.1'

/** Byte `offset` of answer `id`: a pattern that differs per answer, so a lost or misplaced chunk shows. */
function pattern (id: number, size: number): Buffer {
  const data = Buffer.allocUnsafe(size)
  for (let i = 0; i < size; i++) data[i] = (i * 7 + id * 13) & 0xff
  return data
}

/**
 * The upstream: reads one line `<mode> <id> <size>` and then, by mode,
 *   answer: writes the pattern and ends (FIN), closing at once once it is written, as node:http does;
 *   half:   waits for the client's FIN, then answers `<bytes received>\n` and the pattern;
 *   reset:  writes the pattern and resets the connection once it is written.
 */
async function startUpstream (t: Test): Promise<{ port: number, open: () => number, resets: () => number }> {
  const sockets = new Set<Socket>()
  let resets = 0
  const server: Server = createServer({ allowHalfOpen: true }, socket => {
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
    socket.on('error', err => { if ((err as NodeJS.ErrnoException).code === 'ECONNRESET') resets++ })
    let head = ''
    let received = 0
    let mode: string | undefined
    let id = 0
    let size = 0
    socket.on('data', (chunk: Buffer) => {
      received += chunk.length
      if (mode !== undefined) return
      head += chunk.toString('latin1')
      const eol = head.indexOf('\n')
      if (eol < 0) return
      const [m, i, s] = head.slice(0, eol).split(' ')
      mode = m
      id = Number(i)
      size = Number(s)
      if (mode === 'answer') socket.end(pattern(id, size), () => socket.destroy())
      if (mode === 'reset') socket.write(pattern(id, size), () => socket.resetAndDestroy())
    })
    socket.on('end', () => {
      if (mode === 'half') socket.end(Buffer.concat([Buffer.from(`${received}\n`), pattern(id, size)]))
    })
  })
  await new Promise<void>(resolve => server.listen(0, HOST, resolve))
  t.teardown(() => new Promise(resolve => {
    for (const s of sockets) s.destroy()
    server.close(resolve)
  }))
  return { port: (server.address() as AddressInfo).port, open: () => sockets.size, resets: () => resets }
}

interface Outcome {
  data: Buffer
  /** How the connection ended for the client: `end` (a FIN after the data) or the error's code. */
  how: string
}

/** One client: sends `request` (then a FIN when `halfClose`), reads to the end, pausing after each chunk when `slow`. */
function exchange (port: number, request: string, options: { halfClose?: boolean, slow?: boolean } = {}): Promise<Outcome> {
  return new Promise(resolve => {
    const socket = connect({ host: HOST, port, allowHalfOpen: true })
    const chunks: Buffer[] = []
    let settled = false
    const settle = (how: string): void => {
      if (settled) return
      settled = true
      socket.destroy()
      resolve({ data: Buffer.concat(chunks), how })
    }
    socket.on('connect', () => {
      if (options.halfClose === true) socket.end(request)
      else socket.write(request)
    })
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk)
      // A slow reader: the forwarder's buffers toward it fill, so a close must wait for them to drain.
      if (options.slow === true) {
        socket.pause()
        setTimeout(() => socket.resume(), 2)
      }
    })
    socket.on('end', () => settle('end'))
    socket.on('error', err => settle((err as NodeJS.ErrnoException).code ?? err.message))
  })
}

async function forwarderTo (t: Test, port: number): Promise<{ forwarder: TcpForwarder, port: number }> {
  const forwarder = await startTcpForwarder({ hosts: [HOST], port: 0, target: () => ({ host: HOST, port }) })
  t.teardown(forwarder.close)
  return { forwarder, port: Number(forwarder.listening[0]!.split(':').at(-1)) }
}

t.test('hundreds of concurrent answers arrive whole, slow readers included, and no socket is left', async t => {
  const upstream = await startUpstream(t)
  const { forwarder, port } = await forwarderTo(t, upstream.port)
  const CONNECTIONS = 300
  // 16 KiB to 1 MiB: past the socket buffers, so the forwarder holds data when the upstream closes.
  const sizes = Array.from({ length: CONNECTIONS }, (_, i) => 16_384 + ((i * 104_729) % (1 << 20)))
  const outcomes = await Promise.all(sizes.map((size, i) => exchange(port, `answer ${i} ${size}\n`, { slow: i % 4 === 0 })))
  const broken = outcomes.flatMap((o, i) => o.how === 'end' && o.data.equals(pattern(i, sizes[i]!)) ? [] : [{ i, how: o.how, got: o.data.length, want: sizes[i] }])
  t.same(broken, [], `all ${CONNECTIONS} answers complete and in order, each ended by a FIN`)
  await until('every forwarded socket closed', async () => forwarder.openSockets() === 0 && upstream.open() === 0 ? true : undefined, 5000, 20)
  t.pass('no socket left open on either side')
})

t.test('a FIN ends one direction only: the answer still comes after the client half-closes', async t => {
  const upstream = await startUpstream(t)
  const { forwarder, port } = await forwarderTo(t, upstream.port)
  const sizes = Array.from({ length: 200 }, (_, i) => 1000 + i * 997)
  const outcomes = await Promise.all(sizes.map((size, i) => exchange(port, `half ${i} ${size}\n`, { halfClose: true, slow: i % 5 === 0 })))
  const broken = outcomes.flatMap((o, i) => {
    const request = Buffer.byteLength(`half ${i} ${sizes[i]}\n`)
    const want = Buffer.concat([Buffer.from(`${request}\n`), pattern(i, sizes[i]!)])
    return o.how === 'end' && o.data.equals(want) ? [] : [{ i, how: o.how, got: o.data.length, want: want.length }]
  })
  t.same(broken, [], 'the upstream saw each FIN after the whole request, and each answer arrived whole after it')
  await until('every forwarded socket closed', async () => forwarder.openSockets() === 0 && upstream.open() === 0 ? true : undefined, 5000, 20)
})

t.test('a reset from the upstream reaches the client as a reset, never as a clean end', async t => {
  const upstream = await startUpstream(t)
  const { forwarder, port } = await forwarderTo(t, upstream.port)
  const outcomes = await Promise.all(Array.from({ length: 100 }, (_, i) => exchange(port, `reset ${i} ${i % 2 === 0 ? 100 : 200_000}\n`, { slow: i % 3 === 0 })))
  t.same([...new Set(outcomes.map(o => o.how))], ['ECONNRESET'], 'every client saw ECONNRESET')
  await until('every forwarded socket closed', async () => forwarder.openSockets() === 0 && upstream.open() === 0 ? true : undefined, 5000, 20)
})

t.test('a reset from the client reaches the upstream as a reset', async t => {
  const upstream = await startUpstream(t)
  const { forwarder, port } = await forwarderTo(t, upstream.port)
  const clients = await Promise.all(Array.from({ length: 50 }, () => new Promise<Socket>(resolve => {
    const socket = connect({ host: HOST, port }, () => resolve(socket))
    socket.on('error', () => {})
  })))
  await until('the upstream has every connection', async () => upstream.open() === 50 ? true : undefined, 5000, 20)
  for (const c of clients) c.resetAndDestroy()
  await until('the upstream saw 50 resets', async () => upstream.resets() === 50 ? true : undefined, 5000, 20)
  t.equal(upstream.resets(), 50)
  await until('every forwarded socket closed', async () => forwarder.openSockets() === 0 && upstream.open() === 0 ? true : undefined, 5000, 20)
})

t.test('a refused upstream closes the client without data; no target closes it at once', async t => {
  const closed = createServer()
  await new Promise<void>(resolve => closed.listen(0, HOST, resolve))
  const deadPort = (closed.address() as AddressInfo).port
  await new Promise(resolve => closed.close(resolve))
  const { forwarder, port } = await forwarderTo(t, deadPort)
  // No request is sent: with unread bytes the kernel would turn the client's close into a reset.
  const outcomes = await Promise.all(Array.from({ length: 50 }, () => exchange(port, '')))
  t.same(outcomes.map(o => `${o.how}:${o.data.length}`), Array(50).fill('end:0'), 'each client saw a FIN and no data')
  await until('every forwarded socket closed', async () => forwarder.openSockets() === 0 ? true : undefined, 5000, 20)
  const none = await startTcpForwarder({ hosts: [HOST], port: 0, target: () => null })
  t.teardown(none.close)
  t.match(await exchange(Number(none.listening[0]!.split(':').at(-1)), ''), { how: 'end', data: Buffer.alloc(0) }, 'no target: a FIN at once')
})

t.test('close() refuses new connections and closes the open ones', async t => {
  const upstream = await startUpstream(t)
  const { forwarder, port } = await forwarderTo(t, upstream.port)
  const pending = exchange(port, 'half 1 10\n')
  await until('the upstream has the connection', async () => upstream.open() === 1 ? true : undefined, 5000, 20)
  await forwarder.close()
  t.equal((await pending).how, 'end', 'the open connection is closed')
  t.equal((await exchange(port, 'answer 1 10\n')).how, 'ECONNREFUSED', 'a new one is refused')
  t.equal(forwarder.openSockets(), 0)
})

t.test('only the first host must bind', async t => {
  const forwarder = await startTcpForwarder({ hosts: [HOST, '192.0.2.1'], port: 0, target: () => null })
  t.teardown(forwarder.close)
  t.equal(forwarder.listening.length, 1, 'an address the machine does not have is skipped')
  await t.rejects(startTcpForwarder({ hosts: ['192.0.2.1', HOST], port: 0, target: () => null }), { code: 'EADDRNOTAVAIL' })
})
