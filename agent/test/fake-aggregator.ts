// A minimal aggregator for agent tests: the real protocol over a real websocket on loopback.
// It records every frame and answers hello with welcome + peers and each report with an ack.

import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Writable } from 'node:stream'
import { pino, type Logger } from 'pino'
import { WebSocketServer, type WebSocket } from 'ws'
import { decodeAgentMessage, FEATURES_HEADER, PROTOCOL_VERSION, type Hello, type Peer, type Report } from '@pingfleet/protocol'

export interface FakeAggregatorOptions {
  token?: string
  /** HTTP status to refuse upgrades with (e.g. 503), or undefined to accept. */
  refuse?: () => number | undefined
  ack?: (report: Report) => boolean
  peers?: Peer[]
  labels?: Record<string, string>
  intervalMs?: number
  /** Optional fields announced on the upgrade answer (FEATURES_HEADER); none, as an older aggregator. */
  features?: string[]
  /** A websocket close code to answer a hello with instead of a welcome (e.g. 4009), or undefined. */
  closeOnHello?: () => number | undefined
}

export class FakeAggregator {
  readonly options: FakeAggregatorOptions
  readonly hellos: Hello[] = []
  /** Every report frame received, with the connection number it came on. */
  readonly reports: Array<Report & { connection: number }> = []
  readonly authorizations: string[] = []
  /** Close codes agents sent, in order (1006 when the connection just broke). */
  readonly closes: number[] = []
  /** Called when an agent's connection closes, with the code it sent. */
  onClose?: (code: number) => void
  readonly sockets = new Set<WebSocket>()
  connections = 0
  /** Highest seq accepted, as a real aggregator keeps it per node and bootId. */
  lastSeq = 0
  url = ''
  #http: Server
  #wss: WebSocketServer
  #waiters: Array<() => void> = []

  constructor (options: FakeAggregatorOptions = {}) {
    this.options = options
    this.#http = createServer((_req, res) => res.writeHead(404).end())
    this.#wss = new WebSocketServer({ noServer: true })
    this.#wss.on('headers', headers => {
      if (this.options.features !== undefined) headers.push(`${FEATURES_HEADER}: ${this.options.features.join(', ')}`)
    })
    this.#http.on('upgrade', (req, socket, head) => {
      // A client that gives up on a refused upgrade may reset the socket.
      socket.on('error', () => socket.destroy())
      this.authorizations.push(req.headers.authorization ?? '')
      const refused = this.options.refuse?.() ??
        (req.headers.authorization !== `Bearer ${this.options.token ?? 'secret'}` ? 401 : undefined) ??
        (req.url !== '/api/v1/stream' ? 404 : undefined)
      if (refused !== undefined) {
        socket.end(`HTTP/1.1 ${refused} No\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`)
        return
      }
      this.#wss.handleUpgrade(req, socket, head, ws => this.#accept(ws))
    })
  }

  async listen (): Promise<this> {
    await new Promise<void>(resolve => this.#http.listen(0, '127.0.0.1', resolve))
    this.url = `http://127.0.0.1:${(this.#http.address() as AddressInfo).port}`
    return this
  }

  send (message: object): void {
    for (const ws of this.sockets) ws.send(JSON.stringify(message))
  }

  /** Drops every connection abruptly, as a crashed aggregator or a broken path would. */
  terminateAll (): void {
    for (const ws of this.sockets) ws.terminate()
  }

  async until (check: () => boolean, what = 'condition', timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs
    while (!check()) {
      if (Date.now() > deadline) throw new Error(`fake aggregator: timed out waiting for ${what}`)
      await new Promise<void>(resolve => {
        const timer = setTimeout(resolve, 20)
        this.#waiters.push(() => { clearTimeout(timer); resolve() })
      })
    }
  }

  seqs (connection?: number): number[] {
    return this.reports.filter(r => connection === undefined || r.connection === connection).map(r => r.seq)
  }

  async close (): Promise<void> {
    for (const ws of this.sockets) ws.terminate()
    this.#wss.close()
    this.#http.closeAllConnections()
    await new Promise(resolve => this.#http.close(resolve))
  }

  #accept (ws: WebSocket): void {
    const connection = ++this.connections
    this.sockets.add(ws)
    ws.on('close', code => {
      this.sockets.delete(ws)
      this.closes.push(code)
      this.onClose?.(code)
    })
    ws.on('message', data => {
      const message = decodeAgentMessage(data.toString())
      if (message.type === 'hello') {
        this.hellos.push(message)
        const close = this.options.closeOnHello?.()
        if (close !== undefined) {
          ws.close(close, 'closed by the test')
          for (const wake of this.#waiters.splice(0)) wake()
          return
        }
        ws.send(JSON.stringify({
          type: 'welcome', v: PROTOCOL_VERSION, lastSeq: this.lastSeq,
          settings: { intervalMs: this.options.intervalMs ?? 5000 }, labels: this.options.labels ?? {}
        }))
        ws.send(JSON.stringify({ type: 'peers', v: PROTOCOL_VERSION, revision: 1, peers: this.options.peers ?? [] }))
      } else {
        this.reports.push({ ...message, connection })
        if (this.options.ack?.(message) ?? true) {
          if (message.seq > this.lastSeq) this.lastSeq = message.seq
          ws.send(JSON.stringify({ type: 'ack', v: PROTOCOL_VERSION, seq: message.seq }))
        }
      }
      for (const wake of this.#waiters.splice(0)) wake()
    })
  }
}

/** A pino logger whose lines the test can read back. */
export function memoryLogger (): { logger: Logger, lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = []
  const stream = new Writable({
    write (chunk, _encoding, callback) {
      for (const line of String(chunk).split('\n')) if (line !== '') lines.push(JSON.parse(line))
      callback()
    }
  })
  return { logger: pino({ level: 'debug' }, stream), lines }
}
