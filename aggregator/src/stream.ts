// The agent websocket: bearer auth before the upgrade, one hello then reports, an ack for every
// accepted or duplicate report, a heartbeat that drops silent agents, and coalesced peer pushes.

import { timingSafeEqual } from 'node:crypto'
import type { IncomingMessage, Server } from 'node:http'
import type { Duplex } from 'node:stream'
import type { Logger } from 'pino'
import { WebSocketServer, type WebSocket, type RawData } from 'ws'
import {
  CLOSE_NODE_MISMATCH, CLOSE_REPLACED, decodeAgentMessage, frameErrorCode, MAX_FRAME_BYTES, PROTOCOL_VERSION, ProtocolError,
  type AggregatorMessage, type Hello, type Peers
} from '@pingfleet/protocol'
import { ERR_NODE_MISMATCH, ERR_UNAUTHORIZED } from './errors.ts'
import type { Ingest } from './ingest.ts'
import type { Roster } from './roster.ts'
import type { SelfMetrics } from './self-metrics.ts'
import type { Identity } from './token-review.ts'

export const STREAM_PATH = '/api/v1/stream'
const HELLO_TIMEOUT_MS = 10_000
/** Above this many queued bytes a slow agent gets no peer pushes until it drains. */
const BACKPRESSURE_BYTES = 8 * 1024 * 1024
/** A roster change is pushed after this quiet time, and at most once per PEERS_MIN_GAP_MS. */
const PEERS_DEBOUNCE_MS = 1000
const PEERS_MIN_GAP_MS = 5000
export { CLOSE_NODE_MISMATCH }

/**
 * Checks a bearer token before the upgrade. `identity` is who a reviewed token belongs to (null for
 * the static token); a refusal carries the HTTP status (401 bad token, 503 cannot check) and a code.
 */
export type AuthOutcome = { ok: true, identity: Identity | null } | { ok: false, status: 401 | 503, code: string, message: string }
/** `fresh`: ask again instead of answering from a cache (the periodic re-review of open connections). */
export type Authenticator = (token: string, options?: { fresh?: boolean }) => Promise<AuthOutcome>

/** The static-token check: one shared secret, compared in constant time. */
export function staticAuth (expected: string): Authenticator {
  const want = Buffer.from(expected)
  return async token => {
    const given = Buffer.from(token)
    return given.length === want.length && timingSafeEqual(given, want)
      ? { ok: true, identity: null }
      : { ok: false, status: 401, code: ERR_UNAUTHORIZED, message: 'missing or wrong bearer token' }
  }
}

interface Session {
  socket: WebSocket
  /** Peer address, for logs about connections that never said hello. */
  remote: string | undefined
  hello: Hello | null
  /** Who the token was issued for (serviceAccount mode); the hello must name the same node. */
  identity: Identity | null
  /** The reviewed token, kept (in memory only) to re-review it while the connection is open; null for the static token. */
  token: string | null
  alive: boolean
  peersRevision: number
}

export interface StreamOptions {
  server: Server
  auth: Authenticator
  intervalMs: number
  heartbeatMs: number
  /**
   * How often open connections with a reviewed token are reviewed again; a token that no longer
   * passes (revoked, expired, its pod deleted) closes its connection with 1008. 0: never.
   */
  reviewEveryMs?: number
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
  private readonly heartbeat: NodeJS.Timeout
  private readonly reviewTimer: NodeJS.Timeout | null = null
  private reviewing = false
  private peersTimer: NodeJS.Timeout | null = null
  private lastPeersPush = 0
  private peersCache: { revision: number, frame: Buffer } | null = null
  private readonly now: () => number

  constructor (options: StreamOptions) {
    this.options = options
    this.now = options.now ?? Date.now
    this.wss = new WebSocketServer({ noServer: true, maxPayload: MAX_FRAME_BYTES, perMessageDeflate: false })
    options.server.on('upgrade', (req, socket, head) => this.upgrade(req, socket, head))
    this.heartbeat = setInterval(() => this.beat(), options.heartbeatMs)
    this.heartbeat.unref()
    if ((options.reviewEveryMs ?? 0) > 0) {
      this.reviewTimer = setInterval(() => { void this.reviewOpen() }, options.reviewEveryMs)
      this.reviewTimer.unref()
    }
    options.roster.on('change', () => this.schedulePeers())
  }

  get connected (): number { return this.byNode.size }

  close (): void {
    clearInterval(this.heartbeat)
    if (this.reviewTimer !== null) clearInterval(this.reviewTimer)
    if (this.peersTimer !== null) clearTimeout(this.peersTimer)
    for (const s of this.sessions) s.socket.close(1001, 'aggregator shutting down')
    this.wss.close()
  }

  /**
   * Reviews every open connection's token again, one at a time (a fleet's worth of TokenReviews is
   * spread, not burst). A denial closes the connection; an API that cannot be asked closes nothing:
   * new connections fail closed (503), open ones are judged at the next round.
   */
  private async reviewOpen (): Promise<void> {
    if (this.reviewing) return
    this.reviewing = true
    try {
      for (const session of [...this.sessions]) {
        if (session.token === null || !this.sessions.has(session)) continue
        const outcome = await this.options.auth(session.token, { fresh: true })
        if (outcome.ok || outcome.status !== 401 || !this.sessions.has(session)) continue
        this.options.metrics.rejected('token_revoked')
        this.options.log.warn({ code: outcome.code, node: session.hello?.node, reason: outcome.message }, 'agent closed: its token no longer passes review')
        session.socket.close(1008, 'token no longer valid')
      }
    } finally {
      this.reviewing = false
    }
  }

  private upgrade (req: IncomingMessage, socket: Duplex, head: Buffer): void {
    // Until ws owns the socket it is ours: a client that resets it (while the token is checked, or
    // while we refuse it) must not become an uncaught error. The handler stays on refused sockets.
    const onError = (): void => { socket.destroy() }
    socket.on('error', onError)
    const path = (req.url ?? '').split('?')[0]
    if (path !== STREAM_PATH) {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n')
      return
    }
    const header = req.headers.authorization ?? ''
    const token = header.startsWith('Bearer ') ? header.slice(7) : ''
    const refuse = (status: 401 | 503, code: string, message: string): void => {
      this.options.metrics.rejected(status === 401 ? 'unauthorized' : code)
      this.options.log.warn({ code, remote: req.socket.remoteAddress, reason: message }, 'agent refused before the upgrade')
      const body = JSON.stringify({ code, message })
      const head = status === 401 ? '401 Unauthorized' : '503 Service Unavailable\r\nRetry-After: 5'
      socket.end(`HTTP/1.1 ${head}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`)
    }
    if (token === '') return refuse(401, ERR_UNAUTHORIZED, 'missing bearer token')
    this.options.auth(token).then(outcome => {
      if (socket.destroyed) return
      if (!outcome.ok) return refuse(outcome.status, outcome.code, outcome.message)
      socket.off('error', onError)
      this.wss.handleUpgrade(req, socket, head, ws => this.attach(ws, outcome.identity, outcome.identity === null ? null : token, req.socket.remoteAddress))
    }, (err: unknown) => {
      if (!socket.destroyed) refuse(503, (err as { code?: string }).code ?? 'PINGFLEET_ERR_INTERNAL', (err as Error).message)
    })
  }

  private attach (socket: WebSocket, identity: Identity | null, token: string | null, remote: string | undefined): void {
    const session: Session = { socket, remote, hello: null, identity, token, alive: true, peersRevision: -1 }
    this.sessions.add(session)
    // Handlers go on synchronously so no early frame is missed.
    socket.on('message', (data, isBinary) => this.onMessage(session, data, isBinary))
    socket.on('pong', () => { session.alive = true })
    socket.on('error', err => this.onSocketError(session, err))
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
    const tokenNode = session.identity?.node ?? null
    if (tokenNode !== null && tokenNode !== hello.node) {
      // A token is bound to the pod and node it was issued for; an agent must not speak for another node.
      this.options.metrics.rejected(ERR_NODE_MISMATCH)
      this.options.log.warn({ code: ERR_NODE_MISMATCH, node: hello.node, tokenNode, pod: session.identity?.pod }, 'agent closed: hello node differs from its token\'s node')
      session.socket.close(CLOSE_NODE_MISMATCH, `${ERR_NODE_MISMATCH}: token is for node ${tokenNode}, hello says ${hello.node}`.slice(0, 120))
      return
    }
    const previous = this.byNode.get(hello.node)
    if (previous !== undefined && previous !== session) {
      // The newest connection of a node wins; the old one is a leftover from a network blip.
      this.byNode.delete(hello.node)
      previous.hello = null
      previous.socket.close(CLOSE_REPLACED, 'replaced by a newer connection')
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

  /**
   * A frame `ws` refused (too large, invalid UTF-8, broken framing) is a rejection like a frame that
   * fails its schema: counted under its code and logged once; ws has already closed with the status
   * RFC 6455 gives it. Anything else (a reset, a broken pipe) is the network, not the agent.
   */
  private onSocketError (session: Session, err: Error & { code?: string }): void {
    const code = frameErrorCode(err)
    if (code === null) {
      this.options.log.debug({ err, node: session.hello?.node }, 'agent socket error')
      return
    }
    this.options.metrics.rejected(code)
    this.options.log.warn({ code, wsError: err.code, node: session.hello?.node, remote: session.remote, reason: err.message }, 'agent connection closed: frame refused')
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
    // A thousand agents joining is a thousand roster changes: coalesce them, because every push
    // sends the whole list to every agent.
    const delay = Math.max(PEERS_DEBOUNCE_MS, this.lastPeersPush + PEERS_MIN_GAP_MS - Date.now())
    this.peersTimer = setTimeout(() => {
      this.peersTimer = null
      this.lastPeersPush = Date.now()
      for (const session of this.byNode.values()) this.sendPeers(session)
    }, delay)
  }

  /** The peers message for the roster's current revision, encoded once for every agent. */
  private peersFrame (): Buffer {
    const roster = this.options.roster
    if (this.peersCache?.revision !== roster.revision) {
      const message: Peers = { type: 'peers', v: PROTOCOL_VERSION, revision: roster.revision, peers: roster.peers() }
      this.peersCache = { revision: roster.revision, frame: Buffer.from(JSON.stringify(message)) }
    }
    return this.peersCache.frame
  }

  private sendPeers (session: Session): void {
    const roster = this.options.roster
    if (session.peersRevision === roster.revision) return
    if (session.socket.bufferedAmount > BACKPRESSURE_BYTES) {
      // Try again shortly; nothing is lost, peers are state and the newest list wins.
      setTimeout(() => this.sendPeers(session), 1000).unref()
      return
    }
    if (session.socket.readyState !== session.socket.OPEN) return
    session.peersRevision = roster.revision
    session.socket.send(this.peersFrame(), { binary: false })
  }

  private send (session: Session, message: AggregatorMessage): void {
    if (session.socket.readyState !== session.socket.OPEN) return
    session.socket.send(JSON.stringify(message))
  }
}
