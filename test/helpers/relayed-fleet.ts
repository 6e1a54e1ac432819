// The suites' shared fleet: an aggregator and four agents as real processes on loopback, each agent
// reached by its peers through a relay the suite controls (test/helpers/relay.ts), so refusing one
// agent's traffic is a real refusal while the agent keeps running and reporting.

import { startAgent, startAggregator, type Proc } from '../../scripts/fleet-processes.ts'
import { relay } from './relay.ts'

/** The four nodes, the first two in group aws, the last two in cilium. */
export const FLEET_NODES = ['n1', 'n2', 'n3', 'n4'] as const
export const fleetGroup = (i: number): 'aws' | 'cilium' => i < 2 ? 'aws' : 'cilium'
/** Probe and report interval of every process, ms. */
export const FLEET_INTERVAL_MS = 1000
/** What every process of the fleet runs with: one interval, a 1 s heartbeat, quiet logs. */
export const FLEET_ENV = { PINGFLEET_INTERVAL: `${FLEET_INTERVAL_MS}ms`, PINGFLEET_HEARTBEAT: '1s', PINGFLEET_LOG_LEVEL: 'warn' }
/** The agents add a short probe timeout and fast reconnects, so faults and restarts show within seconds. */
export const FLEET_AGENT_ENV = { ...FLEET_ENV, PINGFLEET_PROBE_TIMEOUT: '500ms', PINGFLEET_RECONNECT_MIN: '100ms', PINGFLEET_RECONNECT_MAX: '500ms' }

export interface RelayedFleetOptions {
  token: string
  /** The aggregator's address; default 127.0.0.1 (fleet-processes' default). */
  aggregatorHost?: string
  aggregatorPort: number
  /** One port for every agent and its relay; they differ by address. */
  agentPort: number
  /** Where agent `i` listens, and where its relay listens (the pod IP its peers are told). */
  listenIp: (i: number) => string
  podIp: (i: number) => string
  /** Node names; default FLEET_NODES. */
  nodes?: readonly string[]
  /** Labels of agent `i`; default `{ cniplugin: fleetGroup(i) }`. */
  labels?: (i: number) => Record<string, string>
  /** Added to FLEET_ENV for the aggregator (e.g. PINGFLEET_GATES_FILE). */
  aggregatorEnv?: Record<string, string>
}

export interface RelayedFleet {
  /** The running aggregator; replaced by restartAggregator(). */
  aggregator: Proc
  agents: Proc[]
  nodes: readonly string[]
  /** Closes agent `i`'s relay: its peers' new connections are refused, open ones closed. */
  refuse: (i: number) => Promise<void>
  /** Opens agent `i`'s relay again. */
  admit: (i: number) => Promise<void>
  /** Kills the aggregator (SIGKILL) unless it is already gone, and starts a new one with the same options. */
  restartAggregator: () => Promise<Proc>
  /** Kills every process (SIGKILL) and closes the relays. Idempotent. */
  stop: () => Promise<void>
}

/**
 * Starts the aggregator, the relays and the agents, one after the other (each agent once healthy).
 * Rejects, after stopping what did start, when a process does not become healthy (fleet-processes' error).
 */
export async function startRelayedFleet (o: RelayedFleetOptions): Promise<RelayedFleet> {
  const nodes = o.nodes ?? FLEET_NODES
  const labels = o.labels ?? ((i: number) => ({ cniplugin: fleetGroup(i) }))
  const startOne = (): Promise<Proc> => startAggregator({
    ...(o.aggregatorHost === undefined ? {} : { host: o.aggregatorHost }),
    port: o.aggregatorPort,
    token: o.token,
    env: { ...FLEET_ENV, ...o.aggregatorEnv }
  })
  const relays: Array<{ close: () => Promise<void> } | null> = []
  const agents: Proc[] = []
  const fleet: RelayedFleet = {
    aggregator: await startOne(),
    agents,
    nodes,
    refuse: async i => {
      await relays[i]?.close()
      relays[i] = null
    },
    admit: async i => {
      relays[i] ??= await relay(o.podIp(i), o.listenIp(i), o.agentPort)
    },
    restartAggregator: async () => {
      await fleet.aggregator.stop('SIGKILL')
      fleet.aggregator = await startOne()
      return fleet.aggregator
    },
    stop: async () => {
      await Promise.all(agents.map(a => a.stop('SIGKILL')))
      await fleet.aggregator.stop('SIGKILL')
      await Promise.all(relays.map(r => r?.close().catch(() => {})))
      relays.fill(null)
    }
  }
  try {
    for (let i = 0; i < nodes.length; i++) relays.push(await relay(o.podIp(i), o.listenIp(i), o.agentPort))
    for (const [i, node] of nodes.entries()) {
      agents.push(await startAgent({
        node, ip: o.listenIp(i), podIp: o.podIp(i), port: o.agentPort, labels: labels(i),
        aggregatorUrl: fleet.aggregator.url, token: o.token, env: FLEET_AGENT_ENV
      }))
    }
  } catch (err) {
    await fleet.stop()
    throw err
  }
  return fleet
}
