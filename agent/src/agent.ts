// Wires one agent together: server, scheduler, results and uplink, driven by a frozen config.
// The roster from the aggregator becomes pod and mtu targets, joined by the static ones; one report leaves per interval.

import { randomUUID } from 'node:crypto'
import type { AddressInfo } from 'node:net'
import { performance } from 'node:perf_hooks'
import type { Logger } from 'pino'
import type { CpuThrottling, Labels } from '@pingfleet/protocol'
import pkg from '../package.json' with { type: 'json' }
import type { AgentConfig } from './config.ts'
import { readCpuThrottling } from './cpu-stat.ts'
import { AGENT_ERR_LOOP_LAG, AGENT_ERR_SHUTDOWN_UNACKED } from './errors.ts'
import { LoopLag } from './loop-lag.ts'
import { createProbeSuite, loadStaticTargets, rosterTargets } from './probe-suite.ts'
import { Results } from './results.ts'
import { Scheduler } from './scheduler.ts'
import { buildServer, type AgentStatus } from './server.ts'
import { UdpEcho } from './udp-echo.ts'
import { Uplink } from './uplink.ts'

export interface AgentHandle {
  /** The port /ping listens on (useful when the config asked for port 0). */
  port: number
  bootId: string
  status: () => AgentStatus
  /**
   * Stops probing, sends a last report, waits briefly for its ack, announces the departure (close
   * 1001), keeps /ping up for PINGFLEET_SHUTDOWN_DRAIN, then closes everything.
   */
  shutdown: () => Promise<void>
}

export { podTargets } from './probe-suite.ts'

/**
 * Starts one agent: listens for /ping on `config.listenHost:listenPort` (and a UDP echo on the same
 * port number), starts the static targets at once, connects the uplink, and from then on sends one
 * report every `intervalMs` (milliseconds; the aggregator's welcome may change it). Roster updates
 * become pod, mtu and udp targets. Resolves once the server listens; the returned handle's `port` is
 * the bound port. Rejects when the server cannot listen (for example EADDRINUSE) or the CA file
 * (PINGFLEET_HTTP_CA_FILE) cannot be read; nothing the network or the aggregator does later makes it throw.
 */
export async function startAgent (config: Readonly<AgentConfig>, logger: Logger): Promise<AgentHandle> {
  const bootId = randomUUID()
  let labels: Labels = { ...config.labels }
  let intervalMs = config.intervalMs
  let draining = false

  const results = new Results()
  const suite = createProbeSuite(config)
  const staticTargets = await loadStaticTargets(config, logger)
  let peerCount = 0
  const lag = new LoopLag({ thresholdMs: config.lagThresholdMs })
  lag.start()
  const scheduler = new Scheduler({
    probes: suite.probes,
    results,
    lag,
    intervalMs,
    intervals: { mtu: config.mtuIntervalMs, udp: config.udpIntervalMs },
    timeoutMs: config.probeTimeoutMs,
    timeouts: suite.timeouts,
    concurrency: config.concurrency,
    logger
  })

  // The port is known once the server listens; hello() is only called after that.
  let port = config.listenPort
  const uplink = new Uplink({
    url: config.aggregatorUrl,
    token: config.token,
    tokenFile: config.tokenFile,
    bootId,
    hello: () => ({ node: config.nodeName, pod: config.podName, podIp: config.podIp, port, labels: config.labels, version: pkg.version }),
    bufferSize: config.reportBuffer,
    heartbeatMs: config.heartbeatMs,
    reconnectMinMs: config.reconnectMinMs,
    reconnectMaxMs: config.reconnectMaxMs,
    logger,
    onWelcome: welcome => {
      // In-cluster the aggregator knows the node's Kubernetes labels; they win over local ones.
      labels = { ...config.labels, ...welcome.labels }
      if (welcome.settings.intervalMs !== intervalMs) {
        logger.info({ intervalMs: welcome.settings.intervalMs }, 'interval set by the aggregator')
        intervalMs = welcome.settings.intervalMs
        scheduler.setIntervalMs(intervalMs)
        rearmReport()
      }
    },
    onPeers: roster => {
      // setTargets replaces the whole wanted set, so the static targets go along every time.
      const targets = rosterTargets(roster.peers, config.nodeName, config.mtuSizes, config.udpCount > 0)
      peerCount = targets.filter(t => t.kind === 'pod').length
      scheduler.setTargets([...targets, ...staticTargets])
      logger.info({ revision: roster.revision, peers: peerCount, targets: scheduler.size }, 'roster updated')
    }
  })
  // The cgroup's throttling counters, read after every report for the next one (null: not readable here).
  let cpu: CpuThrottling | null = null
  const refreshCpu = (): void => { void readCpuThrottling().then(value => { cpu = value }) }
  refreshCpu()
  const status = (): AgentStatus => ({
    node: config.nodeName,
    bootId,
    peers: peerCount,
    targets: scheduler.size,
    ...uplink.status(),
    ...(cpu === null ? {} : { cpu: { periods: cpu.periods, throttledPeriods: cpu.throttledPeriods, throttledSeconds: cpu.throttledUsec / 1e6 } })
  })
  const server = buildServer({
    identity: () => ({ node: config.nodeName, pod: config.podName, labels }),
    status,
    draining: () => draining
  }, logger)
  await server.listen({ host: config.listenHost, port: config.listenPort })
  port = (server.server.address() as AddressInfo).port
  // Peers send udp trains to the port number they know from the roster: the HTTP one.
  const echo = await UdpEcho.listen(config.listenHost, port, logger)

  // Fixed-rate report loop: a slow tick does not shift every later window.
  let lastReportAt = performance.now()
  let reportTimer: NodeJS.Timeout | undefined
  function rearmReport (): void {
    clearTimeout(reportTimer)
    // A welcome that arrives while shutting down must not restart the loop (it would keep the process alive).
    if (draining) return
    reportTimer = setTimeout(() => {
      uplink.push(results.drain(), cpu)
      refreshCpu()
      const maxLagMs = lag.takeMaxLagMs()
      if (maxLagMs > config.lagThresholdMs) logger.warn({ code: AGENT_ERR_LOOP_LAG, maxLagMs: Math.round(maxLagMs) }, 'event loop was late; affected probes are flagged')
      const planned = lastReportAt + intervalMs
      lastReportAt = performance.now() - planned > intervalMs ? performance.now() : planned
      rearmReport()
    }, Math.max(0, lastReportAt + intervalMs - performance.now()))
  }
  rearmReport()
  // Static targets run from the start, aggregator or not.
  scheduler.setTargets(staticTargets)
  uplink.start()

  logger.info({ port, bootId, aggregator: new URL(config.aggregatorUrl).origin, intervalMs, staticTargets: staticTargets.map(t => `${t.kind} ${t.id}`), lookupPool: suite.pool.stats() }, 'agent started')

  let closing: Promise<void> | undefined
  const shutdown = (): Promise<void> => {
    closing ??= (async () => {
      draining = true
      clearTimeout(reportTimer)
      await scheduler.stop()
      lag.stop()
      const seq = uplink.push(results.drain(), cpu)
      const acked = await uplink.waitForAck(seq, config.shutdownTimeoutMs)
      if (!acked) logger.warn({ code: AGENT_ERR_SHUTDOWN_UNACKED, ...uplink.status() }, 'last report not acknowledged before shutdown')
      // Closing with 1001 tells the aggregator this is a planned departure: it marks us terminating
      // and pushes the list at once. /ping (and the udp echo) keeps answering for the drain, so that no peer's probe
      // fails on a closed port before the new list reached it.
      await uplink.close()
      await new Promise(resolve => setTimeout(resolve, config.shutdownDrainMs))
      await echo.close()
      await server.close()
      logger.info({ seq, acked, drainMs: config.shutdownDrainMs }, 'agent stopped')
    })()
    return closing
  }

  return { port, bootId, status, shutdown }
}
