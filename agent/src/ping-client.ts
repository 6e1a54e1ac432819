// A one-connection HTTP client for a peer agent's /ping, shared by the mtu and service probes:
// a brand-new TCP connection per probe, with the moment the handshake finished recorded for phases.

import { isIPv6 } from 'node:net'
import { performance } from 'node:perf_hooks'
import { buildConnector, Client } from 'undici'

export interface PingClient {
  client: Client
  /** performance.now() when the TCP handshake finished; undefined until then. */
  connectedAt: () => number | undefined
}

/**
 * `timeoutMs` bounds undici's own connect, headers and body timers; the scheduler's signal
 * normally fires first. The caller destroys the client when the probe ends.
 */
export function pingClient (address: string, port: number, timeoutMs: number): PingClient {
  const connector = buildConnector({ timeout: timeoutMs })
  let connectedAt: number | undefined
  const host = isIPv6(address) ? `[${address}]` : address
  const client = new Client(`http://${host}:${port}`, {
    pipelining: 1,
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
    connect (opts, callback) {
      connector(opts, (...args) => {
        if (args[0] === null) connectedAt = performance.now()
        callback(...args)
      })
    }
  })
  return { client, connectedAt: () => connectedAt }
}

/** The node a /ping body names, or null when the body is not a /ping answer. */
export function pingNode (body: string): string | null {
  try {
    const node = (JSON.parse(body) as { node?: unknown }).node
    return typeof node === 'string' && node !== '' ? node : null
  } catch {
    return null
  }
}
