// The agent websocket: bearer auth before the upgrade, one hello then reports, an ack for every
// accepted or duplicate report, a heartbeat that drops silent agents, and coalesced peer pushes
// (except for a departure: an agent closing with 1001 is terminating, and that list goes out at once).

import type { IncomingMessage, Server } from 'node:http'
import type { Duplex } from 'node:stream'
import type { Logger } from 'pino'
import { WebSocketServer, type WebSocket, type RawData } from 'ws'
import {
  CLOSE_DUPLICATE_NODE, CLOSE_NODE_MISMATCH, CLOSE_REPLACED, decodeAgentMessage, FEATURE_HELLO_UPTIME, FEATURE_REPORT_AGE, FEATURE_REPORT_CPU, FEATURES_HEADER, frameErrorCode,
  MAX_FRAME_BYTES, PROTOCOL_ERR_HELLO, PROTOCOL_ERR_JSON, PROTOCOL_VERSION, ProtocolError, REPORT_FEATURE_NAMES, STREAM_PATH, type AggregatorMessage, type Hello, type Peers, type Report
} from '@pingfleet/protocol'
import { ClockOffset } from './clock-offset.ts'
import { ERR_AGENT_SILENT, ERR_CLOCK_OFFSET, ERR_DUPLICATE_NODE, ERR_INTERNAL, ERR_NODE_MISMATCH, ERR_REPORTS_MISSED, ERR_UNAUTHORIZED } from '../errors.ts'
import type { Ingest } from '../store/ingest.ts'
import type { Roster } from '../fleet/roster.ts'
import type { SelfMetrics } from '../self-metrics.ts'
import type { Authenticator, Identity } from '../auth.ts'

const HELLO_TIMEOUT_MS = 10_000
/** Above this many queued bytes a slow agent gets no peer pushes until it drains. */
const BACKPRESSURE_BYTES = 8 * 1024 * 1024
/** A roster change is pushed after this quiet time, and at most once per PEERS_MIN_GAP_MS. */
const PEERS_DEBOUNCE_MS = 1000
export const PEERS_MIN_GAP_MS = 5000
/**
 * A departure is pushed at once unless a push left less than this ago; then at the end of the gap.
 * It bounds the cost of many departures together (a deleted DaemonSet) to two full lists a second,
 * well inside the agent's shutdown drain (PINGFLEET_SHUTDOWN_DRAIN, 2 s by default).
 */
const URGENT_MIN_GAP_MS = 500
/** Close code of an agent that shuts down on purpose (RFC 6455 1001 "going away"). */
export const CLOSE_GOING_AWAY = 1001
export { CLOSE_NODE_MISMATCH }

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
  helloTimer: NodeJS.Timeout | null
  /** When the agent process started, on this aggregator's clock (from hello.uptimeMs), or null. */
  bootAt: number | null
  /**
   * Closed by us on purpose (replaced by a newer connection, or the other claimant of its node
   * won): frames still in flight are dropped quietly, and nothing about it counts as a rejection.
   */
  ended: boolean
  clock: ClockOffset
}

/**
 * How Kubernetes sees an agent pod, for choosing between two agents that claim one node: false when
 * it says the pod is terminating, not ready, finished or scheduled to another node; true otherwise
 * (including a pod discovery has not seen yet, which a fresh rollout pod may be for a moment).
 */
export type PodStanding = (node: string, pod: string) => boolean

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
  /** In-cluster discovery's view of agent pods; without it every pod stands equal. */
  podStanding?: PodStanding
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
  private peersTimerAt = 0
  private lastPeersPush = 0
  private closing = false
  private peersCache: { revision: number, frame: Buffer } | null = null
  private readonly now: () => number

  constructor (options: StreamOptions) {
    this.options = options
    this.now = options.now ?? Date.now
    this.wss = new WebSocketServer({ noServer: true, maxPayload: MAX_FRAME_BYTES, perMessageDeflate: false })
    // Optional report content this aggregator accepts (report.cpu, and the cell features of protocol
    // features.ts): an agent sends it only when announced here.
    this.wss.on('headers', headers => { headers.push(`${FEATURES_HEADER}: ${[FEATURE_REPORT_CPU, FEATURE_REPORT_AGE, FEATURE_HELLO_UPTIME, ...REPORT_FEATURE_NAMES].join(', ')}`) })
    options.server.on('upgrade', (req, socket, head) => this.upgrade(req, socket, head))
    this.heartbeat = setInterval(() => this.beat(), options.heartbeatMs)
    this.heartbeat.unref()
    if ((options.reviewEveryMs ?? 0) > 0) {
      this.reviewTimer = setInterval(() => { void this.reviewOpen() }, options.reviewEveryMs)
      this.reviewTimer.unref()
    }
    options.roster.on('change', urgent => this.schedulePeers(urgent))
  }

  get connected (): number { return this.byNode.size }

  close (): void {
    this.closing = true
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
        if (session.token === null || session.ended || !this.sessions.has(session)) continue
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
      if (!socket.destroyed) refuse(503, (err as { code?: string }).code ?? ERR_INTERNAL, (err as Error).message)
    })
  }

  private attach (socket: WebSocket, identity: Identity | null, token: string | null, remote: string | undefined): void {
    const session: Session = {
      socket, remote, hello: null, identity, token, alive: true, peersRevision: -1, helloTimer: null, bootAt: null, ended: false, clock: new ClockOffset()
    }
    this.sessions.add(session)
    // Handlers go on synchronously so no early frame is missed.
    socket.on('message', (data, isBinary) => this.onMessage(session, data, isBinary))
    socket.on('pong', () => { session.alive = true })
    socket.on('error', err => this.onSocketError(session, err))
    socket.on('close', code => this.detach(session, code))
    session.helloTimer = setTimeout(() => {
      session.helloTimer = null
      if (session.hello === null && !session.ended) this.reject(session, PROTOCOL_ERR_HELLO, 'no hello in time')
    }, HELLO_TIMEOUT_MS)
    session.helloTimer.unref()
  }

  private onMessage (session: Session, data: RawData, isBinary: boolean): void {
    session.alive = true
    // A connection we closed on purpose may still deliver what was in flight: the agent re-sends it
    // on its next connection, so it is neither applied, acked nor held against the agent.
    if (session.ended) return
    let message
    try {
      if (isBinary) throw new ProtocolError(PROTOCOL_ERR_JSON, 'binary frames are not part of the protocol')
      message = decodeAgentMessage(data.toString())
    } catch (err) {
      const code = err instanceof ProtocolError ? err.code : PROTOCOL_ERR_JSON
      this.reject(session, code, err instanceof Error ? err.message : 'invalid frame')
      return
    }
    if (message.type === 'hello') {
      if (session.hello !== null) return this.reject(session, PROTOCOL_ERR_HELLO, 'second hello on one connection')
      this.onHello(session, message)
      return
    }
    if (session.hello === null) return this.reject(session, PROTOCOL_ERR_HELLO, 'report before hello')
    const node = session.hello.node
    const now = this.now()
    const metrics = this.options.metrics
    const at = this.placement(session, message, now)
    const entry = this.options.roster.get(node)
    const missedBefore = entry?.missed ?? 0
    if (this.options.roster.accept(node, session.hello.bootId, message.seq, now)) {
      const missed = (entry?.missed ?? 0) - missedBefore
      if (missed > 0) {
        metrics.missed(missed)
        this.options.log.warn({ code: ERR_REPORTS_MISSED, node, missed, seq: message.seq }, 'reports from this agent never arrived: it dropped them from its full buffer during an outage')
      }
      const result = this.options.ingest.apply(this.options.roster.get(node)!, message, at)
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
    const now = this.now()
    if (session.helloTimer !== null) clearTimeout(session.helloTimer)
    session.helloTimer = null
    session.bootAt = hello.uptimeMs === undefined ? null : now - hello.uptimeMs
    const previous = this.byNode.get(hello.node)
    if (previous !== undefined && previous !== session) {
      if (previous.hello?.bootId === hello.bootId) {
        // The same agent process again: the old connection is a leftover from a network blip.
        this.end(previous, CLOSE_REPLACED, 'replaced by a newer connection')
      } else if (this.keepsNode(previous, session, hello)) {
        this.duplicate(previous.hello!, hello, 'the agent already connected')
        session.hello = hello
        this.end(session, CLOSE_DUPLICATE_NODE, `another agent (pod ${previous.hello!.pod}) holds node ${hello.node}`)
        return
      } else {
        this.duplicate(hello, previous.hello!, 'the agent that just connected')
        this.end(previous, CLOSE_DUPLICATE_NODE, `another agent (pod ${hello.pod}) took node ${hello.node}`)
      }
      this.byNode.delete(hello.node)
    }
    session.hello = hello
    this.byNode.set(hello.node, session)
    const entry = roster.join(hello, now)
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

  /**
   * Which of two agent processes claiming one node keeps it: true for the one holding it now.
   * Kubernetes first (a pod it says is terminating, not ready or elsewhere loses), then the newer
   * boot, which is what a DaemonSet maxSurge rollout means: the new pod replaces the old. Without
   * boot times (older agents) the newcomer wins, as before.
   */
  private keepsNode (holder: Session, claimant: Session, hello: Hello): boolean {
    const standing = this.options.podStanding
    if (standing !== undefined) {
      const holderOk = standing(hello.node, holder.hello!.pod)
      const claimantOk = standing(hello.node, hello.pod)
      if (holderOk !== claimantOk) return holderOk
    }
    if (holder.bootAt === null || claimant.bootAt === null) return false
    return holder.bootAt > claimant.bootAt
  }

  private duplicate (kept: Hello, closed: Hello, which: string): void {
    this.options.metrics.duplicateNode(kept.node)
    this.options.log.warn({
      code: ERR_DUPLICATE_NODE,
      node: kept.node,
      kept: { pod: kept.pod, podIp: kept.podIp, bootId: kept.bootId },
      closed: { pod: closed.pod, podIp: closed.podIp, bootId: closed.bootId }
    }, `two agents claim node ${kept.node}: ${which} keeps it, the other is told to back off (close ${CLOSE_DUPLICATE_NODE})`)
  }

  /** Closes a connection on purpose: whatever it still sends is dropped, and nothing counts against it. */
  private end (session: Session, code: number, reason: string): void {
    session.ended = true
    if (session.helloTimer !== null) clearTimeout(session.helloTimer)
    session.helloTimer = null
    session.socket.close(code, reason.slice(0, 120))
  }

  /**
   * Where a report goes in time, on this aggregator's clock. With `ageMs` that is its receive time
   * minus its age, whatever the agent's wall clock says; the difference to `end` is the agent's
   * clock offset, exported per node and warned about once per connection. Without it, `end`.
   */
  private placement (session: Session, report: Report, now: number): number {
    if (report.ageMs === undefined) return report.end
    const at = now - report.ageMs
    const hello = session.hello!
    const offset = session.clock.sample(report.end - at)
    const entry = this.options.roster.get(hello.node)
    if (entry !== undefined) entry.clockOffsetMs = offset
    if (session.clock.shouldWarn()) {
      this.options.log.warn({ code: ERR_CLOCK_OFFSET, node: hello.node, pod: hello.pod, offsetSeconds: offset / 1000 },
        `agent clock is ${Math.abs(offset / 1000).toFixed(1)} s ${offset > 0 ? 'ahead of' : 'behind'} the aggregator's; its reports are placed by receive time`)
    }
    return at
  }

  private reject (session: Session, code: string, reason: string): void {
    this.options.metrics.rejected(code)
    this.options.log.warn({ code, node: session.hello?.node, reason }, 'agent connection closed: bad message')
    // Close reasons are limited to 123 bytes.
    session.socket.close(1008, `${code}: ${reason}`.slice(0, 120))
  }

  /**
   * `code` is the close code the agent sent (1006 when the connection just broke). 1001 from the
   * agent announces a planned shutdown; when we are the ones closing, the agent only echoes ours.
   */
  private detach (session: Session, code: number): void {
    this.sessions.delete(session)
    if (session.helloTimer !== null) clearTimeout(session.helloTimer)
    const hello = session.hello
    if (hello !== null && this.byNode.get(hello.node) === session) {
      this.byNode.delete(hello.node)
      this.options.roster.disconnect(hello.node, this.now())
      const departing = code === CLOSE_GOING_AWAY && !this.closing && !session.ended
      if (departing) this.options.roster.depart(hello.node)
      this.options.log.info({ node: hello.node, wsCode: code, departing }, departing ? 'agent left (planned shutdown)' : 'agent disconnected')
    }
  }

  private beat (): void {
    for (const session of this.sessions) {
      if (!session.alive) {
        this.options.log.warn({ code: ERR_AGENT_SILENT, node: session.hello?.node, remote: session.remote }, 'agent silent past heartbeat, terminating')
        session.socket.terminate()
        continue
      }
      session.alive = false
      session.socket.ping()
    }
  }

  private schedulePeers (urgent: boolean): void {
    const now = Date.now()
    // A thousand agents joining is a thousand roster changes: coalesce them, because every push
    // sends the whole list to every agent. A departure cannot wait: the agent's /ping closes soon.
    const due = urgent
      ? this.lastPeersPush + URGENT_MIN_GAP_MS
      : Math.max(now + PEERS_DEBOUNCE_MS, this.lastPeersPush + PEERS_MIN_GAP_MS)
    if (this.peersTimer !== null) {
      if (this.peersTimerAt <= due) return
      clearTimeout(this.peersTimer)
      this.peersTimer = null
    }
    if (due <= now) {
      this.pushPeers()
      return
    }
    this.peersTimerAt = due
    this.peersTimer = setTimeout(() => this.pushPeers(), due - now)
  }

  /** Sends the current list to every connected agent (each gets it once per revision). */
  private pushPeers (): void {
    if (this.peersTimer !== null) clearTimeout(this.peersTimer)
    this.peersTimer = null
    this.lastPeersPush = Date.now()
    for (const session of this.byNode.values()) this.sendPeers(session)
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
