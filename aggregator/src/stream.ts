// The agent websocket: bearer auth before the upgrade, one hello then reports, an ack for every
// accepted or duplicate report, a heartbeat that drops silent agents, and coalesced peer pushes.

import { timingSafeEqual } from 'node:crypto'
import type { IncomingMessage, Server } from 'node:http'
import type { Duplex } from 'node:stream'
import type { Logger } from 'pino'
import { WebSocketServer, type WebSocket, type RawData } from 'ws'
import {
  decodeAgentMessage, MAX_FRAME_BYTES, PROTOCOL_VERSION, ProtocolError,
  type AggregatorMessage, type Hello
} from '@pingfleet/protocol'
import type { Ingest } from './ingest.ts'
import type { Roster } from './roster.ts'
import type { SelfMetrics } from './self-metrics.ts'

export const STREAM_PATH = '/api/v1/stream'
const HELLO_TIMEOUT_MS = 10_000
/** Above this many queued bytes a slow agent gets no peer pushes until it drains. */
const BACKPRESSURE_BYTES = 8 * 1024 * 1024
const PEERS_DEBOUNCE_MS = 250

interface Session {
  socket: WebSocket
  hello: Hello | null
  alive: boolean
  peersRevision: number
}

export interface StreamOptions {
  server: Server
  token: string
  intervalMs: number
  heartbeatMs: number
  roster: Roster
  ingest: Ingest
  metrics: SelfMetrics
  log: Logger
  now?: () => number
}

export class AgentStream {
  private readonly wss: WebSocketServer
  private readonly sessions = new Set<Session>()
  private readonly byNode = new Map<string, Session>()
  private readonly options: StreamOptions
  private readonly token: Buffer
  private readonly heartbeat: NodeJS.Timeout
  private peersTimer: NodeJS.Timeout | null = null
  private readonly now: () => number

  constructor (options: StreamOptions) {
    this.options = options
    this.token = Buffer.from(options.token)
    this.now = options.now ?? Date.now
    this.wss = new WebSocketServer({ noServer: true, maxPayload: MAX_FRAME_BYTES, perMessageDeflate: false })
    options.server.on('upgrade', (req, socket, head) => this.upgrade(req, socket, head))
    this.heartbeat = setInterval(() => this.beat(), options.heartbeatMs)
    this.heartbeat.unref()
    options.roster.on('change', () => this.schedulePeers())
  }

  get connected (): number { return this.byNode.size }

  close (): void {
    clearInterval(this.heartbeat)
    if (this.peersTimer !== null) clearTimeout(this.peersTimer)
    for (const s of this.sessions) s.socket.close(1001, 'aggregator shutting down')
    this.wss.close()
  }

  private authorized (req: IncomingMessage): boolean {
    const header = req.headers.authorization ?? ''
    if (!header.startsWith('Bearer ')) return false
    const given = Buffer.from(header.slice(7))
    return given.length === this.token.length && timingSafeEqual(given, this.token)
  }

  private upgrade (req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const path = (req.url ?? '').split('?')[0]
    if (path !== STREAM_PATH) {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n')
      return
    }
    if (!this.authorized(req)) {
      this.options.metrics.rejected('unauthorized')
      this.options.log.warn({ code: 'PINGFLEET_ERR_UNAUTHORIZED', remote: req.socket.remoteAddress }, 'agent refused: missing or wrong token')
      const body = '{"code":"PINGFLEET_ERR_UNAUTHORIZED","message":"missing or wrong bearer token"}'
      socket.end(`HTTP/1.1 401 Unauthorized\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`)
      return
    }
    this.wss.handleUpgrade(req, socket, head, ws => this.attach(ws))
  }

  private attach (socket: WebSocket): void {
    const session: Session = { socket, hello: null, alive: true, peersRevision: -1 }
    this.sessions.add(session)
    // Handlers go on synchronously so no early frame is missed.
    socket.on('message', (data, isBinary) => this.onMessage(session, data, isBinary))
    socket.on('pong', () => { session.alive = true })
    socket.on('error', err => this.options.log.debug({ err, node: session.hello?.node }, 'agent socket error'))
    socket.on('close', () => this.detach(session))
    const helloTimer = setTimeout(() => {
      if (session.hello === null) this.reject(session, 'PINGFLEET_ERR_PROTOCOL_HELLO', 'no hello in time')
    }, HELLO_TIMEOUT_MS)
    helloTimer.unref()
  }

  private onMessage (session: Session, data: RawData, isBinary: boolean): void {
    session.alive = true
    let message
    try {
      if (isBinary) throw new ProtocolError('PINGFLEET_ERR_PROTOCOL_JSON', 'binary frames are not part of the protocol')
      message = decodeAgentMessage(data.toString())
    } catch (err) {
      const code = err instanceof ProtocolError ? err.code : 'PINGFLEET_ERR_PROTOCOL_JSON'
      this.reject(session, code, err instanceof Error ? err.message : 'invalid frame')
      return
    }
    if (message.type === 'hello') {
      if (session.hello !== null) return this.reject(session, 'PINGFLEET_ERR_PROTOCOL_HELLO', 'second hello on one connection')
      this.onHello(session, message)
      return
    }
    if (session.hello === null) return this.reject(session, 'PINGFLEET_ERR_PROTOCOL_HELLO', 'report before hello')
    const node = session.hello.node
    const now = this.now()
    const metrics = this.options.metrics
    if (this.options.roster.accept(node, session.hello.bootId, message.seq, now)) {
      const result = this.options.ingest.apply(this.options.roster.get(node)!, message)
      metrics.report(result.cells, result.expiredCells)
    } else {
      metrics.duplicate()
    }
    this.send(session, { type: 'ack', v: PROTOCOL_VERSION, seq: message.seq })
  }

  private onHello (session: Session, hello: Hello): void {
    const roster = this.options.roster
    const previous = this.byNode.get(hello.node)
    if (previous !== undefined && previous !== session) {
      // The newest connection of a node wins; the old one is a leftover from a network blip.
      this.byNode.delete(hello.node)
      previous.hello = null
      previous.socket.close(4000, 'replaced by a newer connection')
    }
    session.hello = hello
    this.byNode.set(hello.node, session)
    const entry = roster.join(hello, this.now())
    this.options.log.info({ node: hello.node, bootId: hello.bootId, version: hello.version }, 'agent connected')
    this.send(session, {
      type: 'welcome',
      v: PROTOCOL_VERSION,
      lastSeq: entry.lastSeq.get(hello.bootId) ?? 0,
      settings: { intervalMs: this.options.intervalMs },
      labels: entry.labels
    })
    this.sendPeers(session)
  }

  private reject (session: Session, code: string, reason: string): void {
    this.options.metrics.rejected(code)
    this.options.log.warn({ code, node: session.hello?.node, reason }, 'agent connection closed: bad message')
    // Close reasons are limited to 123 bytes.
    session.socket.close(1008, `${code}: ${reason}`.slice(0, 120))
  }

  private detach (session: Session): void {
    this.sessions.delete(session)
    const hello = session.hello
    if (hello !== null && this.byNode.get(hello.node) === session) {
      this.byNode.delete(hello.node)
      this.options.roster.disconnect(hello.node, this.now())
      this.options.log.info({ node: hello.node }, 'agent disconnected')
    }
  }

  private beat (): void {
    for (const session of this.sessions) {
      if (!session.alive) {
        this.options.log.warn({ node: session.hello?.node }, 'agent silent past heartbeat, terminating')
        session.socket.terminate()
        continue
      }
      session.alive = false
      session.socket.ping()
    }
  }

  private schedulePeers (): void {
    if (this.peersTimer !== null) return
    this.peersTimer = setTimeout(() => {
      this.peersTimer = null
      for (const session of this.byNode.values()) this.sendPeers(session)
    }, PEERS_DEBOUNCE_MS)
  }

  private sendPeers (session: Session): void {
    const roster = this.options.roster
    if (session.peersRevision === roster.revision) return
    if (session.socket.bufferedAmount > BACKPRESSURE_BYTES) {
      // Try again on the next change or heartbeat-driven push; nothing is lost, peers are state.
      setTimeout(() => this.sendPeers(session), 1000).unref()
      return
    }
    session.peersRevision = roster.revision
    this.send(session, { type: 'peers', v: PROTOCOL_VERSION, revision: roster.revision, peers: roster.peers() })
  }

  private send (session: Session, message: AggregatorMessage): void {
    if (session.socket.readyState !== session.socket.OPEN) return
    session.socket.send(JSON.stringify(message))
  }
}
