// The tcp probe: a TCP handshake to an external host:port on a fresh socket, timing DNS and connect.
// Layers: address (layers/address.ts) → resolve (layers/resolve.ts) → connect (layers/connect.ts) →
// classify (layers/classify.ts); there is no exchange: the socket closes at the handshake.

import { classifyError } from '../layers/classify.ts'
import { hostPort, parseHostPort } from '../layers/address.ts'
import { connectTimed } from '../layers/connect.ts'
import { resolveHost } from '../layers/resolve.ts'
import type { LookupFamily, LookupPool } from '../lookup-pool.ts'
import type { Probe, ProbeResult, Target } from '../probe.ts'

export interface TcpTarget extends Target {
  kind: 'tcp'
  /** A name (looked up through getaddrinfo) or an IP literal. */
  host: string
  port: number
  /** Address family for the lookup; 0 takes whatever getaddrinfo returns first. */
  family: LookupFamily
}

/** Column id: `host:port`, e.g. `example.com:443` or `[2001:db8::1]:443`. */
export function tcpTarget (host: string, port: number, family: LookupFamily = 0): TcpTarget {
  return { kind: 'tcp', id: hostPort(host, port), host, port, family }
}

/** Parses one configured `host:port` or `[v6]:port`; null when it is not one. */
export function parseTcpTarget (text: string): TcpTarget | null {
  const hp = parseHostPort(text)
  return hp === null ? null : tcpTarget(hp.host, hp.port)
}

/**
 * The probe. Phases in seconds: `dns` when the host is a name, `connect` for the handshake; `seconds`
 * is the whole probe; `detail.address` is the address connected to. A lookup failure is the DNS
 * phase's result; a handshake failure is classified in the connect stage (the deadline is
 * CONNECT_TIMEOUT, raw TIMEOUT). Never rejects.
 */
export function createTcpProbe (pool: LookupPool): Probe<TcpTarget> {
  return async function tcpProbe (target, signal): Promise<ProbeResult> {
    const start = performance.now()
    const resolved = await resolveHost(pool, target.host, target.family, signal)
    if (!resolved.ok) return resolved.result
    const { phases, detail, trust } = resolved
    const seconds = (): number => (performance.now() - start) / 1000
    try {
      const { socket, seconds: connect } = await connectTimed(resolved.address, target.port, signal)
      socket.destroy()
      return { ok: true, seconds: seconds(), phases: { ...phases, connect }, detail, ...trust }
    } catch (err) {
      return { ok: false, ...classifyError(err, 'connect'), seconds: seconds(), phases, detail, ...trust }
    }
  }
}
