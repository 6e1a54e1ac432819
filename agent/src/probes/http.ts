// The http probe: one GET to an external URL on a brand-new connection, with DNS, connect, TLS and
// first-byte phases timed separately. A pooled connection would hide exactly the failures of new flows.
//
// Layers: resolve (layers/resolve.ts, getaddrinfo under the lookup pool) → connect (layers/connect.ts)
// → TLS → exchange (a one-shot undici Client over that one socket) → classify (layers/classify.ts, by
// the stage the probe was in). Timing the phases in our own connector is exact per probe; undici's
// diagnostics_channel events are process-wide and would have to be matched back to each request.

import { isIP, type Socket } from 'node:net'
import { connect as tlsConnect, rootCertificates, type TLSSocket } from 'node:tls'
import type { Client } from 'undici'
import { classifyDeadline, classifyError, classifyStatus, type Stage } from '../layers/classify.ts'
import { connectTimed } from '../layers/connect.ts'
import { resolveHost } from '../layers/resolve.ts'
import type { LookupFamily, LookupPool } from '../lookup-pool.ts'
import type { Probe, ProbeResult, Target } from '../probe.ts'
import { basicAuth, redactUrl } from '../redact.ts'

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

/** Drops a response body unread; undici's abort error on it has no one to report to. */
function discard (body: { on: (event: 'error', listener: () => void) => unknown, destroy: () => unknown }): void {
  body.on('error', () => {})
  body.destroy()
}

/**
 * The probe: GET the target's URL on a connection of its own. Phases in seconds: `dns` (a name only),
 * `connect`, `tls` (https only), `firstByte` from the connection being ready (after TLS) to the response head; `seconds`
 * is the whole probe, body included (read and dropped, at most `maxBodyBytes`). `detail` has the
 * `address` connected to and the `status`. A non-2xx status fails as HTTP_4XX, HTTP_5XX or HTTP_OTHER
 * (raw `HTTP_<status>`, its body not read); any other failure is classified by its stage: connect,
 * tls, request (until the head arrived), body. Never rejects.
 */
let undici: Promise<{ Client: typeof Client }> | undefined

/**
 * Loads undici once, on first use: it is ~9 MiB of the agent's RSS on import (BENCHMARKS.md, "Agent CPU
 * (issue 11)"), and only http targets need it. probe-suite.ts calls this at start when any are configured,
 * so no probe's time includes the import. Rejects only if the package is missing.
 */
export function loadHttpClient (): Promise<{ Client: typeof Client }> {
  undici ??= import('undici')
  return undici
}

export function createHttpProbe (pool: LookupPool, options: HttpProbeOptions = {}): Probe<HttpTarget> {
  const maxBodyBytes = options.maxBodyBytes ?? HTTP_MAX_BODY_BYTES
  const userAgent = options.userAgent ?? 'pingfleet'

  return async function httpProbe (target, signal): Promise<ProbeResult> {
    const { Client } = await loadHttpClient()
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
    // A lookup that waited for a saturated threadpool makes the whole sample untrustworthy (trust).
    const { phases, detail, trust: lagged } = resolved

    let stage: Stage = 'connect'
    let ready = 0
    const sockets: Socket[] = []
    // One connection, made once, for this probe only.
    const connector = (_options: unknown, callback: (...args: [null, Socket | TLSSocket] | [Error, null]) => void): void => {
      let called = false
      const fail = (err: Error): void => { if (!called) { called = true; callback(err, null) } }
      connectTimed(resolved.address, port, signal).then(({ socket, seconds }) => {
        sockets.push(socket)
        socket.once('error', fail)
        phases.connect = seconds
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
      }, fail)
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
      const status = classifyStatus(response.statusCode)
      if (status !== null) {
        discard(response.body)
        return { ok: false, ...status, seconds: since(start), phases, detail, ...lagged }
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
      // A fired signal is the deadline of the stage the probe was in, whatever error the abort surfaced as.
      const failure = signal.aborted ? classifyDeadline(stage) : classifyError(err, stage)
      return { ok: false, ...failure, seconds: since(start), phases, detail, ...lagged }
    } finally {
      signal.removeEventListener('abort', onAbort)
      for (const socket of sockets) socket.destroy()
      await client.destroy().catch(() => {})
    }
  }
}
