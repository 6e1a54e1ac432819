// One-connection HTTP clients for a peer agent's /ping: a brand-new TCP connection per probe, with the
// moments the handshake finished and the answer began. pingOnce (pod and service probes, 200 a second
// at 1,000 peers) writes one request on a raw socket and reads the answer to EOF: about half the CPU of
// a node:http ClientRequest, and far less than an undici Client per probe (BENCHMARKS.md, "Agent cost").
// PingConnection (mtu probes: two requests on one connection) is the same raw exchange with keep-alive
// (it used node:http with a private keep-alive Agent per probe: BENCHMARKS.md, "Agent CPU (issue 11)").

import { connect, type Socket } from 'node:net'
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
 * One TCP connection to `address:port` (an IP), opened by the first get(), on a raw socket like
 * pingOnce: a get() without `last` asks for keep-alive and ends when its answer is complete
 * (Content-Length or the last chunk), so a second get() goes out on the same connection (the mtu
 * probe); with `last` the peer is asked to close. The caller calls close() when the probe ends.
 * `timeoutMs` bounds silence on the socket; the scheduler's signal normally fires first.
 */
export class PingConnection {
  /** performance.now() when the TCP handshake finished; undefined until then. */
  connectedAt: number | undefined
  /** performance.now() when the last get()'s response head (status line and headers) was complete. */
  headersAt: number | undefined
  /** Body bytes of the last get() that arrived so far, kept when it fails half-way. */
  received = 0
  #address: string
  #port: number
  #timeoutMs: number
  #socket: Socket | undefined

  constructor (address: string, port: number, options: { timeoutMs: number }) {
    this.#address = address
    this.#port = port
    this.#timeoutMs = options.timeoutMs
  }

  /**
   * GET `path`; `last` asks the peer to close the connection after answering. Reads at most
   * MAX_PING_HEAD_BYTES of head and `maxBodyBytes` of body (default MAX_PING_BODY_BYTES); past either
   * the connection is destroyed at once and the promise rejects with HEADERS_TOO_LARGE or BODY_TOO_LARGE.
   * Otherwise rejects as pingOnce does (the socket's error, ABORT_ERR, ETIMEDOUT, EOF, an HPE_ code).
   */
  get (path: string, signal: AbortSignal, last = true, maxBodyBytes = MAX_PING_BODY_BYTES): Promise<PingAnswer> {
    this.headersAt = undefined
    this.received = 0
    return new Promise((resolve, reject) => {
      if (signal.aborted) {
        reject(abortError(signal))
        return
      }
      const request = `GET ${path} HTTP/1.1\r\nHost: ${hostPort(this.#address, this.#port)}\r\nConnection: ${last ? 'close' : 'keep-alive'}\r\n\r\n`
      let socket = this.#socket
      // A peer that closed after the first answer broke the exchange; never fall back to a second connection.
      if (socket !== undefined && (socket.destroyed || socket.readableEnded)) {
        reject(closedEarly('closed after the first answer'))
        return
      }
      if (socket === undefined) {
        socket = this.#socket = connect({ host: this.#address, port: this.#port })
        socket.setTimeout(this.#timeoutMs)
        socket.once('connect', () => {
          this.connectedAt = performance.now()
          socket!.write(request)
        })
      } else socket.write(request)
      const open = socket
      const chunks: Buffer[] = []
      let bytes = 0
      let head: AnswerHead | undefined
      let settled = false
      const settle = (err: Error | null, answer?: PingAnswer): void => {
        if (settled) return
        settled = true
        signal.removeEventListener('abort', onAbort)
        open.off('data', onData).off('end', onEnd).off('error', settle).off('timeout', onTimeout)
        if (err !== null || last) open.destroy()
        if (err === null) resolve(answer!)
        else reject(err)
      }
      const onAbort = (): void => settle(abortError(signal))
      const onTimeout = (): void => settle(idleTimeout(this.#timeoutMs))
      const onData = (chunk: Buffer): void => {
        chunks.push(chunk)
        bytes += chunk.length
        const all = chunks.length === 1 ? chunk : Buffer.concat(chunks)
        if (chunks.length > 1) chunks.splice(0, chunks.length, all)
        try {
          if (head === undefined) {
            const end = all.indexOf('\r\n\r\n', Math.max(0, bytes - chunk.length - 3))
            if (end < 0) {
              if (bytes > MAX_PING_HEAD_BYTES) settle(tooLarge('HEADERS', MAX_PING_HEAD_BYTES))
              return
            }
            head = parseHead(all, end)
            this.headersAt = performance.now()
          }
          this.received = bytes - head.bodyAt
          if (this.received > maxBodyBytes) return settle(tooLarge('BODY', maxBodyBytes))
          const body = completeBody(all, head)
          if (body !== undefined) settle(null, { status: head.status, body: body.toString() })
        } catch (err) {
          settle(err as Error)
        }
      }
      // The peer's FIN: an answer without a length ends here; one with a length or chunks is cut short.
      const onEnd = (): void => {
        try {
          settle(null, parseAnswer(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)))
        } catch (err) {
          settle(err as Error)
        }
      }
      signal.addEventListener('abort', onAbort)
      open.on('data', onData).once('end', onEnd).once('error', settle).once('timeout', onTimeout)
    })
  }

  close (): void {
    this.#socket?.destroy()
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
  const head = parseHead(raw, headEnd)
  const rest = raw.subarray(head.bodyAt)
  if (head.chunked) return { status: head.status, body: dechunk(rest).toString() }
  const length = head.length
  if (length !== undefined && rest.length < length) throw closedEarly('closed before the whole body arrived')
  return { status: head.status, body: (length === undefined ? rest : rest.subarray(0, length)).toString() }
}

/** An answer's head: its status, how its body is delimited, and where the body starts in the bytes read. */
interface AnswerHead {
  status: number
  /** Content-Length, when given (and the body is not chunked). */
  length: number | undefined
  chunked: boolean
  bodyAt: number
}

/** The head of `raw`, which ends at `headEnd` (the blank line's index). Throws an HPE_ code when it is not HTTP/1.x. */
function parseHead (raw: Buffer, headEnd: number): AnswerHead {
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
  return { status: Number(status[1]), length: chunked ? undefined : length, chunked, bodyAt: headEnd + 4 }
}

/**
 * The body of a keep-alive answer once all of it is in `raw`: by Content-Length, or up to the last
 * chunk; undefined while more is due, and always for an answer without either (it ends at the FIN).
 */
function completeBody (raw: Buffer, head: AnswerHead): Buffer | undefined {
  const rest = raw.subarray(head.bodyAt)
  if (head.chunked) return dechunkIfComplete(rest)
  if (head.length === undefined || rest.length < head.length) return undefined
  return rest.subarray(0, head.length)
}

function dechunk (data: Buffer): Buffer {
  const body = dechunkIfComplete(data)
  if (body === undefined) throw closedEarly('closed inside a chunk')
  return body
}

/** A chunked body's data up to its last chunk; undefined when it stops short. Throws HPE_INVALID_CHUNK_SIZE. */
function dechunkIfComplete (data: Buffer): Buffer | undefined {
  const parts: Buffer[] = []
  let at = 0
  for (;;) {
    const lineEnd = data.indexOf('\r\n', at)
    if (lineEnd < 0) return undefined
    const size = Number.parseInt(data.toString('latin1', at, lineEnd).split(';')[0]!.trim(), 16)
    if (!Number.isInteger(size) || size < 0) throw httpError('HPE_INVALID_CHUNK_SIZE', 'invalid chunk size')
    if (size === 0) return Buffer.concat(parts)
    const start = lineEnd + 2
    if (data.length < start + size + 2) return undefined
    parts.push(data.subarray(start, start + size))
    at = start + size + 2
  }
}
