// The fleet model: the one place that knows which group a node is in, which groups exist, how many
// agents each group should have, each node's state and labels, which nodes a label selector matches,
// and which expected agents are missing and why. It reads the roster (agents' hellos with Kubernetes' labels laid over them) and, in-cluster, discovery.

import type { Labels, PeerState } from '@pingfleet/protocol'
import type { LabelSelector } from './label-selector.ts'
import type { AgentEntry, Roster } from './roster.ts'

/** The group of a node that is not (or no longer) known, or lacks the label. */
export const UNKNOWN_GROUP = '(none)'

/** The `groupBy` value that makes every node its own group (the API's default). */
export const BY_NODE = 'node'

/** What Kubernetes says about a node (discovery): all its labels, the cordon, its agent pod. */
export interface KubeNodeFacts {
  labels: Labels
  cordoned: boolean
  /** A live agent pod on the node that is Running and, when it reports a Ready condition, Ready=True. */
  podReady: boolean
  /** Why the pod is not ready, when it is not. */
  podReason?: string
}

/** What the fleet model reads from Kubernetes; kube/discovery.ts implements it. */
export interface KubeSource {
  /**
   * The nodes that should run an agent (a live agent pod on a schedulable node), each with its
   * labels; null until discovery has listed, when its expectations would be empty rather than real.
   */
  expectedNodes: () => ReadonlyMap<string, Readonly<Labels>> | null
  /** Every node of the cluster with all its labels; null until discovery has listed. */
  nodeFacts: () => ReadonlyMap<string, KubeNodeFacts> | null
  /** Expected agents with no open websocket, each with why, sorted by node; empty until discovery has listed. */
  missing: () => ExpectedAgent[]
  /** Why a known but disconnected agent is not expected (its node gone or cordoned, no live pod), or null when it is. */
  unexpectedReason: (node: string) => string | null
}

/** An agent Kubernetes says should be running, for /api/v1/agents when it is not connected. */
export interface ExpectedAgent {
  node: string
  pod: string
  podIp: string
  /** The node's values of the labels discovery manages (the group label among them). */
  labels: Labels
  reason: string
}

/** One node as the fleet sees it: its agent (if any ever said hello) and Kubernetes' view (if in-cluster). */
export interface NodeFacts {
  node: string
  /** Kubernetes' labels over the agent's own (hello) labels. */
  labels: Labels
  group: string
  connected: boolean
  state: PeerState | null
  lastReportAt: number | null
  /** The current boot of its agent and when that boot first said hello (ms); null when no agent ever did. */
  bootId: string | null
  bootStartedAt: number | null
  /** Null without discovery (static mode) or when the node is not in the cluster. */
  kube: KubeNodeFacts | null
}

/** One group's agents, counted in one pass over the roster (and discovery). */
export interface GroupCensus {
  /** Agents the roster knows in the group: connected, or disconnected within the peer TTL; every state. */
  known: number
  /** Known agents that stay: every state but terminating (a planned departure is neither probed nor counted). */
  members: number
  connected: number
  /** The newest accepted report of any of its agents (ms since the epoch), or null. */
  newestReportAt: number | null
  /** Agents the group should have: discovery's count once it has listed, else `members`. */
  expected: number
}

export interface FleetOptions {
  roster: Roster
  /** The node label that names a node's group (PINGFLEET_GROUP_LABEL). */
  groupLabel: string
  /** In-cluster discovery; null or absent in static mode. */
  kube?: KubeSource | null
}

/** The value of `key` in `labels`, or UNKNOWN_GROUP: the one rule that turns labels into a group. */
function labelGroup (labels: Readonly<Labels>, key: string): string {
  return labels[key] ?? UNKNOWN_GROUP
}

/** A node's group in a snapshot from Fleet.nodes(); UNKNOWN_GROUP for a node it does not hold. */
export function groupIn (known: ReadonlyMap<string, NodeFacts>, node: string): string {
  return known.get(node)?.group ?? UNKNOWN_GROUP
}

/** The nodes of `known` whose labels `selector` matches, sorted by name. */
export function matchingNodes (selector: LabelSelector, known: ReadonlyMap<string, NodeFacts>): string[] {
  const out: string[] = []
  for (const [node, facts] of known) if (selector.matches(facts.labels)) out.push(node)
  return out.sort()
}

export class Fleet {
  readonly roster: Roster
  readonly groupLabel: string
  readonly #kube: KubeSource | null

  constructor (options: FleetOptions) {
    this.roster = options.roster
    this.groupLabel = options.groupLabel
    this.#kube = options.kube ?? null
  }

  /** Changes whenever a node's group may have changed (the roster's revision): a cache key for groupings. */
  get revision (): number { return this.roster.revision }

  /** The group a node with these labels is in. */
  groupOfLabels (labels: Readonly<Labels>): string {
    return labelGroup(labels, this.groupLabel)
  }

  /** The group of a known agent. */
  groupOfAgent (agent: AgentEntry): string {
    return labelGroup(agent.labels, this.groupLabel)
  }

  /** The group of a node by its agent's labels; UNKNOWN_GROUP when the roster does not know it. */
  groupOf (node: string): string {
    const agent = this.roster.get(node)
    return agent === undefined ? UNKNOWN_GROUP : labelGroup(agent.labels, this.groupLabel)
  }

  /**
   * A node → row/column name function for views grouped by `by`: BY_NODE keeps node names, any
   * other value is a label key read from labelsOf() (UNKNOWN_GROUP when absent), so `groupBy` sees
   * every Kubernetes label a gate's `nodeSelector` does. Reads Kubernetes' list once, when called.
   */
  grouping (by: string): (node: string) => string {
    if (by === BY_NODE) return node => node
    const kube = this.kubeNodes()
    return node => {
      const labels = this.labelsOf(node, kube)
      return labels === undefined ? UNKNOWN_GROUP : labelGroup(labels, by)
    }
  }

  /**
   * The labels of a node, the one answer both `groupBy` and `nodeSelector` read: every Kubernetes
   * label of the node over its agent's hello labels; undefined when neither the roster nor Kubernetes
   * knows it. Pass `kube` (from kubeNodes()) to read Kubernetes' list once for several nodes.
   */
  labelsOf (node: string, kube: ReadonlyMap<string, KubeNodeFacts> | null = this.kubeNodes()): Labels | undefined {
    const hello = this.roster.get(node)?.labels
    const k = kube?.get(node)
    if (k === undefined) return hello
    return hello === undefined ? k.labels : { ...hello, ...k.labels }
  }

  /**
   * Every group the fleet knows, with its counts: the roster's groups and, once discovery has
   * listed, the groups it expects agents in (so a group none of whose agents connect still shows).
   * One pass over the roster and one over discovery's expected nodes.
   */
  census (): Map<string, GroupCensus> {
    const out = new Map<string, GroupCensus>()
    const entry = (group: string): GroupCensus => {
      let c = out.get(group)
      if (c === undefined) out.set(group, c = { known: 0, members: 0, connected: 0, newestReportAt: null, expected: 0 })
      return c
    }
    for (const agent of this.roster.all()) {
      const c = entry(this.groupOfAgent(agent))
      c.known++
      if (agent.state !== 'terminating') c.members++
      if (agent.connected) c.connected++
      if (agent.lastReportAt !== null && (c.newestReportAt === null || agent.lastReportAt > c.newestReportAt)) c.newestReportAt = agent.lastReportAt
    }
    const kube = this.kubeExpected()
    if (kube === null) {
      for (const c of out.values()) c.expected = c.members
    } else {
      for (const [group, n] of kube) entry(group).expected = n
    }
    return out
  }

  /** Known groups, sorted: the keys of census(). */
  knownGroups (): string[] {
    return [...this.census().keys()].sort()
  }

  /** Agents a group should have: census().get(group).expected, or 0 for a group nobody knows. */
  expected (group: string): number {
    return this.census().get(group)?.expected ?? 0
  }

  /**
   * Agents per group for the pingfleet_agents_expected gauge: census().get(group).expected for every
   * known group, the one answer gates read too, so a terminating agent is not expected here either.
   */
  expectedAgents (): Map<string, number> {
    return new Map([...this.census()].map(([group, c]) => [group, c.expected]))
  }

  /** A group's members (every state but terminating): the agents peers should be probing. */
  membersOf (group: string): AgentEntry[] {
    return this.roster.all().filter(a => a.state !== 'terminating' && this.groupOfAgent(a) === group)
  }

  /** What Kubernetes says about every node; null in static mode or before discovery has listed. */
  kubeNodes (): ReadonlyMap<string, KubeNodeFacts> | null {
    return this.#kube?.nodeFacts() ?? null
  }

  /**
   * Every node the aggregator knows: the roster's agents and, with discovery, every node of the
   * cluster (a node whose agent never connected can still be selected, and then is not covered).
   * Pass `kube` (from kubeNodes()) to read Kubernetes' list once for several answers.
   */
  nodes (kube: ReadonlyMap<string, KubeNodeFacts> | null = this.kubeNodes()): Map<string, NodeFacts> {
    const out = new Map<string, NodeFacts>()
    for (const a of this.roster.all()) {
      const k = kube?.get(a.node) ?? null
      const labels = this.labelsOf(a.node, kube)!
      out.set(a.node, {
        node: a.node, labels, group: this.groupOfLabels(labels), connected: a.connected, state: a.state,
        lastReportAt: a.lastReportAt, bootId: a.bootId, bootStartedAt: a.bootStartedAt, kube: k
      })
    }
    for (const [node, k] of kube ?? []) {
      if (out.has(node)) continue
      const labels = this.labelsOf(node, kube)!
      out.set(node, {
        node, labels, group: this.groupOfLabels(labels), connected: false, state: null,
        lastReportAt: null, bootId: null, bootStartedAt: null, kube: k
      })
    }
    return out
  }

  /** One node's state, or undefined when neither the roster nor Kubernetes knows it. */
  node (name: string): NodeFacts | undefined {
    return this.nodes().get(name)
  }

  /** The known nodes whose labels (Kubernetes' over the hello's) match `selector`, sorted. */
  select (selector: LabelSelector): string[] {
    return matchingNodes(selector, this.nodes())
  }

  /** Expected agents with no open websocket, each with why (discovery's), sorted by node; empty in static mode. */
  missingAgents (): ExpectedAgent[] {
    return this.#kube?.missing() ?? []
  }

  /** Why a known, disconnected agent is not expected by Kubernetes; null when it is, or in static mode. */
  unexpectedReason (node: string): string | null {
    return this.#kube?.unexpectedReason(node) ?? null
  }

  /** Discovery's expected agents per group, or null when there is no discovery or it has not listed. */
  private kubeExpected (): Map<string, number> | null {
    const nodes = this.#kube?.expectedNodes() ?? null
    if (nodes === null) return null
    const out = new Map<string, number>()
    for (const labels of nodes.values()) {
      const group = this.groupOfLabels(labels)
      out.set(group, (out.get(group) ?? 0) + 1)
    }
    return out
  }
}
