// The one TCP forwarder behind every loopback stand-in that sits between two peers (the Service VIP,
// the path-MTU black hole, the suites' relays). It closes connections the way a NAT or proxy on the
// path would, so what a probe sees is what its peer did, not an artefact of the forwarder:
//   - a FIN is passed on as a FIN, after the data before it (half-close: the other direction goes on);
//   - a RST is passed on as a RST (resetAndDestroy), discarding what was still queued, as TCP does;
//   - any other error on one side (a refused upstream, EPIPE) closes the other side;
//   - a connection both peers have finished is closed, so no socket outlives its peers.

import { connect, createServer, type Server, type Socket } from 'node:net'
import type { Transform } from 'node:stream'

export interface ForwardTarget {
  host: string
  port: number
}

/** Optional rewriting of one connection's bytes, per direction (e.g. a path that drops answers). */
export interface ForwardShape {
  /** Client → upstream. */
  request?: Transform
  /**
   * Upstream → client. A transform that never calls its flush callback withholds the upstream's FIN
   * (a black hole swallows it with the data); the client is then ended once its own peer has ended.
   */
  answer?: Transform
}

/** Errors that mean the peer reset the connection: passed on as a reset. */
const RESET = new Set(['ECONNRESET', 'EPIPE'])

function isReset (err: Error): boolean {
  return RESET.has((err as NodeJS.ErrnoException).code ?? '')
}

/**
 * Joins `client` and `upstream` (both created with `allowHalfOpen: true`, so that a FIN ends only one
 * direction) until both have closed. Data flows with backpressure in both directions, through
 * `shape`'s transforms when given. Never throws; errors end the pair as described at the top.
 */
export function forward (client: Socket, upstream: Socket, shape: ForwardShape = {}): void {
  // pipe() passes the FIN on as end() once the data before it is written, and applies backpressure.
  if (shape.request === undefined) client.pipe(upstream)
  else client.pipe(shape.request).pipe(upstream)
  if (shape.answer === undefined) upstream.pipe(client)
  else upstream.pipe(shape.answer).pipe(client)
  const pass = (to: Socket) => (err: Error): void => {
    shape.request?.destroy()
    shape.answer?.destroy()
    if (to.destroyed) return
    // A reset discards what is queued on the other side too; anything else closes it in order.
    if (isReset(err)) to.resetAndDestroy()
    else to.destroy()
  }
  client.on('error', pass(upstream))
  upstream.on('error', pass(client))
  // Both peers sent their FIN: nothing more can arrive from either, so end both sides (a no-op where
  // the FIN was already passed on; where a shape withheld it, it goes now). Each closes once flushed.
  const ended = (): void => {
    if (!client.readableEnded || !upstream.readableEnded) return
    if (!client.destroyed) client.end()
    if (!upstream.destroyed) upstream.end()
  }
  client.on('end', ended)
  upstream.on('end', ended)
  // A side torn down without an error or a FIN (destroy() by its owner) takes the other one with it.
  const gone = (self: Socket, other: Socket) => (): void => {
    if (!other.destroyed && self.errored === null && !self.readableEnded) other.destroy()
  }
  client.on('close', gone(client, upstream))
  upstream.on('close', gone(upstream, client))
}

export interface TcpForwarderOptions {
  /** Addresses to listen on; the first must bind, the others are skipped when they cannot (e.g. ::1 without IPv6). */
  hosts: readonly string[]
  port: number
  /** The upstream for each new connection, read per connection; null closes the client at once. */
  target: () => ForwardTarget | null
  /** Per-connection rewriting; see ForwardShape. */
  shape?: () => ForwardShape
}

export interface TcpForwarder {
  /** Addresses actually listened on, as `host:port` (`[v6]:port`). */
  listening: string[]
  /** Sockets open now, both sides of every connection: 0 once every connection has closed. */
  openSockets: () => number
  /** Stops listening and destroys every open connection (peers see them close). */
  close: () => Promise<void>
}

/**
 * Listens on every host of `options.hosts` at `options.port` and forwards each accepted connection
 * to `options.target()` with forward()'s close semantics. Rejects when the first host cannot be bound.
 */
export async function startTcpForwarder (options: TcpForwarderOptions): Promise<TcpForwarder> {
  const sockets = new Set<Socket>()
  const track = (socket: Socket): void => {
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
  }
  const handle = (client: Socket): void => {
    track(client)
    const target = options.target()
    if (target === null) {
      client.destroy()
      return
    }
    // No Nagle delay on either side: a NAT on the path does not hold small segments back.
    const upstream = connect({ host: target.host, port: target.port, allowHalfOpen: true, noDelay: true })
    track(upstream)
    forward(client, upstream, options.shape?.())
  }
  const servers: Server[] = []
  const listening: string[] = []
  const closeServers = (): Promise<unknown> => Promise.all(servers.map(s => new Promise(resolve => s.close(resolve))))
  for (const host of options.hosts) {
    const server = createServer({ allowHalfOpen: true, noDelay: true }, handle)
    try {
      await new Promise<void>((resolve, reject) => server.once('error', reject).listen(options.port, host, resolve))
    } catch (err) {
      if (host !== options.hosts[0]) continue
      await closeServers()
      throw err
    }
    servers.push(server)
    const address = server.address()
    const port = typeof address === 'object' && address !== null ? address.port : options.port
    listening.push(`${host.includes(':') ? `[${host}]` : host}:${port}`)
  }
  return {
    listening,
    openSockets: () => sockets.size,
    close: async () => {
      const closed = closeServers()
      for (const s of sockets) s.destroy()
      await closed
    }
  }
}
