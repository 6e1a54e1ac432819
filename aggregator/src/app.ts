// Wires the aggregator together: stores, roster, ingest, the agent websocket and the HTTP API.

import Fastify, { LogController, type FastifyInstance } from 'fastify'
import swagger from '@fastify/swagger'
import type { Logger } from 'pino'
import type { FastifyBaseLogger } from 'fastify'
import { Registry } from 'prom-client'
import { AgentHealth, MIN_HEALTH_WINDOW_MS } from './fleet/agent-health.ts'
import { apiRoutes } from './http/api-routes.ts'
import { uiRoute } from './http/ui-route.ts'
import type { Config } from './config.ts'
import { Discovery } from './kube/discovery.ts'
import { ERR_INTERNAL } from './errors.ts'
import { errorHandler } from './http/error-handler.ts'
import { rosterExpected, serviceBackendsFrom } from './gates/eval.ts'
import { registerGateMetrics } from './gates/metrics.ts'
import { GateMonitor } from './gates/monitor.ts'
import { gateRoutes } from './http/gate-routes.ts'
import { Ingest, UNKNOWN_GROUP } from './store/ingest.ts'
import { KubeClient } from './kube/client.ts'
import { registerFleetMetrics } from './views/metrics.ts'
import { Roster } from './fleet/roster.ts'
import { SelfMetrics } from './self-metrics.ts'
import { buildServiceView, serviceRoutes } from './http/service-routes.ts'
import { defaultTiers, GROUP_TIERS, NODE_TIERS, Store } from './store/store.ts'
import { AgentStream, staticAuth } from './http/stream.ts'
import { TokenReviewer, tokenReviewAuth } from './kube/token-review.ts'
import { Totals } from './store/totals.ts'
import { VERSION } from './version.ts'

const TICK_MS = 1000

export interface Aggregator {
  app: FastifyInstance
  address: () => string
  close: () => Promise<void>
}

export async function startAggregator (config: Readonly<Config>, log: Logger, now: () => number = Date.now): Promise<Aggregator> {
  // Gates read the group store: its few cells can afford finer slots (store.ts, GROUP_TIERS).
  const nodes = new Store(defaultTiers(config.intervalMs, config.maxWindowMs, NODE_TIERS), now)
  const groups = new Store(defaultTiers(config.intervalMs, config.maxWindowMs, GROUP_TIERS), now)
  const totals = new Totals()
  const roster = new Roster(config.peerTtlMs)
  const health = new AgentHealth({ windowMs: Math.max(MIN_HEALTH_WINDOW_MS, 6 * config.intervalMs), now })
  const ingest = new Ingest({ nodes, groups, totals, roster, groupLabel: config.groupLabel, health })
  const registry = new Registry()
  // In-cluster: node labels, cordons and agent pods from the Kubernetes API, and TokenReview.
  const kube = config.kube.url === '' ? null : new KubeClient(config.kube)
  const discovery = kube === null || !config.discovery
    ? null
    : new Discovery({ client: kube, namespace: config.namespace, agentSelector: config.agentSelector, groupLabel: config.groupLabel, roster, log })
  let stream: AgentStream | null = null
  const self = new SelfMetrics(registry, () => stream?.connected ?? 0, () => ({ node: nodes.stats(), group: groups.stats() }))
  // Until discovery has listed, the roster's own count stands in for what is expected.
  const fallbackExpected = rosterExpected(roster, config.groupLabel)
  const expected = (group: string): number => discovery?.synced === true ? discovery.expected().get(group) ?? 0 : fallbackExpected(group)
  const rosterCounts = (): Map<string, number> => {
    const counts = new Map<string, number>()
    for (const a of roster.all()) {
      const group = a.labels[config.groupLabel] ?? UNKNOWN_GROUP
      counts.set(group, (counts.get(group) ?? 0) + 1)
    }
    return counts
  }
  registerFleetMetrics({ registry, totals, roster, health, groupLabel: config.groupLabel, version: VERSION, now, staleAfterMs: 3 * config.intervalMs, expected: discovery === null ? undefined : () => discovery.synced ? discovery.expected() : rosterCounts() })
  const gates = new GateMonitor({
    specs: config.gates,
    sources: { groups, nodes, kubeNodes: () => discovery?.nodeFacts() ?? null, roster, groupLabel: config.groupLabel, expected, expectedGroups: () => discovery?.synced === true ? discovery.expected().keys() : [], serviceBackends: serviceBackendsFrom((service, windowMs) => buildServiceView({ nodes, roster, maxWindowMs: config.maxWindowMs, now }, { windowMs, groupBy: config.groupLabel, service }), now) },
    now,
    log
  })
  registerGateMetrics(registry, gates)

  const app: FastifyInstance = Fastify({ loggerInstance: log as FastifyBaseLogger, logController: new LogController({ disableRequestLogging: true }), bodyLimit: 1024 * 1024 })
  await app.register(swagger, {
    openapi: { info: { title: 'pingfleet aggregator', version: VERSION } }
  })
  app.setErrorHandler(errorHandler)

  const status = { type: 'object', required: ['status'], properties: { status: { type: 'string' } } } as const
  app.get('/healthz', { schema: { response: { 200: status } } }, async () => ({ status: 'ok' }))
  app.get('/readyz', { schema: { response: { 200: status } } }, async () => ({ status: 'ready' }))
  app.get('/metrics', { schema: { hide: true } }, async (_request, reply) => {
    reply.type(registry.contentType)
    return registry.metrics()
  })
  app.get('/api/v1/openapi.json', { schema: { hide: true } }, async () => app.swagger())
  await app.register(uiRoute)
  await app.register(apiRoutes, { nodes, groups, roster, ingest, health, groupLabel: config.groupLabel, maxWindowMs: config.maxWindowMs, maxMatrixCells: config.maxMatrixCells, now, discovery })
  await app.register(serviceRoutes, { nodes, roster, maxWindowMs: config.maxWindowMs, now })
  await app.register(gateRoutes, { monitor: gates, limits: { intervalMs: config.intervalMs, maxWindowMs: config.maxWindowMs } })

  await app.listen({ host: config.listen.host, port: config.listen.port })
  stream = new AgentStream({
    server: app.server,
    auth: config.authMode === 'static'
      ? staticAuth(config.token)
      : tokenReviewAuth(new TokenReviewer({ client: kube!, audience: config.tokenAudience, serviceAccount: config.agentServiceAccount, nodeOfPod: pod => discovery?.nodeOfPod(pod) ?? null, now })),
    intervalMs: config.intervalMs,
    heartbeatMs: config.heartbeatMs,
    reviewEveryMs: config.authMode === 'static' ? 0 : config.tokenReviewPeriodMs,
    roster,
    ingest,
    metrics: self,
    log,
    now,
    podStanding: discovery === null ? undefined : (node, pod) => discovery.podStanding(node, pod)
  })

  const tick = setInterval(() => {
    try {
      const t = now()
      nodes.advance(t)
      groups.advance(t)
      const before = new Set(roster.all().map(a => a.node))
      roster.expire(t)
      for (const node of before) if (roster.get(node) === undefined) { totals.forgetNode(node); ingest.forget(node); health.forget(node) }
    } catch (err) {
      // Keep serving what we have; a failed tick is retried on the next one.
      log.error({ err, code: ERR_INTERNAL }, 'store maintenance failed')
    }
  }, TICK_MS)
  nodes.advance(now())
  groups.advance(now())
  gates.start(config.intervalMs)
  discovery?.start()

  return {
    app,
    address: () => {
      const a = app.server.address()
      return typeof a === 'object' && a !== null ? `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}` : String(a)
    },
    close: async () => {
      clearInterval(tick)
      gates.stop()
      stream?.close()
      await discovery?.stop()
      kube?.close()
      await app.close()
    }
  }
}
