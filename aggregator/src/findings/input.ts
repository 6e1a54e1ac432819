// What the finding evaluators read: the fleet as it is now (nodes, their groups, their agents'
// standing) and the stores. Each evaluator family builds its own input from these (network.ts,
// dns-service.ts), so tests can hand it synthetic node matrices instead.

import type { AgentHealth } from '../fleet/agent-health.ts'
import type { Fleet } from '../fleet/fleet.ts'
import type { Store } from '../store/store.ts'

/** One node of the fleet as findings see it. */
export interface FindingNode {
  name: string
  group: string
  /** Whether its agent has an open websocket now. */
  connected: boolean
  /** In-cluster: whether Kubernetes says its agent pod is ready; null without discovery. */
  podReady: boolean | null
  /** Why its agent is not a trustworthy witness (AgentHealth's degraded detail), or null. */
  degraded: string | null
}

/** The moment and span one evaluation judges. */
export interface FindingsContext {
  /** Evaluation time, ms since the epoch. */
  at: number
  /** The window the evaluation reads, ms. */
  windowMs: number
  /** The label that names groups (config.groupLabel). */
  groupLabel: string
  nodes: FindingNode[]
}

/** Where the evaluators read from. */
export interface FindingsSources {
  nodes: Store
  groups: Store
  fleet: Fleet
  health: AgentHealth
}

/**
 * The fleet as one evaluation sees it: every node the roster or Kubernetes knows, except agents that
 * announced their departure (terminating: a planned departure is no fault), sorted by name, each with
 * its group by `groupLabel` and its agent's standing. `at` and `windowMs` in ms.
 */
export function findingsContext (sources: FindingsSources, at: number, windowMs: number, groupLabel: string): FindingsContext {
  const nodes: FindingNode[] = []
  for (const facts of sources.fleet.nodes().values()) {
    if (facts.state === 'terminating') continue
    const verdict = sources.health.verdict(facts.node)
    nodes.push({
      name: facts.node,
      group: facts.group,
      connected: facts.connected,
      podReady: facts.kube === null ? null : facts.kube.podReady,
      degraded: verdict.degraded ? verdict.degradedDetail : null
    })
  }
  nodes.sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0)
  return { at, windowMs, groupLabel, nodes }
}
