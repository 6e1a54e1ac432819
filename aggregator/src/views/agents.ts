// The agent list: every agent the roster knows with its delivery counters and health, and, in-cluster,
// the agents Kubernetes expects that never connected, each disconnected one with why.

import type { Labels, PeerState } from '@pingfleet/protocol'
import type { AgentHealth } from '../fleet/agent-health.ts'
import type { Fleet } from '../fleet/fleet.ts'

export interface AgentRow {
  node: string
  pod: string
  podIp: string
  port: number
  labels: Labels
  group: string
  version: string
  bootId: string
  state: PeerState
  connected: boolean
  /** Why a disconnected agent is not connected; null when connected. */
  reason: string | null
  lastReportAt: string | null
  /** The agent's clock minus the aggregator's (s); null until a report says. */
  clockOffsetSeconds: number | null
  /** Delivery of the current boot's reports: applied, duplicates dropped, seqs that never arrived (see AgentEntry.missed). */
  reports: { accepted: number, duplicates: number, missed: number, firstSeq: number | null, lastSeq: number }
  degraded: boolean
  degradedReason: 'lagged' | 'overloaded' | null
  degradedDetail: string | null
  laggedRatio: number | null
  cpu: { periods: number, throttledPeriods: number, throttledSeconds: number } | null
}

export interface AgentSources {
  fleet: Fleet
  /** Each agent's degraded verdict and CPU throttling; without it every agent reads not degraded. */
  health?: AgentHealth
}

/** Every agent, sorted by node. Throws nothing. */
export function listAgents (sources: AgentSources): AgentRow[] {
  const { fleet, health } = sources
  const healthOf = (node: string): Pick<AgentRow, 'degraded' | 'degradedReason' | 'degradedDetail' | 'laggedRatio' | 'cpu'> => {
    const verdict = health?.verdict(node)
    const cpu = health?.cpu(node) ?? null
    return {
      degraded: verdict?.degraded ?? false,
      degradedReason: verdict?.degradedReason ?? null,
      degradedDetail: verdict?.degradedDetail ?? null,
      laggedRatio: verdict?.laggedRatio ?? null,
      cpu: cpu === null ? null : { periods: cpu.periods, throttledPeriods: cpu.throttledPeriods, throttledSeconds: cpu.throttledUsec / 1e6 }
    }
  }
  // In-cluster, the fleet model lists the expected agents that never connected and says why.
  const missing = new Map(fleet.missingAgents().map(m => [m.node, m]))
  const roster = fleet.roster
  const known: AgentRow[] = roster.all().map(a => ({
    node: a.node,
    pod: a.pod,
    podIp: a.podIp,
    port: a.port,
    labels: a.labels,
    group: fleet.groupOfAgent(a),
    version: a.version,
    bootId: a.bootId,
    state: a.state,
    connected: a.connected,
    reason: a.connected ? null : missing.get(a.node)?.reason ?? fleet.unexpectedReason(a.node) ?? 'disconnected; kept until PINGFLEET_PEER_TTL',
    lastReportAt: a.lastReportAt === null ? null : new Date(a.lastReportAt).toISOString(),
    clockOffsetSeconds: a.clockOffsetMs === null ? null : a.clockOffsetMs / 1000,
    reports: { accepted: a.accepted, duplicates: a.duplicates, missed: a.missed, firstSeq: a.firstSeq, lastSeq: a.lastSeq.get(a.bootId) ?? 0 },
    ...healthOf(a.node)
  }))
  // Expected by Kubernetes but never heard from: the nodes whose agent cannot reach us.
  for (const m of missing.values()) {
    if (roster.get(m.node) !== undefined) continue
    known.push({
      node: m.node, pod: m.pod, podIp: m.podIp, port: 0, labels: m.labels, group: fleet.groupOfLabels(m.labels), version: '', bootId: '',
      state: 'ready', connected: false, reason: m.reason, lastReportAt: null, clockOffsetSeconds: null, reports: { accepted: 0, duplicates: 0, missed: 0, firstSeq: null, lastSeq: 0 },
      ...healthOf(m.node)
    })
  }
  return known.sort((a, b) => a.node.localeCompare(b.node))
}
