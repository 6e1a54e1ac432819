// The http probe: one GET to an external URL on a brand-new connection, with DNS, connect, TLS and
// first-byte phases timed separately. A pooled connection would hide exactly the failures of new flows.
//
// The connection is made by our own connector (getaddrinfo under the lookup pool, then net/tls) and
// handed to a one-shot undici Client. Timing the phases there is exact per probe; undici's
// diagnostics_channel events are process-wide and would have to be matched back to each request.

import { isIP, connect as netConnect, type Socket } from 'node:net'
import { connect as tlsConnect, rootCertificates, type TLSSocket } from 'node:tls'
import { Client } from 'undici'
import type { Reason } from '@pingfleet/protocol'
import type { LookupFamily, LookupPool } from '../lookup-pool.ts'
import type { Phases, Probe, ProbeResult, Target } from '../probe.ts'
import { basicAuth, redactUrl } from '../redact.ts'
import { resolveHost } from './dns-lookup.ts'
import { errorCode, transportReason } from './tcp.ts'

export interface HttpTarget extends Target {
  kind: 'http'
  /**
   * An http: or https: URL as normalised by WHATWG URL, credentials included: used to connect, never
   * shown. The column id is the same URL redacted (redact.ts): `http://user:***@host/health`.
   */
  url: string
  family: LookupFamily
  /** Extra PEM certificates to trust for this target, on top of Node's bundled roots. */
  ca?: string
}

/**
 * Largest body an http probe reads: 1 MiB, room for health endpoints and most home pages. Past it the
 * connection is destroyed at once and the probe fails as BAD_RESPONSE, raw BODY_TOO_LARGE.
 */
export const HTTP_MAX_BODY_BYTES = 1024 * 1024
/** Largest response head an http probe reads: Node's default --max-http-header-size (16 KiB). */
export const HTTP_MAX_HEAD_BYTES = 16 * 1024

export interface HttpProbeOptions {
  /** Body bytes read before the probe fails as BODY_TOO_LARGE. Default HTTP_MAX_BODY_BYTES. */
  maxBodyBytes?: number
  userAgent?: string
}

/** Userinfo in the URL is sent as Basic credentials (RFC 7617); only the redacted form is shown. */
export function httpTarget (url: string, family: LookupFamily = 0): HttpTarget {
  const href = new URL(url).href
  return { kind: 'http', id: redactUrl(href), url: href, family }
}

/** Parses one configured URL; null unless it is an absolute http: or https: URL. */
export function parseHttpTarget (text: string): HttpTarget | null {
  const url = URL.parse(text.trim())
  if (url === null || (url.protocol !== 'http:' && url.protocol !== 'https:') || url.hostname === '') return null
  return httpTarget(url.href)
}

/** The status classes the closed reason set knows; null for a 2xx. */
export function statusReason (status: number): Reason | null {
  if (status >= 200 && status < 300) return null
  if (status >= 400 && status < 500) return 'HTTP_4XX'
  if (status >= 500 && status < 600) return 'HTTP_5XX'
  return 'HTTP_OTHER'
}

type Stage = 'connect' | 'tls' | 'request' | 'body'

/** Maps a failure to a reason by the stage it happened in; a fired signal is a timeout of that stage. */
function failureReason (err: unknown, stage: Stage, timedOut: boolean): { reason: Reason, raw: string } {
  if (timedOut) {
    if (stage === 'connect') return { reason: 'CONNECT_TIMEOUT', raw: 'TIMEOUT' }
    // A handshake that stalls after connect is often a path MTU problem: the certificate flight is large.
    if (stage === 'tls') return { reason: 'RESPONSE_TIMEOUT', raw: 'TLS_HANDSHAKE_TIMEOUT' }
    return { reason: 'RESPONSE_TIMEOUT', raw: stage === 'body' ? 'BODY_TIMEOUT' : 'HEADERS_TIMEOUT' }
  }
  const code = errorCode(err)
  if (stage === 'connect') return transportReason(err, false)
  if (stage === 'tls') return code === 'ECONNRESET' ? { reason: 'ECONNRESET', raw: code } : { reason: 'TLS_ERROR', raw: code }
  // undici's "other side closed": the server shut the connection before a full response.
  if (code === 'UND_ERR_SOCKET') {
    const cause = errorCode((err as { cause?: unknown }).cause)
    return { reason: 'ECONNRESET', raw: cause === 'UNKNOWN' ? code : cause }
  }
  if (code === 'UND_ERR_RES_EXCEEDED_MAX_SIZE' || code === 'BODY_TOO_LARGE') return { reason: 'BAD_RESPONSE', raw: 'BODY_TOO_LARGE' }
  if (code === 'UND_ERR_HEADERS_OVERFLOW') return { reason: 'BAD_RESPONSE', raw: 'HEADERS_TOO_LARGE' }
  if ((err as { name?: unknown } | null)?.name === 'HTTPParserError') return { reason: 'BAD_RESPONSE', raw: code === 'UNKNOWN' ? 'HTTP_PARSE_ERROR' : code }
  if (code.startsWith('HPE_') || code.startsWith('UND_ERR_RES_') || code === 'UND_ERR_HEADERS_OVERFLOW') return { reason: 'BAD_RESPONSE', raw: code }
  return transportReason(err, true)
}

/** Drops a response body unread; undici's abort error on it has no one to report to. */
function discard (body: { on: (event: 'error', listener: () => void) => unknown, destroy: () => unknown }): void {
  body.on('error', () => {})
  body.destroy()
}

export function createHttpProbe (pool: LookupPool, options: HttpProbeOptions = {}): Probe<HttpTarget> {
  const maxBodyBytes = options.maxBodyBytes ?? HTTP_MAX_BODY_BYTES
  const userAgent = options.userAgent ?? 'pingfleet'

  return async function httpProbe (target, signal): Promise<ProbeResult> {
    const start = performance.now()
    const since = (t: number): number => (performance.now() - t) / 1000
    const url = new URL(target.url)
    const https = url.protocol === 'https:'
    const host = url.hostname.replace(/^\[(.*)\]$/, '$1')
    const port = Number(url.port || (https ? 443 : 80))
    const authorization = basicAuth(url)
    const headers: Record<string, string> = authorization === undefined ? { 'user-agent': userAgent } : { 'user-agent': userAgent, authorization }

    const resolved = await resolveHost(pool, host, target.family, signal)
    if (!resolved.ok) return resolved.result
    const phases: Phases = resolved.seconds === undefined ? {} : { dns: resolved.seconds }
    const detail: Record<string, string | number> = { address: resolved.address }
    // A lookup that waited for a saturated threadpool makes the whole sample untrustworthy.
    const lagged = resolved.lagged ? { lagged: true, ...(resolved.heldMs === undefined ? {} : { heldMs: resolved.heldMs }) } : {}

    let stage: Stage = 'connect'
    let ready = 0
    const sockets: Socket[] = []
    // One connection, made once, for this probe only.
    const connector = (_options: unknown, callback: (...args: [null, Socket | TLSSocket] | [Error, null]) => void): void => {
      let called = false
      const fail = (err: Error): void => { if (!called) { called = true; callback(err, null) } }
      const connectStart = performance.now()
      const socket = netConnect({ host: resolved.address, port })
      sockets.push(socket)
      socket.once('error', fail)
      socket.once('connect', () => {
        phases.connect = since(connectStart)
        if (!https) {
          stage = 'request'
          ready = performance.now()
          called = true
          socket.off('error', fail)
          callback(null, socket)
          return
        }
        stage = 'tls'
        const tlsStart = performance.now()
        const secure = tlsConnect({
          socket,
          // With a ready socket, `host` is what the certificate is checked against; without it Node checks 'localhost'.
          host,
          servername: isIP(host) === 0 ? host : undefined,
          ca: target.ca === undefined ? undefined : [...rootCertificates, target.ca],
          ALPNProtocols: ['http/1.1']
        })
        sockets.push(secure)
        secure.once('error', fail)
        secure.once('secureConnect', () => {
          phases.tls = since(tlsStart)
          stage = 'request'
          ready = performance.now()
          called = true
          socket.off('error', fail)
          secure.off('error', fail)
          callback(null, secure)
        })
      })
    }

    // Both caps are enforced by undici's parser as bytes arrive; past either it destroys the socket.
    const client = new Client(url.origin, {
      connect: connector, pipelining: 1, headersTimeout: 0, bodyTimeout: 0, maxResponseSize: maxBodyBytes, maxHeaderSize: HTTP_MAX_HEAD_BYTES
    })
    // The signal may fire while our connector is still connecting, where undici cannot see it.
    const onAbort = (): void => { for (const socket of sockets) socket.destroy() }
    signal.addEventListener('abort', onAbort, { once: true })
    try {
      if (signal.aborted) throw signal.reason
      const response = await client.request({ path: `${url.pathname}${url.search}`, method: 'GET', headers, signal })
      phases.firstByte = since(ready)
      stage = 'body'
      detail.status = response.statusCode
      // A failing status says it all: its body is not read (the connection is closed below).
      const reason = statusReason(response.statusCode)
      if (reason !== null) {
        discard(response.body)
        return { ok: false, reason, raw: String(response.statusCode), seconds: since(start), phases, detail, ...lagged }
      }
      // A declared length past the cap fails before reading; otherwise the body is read and dropped
      // chunk by chunk (maxResponseSize stops an endless one). Not body.dump(): it swallows that error.
      const declared = Number(response.headers['content-length'])
      if (declared > maxBodyBytes) {
        discard(response.body)
        throw Object.assign(new Error(`Content-Length ${declared} exceeds ${maxBodyBytes} bytes`), { code: 'BODY_TOO_LARGE' })
      }
      for await (const chunk of response.body) void chunk
      return { ok: true, seconds: since(start), phases, detail, ...lagged }
    } catch (err) {
      return { ok: false, ...failureReason(err, stage, signal.aborted), seconds: since(start), phases, detail, ...lagged }
    } finally {
      signal.removeEventListener('abort', onAbort)
      for (const socket of sockets) socket.destroy()
      await client.destroy().catch(() => {})
    }
  }
}
