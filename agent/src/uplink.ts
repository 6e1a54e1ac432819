// The websocket to the aggregator: hello/welcome handshake, one report per interval with a strictly
// increasing seq, a bounded buffer of unacknowledged reports that is re-sent after every reconnect,
// exponential backoff with full jitter, and a ping/pong heartbeat that ends silent connections.

import { readFileSync } from 'node:fs'
import { performance } from 'node:perf_hooks'
import type { Logger } from 'pino'
import { WebSocket } from 'ws'
import {
  CLOSE_DUPLICATE_NODE, CLOSE_NODE_MISMATCH, decodeAggregatorMessage, downgradeReport, DUPLICATE_NODE_BACKOFF_MS, FEATURE_HELLO_UPTIME, FEATURE_REPORT_AGE, FEATURE_REPORT_CPU, FEATURES_HEADER,
  frameErrorCode, MAX_FRAME_BYTES, needsDowngrade, PROTOCOL_VERSION, REPORT_FEATURE_NAMES, STREAM_PATH, type Cell, type CpuThrottling, type Hello, type Peers,
  type Report, type Welcome
} from '@pingfleet/protocol'
import {
  AGENT_ERR_REPORT_DROPPED, AGENT_ERR_UPLINK_CLOSED, AGENT_ERR_UPLINK_DUPLICATE_NODE, AGENT_ERR_UPLINK_PROTOCOL,
  AGENT_ERR_UPLINK_SILENT, AGENT_ERR_UPLINK_UNAUTHORIZED
} from './errors.ts'

export interface UplinkOptions {
  /** Base http(s) URL of the aggregator. */
  url: string
  token: string
  /** When set, the token is read from this file on every connect (projected tokens rotate). */
  tokenFile?: string
  /** The hello to send on every connect, without type, v and bootId. */
  hello: () => Omit<Hello, 'type' | 'v' | 'bootId'>
  bootId: string
  bufferSize: number
  heartbeatMs: number
  reconnectMinMs: number
  reconnectMaxMs: number
  logger: Logger
  onWelcome?: (welcome: Welcome) => void
  onPeers?: (peers: Peers) => void
  random?: () => number
  /** Least wait after a CLOSE_DUPLICATE_NODE; the protocol's DUPLICATE_NODE_BACKOFF_MS (tests shorten it). */
  duplicateBackoffMs?: number
  /** Monotonic clock in ms (performance.now); tests replace it to age buffered reports. */
  monotonic?: () => number
}

export interface UplinkStatus {
  /** Last report produced. */
  seq: number
  /** Highest seq the aggregator acknowledged (or said it already had). */
  acked: number
  buffered: number
  dropped: number
  connected: boolean
  /** Report frames written to the socket, re-sends included. */
  reportsSent: number
}

/** Full jitter: uniform in [0, min(max, min × 2^attempt)). */
export function backoffDelay (attempt: number, minMs: number, maxMs: number, random: () => number): number {
  return random() * Math.min(maxMs, minMs * 2 ** Math.min(attempt, 30))
}

/** ws://…/api/v1/stream from the aggregator's http(s) base URL, keeping any path prefix. */
export function streamUrl (base: string): string {
  const url = new URL(base)
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:'
  url.pathname = url.pathname.replace(/\/+$/, '') + STREAM_PATH
  return url.href
}

interface Pending {
  seq: number
  /** The report as JSON, without ageMs (added when the frame is written). */
  text: string
  /** The report uses optional cell content (protocol features.ts): an older aggregator gets it downgraded. */
  optional: boolean
  /** Report.cpu as JSON, spliced in at send time only for an aggregator that accepts it. */
  cpu: string | undefined
  /** Monotonic time the report was produced at, i.e. its window's end. */
  producedAt: number
}

/** Bytes `ageMs` may add to a frame: `"ageMs":` + 16 digits + `,`. */
const AGE_FIELD_BYTES = 26

const NO_FEATURES: ReadonlySet<string> = new Set()

/**
 * The agent's one websocket to the aggregator (`<url>/api/v1/stream`, bearer token). On every connect
 * it sends a hello and, once welcomed, every unacknowledged report in seq order. push() queues a report
 * (at most `bufferSize`; the oldest is dropped past that, logged as PINGFLEET_ERR_AGENT_REPORT_DROPPED).
 * It reconnects forever with full-jitter backoff between `reconnectMinMs` and `reconnectMaxMs` (ms),
 * at least a minute after a duplicate-node refusal, and terminates a connection that misses a pong for
 * `heartbeatMs`. Failures are logged with their PINGFLEET_ERR_AGENT_UPLINK_* code, never thrown:
 * no method throws. close() says goodbye with 1001 (a planned departure) and stops reconnecting.
 */
export class Uplink {
  #options: UplinkOptions
  #random: () => number
  #url: string
  #buffer: Pending[] = []
  #seq = 0
  #acked = 0
  #dropped = 0
  #reportsSent = 0
  #ws: WebSocket | undefined
  #welcomed = false
  /** Optional fields the connected aggregator accepts (its upgrade answer's FEATURES_HEADER). */
  #features = new Set<string>()
  #sentUpTo = 0
  #attempt = 0
  #closed = false
  #reconnectTimer: NodeJS.Timeout | undefined
  #flushTimer: NodeJS.Timeout | undefined
  #ackWaiters = new Set<{ seq: number, done: (acked: boolean) => void }>()
  #monotonic: () => number
  /** Whether the current run of CLOSE_DUPLICATE_NODE refusals has been logged at warn. */
  #duplicateLogged = false

  constructor (options: UplinkOptions) {
    this.#options = options
    this.#random = options.random ?? Math.random
    this.#monotonic = options.monotonic ?? (() => performance.now())
    this.#url = streamUrl(options.url)
  }

  /** Opens the first connection; call once. */
  start (): void {
    this.#connect()
  }

  /** Counters for /status and logs: seqs, buffer, drops, connection state. */
  status (): UplinkStatus {
    return {
      seq: this.#seq,
      acked: this.#acked,
      buffered: this.#buffer.length,
      dropped: this.#dropped,
      connected: this.#welcomed,
      reportsSent: this.#reportsSent
    }
  }

  /**
   * Queues one report for the window and sends it when connected; returns its seq. `cpu` goes out only
   * to an aggregator that announced it accepts it, so a buffered report survives a rollback to an older one.
   */
  push (window: { start: number, end: number, cells: Cell[] }, cpu?: CpuThrottling | null): number {
    const seq = ++this.#seq
    const report: Report = { type: 'report', v: PROTOCOL_VERSION, seq, start: window.start, end: window.end, cells: window.cells }
    const text = JSON.stringify(report)
    const cpuText = cpu === undefined || cpu === null ? undefined : JSON.stringify(cpu)
    if (Buffer.byteLength(text) + AGE_FIELD_BYTES + (cpuText === undefined ? 0 : cpuText.length + 7) > MAX_FRAME_BYTES) {
      this.#drop(seq, 'report larger than the frame limit')
      return seq
    }
    if (this.#buffer.length >= this.#options.bufferSize) this.#drop(this.#buffer.shift()!.seq, 'report buffer full')
    this.#buffer.push({ seq, text, optional: needsDowngrade(report, NO_FEATURES), cpu: cpuText, producedAt: this.#monotonic() })
    this.#flush()
    return seq
  }

  /** Resolves true once `seq` is acknowledged, false after `timeoutMs` or on close. */
  waitForAck (seq: number, timeoutMs: number): Promise<boolean> {
    if (this.#acked >= seq) return Promise.resolve(true)
    return new Promise(resolve => {
      const waiter = {
        seq,
        done: (acked: boolean) => {
          clearTimeout(timer)
          this.#ackWaiters.delete(waiter)
          resolve(acked)
        }
      }
      const timer = setTimeout(() => waiter.done(false), timeoutMs)
      this.#ackWaiters.add(waiter)
    })
  }

  /** Stops reconnecting, fails pending ack waits, closes with 1001 (terminating after 1 s without a close answer). */
  async close (): Promise<void> {
    this.#closed = true
    clearTimeout(this.#reconnectTimer)
    clearTimeout(this.#flushTimer)
    for (const waiter of [...this.#ackWaiters]) waiter.done(false)
    const ws = this.#ws
    if (ws === undefined) return
    const closed = new Promise(resolve => ws.once('close', resolve))
    if (ws.readyState === WebSocket.OPEN) {
      ws.close(1001, 'agent shutting down')
      const timer = setTimeout(() => ws.terminate(), 1000)
      await closed
      clearTimeout(timer)
    } else {
      ws.terminate()
      await closed
    }
  }

  #drop (seq: number, why: string): void {
    this.#dropped++
    // One line at the first drop and then every hundredth: a long outage must not flood the log.
    if (this.#dropped % 100 === 1) {
      this.#options.logger.warn({ code: AGENT_ERR_REPORT_DROPPED, seq, dropped: this.#dropped }, why)
    }
  }

  /** The token for this connect: re-read from the file each time, so a rotated token is picked up. */
  #token (): string | null {
    const file = this.#options.tokenFile
    if (file === undefined || file === '') return this.#options.token
    try {
      return readFileSync(file, 'utf8').trim()
    } catch (err) {
      this.#options.logger.error({ code: AGENT_ERR_UPLINK_UNAUTHORIZED, file, err: (err as Error).message }, 'cannot read the token file')
      return null
    }
  }

  #connect (): void {
    if (this.#closed) return
    const logger = this.#options.logger
    const token = this.#token()
    if (token === null) {
      this.#reconnectTimer = setTimeout(() => this.#connect(), backoffDelay(this.#attempt++, this.#options.reconnectMinMs, this.#options.reconnectMaxMs, this.#random))
      return
    }
    const ws = new WebSocket(this.#url, {
      headers: { authorization: `Bearer ${token}` },
      // Every read from the aggregator is bounded: a frame over the protocol's limit closes the
      // connection with 1009 (ws's default would be 100 MiB), and no compression, so no inflate bomb.
      maxPayload: MAX_FRAME_BYTES,
      perMessageDeflate: false,
      handshakeTimeout: this.#options.heartbeatMs
    })
    this.#ws = ws
    let alive = true
    let status: number | undefined
    let heartbeat: NodeJS.Timeout | undefined

    this.#features = new Set()
    ws.on('upgrade', res => {
      const header = res.headers[FEATURES_HEADER]
      this.#features = new Set(String(header ?? '').split(',').map(f => f.trim()).filter(f => f !== ''))
    })
    ws.on('unexpected-response', (_req, res) => {
      status = res.statusCode
      // The refusal's body is never read: terminate() destroys the socket under it.
      ws.terminate()
    })
    ws.on('open', () => {
      const hello: Hello = { type: 'hello', v: PROTOCOL_VERSION, bootId: this.#options.bootId, ...this.#options.hello() }
      // Optional fields go only to an aggregator that named them (an older one rejects unknown fields).
      if (this.#features.has(FEATURE_HELLO_UPTIME)) hello.uptimeMs = Math.max(0, Math.round(this.#monotonic()))
      ws.send(JSON.stringify(hello))
      heartbeat = setInterval(() => {
        if (!alive) {
          logger.warn({ code: AGENT_ERR_UPLINK_SILENT }, 'aggregator missed a heartbeat; reconnecting')
          ws.terminate()
          return
        }
        alive = false
        ws.ping()
      }, this.#options.heartbeatMs)
    })
    ws.on('pong', () => { alive = true })
    ws.on('message', (data, isBinary) => {
      alive = true
      if (isBinary) {
        logger.warn({ code: AGENT_ERR_UPLINK_PROTOCOL }, 'ignored a binary frame')
        return
      }
      this.#receive(data.toString())
    })
    ws.on('error', err => {
      // A frame ws refused (too large, not UTF-8, broken framing) is the aggregator breaking the
      // protocol, not a network blip: say so once, at warn, with the code the aggregator would count.
      const frame = frameErrorCode(err as Error & { code?: string })
      if (frame !== null) logger.warn({ code: AGENT_ERR_UPLINK_PROTOCOL, reason: frame, err: err.message }, 'aggregator sent a frame the websocket refused; reconnecting')
      else if (status === undefined) logger.debug({ code: AGENT_ERR_UPLINK_CLOSED, err: err.message }, 'uplink error')
    })
    ws.on('close', code => {
      clearInterval(heartbeat)
      this.#ws = undefined
      this.#welcomed = false
      if (this.#closed) return
      let delay = backoffDelay(this.#attempt++, this.#options.reconnectMinMs, this.#options.reconnectMaxMs, this.#random)
      if (code === CLOSE_DUPLICATE_NODE) {
        // Another process holds this node. Coming back at the usual pace would make the two evict
        // each other; wait long, jittered so several losers do not return together. Log the first
        // refusal of a run only: it repeats every minute for as long as the other agent lives.
        const least = this.#options.duplicateBackoffMs ?? DUPLICATE_NODE_BACKOFF_MS
        delay = least + this.#random() * least
        const line = { code: AGENT_ERR_UPLINK_DUPLICATE_NODE, wsCode: code, node: this.#options.hello().node, retryInMs: Math.round(delay) }
        if (this.#duplicateLogged) logger.debug(line, 'another agent still holds this node; backing off')
        else logger.warn(line, 'another agent process holds this node at the aggregator (same node name); backing off')
        this.#duplicateLogged = true
      } else if (status === 401 || status === 403 || code === CLOSE_NODE_MISMATCH) {
        logger.error({ code: AGENT_ERR_UPLINK_UNAUTHORIZED, status, wsCode: code, retryInMs: Math.round(delay) }, 'aggregator rejected the token')
      } else {
        logger.warn({ code: AGENT_ERR_UPLINK_CLOSED, status, wsCode: code, retryInMs: Math.round(delay), ...this.status() }, 'uplink down; reconnecting')
      }
      this.#reconnectTimer = setTimeout(() => this.#connect(), delay)
    })
  }

  #receive (text: string): void {
    let message
    try {
      message = decodeAggregatorMessage(text)
    } catch (err) {
      this.#options.logger.warn({ code: AGENT_ERR_UPLINK_PROTOCOL, reason: (err as { code?: string }).code, err: (err as Error).message }, 'ignored an invalid frame')
      return
    }
    switch (message.type) {
      case 'welcome': {
        this.#welcomed = true
        this.#attempt = 0
        this.#duplicateLogged = false
        // Reports up to lastSeq already arrived; re-send everything after it, in order.
        if (message.lastSeq <= this.#seq) this.#ack(message.lastSeq)
        this.#sentUpTo = Math.min(message.lastSeq, this.#seq)
        this.#options.logger.info({ lastSeq: message.lastSeq, resend: this.#buffer.length }, 'uplink welcomed')
        this.#options.onWelcome?.(message)
        this.#flush()
        break
      }
      case 'peers':
        this.#options.onPeers?.(message)
        break
      case 'ack':
        if (message.seq <= this.#seq) this.#ack(message.seq)
        this.#flush()
        break
    }
  }

  /** The report as the connected aggregator accepts it: without the optional features it did not name. */
  #downgraded (text: string): string {
    if (REPORT_FEATURE_NAMES.every(f => this.#features.has(f))) return text
    const report = JSON.parse(text) as Report
    return needsDowngrade(report, this.#features) ? JSON.stringify(downgradeReport(report, this.#features)) : text
  }

  /** Acks are cumulative for the buffer: the aggregator handles one connection's reports in order. */
  #ack (seq: number): void {
    if (seq > this.#acked) this.#acked = seq
    let drop = 0
    while (drop < this.#buffer.length && this.#buffer[drop]!.seq <= seq) drop++
    if (drop > 0) this.#buffer.splice(0, drop)
    for (const waiter of [...this.#ackWaiters]) if (waiter.seq <= this.#acked) waiter.done(true)
  }

  #flush (): void {
    const ws = this.#ws
    if (ws === undefined || !this.#welcomed || ws.readyState !== WebSocket.OPEN) return
    for (const pending of this.#buffer) {
      if (pending.seq <= this.#sentUpTo) continue
      // Backpressure: leave the rest in the buffer until the socket drains.
      if (ws.bufferedAmount > MAX_FRAME_BYTES) {
        clearTimeout(this.#flushTimer)
        this.#flushTimer = setTimeout(() => this.#flush(), 100)
        return
      }
      // The age is taken now, as the frame is written: the aggregator subtracts it from its receive time.
      const age = Math.max(0, Math.round(this.#monotonic() - pending.producedAt))
      const text = pending.optional ? this.#downgraded(pending.text) : pending.text
      // The report's JSON ends with the cells array's `]}`: the cpu field goes before the final brace.
      const body = pending.cpu !== undefined && this.#features.has(FEATURE_REPORT_CPU) ? `${text.slice(1, -1)},"cpu":${pending.cpu}}` : text.slice(1)
      ws.send(this.#features.has(FEATURE_REPORT_AGE) ? `{"ageMs":${age},${body}` : `{${body}`)
      this.#sentUpTo = pending.seq
      this.#reportsSent++
    }
  }
}
