// One-connection HTTP clients for a peer agent's /ping: a brand-new TCP connection per probe, with the
// moments the handshake finished and the answer began. pingOnce (pod and service probes, 200 a second
// at 1,000 peers) writes one request on a raw socket and reads the answer to EOF: about half the CPU of
// a node:http ClientRequest, and far less than an undici Client per probe (BENCHMARKS.md, "Agent cost").
// PingConnection (mtu probes: two requests on one connection) uses node:http and its parser.

import { Agent, request, type IncomingMessage } from 'node:http'
import { connect } from 'node:net'
import { performance } from 'node:perf_hooks'
import { hostPort } from './layers/address.ts'
import { closedEarly, type Stage } from './layers/classify.ts'
import { abortError } from './layers/connect.ts'

/**
 * Largest head (status line and headers) read from a peer: Node's own default for
 * `--max-http-header-size` (16 KiB). An agent's /ping head is about 150 bytes.
 */
export const MAX_PING_HEAD_BYTES = 16 * 1024

/**
 * Largest /ping body read from a peer. A real answer `{node, pod, labels}` is usually 100–500 bytes;
 * the largest one the protocol accepts (253-character node and pod names, 64 labels with 317-character
 * keys and 63-character values, ASCII) is about 25 KiB, so 32 KiB keeps a margin. Anything beyond it
 * is not an agent (agent/test/ping-client.test.ts checks the arithmetic against the schema).
 */
export const MAX_PING_BODY_BYTES = 32 * 1024

export interface PingAnswer {
  status: number
  body: string
}

/** What a stuck exchange raises when the connection stays silent for `timeoutMs`. */
function idleTimeout (timeoutMs: number): Error {
  return Object.assign(new Error(`no data for ${timeoutMs} ms`), { code: 'ETIMEDOUT' })
}

/** The peer sent more than the cap: raw code BODY_TOO_LARGE or HEADERS_TOO_LARGE, reason BAD_RESPONSE. */
export function tooLarge (what: 'BODY' | 'HEADERS', limit: number): Error {
  return Object.assign(new Error(`the answer's ${what.toLowerCase()} exceed ${limit} bytes`), { code: `${what}_TOO_LARGE` })
}

/**
 * One TCP connection to `address:port` (an IP), through node:http, opened by the first get(). With `keepAlive` a
 * second get() reuses it (the mtu probe); without, the first answer closes it. The caller calls
 * close() when the probe ends. `timeoutMs` bounds silence on the socket; the scheduler's signal
 * normally fires first.
 */
export class PingConnection {
  /** performance.now() when the TCP handshake finished; undefined until then. */
  connectedAt: number | undefined
  /** performance.now() when the last get()'s response headers arrived. */
  headersAt: number | undefined
  /** Body bytes of the last get() that arrived so far, kept when it fails half-way. */
  received = 0
  #address: string
  #port: number
  #timeoutMs: number
  #agent: Agent | false

  constructor (address: string, port: number, options: { timeoutMs: number, keepAlive?: boolean }) {
    this.#address = address
    this.#port = port
    this.#timeoutMs = options.timeoutMs
    // A private agent with one socket keeps the connection between two gets and never shares it.
    this.#agent = options.keepAlive === true ? new Agent({ keepAlive: true, maxSockets: 1 }) : false
  }

  /**
   * GET `path`; `last` asks the peer to close the connection after answering. Reads at most
   * MAX_PING_HEAD_BYTES of head and `maxBodyBytes` of body (default MAX_PING_BODY_BYTES); past either
   * the connection is destroyed at once and the promise rejects with HEADERS_TOO_LARGE or BODY_TOO_LARGE.
   * Otherwise rejects with the runtime's error.
   */
  get (path: string, signal: AbortSignal, last = true, maxBodyBytes = MAX_PING_BODY_BYTES): Promise<PingAnswer> {
    this.headersAt = undefined
    this.received = 0
    return new Promise((resolve, reject) => {
      const req = request({
        host: this.#address,
        port: this.#port,
        path,
        agent: this.#agent,
        signal,
        timeout: this.#timeoutMs,
        maxHeaderSize: MAX_PING_HEAD_BYTES,
        headers: last ? { connection: 'close' } : undefined
      })
      req.once('socket', socket => {
        if (socket.connecting) socket.once('connect', () => { this.connectedAt = performance.now() })
      })
      // Tearing a request down mid-body surfaces as the response's ECONNRESET "aborted":
      // report why it was torn down instead, so a stalled body stays a timeout (or a too-large one BODY_TOO_LARGE).
      let cause: Error | undefined
      const fail = (err: Error): void => {
        if ((err as { code?: unknown }).code === 'HPE_HEADER_OVERFLOW') err = tooLarge('HEADERS', MAX_PING_HEAD_BYTES)
        reject(signal.aborted ? abortError(signal) : cause ?? err)
      }
      req.once('timeout', () => req.destroy(cause = idleTimeout(this.#timeoutMs)))
      req.once('error', fail)
      req.once('response', (res: IncomingMessage) => {
        this.headersAt = performance.now()
        const chunks: Buffer[] = []
        res.on('data', (chunk: Buffer) => {
          this.received += chunk.length
          // Stop reading at once: an endless body must not grow the agent's memory.
          if (this.received > maxBodyBytes) {
            req.destroy(cause = tooLarge('BODY', maxBodyBytes))
            return
          }
          chunks.push(chunk)
        })
        res.once('error', fail)
        res.once('end', () => resolve({
          status: res.statusCode ?? 0,
          body: chunks.length === 1 ? chunks[0]!.toString() : Buffer.concat(chunks).toString()
        }))
      })
      req.end()
    })
  }

  close (): void {
    if (this.#agent !== false) this.#agent.destroy()
  }
}

/** performance.now() values a probe turns into phases; filled in as the exchange goes. */
export interface PingTimings {
  /** The TCP handshake finished. */
  connectedAt: number | undefined
  /** The first byte of the answer arrived. */
  firstByteAt: number | undefined
  /** The answer's head (status line and headers) was complete; left undefined by a caller that does not need it. */
  headersAt?: number | undefined
}

/** The classifier's stage an exchange failed in: connect, request (no complete head yet) or body. */
export function pingStage (at: { connectedAt: number | undefined, headersAt?: number | undefined }): Stage {
  if (at.connectedAt === undefined) return 'connect'
  return at.headersAt === undefined ? 'request' : 'body'
}

function httpError (code: string, message: string): Error {
  return Object.assign(new Error(message), { code })
}

/**
 * GET /ping on a brand-new connection to `address:port` (an IP) with `Connection: close`: the answer
 * is read to the peer's FIN, then parsed (Content-Length or chunked). Rejects with the socket's error
 * (ECONNREFUSED, ECONNRESET for a reset, …), ABORT_ERR when `signal` fires, ETIMEDOUT after `timeoutMs`
 * of silence, EOF (closedEarly) when the peer closes before a complete answer, an HPE_ code for a malformed one, and
 * HEADERS_TOO_LARGE or BODY_TOO_LARGE (the socket destroyed at once) past MAX_PING_HEAD_BYTES of head
 * or `maxBodyBytes` (default MAX_PING_BODY_BYTES) of body bytes on the wire.
 */
export function pingOnce (address: string, port: number, signal: AbortSignal, timeoutMs: number, timings: PingTimings, maxBodyBytes = MAX_PING_BODY_BYTES): Promise<PingAnswer> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(abortError(signal))
      return
    }
    const authority = hostPort(address, port)
    const socket = connect({ host: address, port })
    const chunks: Buffer[] = []
    let received = 0
    // Where the body starts once the blank line after the headers has been seen; -1 until then.
    let bodyAt = -1
    let settled = false
    const settle = (err: Error | null, answer?: PingAnswer): void => {
      if (settled) return
      settled = true
      signal.removeEventListener('abort', onAbort)
      socket.destroy()
      if (err === null) resolve(answer!)
      else reject(err)
    }
    const onAbort = (): void => settle(abortError(signal))
    signal.addEventListener('abort', onAbort)
    socket.setTimeout(timeoutMs, () => settle(idleTimeout(timeoutMs)))
    socket.once('connect', () => {
      timings.connectedAt = performance.now()
      socket.write(`GET /ping HTTP/1.1\r\nHost: ${authority}\r\nConnection: close\r\n\r\n`)
    })
    socket.on('data', (chunk: Buffer) => {
      timings.firstByteAt ??= performance.now()
      chunks.push(chunk)
      received += chunk.length
      // Both caps are checked as bytes arrive, and the socket is destroyed at once past either:
      // an endless answer costs at most the caps plus one chunk.
      if (bodyAt < 0) {
        const head = chunks.length === 1 ? chunk : Buffer.concat(chunks)
        const end = head.indexOf('\r\n\r\n', Math.max(0, received - chunk.length - 3))
        if (end >= 0) {
          bodyAt = end + 4
          timings.headersAt = performance.now()
        } else if (received > MAX_PING_HEAD_BYTES) return settle(tooLarge('HEADERS', MAX_PING_HEAD_BYTES))
        if (chunks.length > 1) chunks.splice(0, chunks.length, head)
      }
      if (bodyAt >= 0 && received - bodyAt > maxBodyBytes) settle(tooLarge('BODY', maxBodyBytes))
    })
    socket.once('error', err => settle(err))
    socket.once('end', () => {
      try {
        settle(null, parseAnswer(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)))
      } catch (err) {
        settle(err as Error)
      }
    })
  })
}

/**
 * A complete HTTP/1.x answer read to EOF: status and body. Throws EOF (closedEarly) when the answer
 * stops short (no head, a cut head, body or chunk), an HPE_ code when it is not HTTP/1.x.
 */
export function parseAnswer (raw: Buffer): PingAnswer {
  if (raw.length === 0) throw closedEarly('socket hang up')
  const headEnd = raw.indexOf('\r\n\r\n')
  if (headEnd < 0) throw closedEarly('closed inside the headers')
  const lines = raw.toString('latin1', 0, headEnd).split('\r\n')
  const status = /^HTTP\/1\.[01] (\d{3})(?: |$)/.exec(lines[0]!)
  if (status === null) throw httpError('HPE_INVALID_CONSTANT', 'not an HTTP/1.x status line')
  let length: number | undefined
  let chunked = false
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!
    const colon = line.indexOf(':')
    if (colon <= 0) throw httpError('HPE_INVALID_HEADER_TOKEN', 'a header line without a name')
    const name = line.slice(0, colon).trim().toLowerCase()
    const value = line.slice(colon + 1).trim()
    if (name === 'content-length') {
      if (!/^\d{1,15}$/.test(value)) throw httpError('HPE_INVALID_CONTENT_LENGTH', 'invalid Content-Length')
      length = Number(value)
    } else if (name === 'transfer-encoding') chunked = /(?:^|,)\s*chunked\s*$/i.test(value)
  }
  const rest = raw.subarray(headEnd + 4)
  if (chunked) return { status: Number(status[1]), body: dechunk(rest).toString() }
  if (length !== undefined && rest.length < length) throw closedEarly('closed before the whole body arrived')
  return { status: Number(status[1]), body: (length === undefined ? rest : rest.subarray(0, length)).toString() }
}

function dechunk (data: Buffer): Buffer {
  const parts: Buffer[] = []
  let at = 0
  for (;;) {
    const lineEnd = data.indexOf('\r\n', at)
    if (lineEnd < 0) throw closedEarly('closed inside a chunk')
    const size = Number.parseInt(data.toString('latin1', at, lineEnd).split(';')[0]!.trim(), 16)
    if (!Number.isInteger(size) || size < 0) throw httpError('HPE_INVALID_CHUNK_SIZE', 'invalid chunk size')
    if (size === 0) return Buffer.concat(parts)
    const start = lineEnd + 2
    if (data.length < start + size + 2) throw closedEarly('closed inside a chunk')
    parts.push(data.subarray(start, start + size))
    at = start + size + 2
  }
}
