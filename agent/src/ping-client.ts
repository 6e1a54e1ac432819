// A one-connection HTTP client for a peer agent's /ping, shared by the pod, mtu and service probes:
// a brand-new TCP connection per probe, with the moments the handshake finished and the headers arrived.
// node:http with no pooling agent, not an undici Client per probe: the same new connection and llhttp
// parser for less CPU, and no error object with a stack trace built each time a connection is torn down.

import { Agent, request, type IncomingMessage } from 'node:http'
import { performance } from 'node:perf_hooks'

export interface PingAnswer {
  status: number
  body: string
}

/** What a stuck exchange raises when the connection stays silent for `timeoutMs`. */
function idleTimeout (timeoutMs: number): Error {
  return Object.assign(new Error(`no data for ${timeoutMs} ms`), { code: 'ETIMEDOUT' })
}

function abortError (signal: AbortSignal): Error {
  return Object.assign(new Error('the probe was aborted', { cause: signal.reason }), { name: 'AbortError', code: 'ABORT_ERR' })
}

/**
 * One TCP connection to `address:port` (an IP), opened by the first get(). With `keepAlive` a
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

  /** GET `path`; `last` asks the peer to close the connection after answering. Rejects with the runtime's error. */
  get (path: string, signal: AbortSignal, last = true): Promise<PingAnswer> {
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
        headers: last ? { connection: 'close' } : undefined
      })
      req.once('socket', socket => {
        if (socket.connecting) socket.once('connect', () => { this.connectedAt = performance.now() })
      })
      // Tearing a request down mid-body surfaces as the response's ECONNRESET "aborted":
      // report why it was torn down instead, so a stalled body stays a timeout.
      let timedOut: Error | undefined
      const fail = (err: Error): void => reject(signal.aborted ? abortError(signal) : timedOut ?? err)
      req.once('timeout', () => req.destroy(timedOut = idleTimeout(this.#timeoutMs)))
      req.once('error', fail)
      req.once('response', (res: IncomingMessage) => {
        this.headersAt = performance.now()
        const chunks: Buffer[] = []
        res.on('data', (chunk: Buffer) => {
          chunks.push(chunk)
          this.received += chunk.length
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

/** The node a /ping body names, or null when the body is not a /ping answer. */
export function pingNode (body: string): string | null {
  try {
    const node = (JSON.parse(body) as { node?: unknown }).node
    return typeof node === 'string' && node !== '' ? node : null
  } catch {
    return null
  }
}
