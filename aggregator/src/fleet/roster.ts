// Who is in the fleet: agents known from their hello, whether they are connected, what they
// have delivered, and the peer list every agent is sent whenever it changes. In-cluster, what
// discovery learns from Kubernetes (node labels, cordons, terminating pods) wins over the hello.
// A planned departure (the agent's close 1001, or its pod terminating) is `terminating` until the
// next hello, and is flagged urgent so peers stop probing before the agent's /ping goes away.

import { EventEmitter } from 'node:events'
import type { Hello, Labels, Peer, PeerState } from '@pingfleet/protocol'

export interface AgentEntry {
  node: string
  pod: string
  podIp: string
  port: number
  labels: Labels
  /** Labels as the agent's hello gave them, before Kubernetes' labels are laid over them. */
  helloLabels: Labels
  version: string
  bootId: string
  state: PeerState
  /**
   * The agent announced its shutdown (websocket close 1001) or Kubernetes showed its pod terminating:
   * it stays `terminating` until its next hello, even after the pod object is gone.
   */
  departed: boolean
  connected: boolean
  connectedAt: number | null
  /**
   * When the current boot (bootId) first said hello (ms): a reconnect with the same bootId keeps it,
   * a hello with a new bootId resets it, a disconnect leaves it. Node gates read a node's results
   * only from here on, so a restarted agent is not judged on its predecessor's samples.
   */
  bootStartedAt: number
  lastSeen: number
  lastReportAt: number | null
  /**
   * Reports of the current boot that never arrived: gaps after a seq this aggregator applied (the agent
   * dropped them from its full buffer during a long outage), also across an expiry of the entry
   * (REMEMBERED_BOOTS). A restarted aggregator cannot see what was dropped before its first report of a boot.
   */
  missed: number
  /** Reports applied for the current bootId, and duplicates dropped. */
  accepted: number
  duplicates: number
  /** First seq of the current boot this aggregator applied: with accepted and lastSeq it shows gaps. */
  firstSeq: number | null
  /** Highest seq applied per bootId; a few boots are kept so a late reconnect still dedups. */
  lastSeq: Map<string, number>
  /** The agent's clock minus the aggregator's (ms), measured on its current connection; null before a report says. */
  clockOffsetMs: number | null
}

const BOOTS_KEPT = 4

/** What Kubernetes says about one node (from discovery); it wins over the agent's own hello. */
export interface KubeNodeInfo {
  /** The node's values of the labels discovery manages. */
  labels: Labels
  /** Every label key discovery manages: a key listed here but absent from `labels` is removed. */
  replaces: readonly string[]
  /** spec.unschedulable: its agent is shown `draining`. */
  cordoned: boolean
  /** Agent pods on the node with a deletionTimestamp: an agent from one of them is `terminating`. */
  terminatingPods: readonly string[]
}

/**
 * The roster's events. `change` fires on every revision; `urgent` is true when an agent just turned
 * `terminating`: its peers must get the list before its /ping server closes, so that push is not
 * coalesced. `expire` fires once per agent the TTL removes, before the `change` that follows, so
 * whatever keeps per-node state (totals, ingest's layouts, agent health) drops it there.
 */
export interface RosterEvents {
  change: [urgent: boolean]
  expire: [node: string]
}

/**
 * Expired agents whose last applied seq is remembered, so an agent that comes back with the same boot
 * after an outage longer than the peer TTL is still deduplicated, and the reports it dropped meanwhile
 * still show as missed. ~100 bytes each; the oldest is forgotten past this many.
 */
export const REMEMBERED_BOOTS = 20_000

export class Roster extends EventEmitter<RosterEvents> {
  private readonly agents = new Map<string, AgentEntry>()
  /** node → its expired boot and that boot's highest applied seq, oldest first. */
  private readonly remembered = new Map<string, { bootId: string, lastSeq: number }>()
  private readonly kube = new Map<string, KubeNodeInfo>()
  private readonly ttlMs: number
  private revisionCounter = 0

  constructor (ttlMs: number) {
    super()
    this.ttlMs = ttlMs
  }

  get revision (): number { return this.revisionCounter }

  get (node: string): AgentEntry | undefined {
    return this.agents.get(node)
  }

  all (): AgentEntry[] {
    return [...this.agents.values()]
  }

  /** Registers a hello; returns the highest seq already applied for this node and boot. */
  join (hello: Hello, now: number): AgentEntry {
    let entry = this.agents.get(hello.node)
    const labels = this.labelsOf(hello.node, hello.labels)
    // A hello means the agent is back: an earlier departure no longer holds (Kubernetes may still say so).
    const departed = this.kubeTerminating(hello.node, hello.pod)
    const state = this.stateOf(hello.node, departed)
    const changed = entry === undefined || entry.podIp !== hello.podIp || entry.port !== hello.port ||
      !sameLabels(entry.labels, labels) || entry.state !== state
    const urgent = state === 'terminating' && entry?.state !== 'terminating'
    if (entry === undefined) {
      const before = this.remembered.get(hello.node)
      this.remembered.delete(hello.node)
      entry = {
        node: hello.node, pod: hello.pod, podIp: hello.podIp, port: hello.port, labels, helloLabels: hello.labels,
        version: hello.version, bootId: hello.bootId, state, departed, connected: true, connectedAt: now,
        bootStartedAt: now, lastSeen: now, lastReportAt: null, accepted: 0, duplicates: 0, missed: 0, firstSeq: null, lastSeq: new Map(), clockOffsetMs: null
      }
      if (before !== undefined) entry.lastSeq.set(before.bootId, before.lastSeq)
      this.agents.set(hello.node, entry)
    } else {
      if (entry.bootId !== hello.bootId) {
        entry.accepted = 0
        entry.duplicates = 0
        entry.missed = 0
        entry.firstSeq = null
        entry.bootStartedAt = now
      }
      Object.assign(entry, {
        pod: hello.pod, podIp: hello.podIp, port: hello.port, labels, helloLabels: hello.labels, version: hello.version,
        bootId: hello.bootId, state, departed, connected: true, connectedAt: now, lastSeen: now, clockOffsetMs: null
      })
    }
    if (!entry.lastSeq.has(hello.bootId)) {
      entry.lastSeq.set(hello.bootId, 0)
      while (entry.lastSeq.size > BOOTS_KEPT) entry.lastSeq.delete(entry.lastSeq.keys().next().value!)
    }
    if (changed) this.bump(urgent)
    return entry
  }

  /**
   * Records what Kubernetes says about a node (null: the node is gone). A known agent whose labels
   * or state change is updated at once and the peer list is pushed again, so a relabelled node
   * moves to its new group for every sample from now on.
   */
  setKube (node: string, info: KubeNodeInfo | null): void {
    if (info === null) this.kube.delete(node)
    else this.kube.set(node, info)
    const entry = this.agents.get(node)
    if (entry === undefined) return
    const labels = this.labelsOf(node, entry.helloLabels)
    if (this.kubeTerminating(node, entry.pod)) entry.departed = true
    const state = this.stateOf(node, entry.departed)
    if (sameLabels(entry.labels, labels) && entry.state === state) return
    const urgent = state === 'terminating' && entry.state !== 'terminating'
    entry.labels = labels
    entry.state = state
    this.bump(urgent)
  }

  /**
   * The agent announced a planned shutdown (it closed its websocket with 1001): it is `terminating`
   * from now until its next hello, and the change is urgent. Unknown nodes are ignored.
   */
  depart (node: string): void {
    const entry = this.agents.get(node)
    if (entry === undefined) return
    entry.departed = true
    if (entry.state === 'terminating') return
    entry.state = 'terminating'
    this.bump(true)
  }

  private labelsOf (node: string, hello: Labels): Labels {
    const info = this.kube.get(node)
    if (info === undefined) return hello
    const labels = { ...hello }
    for (const key of info.replaces) delete labels[key]
    return Object.assign(labels, info.labels)
  }

  private kubeTerminating (node: string, pod: string): boolean {
    return this.kube.get(node)?.terminatingPods.includes(pod) === true
  }

  private stateOf (node: string, departed: boolean): PeerState {
    if (departed) return 'terminating'
    return this.kube.get(node)?.cordoned === true ? 'draining' : 'ready'
  }

  disconnect (node: string, now: number): void {
    const entry = this.agents.get(node)
    if (entry === undefined) return
    entry.connected = false
    entry.connectedAt = null
    entry.lastSeen = now
  }

  /**
   * Decides whether a report is new. Returns true (and records it) when seq is above the highest
   * applied for this boot; false for a duplicate.
   */
  accept (node: string, bootId: string, seq: number, now: number): boolean {
    const entry = this.agents.get(node)
    if (entry === undefined) return false
    entry.lastSeen = now
    const last = entry.lastSeq.get(bootId) ?? 0
    if (seq <= last) {
      entry.duplicates++
      return false
    }
    entry.lastSeq.set(bootId, seq)
    if (bootId === entry.bootId) {
      if (last > 0) entry.missed += seq - last - 1
      entry.accepted++
      entry.firstSeq ??= seq
    }
    entry.lastReportAt = now
    return true
  }

  /** Forgets agents that have been disconnected for longer than the TTL, emitting `expire` for each. */
  expire (now: number): void {
    const removed: string[] = []
    for (const [node, entry] of this.agents) {
      if (!entry.connected && now - entry.lastSeen > this.ttlMs) {
        this.agents.delete(node)
        removed.push(node)
        const lastSeq = entry.lastSeq.get(entry.bootId)
        if (lastSeq !== undefined) this.remember(node, entry.bootId, lastSeq)
      }
    }
    if (removed.length === 0) return
    for (const node of removed) this.emit('expire', node)
    this.bump()
  }

  peers (): Peer[] {
    const out: Peer[] = []
    for (const e of this.agents.values()) {
      out.push({ node: e.node, podIp: e.podIp, port: e.port, labels: e.labels, state: e.state })
    }
    return out
  }

  private remember (node: string, bootId: string, lastSeq: number): void {
    this.remembered.delete(node)
    this.remembered.set(node, { bootId, lastSeq })
    if (this.remembered.size > REMEMBERED_BOOTS) this.remembered.delete(this.remembered.keys().next().value!)
  }

  private bump (urgent = false): void {
    this.revisionCounter++
    this.emit('change', urgent)
  }
}

function sameLabels (a: Labels, b: Labels): boolean {
  const ak = Object.keys(a)
  if (ak.length !== Object.keys(b).length) return false
  for (const k of ak) if (a[k] !== b[k]) return false
  return true
}
