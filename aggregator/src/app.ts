// Wires the aggregator together and nothing more: stores, roster and fleet model, ingest, views,
// gates, the agent websocket and the HTTP API. Each part owns its logic; this file only connects them.

import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify'
import swagger from '@fastify/swagger'
import type { Logger } from 'pino'
import { boundWaitingConnections } from '@pingfleet/protocol'
import { Registry } from 'prom-client'
import { staticAuth, type Authenticator } from './auth.ts'
import type { Config } from './config.ts'
import { ERR_INTERNAL } from './errors.ts'
import { AgentHealth, MIN_HEALTH_WINDOW_MS } from './fleet/agent-health.ts'
import { FleetEventLog } from './fleet/events.ts'
import { Fleet } from './fleet/fleet.ts'
import { Roster } from './fleet/roster.ts'
import { FindingsEngine, type EvaluateFn } from './findings/engine.ts'
import { IncidentLog } from './findings/incidents.ts'
import { registerFindingMetrics } from './findings/metrics.ts'
import { CONFIRM_EVALUATIONS, FindingTracker } from './findings/tracker.ts'
import { serviceBackendsFrom } from './gates/service-backends.ts'
import { registerGateMetrics } from './gates/metrics.ts'
import { GateMonitor } from './gates/monitor.ts'
import { apiRoutes } from './http/api-routes.ts'
import { errorHandler, notFoundHandler } from './http/error-handler.ts'
import { findingsRoutes } from './http/findings-routes.ts'
import { gateRoutes } from './http/gate-routes.ts'
import { opsRoutes } from './http/ops-routes.ts'
import { serviceRoutes } from './http/service-routes.ts'
import { AgentStream } from './http/stream.ts'
import { uiRoute } from './http/ui-route.ts'
import { KubeClient } from './kube/client.ts'
import { Discovery } from './kube/discovery.ts'
import { TokenReviewer, tokenReviewAuth } from './kube/token-review.ts'
import { SelfMetrics } from './self-metrics.ts'
import { Ingest } from './store/ingest.ts'
import { defaultTiers, GROUP_TIERS, NODE_TIERS, Store, type StoreStats } from './store/store.ts'
import { Totals } from './store/totals.ts'
import { VERSION } from './version.ts'
import { registerFleetMetrics } from './views/metrics.ts'
import { buildServiceView, type ServiceView } from './views/service.ts'

/**
 * Bounds per HTTP connection (ms), so idle, slow or half-open clients cannot pile up (issue 14).
 * A socket silent for a minute is closed (upgraded websockets are not: they have their own
 * heartbeat); headers must arrive within 10 s and a whole request within a minute, checked every
 * 2 s. Keep-alive stays at fastify's 72 s, above Prometheus' usual scrape intervals, so scrapes
 * reuse their connection.
 */
export const API_SERVER_LIMITS = {
  connectionTimeout: 60_000,
  requestTimeout: 60_000,
  http: { headersTimeout: 10_000, connectionsCheckingInterval: 2_000 }
} as const
/** Connections without a request yet past which the oldest is closed (boundWaitingConnections): ~10 MiB. */
export const API_MAX_WAITING = 1024

/** How often the stores advance their slots and the roster expires agents past the peer TTL (ms). */
const TICK_MS = 1000

export interface Aggregator {
  app: FastifyInstance
  /** The listening address as a URL base, e.g. `http://127.0.0.1:8080` (IPv6 in brackets). */
  address: () => string
  /** Stops the tick, the gates, the websocket, discovery and the HTTP server; resolves when all are closed. */
  close: () => Promise<void>
}

/** What tests may replace: the findings evaluation (default evaluateFindings). */
export interface AggregatorParts {
  evaluateFindings?: EvaluateFn
}

/**
 * Starts an aggregator from a validated, frozen config (config.ts loadConfig): builds the node and
 * group stores, the roster and fleet model, in-cluster discovery when `config.kube.url` is set and
 * `config.discovery` is on, the gates, the HTTP API and the agent websocket, then listens on
 * `config.listen`. `now` is the clock in ms since the epoch (tests pass a fake one). Resolves once
 * the server listens; rejects when it cannot (the port is taken, say) or a plugin fails to register.
 * `parts` replaces internals (tests inject a synthetic findings evaluation).
 */
export async function startAggregator (
  config: Readonly<Config>,
  log: Logger,
  now: () => number = Date.now,
  parts: AggregatorParts = {}
): Promise<Aggregator> {
  const { groupLabel, intervalMs, maxWindowMs } = config
  // Gates read the group store: its few cells can afford finer slots (store.ts, GROUP_TIERS).
  const nodes = new Store(defaultTiers(intervalMs, maxWindowMs, NODE_TIERS), now)
  const groups = new Store(defaultTiers(intervalMs, maxWindowMs, GROUP_TIERS), now)
  const roster = new Roster(config.peerTtlMs)
  // Totals, ingest and health forget an agent when the roster expires it.
  const totals = new Totals(roster)
  const health = new AgentHealth({ windowMs: Math.max(MIN_HEALTH_WINDOW_MS, 6 * intervalMs), now, roster })
  // In-cluster: node labels, cordons and agent pods from the Kubernetes API, and TokenReview.
  const kube = config.kube.url === '' ? null : new KubeClient(config.kube)
  const { namespace, agentSelector } = config
  const discovery = kube === null || !config.discovery
    ? null
    : new Discovery({ client: kube, namespace, agentSelector, groupLabel, roster, log })
  const fleet = new Fleet({ roster, groupLabel, kube: discovery })
  const ingest = new Ingest({ nodes, groups, totals, fleet, health })

  const registry = new Registry()
  let stream: AgentStream | null = null
  const stores = (): Record<string, StoreStats> => ({ node: nodes.stats(), group: groups.stats() })
  const self = new SelfMetrics(registry, () => stream?.connected ?? 0, stores)
  registerFleetMetrics({ registry, totals, fleet, health, version: VERSION, now, staleAfterMs: 3 * intervalMs })
  const serviceView = (service: string, windowMs: number): ServiceView =>
    buildServiceView({ nodes, fleet, now }, { windowMs, groupBy: groupLabel, service })
  // Findings: evaluated every interval; incidents quote the fleet events of the same minutes.
  const fleetEvents = new FleetEventLog({ fleet, now })
  // A fault's tail (probes begun during it, failing after it is gone) is judged over one findings window.
  const tracker = new FindingTracker({ confirm: CONFIRM_EVALUATIONS, tailMs: config.findingsWindowMs })
  const findings = new FindingsEngine({
    sources: { nodes, groups, fleet, health },
    tracker,
    incidents: new IncidentLog({ events: fleetEvents }),
    events: fleetEvents,
    windowMs: config.findingsWindowMs,
    groupLabel,
    now,
    log,
    evaluate: parts.evaluateFindings
  })
  registerFindingMetrics(registry, () => tracker.active())
  const gates = new GateMonitor({
    specs: config.gates,
    sources: {
      groups,
      nodes,
      fleet,
      serviceBackends: serviceBackendsFrom(serviceView, now),
      findings: () => findings.evaluatedAt === null ? null : tracker.active()
    },
    now,
    log
  })
  registerGateMetrics(registry, gates)

  const app: FastifyInstance = Fastify({
    loggerInstance: log as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: 1024 * 1024,
    ...API_SERVER_LIMITS,
    // fastify's ajv strips unknown properties by default; a misspelt query parameter must be a 400.
    // verbose: validation errors carry their schema, so a 400 can list the known parameters.
    ajv: { customOptions: { removeAdditional: false, verbose: true } }
  })
  boundWaitingConnections(app.server, API_MAX_WAITING)
  await app.register(swagger, { openapi: { info: { title: 'pingfleet aggregator', version: VERSION } } })
  app.setErrorHandler(errorHandler)
  app.setNotFoundHandler(notFoundHandler)
  await app.register(opsRoutes, { registry })
  await app.register(uiRoute)
  const { maxMatrixCells } = config
  await app.register(apiRoutes, { nodes, groups, fleet, health, maxWindowMs, maxMatrixCells, now })
  await app.register(serviceRoutes, { nodes, fleet, maxWindowMs, now })
  await app.register(gateRoutes, { monitor: gates, limits: { intervalMs, maxWindowMs } })
  await app.register(findingsRoutes, { engine: findings, now })

  // A deep accept queue (the kernel caps it at net.core.somaxconn): after a restart every agent
  // reconnects at once, and Node's default of 511 would drop the rest's SYNs for a 1 s retransmit.
  await app.listen({ host: config.listen.host, port: config.listen.port, backlog: 4096 })
  const serviceAccountAuth = (): Authenticator => tokenReviewAuth(new TokenReviewer({
    client: kube!,
    audience: config.tokenAudience,
    serviceAccount: config.agentServiceAccount,
    nodeOfPod: pod => discovery?.nodeOfPod(pod) ?? null,
    now
  }))
  stream = new AgentStream({
    server: app.server,
    auth: config.authMode === 'static' ? staticAuth(config.token) : serviceAccountAuth(),
    intervalMs,
    heartbeatMs: config.heartbeatMs,
    reviewEveryMs: config.authMode === 'static' ? 0 : config.tokenReviewPeriodMs,
    roster,
    ingest,
    metrics: self,
    log,
    now,
    podStanding: discovery === null ? undefined : (node, pod) => discovery.podStanding(node, pod)
  })

  const maintain = (): void => {
    const t = now()
    nodes.advance(t)
    groups.advance(t)
    roster.expire(t)
  }
  const tick = setInterval(() => {
    try {
      maintain()
    } catch (err) {
      // Keep serving what we have; a failed tick is retried on the next one.
      log.error({ err, code: ERR_INTERNAL }, 'store maintenance failed')
    }
  }, TICK_MS)
  nodes.advance(now())
  groups.advance(now())
  // Findings first: gates with forbidFindings read them.
  findings.start(intervalMs)
  gates.start(intervalMs)
  discovery?.start()

  return {
    app,
    address: () => {
      const a = app.server.address()
      if (typeof a !== 'object' || a === null) return String(a)
      return `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`
    },
    close: async () => {
      clearInterval(tick)
      gates.stop()
      findings.stop()
      fleetEvents.close()
      stream?.close()
      await discovery?.stop()
      kube?.close()
      await app.close()
    }
  }
}
