// Loopback peers that misbehave on purpose: one that never completes a TCP handshake, one that
// accepts and then stays silent, one that resets. Each is a real socket, so the kernel does the failing.

import { spawn, type ChildProcess } from 'node:child_process'
import { connect, createServer, type Server, type Socket } from 'node:net'
import { once } from 'node:events'

export interface Peer {
  host: string
  port: number
  close: () => Promise<void>
}

// Listens with the smallest backlog Node allows and reports its port; the parent then stops it.
const LISTENER = `
const server = require('node:net').createServer()
server.listen({ host: process.argv[1], port: 0, backlog: 1 }, () => process.stdout.write(server.address().port + '\\n'))
`

/**
 * A port whose SYNs go unanswered: a listener in a stopped child process, its accept queue filled
 * by a few connections nobody accepts. Linux then drops further SYNs, so a connect hangs until the
 * caller gives up, as it would behind a black-holing network policy.
 */
export async function startUnansweredPort (host = '127.0.0.1'): Promise<Peer> {
  const child: ChildProcess = spawn(process.execPath, ['-e', LISTENER, host], { stdio: ['ignore', 'pipe', 'inherit'] })
  const [chunk] = await once(child.stdout!, 'data') as [Buffer]
  const port = Number(chunk.toString().trim())
  child.kill('SIGSTOP')
  const fillers: Socket[] = []
  const established: Array<Promise<unknown>> = []
  for (let i = 0; i < 4; i++) {
    const socket = connect({ host, port })
    socket.on('error', () => {})
    fillers.push(socket)
    established.push(once(socket, 'connect'))
  }
  // The queue holds backlog + 1 connections; once those are in, the rest of the fillers are stuck in SYN_SENT.
  await Promise.all(established.slice(0, 2))
  return {
    host,
    port,
    close: async () => {
      for (const socket of fillers) socket.destroy()
      const exited = once(child, 'exit')
      child.kill('SIGKILL')
      await exited
    }
  }
}

async function listen (server: Server, host: string): Promise<Peer> {
  const sockets = new Set<Socket>()
  server.on('connection', socket => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => {})
  })
  server.listen({ host, port: 0 })
  await once(server, 'listening')
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('no TCP address')
  return {
    host,
    port: address.port,
    close: async () => {
      for (const socket of sockets) socket.destroy()
      server.close()
      await once(server, 'close')
    }
  }
}

/** Accepts connections and never writes a byte: a peer that hangs after the handshake. */
export function startSilentPeer (host = '127.0.0.1'): Promise<Peer> {
  return listen(createServer(), host)
}

/** Accepts, then resets the connection once the client has sent something. */
export function startResettingPeer (host = '127.0.0.1'): Promise<Peer> {
  return listen(createServer(socket => { socket.once('data', () => socket.resetAndDestroy()) }), host)
}

/** A port that was just free: nothing listens there, so a SYN is answered with RST. */
export async function closedPort (host = '127.0.0.1'): Promise<number> {
  const peer = await startSilentPeer(host)
  await peer.close()
  return peer.port
}

export interface EndlessPeer extends Peer {
  /** Bytes handed to the kernel so far, over every connection. */
  written: () => number
  /** Connections the client closed while the peer was still writing. */
  closedByClient: () => number
}

/**
 * Answers every connection with `head` (e.g. `HTTP/1.1 200 OK\r\n\r\n`, or a DNS length prefix) and
 * then `block` (16 KiB of `x` by default; e.g. one HTTP chunk) again and again, as fast as the client
 * reads, until the client closes: a recycled pod IP now owned by something that streams. `written`
 * counts what left, so a test can show the client stopped reading.
 */
export async function startEndlessPeer (head: string | Buffer, options: { host?: string, block?: Buffer, afterRequest?: boolean } = {}): Promise<EndlessPeer> {
  let written = 0
  let closedByClient = 0
  const block = options.block ?? Buffer.alloc(16 * 1024, 'x')
  const server = createServer(socket => {
    let stopped = false
    const pump = (): void => {
      while (!stopped) {
        written += block.length
        if (!socket.write(block)) {
          socket.once('drain', pump)
          return
        }
      }
    }
    const stop = (): void => {
      if (!stopped) closedByClient++
      stopped = true
    }
    socket.once('close', stop)
    socket.once('end', () => { stop(); socket.destroy() })
    socket.on('error', stop)
    const begin = (): void => {
      written += Buffer.byteLength(head)
      socket.write(head)
      pump()
    }
    if (options.afterRequest === false) begin()
    else socket.once('data', begin)
  })
  const peer = await listen(server, options.host ?? '127.0.0.1')
  return { ...peer, written: () => written, closedByClient: () => closedByClient }
}
