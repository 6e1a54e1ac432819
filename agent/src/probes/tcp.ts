// The tcp probe: a TCP handshake to an external host:port on a fresh socket, timing DNS and connect.
// It also owns the mapping from socket errors to transport reasons, which the http and dns-wire probes share.

import { connect, isIP } from 'node:net'
import type { Reason } from '@pingfleet/protocol'
import type { LookupFamily, LookupPool } from '../lookup-pool.ts'
import type { Probe, ProbeResult, Target } from '../probe.ts'
import { resolveHost } from './dns-lookup.ts'

export interface TcpTarget extends Target {
  kind: 'tcp'
  /** A name (looked up through getaddrinfo) or an IP literal. */
  host: string
  port: number
  /** Address family for the lookup; 0 takes whatever getaddrinfo returns first. */
  family: LookupFamily
}

/** `host:port`, with IPv6 literals in brackets: `[2001:db8::1]:443`. */
export function hostPort (host: string, port: number): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`
}

/** Column id: `host:port`, e.g. `example.com:443` or `[2001:db8::1]:443`. */
export function tcpTarget (host: string, port: number, family: LookupFamily = 0): TcpTarget {
  return { kind: 'tcp', id: hostPort(host, port), host, port, family }
}

/** Splits `host:port` or `[v6]:port`; null when the text is not one. */
export function parseHostPort (text: string): { host: string, port: number } | null {
  const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([^[\]:\s]+)):(\d{1,5})$/.exec(text.trim())
  if (match === null) return null
  const host = match[1] ?? match[2]!
  const port = Number(match[3])
  if (port < 1 || port > 65535 || (match[1] !== undefined && isIP(host) !== 6)) return null
  return { host, port }
}

export function parseTcpTarget (text: string): TcpTarget | null {
  const hp = parseHostPort(text)
  return hp === null ? null : tcpTarget(hp.host, hp.port)
}

const SAME_NAME = new Set(['ECONNREFUSED', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH'])

/**
 * Maps a socket error to its transport reason. `connected` tells a kernel timeout during the handshake
 * (CONNECT_TIMEOUT) from one on an established connection (RESPONSE_TIMEOUT).
 */
export function transportReason (err: unknown, connected: boolean): { reason: Reason, raw: string } {
  const code = errorCode(err)
  if (SAME_NAME.has(code)) return { reason: code as Reason, raw: code }
  if (code === 'EPIPE') return { reason: 'ECONNRESET', raw: code }
  if (code === 'ETIMEDOUT') return { reason: connected ? 'RESPONSE_TIMEOUT' : 'CONNECT_TIMEOUT', raw: code }
  return { reason: 'OTHER', raw: code }
}

export function errorCode (err: unknown): string {
  const code = typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined
  return typeof code === 'string' ? code : 'UNKNOWN'
}

/** Resolves with the connect time, or rejects with the socket error; destroys the socket on abort. */
function handshake (address: string, port: number, signal: AbortSignal): Promise<'connected' | 'aborted'> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: address, port })
    const done = (): void => {
      signal.removeEventListener('abort', onAbort)
      socket.destroy()
    }
    const onAbort = (): void => { done(); resolve('aborted') }
    signal.addEventListener('abort', onAbort, { once: true })
    socket.once('connect', () => { done(); resolve('connected') })
    socket.once('error', err => { done(); reject(err) })
  })
}

export function createTcpProbe (pool: LookupPool): Probe<TcpTarget> {
  return async function tcpProbe (target, signal): Promise<ProbeResult> {
    const start = performance.now()
    const resolved = await resolveHost(pool, target.host, target.family, signal)
    if (!resolved.ok) return resolved.result
    const phases = resolved.seconds === undefined ? {} : { dns: resolved.seconds }
    const connectStart = performance.now()
    const seconds = (): number => (performance.now() - start) / 1000
    const detail: Record<string, string | number> = { address: resolved.address }
    // A lookup that waited for a saturated threadpool makes the whole sample untrustworthy.
    const lagged = resolved.lagged ? { lagged: true, ...(resolved.heldMs === undefined ? {} : { heldMs: resolved.heldMs }) } : {}
    if (signal.aborted) return { ok: false, reason: 'CONNECT_TIMEOUT', raw: 'TIMEOUT', seconds: seconds(), phases, detail, ...lagged }
    try {
      const state = await handshake(resolved.address, target.port, signal)
      const connect = (performance.now() - connectStart) / 1000
      if (state === 'aborted') return { ok: false, reason: 'CONNECT_TIMEOUT', raw: 'TIMEOUT', seconds: seconds(), phases, detail, ...lagged }
      return { ok: true, seconds: seconds(), phases: { ...phases, connect }, detail, ...lagged }
    } catch (err) {
      return { ok: false, ...transportReason(err, false), seconds: seconds(), phases, detail, ...lagged }
    }
  }
}
