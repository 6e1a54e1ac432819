// Local stand-in for a ClusterIP Service: a TCP forwarder on a "VIP" that hands each new
// connection to the next backend in turn, as kube-proxy does, so service probes reach every agent.

import { connect, createServer, type Server, type Socket } from 'node:net'

export interface Backend {
  host: string
  port: number
}

export interface ServiceVip {
  /** Addresses actually listened on, as `host:port`. */
  listening: string[]
  /** Connections handed to each backend, keyed `host:port`. */
  forwarded: Map<string, number>
  close: () => Promise<void>
}

/**
 * Listens on every `host` of `hosts` at `port` (hosts that cannot be bound, e.g. ::1 without IPv6,
 * are skipped, but at least one must work) and forwards round-robin over `backends()`, which is read
 * per connection so the backend list can change.
 */
export async function startServiceVip (hosts: readonly string[], port: number, backends: () => readonly Backend[]): Promise<ServiceVip> {
  const sockets = new Set<Socket>()
  const forwarded = new Map<string, number>()
  let next = 0
  const servers: Server[] = []
  const listening: string[] = []
  const handle = (client: Socket): void => {
    const list = backends()
    if (list.length === 0) {
      client.destroy()
      return
    }
    const backend = list[next++ % list.length]!
    const key = `${backend.host}:${backend.port}`
    forwarded.set(key, (forwarded.get(key) ?? 0) + 1)
    const upstream = connect(backend.port, backend.host)
    sockets.add(client).add(upstream)
    client.pipe(upstream).pipe(client)
    const done = (): void => {
      client.destroy()
      upstream.destroy()
      sockets.delete(client)
      sockets.delete(upstream)
    }
    client.on('error', done).on('close', done)
    // A backend that answered and closed: the pipe ends the client once the answer is flushed to it.
    // Destroying the client here instead could drop the answer's last bytes (a reset the probe reports).
    upstream.on('error', done).on('close', () => {
      if (upstream.errored === null && !client.destroyed) client.end()
      else done()
    })
  }
  for (const host of hosts) {
    const server = createServer(handle)
    try {
      await new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, host, resolve))
      servers.push(server)
      const address = server.address()
      listening.push(typeof address === 'object' && address !== null ? `${host.includes(':') ? `[${host}]` : host}:${address.port}` : host)
    } catch (err) {
      if (host === hosts[0]) {
        await Promise.all(servers.map(s => new Promise(resolve => s.close(resolve))))
        throw err
      }
    }
  }
  return {
    listening,
    forwarded,
    close: async () => {
      for (const s of sockets) s.destroy()
      await Promise.all(servers.map(s => new Promise(resolve => s.close(resolve))))
    }
  }
}
