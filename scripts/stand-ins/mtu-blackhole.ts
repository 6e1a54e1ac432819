// Local stand-in for a path with a path-MTU black hole: a TCP relay in front of one agent that
// passes requests and small answers, but once an answer grows past `limit` bytes, forwards only
// that much of it and silently drops the rest, as a path drops full-size packets when the ICMP
// "fragmentation needed" never comes back. Loopback has no MTU to get wrong, so this plays it.

import { createSocket, type Socket as UdpSocket } from 'node:dgram'
import { connect, createServer, type Socket } from 'node:net'

export interface BlackHolePath {
  address: string
  /** Answers cut short so far. */
  stalled: () => number
  close: () => Promise<void>
}

export async function startMtuBlackHole (host: string, port: number, target: { host: string, port: number }, limit: number): Promise<BlackHolePath> {
  const sockets = new Set<Socket>()
  let stalled = 0
  const server = createServer(client => {
    const upstream = connect(target.port, target.host)
    sockets.add(client).add(upstream)
    // Bytes of the answer to the latest request; a new request starts a new answer.
    let answer = 0
    let dropping = false
    client.on('data', chunk => {
      answer = 0
      upstream.write(chunk)
    })
    upstream.on('data', (chunk: Buffer) => {
      if (dropping) return
      if (answer + chunk.length <= limit) {
        answer += chunk.length
        client.write(chunk)
        return
      }
      client.write(chunk.subarray(0, limit - answer))
      answer = limit
      dropping = true
      stalled++
    })
    const done = (): void => {
      client.destroy()
      upstream.destroy()
      sockets.delete(client)
      sockets.delete(upstream)
    }
    client.on('error', done).on('close', done)
    // In-order delivery: behind the lost segments, the server's FIN never reaches the client either.
    upstream.on('error', done).on('close', () => { if (!dropping) done() })
  })
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, host, resolve))
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
  await new Promise<void>((resolve, reject) => { relay.once('error', reject); relay.bind(port, host, () => { relay.off('error', reject); resolve() }) })
  return {
    address: `${host}:${port}`,
    stalled: () => stalled,
    close: async () => {
      for (const s of sockets) s.destroy()
      for (const u of upstreams.values()) u.close()
      upstreams.clear()
      relay.close()
      await new Promise(resolve => server.close(resolve))
    }
  }
}
