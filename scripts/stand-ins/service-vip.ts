// Local stand-in for a ClusterIP Service: a TCP forwarder on a "VIP" that hands each new
// connection to the next backend in turn, as kube-proxy does, so service probes reach every agent.

import { startTcpForwarder, type ForwardTarget } from './tcp-forwarder.ts'

export type Backend = ForwardTarget

export interface ServiceVip {
  /** Addresses actually listened on, as `host:port`. */
  listening: string[]
  /** Connections handed to each backend, keyed `host:port`. */
  forwarded: Map<string, number>
  close: () => Promise<void>
}

/**
 * Listens on every `host` of `hosts` at `port` (hosts that cannot be bound, e.g. ::1 without IPv6,
 * are skipped, but the first must work) and forwards round-robin over `backends()`, which is read
 * per connection so the backend list can change; with no backends a connection is closed at once.
 * Connections close as tcp-forwarder.ts describes (a FIN passed on as a FIN, a reset as a reset).
 */
export async function startServiceVip (hosts: readonly string[], port: number, backends: () => readonly Backend[]): Promise<ServiceVip> {
  const forwarded = new Map<string, number>()
  let next = 0
  const forwarder = await startTcpForwarder({
    hosts,
    port,
    target: () => {
      const list = backends()
      if (list.length === 0) return null
      const backend = list[next++ % list.length]!
      const key = `${backend.host}:${backend.port}`
      forwarded.set(key, (forwarded.get(key) ?? 0) + 1)
      return backend
    }
  })
  return { listening: forwarder.listening, forwarded, close: forwarder.close }
}
