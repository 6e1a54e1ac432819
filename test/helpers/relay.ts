// Loopback plumbing for suites: a TCP relay that stands between peers and an agent, so closing it
// makes that agent refuse connections while it keeps running, and a free-port finder.

import { createServer, type AddressInfo } from 'node:net'
import { startTcpForwarder } from '../../scripts/stand-ins/tcp-forwarder.ts'

/**
 * Forwards host:port to target:port until closed (scripts/stand-ins/tcp-forwarder.ts: an answer
 * reaches the client whole, FIN and reset passed on as such). Closing destroys open connections and
 * stops listening, so new connections are refused.
 */
export async function relay (host: string, target: string, port: number): Promise<{ close: () => Promise<void> }> {
  const forwarder = await startTcpForwarder({ hosts: [host], port, target: () => ({ host: target, port }) })
  return { close: forwarder.close }
}

/** A free TCP port on host (bound, then released). */
export async function freePort (host: string): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve, reject) => server.listen(0, host, resolve).once('error', reject))
  const { port } = server.address() as AddressInfo
  await new Promise(resolve => server.close(resolve))
  return port
}
