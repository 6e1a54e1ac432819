// The fleet's event log: what happened to nodes (joined, relabelled, cordoned, restarted, departed…)
// and when, read by the incident timeline to say "node-17 relabelled to cilium at 10:01:50".
// It diffs snapshots of the fleet model, so it needs no hook in the roster or discovery.

import type { Fleet, NodeFacts } from './fleet.ts'

export const FLEET_EVENT_TYPES = ['joined', 'relabelled', 'cordoned', 'uncordoned', 'restarted', 'disconnected', 'reconnected', 'departed'] as const
export type FleetEventType = typeof FLEET_EVENT_TYPES[number]

/** One change of one node. `at` in ms since the epoch. */
export interface FleetEvent {
  at: number
  node: string
  type: FleetEventType
  /** The node's group after the change. */
  group: string
  /** relabelled: the group it left. */
  from?: string
}

/**
 * Events kept, oldest dropped first. Measured: 10,000 events take ~1 MB of heap; at 1,000 nodes that
 * is ten full roll-outs (join, restart…) of the fleet. Incidents copy the events they quote, so
 * dropping an old event never changes a recorded incident.
 */
export const MAX_FLEET_EVENTS = 10_000

/** What one snapshot remembers of a node: only what the events compare. */
interface NodeMark {
  group: string
  cordoned: boolean
  bootId: string | null
  connected: boolean
  terminating: boolean
}

function markOf (facts: NodeFacts): NodeMark {
  return {
    group: facts.group,
    cordoned: facts.kube?.cordoned ?? facts.state === 'draining',
    bootId: facts.bootId,
    connected: facts.connected,
    terminating: facts.state === 'terminating'
  }
}

/** "node-17 relabelled to cilium (was aws)": one event in words, without its time. */
export function describeEvent (e: FleetEvent): string {
  switch (e.type) {
    case 'relabelled': return `${e.node} relabelled to ${e.group} (was ${e.from ?? '?'})`
    case 'joined': return `${e.node} joined (${e.group})`
    case 'restarted': return `${e.node} restarted (new agent boot, ${e.group})`
    default: return `${e.node} ${e.type} (${e.group})`
  }
}

export class FleetEventLog {
  private readonly fleet: Fleet
  private readonly now: () => number
  private readonly max: number
  /** Oldest first; at most `max`. */
  private readonly events: FleetEvent[] = []
  private marks = new Map<string, NodeMark>()
  private pending = false
  /** Events dropped because the log was full. */
  dropped = 0

  /**
   * Watches `fleet`: observes on every roster `change` (coalesced to one observation per turn of the
   * event loop, since a burst of hellos would otherwise diff the fleet once per hello) and whenever
   * observe() is called (the findings engine calls it every interval, which catches what the roster
   * does not announce: an agent restarted on the same pod IP, a cordon of a node without an agent).
   * `now` in ms since the epoch; `max` events kept (default MAX_FLEET_EVENTS).
   */
  constructor (options: { fleet: Fleet, now: () => number, max?: number }) {
    this.fleet = options.fleet
    this.now = options.now
    this.max = options.max ?? MAX_FLEET_EVENTS
    this.fleet.roster.on('change', this.onChange)
  }

  private readonly onChange = (): void => {
    if (this.pending) return
    this.pending = true
    setImmediate(() => {
      this.pending = false
      this.observe()
    })
  }

  /** Stops listening to the roster. */
  close (): void {
    this.fleet.roster.off('change', this.onChange)
  }

  /**
   * Compares the fleet now with the last observation and logs each difference. A restart is dated
   * by the new boot's first hello and a join by its agent's first hello (both known exactly); every
   * other change by `at` (default now), which is when it was seen: at most one interval late.
   */
  observe (at: number = this.now()): void {
    const next = new Map<string, NodeMark>()
    for (const facts of this.fleet.nodes().values()) {
      const mark = markOf(facts)
      next.set(facts.node, mark)
      const before = this.marks.get(facts.node)
      const node = facts.node
      const group = mark.group
      if (before === undefined) {
        this.push({ at: facts.bootStartedAt ?? at, node, type: 'joined', group })
        if (mark.cordoned) this.push({ at, node, type: 'cordoned', group })
        continue
      }
      if (before.group !== group) this.push({ at, node, type: 'relabelled', group, from: before.group })
      if (!before.cordoned && mark.cordoned) this.push({ at, node, type: 'cordoned', group })
      if (before.cordoned && !mark.cordoned) this.push({ at, node, type: 'uncordoned', group })
      if (before.bootId !== null && mark.bootId !== null && before.bootId !== mark.bootId) {
        this.push({ at: facts.bootStartedAt ?? at, node, type: 'restarted', group })
      } else if (!before.connected && mark.connected && before.bootId !== null) {
        this.push({ at, node, type: 'reconnected', group })
      }
      if (before.connected && !mark.connected && !mark.terminating) this.push({ at, node, type: 'disconnected', group })
      if (!before.terminating && mark.terminating) this.push({ at, node, type: 'departed', group })
    }
    for (const [node, before] of this.marks) {
      // Gone from the fleet: expired past the peer TTL, or removed from the cluster. Already
      // departed (a planned shutdown) is not said twice.
      if (!next.has(node) && !before.terminating) this.push({ at, node, type: 'departed', group: before.group })
    }
    this.marks = next
  }

  private push (event: FleetEvent): void {
    this.events.push(event)
    if (this.events.length > this.max) {
      this.events.shift()
      this.dropped++
    }
  }

  /** Events with `from <= at <= to` (ms), oldest first. */
  between (from: number, to: number): FleetEvent[] {
    return this.events.filter(e => e.at >= from && e.at <= to).sort((a, b) => a.at - b.at)
  }

  get size (): number { return this.events.length }
}
