// Loopback plumbing for suites: a TCP relay that stands between peers and an agent, so closing it
// makes that agent refuse connections while it keeps running, and a free-port finder.

import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net'

/** Forwards host:port to target:port until closed; closing refuses new connections. */
export async function relay (host: string, target: string, port: number): Promise<{ close: () => Promise<void> }> {
  const sockets = new Set<Socket>()
  const server: Server = createServer(client => {
    const upstream = connect(port, target)
    sockets.add(client).add(upstream)
    client.pipe(upstream).pipe(client)
    const done = (): void => { client.destroy(); upstream.destroy(); sockets.delete(client); sockets.delete(upstream) }
    client.on('error', done).on('close', done)
    upstream.on('error', done).on('close', done)
  })
  await new Promise<void>((resolve, reject) => server.listen(port, host, resolve).once('error', reject))
  return {
    close: () => new Promise<void>(resolve => {
      for (const s of sockets) s.destroy()
      server.close(() => resolve())
    })
  }
}

/** A free TCP port on host (bound, then released). */
export async function freePort (host: string): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve, reject) => server.listen(0, host, resolve).once('error', reject))
  const { port } = server.address() as AddressInfo
  await new Promise(resolve => server.close(resolve))
  return port
}
