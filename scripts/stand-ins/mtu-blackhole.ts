// Local stand-in for a path with a path-MTU black hole: a TCP relay in front of one agent that
// passes requests and small answers, but once an answer grows past `limit` bytes, forwards only
// that much of it and silently drops the rest, as a path drops full-size packets when the ICMP
// "fragmentation needed" never comes back. Loopback has no MTU to get wrong, so this plays it.

import { createSocket, type Socket as UdpSocket } from 'node:dgram'
import { Transform } from 'node:stream'
import { startTcpForwarder, type ForwardShape } from './tcp-forwarder.ts'

export interface BlackHolePath {
  address: string
  /** Answers cut short so far. */
  stalled: () => number
  close: () => Promise<void>
}

/**
 * Listens on `host:port` (TCP and UDP) in front of `target`. TCP answers pass until one grows past
 * `limit` bytes: then only its first `limit` bytes arrive, and neither the rest nor the target's FIN
 * ever does (the client gives up on its own). UDP datagrams are relayed both ways unharmed.
 */
export async function startMtuBlackHole (host: string, port: number, target: { host: string, port: number }, limit: number): Promise<BlackHolePath> {
  let stalled = 0
  const shape = (): ForwardShape => {
    // Bytes of the answer to the latest request; a new request starts a new answer.
    let answer = 0
    let dropping = false
    return {
      request: new Transform({
        transform (chunk: Buffer, _encoding, done) {
          answer = 0
          done(null, chunk)
        }
      }),
      answer: new Transform({
        transform (chunk: Buffer, _encoding, done) {
          if (dropping) return done()
          if (answer + chunk.length <= limit) {
            answer += chunk.length
            return done(null, chunk)
          }
          const head = chunk.subarray(0, limit - answer)
          answer = limit
          dropping = true
          stalled++
          done(null, head)
        },
        // In-order delivery: behind the lost segments, the server's FIN never reaches the client either.
        flush (done) {
          if (!dropping) done()
        }
      })
    }
  }
  const tcp = await startTcpForwarder({ hosts: [host], port, target: () => target, shape })
  // Small datagrams cross such a path unharmed: udp probes' trains are relayed both ways, one upstream
  // socket per client address, so the agent's echo answers the relay and the relay the client.
  const relay = createSocket('udp4')
  const upstreams = new Map<string, UdpSocket>()
  relay.on('message', (data, from) => {
    const key = `${from.address}:${from.port}`
    let upstream = upstreams.get(key)
    if (upstream === undefined) {
      const socket = upstream = createSocket('udp4')
      upstreams.set(key, socket)
      socket.on('message', answer => relay.send(answer, from.port, from.address))
      socket.on('error', () => { socket.close(); upstreams.delete(key) })
      // Probe sockets live for one train: forget the client once it has been quiet for a while.
      const idle = (): void => { socket.close(); upstreams.delete(key) }
      let timer = setTimeout(idle, 10_000)
      socket.on('message', () => { clearTimeout(timer); timer = setTimeout(idle, 10_000) })
    }
    upstream.send(data, target.port, target.host)
  })
  relay.on('error', () => {})
  try {
    await new Promise<void>((resolve, reject) => { relay.once('error', reject); relay.bind(port, host, () => { relay.off('error', reject); resolve() }) })
  } catch (err) {
    await tcp.close()
    throw err
  }
  return {
    address: `${host}:${port}`,
    stalled: () => stalled,
    close: async () => {
      for (const u of upstreams.values()) u.close()
      upstreams.clear()
      relay.close()
      await tcp.close()
    }
  }
}
