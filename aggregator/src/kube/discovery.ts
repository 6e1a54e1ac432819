// In-cluster discovery: one watch of Nodes and one of the agent Pods. It lays each node's group
// label and zone over its agent's hello labels, marks cordoned nodes `draining` and deleted pods
// `terminating`, and knows which agents are expected (a live agent pod on a schedulable node), so
// a node whose agent never reaches the aggregator still counts against coverage.

import type { Logger } from 'pino'
import type { Labels } from '@pingfleet/protocol'
import type { ExpectedAgent, KubeNodeFacts, KubeSource } from '../fleet/fleet.ts'
import type { KubeClient } from './client.ts'
import { KubeWatch, type KubeObject } from './watch.ts'
import type { Roster } from '../fleet/roster.ts'

export type { ExpectedAgent, KubeNodeFacts }

export const ZONE_LABEL = 'topology.kubernetes.io/zone'

export interface KubeNode extends KubeObject {
  spec?: { unschedulable?: boolean }
}

export interface KubePod extends KubeObject {
  spec?: {
    nodeName?: string
    affinity?: { nodeAffinity?: { requiredDuringSchedulingIgnoredDuringExecution?: { nodeSelectorTerms?: Array<{ matchFields?: Array<{ key: string, operator: string, values?: string[] }> }> } } }
  }
  status?: { phase?: string, podIP?: string, conditions?: Array<{ type: string, status: string }> }
}

export interface DiscoveryOptions {
  client: KubeClient
  namespace: string
  /** Label selector of the agent pods, such as app.kubernetes.io/component=agent. */
  agentSelector: string
  /** Managed with the zone label: laid over the agents' hello labels. */
  groupLabel: string
  roster: Roster
  log: Logger
  watchSeconds?: number
  backoffMinMs?: number
}

/**
 * The node an agent pod is for. A DaemonSet pod names it in spec.nodeName once scheduled, and
 * before that in its node affinity (matchFields metadata.name), so a Pending pod counts too.
 */
export function nodeOfPod (pod: KubePod): string | null {
  if (pod.spec?.nodeName !== undefined && pod.spec.nodeName !== '') return pod.spec.nodeName
  for (const term of pod.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms ?? []) {
    for (const field of term.matchFields ?? []) {
      if (field.key === 'metadata.name' && field.operator === 'In' && field.values?.length === 1) return field.values[0]!
    }
  }
  return null
}

/**
 * Why an agent pod is not ready, or null when it is: the one readiness rule of discovery, read by the
 * gates (nodeFacts) and the agent list (missing). Kubernetes counts a pod ready only when its Ready
 * condition is True, so Unknown (its kubelet stopped reporting) is not ready, like False. A pod that
 * reports no Ready condition at all is judged by its phase (Running is ready).
 */
export function podNotReadyReason (pod: KubePod): string | null {
  const phase = pod.status?.phase ?? 'Pending'
  if (phase !== 'Running') return `agent pod ${pod.metadata.name} is ${phase}`
  const ready = pod.status?.conditions?.find(c => c.type === 'Ready')
  if (ready !== undefined && ready.status !== 'True') return `agent pod ${pod.metadata.name} is Running but not Ready`
  return null
}

export class Discovery implements KubeSource {
  private readonly options: DiscoveryOptions
  private readonly nodes = new Map<string, KubeNode>()
  private readonly pods = new Map<string, KubePod>()
  /** Agent pod names per node, kept alongside `pods` so a node's pods are found without a scan. */
  private readonly podsByNode = new Map<string, Set<string>>()
  private readonly managed: readonly string[]
  readonly nodeWatch: KubeWatch<KubeNode>
  readonly podWatch: KubeWatch<KubePod>

  constructor (options: DiscoveryOptions) {
    this.options = options
    this.managed = Object.freeze([...new Set([options.groupLabel, ZONE_LABEL])])
    const common = { client: options.client, log: options.log, watchSeconds: options.watchSeconds, backoffMinMs: options.backoffMinMs }
    this.nodeWatch = new KubeWatch<KubeNode>({
      ...common,
      path: '/api/v1/nodes',
      onList: items => {
        const before = new Set(this.nodes.keys())
        this.nodes.clear()
        for (const node of items) this.nodes.set(node.metadata.name, node)
        for (const name of new Set([...before, ...this.nodes.keys()])) this.refresh(name)
      },
      onEvent: (type, node) => {
        const name = node.metadata.name
        if (type === 'DELETED') this.nodes.delete(name)
        else this.nodes.set(name, node)
        this.refresh(name)
      }
    })
    this.podWatch = new KubeWatch<KubePod>({
      ...common,
      path: `/api/v1/namespaces/${encodeURIComponent(options.namespace)}/pods`,
      labelSelector: options.agentSelector,
      onList: items => {
        const touched = new Set(this.podsByNode.keys())
        this.pods.clear()
        this.podsByNode.clear()
        for (const pod of items) this.putPod(pod)
        for (const node of this.podsByNode.keys()) touched.add(node)
        for (const node of touched) this.refresh(node)
      },
      onEvent: (type, pod) => {
        const old = this.pods.get(pod.metadata.name)
        const oldNode = old === undefined ? null : nodeOfPod(old)
        this.dropPod(pod.metadata.name)
        if (type !== 'DELETED') this.putPod(pod)
        const node = nodeOfPod(pod)
        if (oldNode !== null && oldNode !== node) this.refresh(oldNode)
        if (node !== null) this.refresh(node)
      }
    })
  }

  /** Both watches have listed at least once: expectations are real, not empty. */
  get synced (): boolean { return this.nodeWatch.synced && this.podWatch.synced }

  start (): void {
    this.nodeWatch.start()
    this.podWatch.start()
  }

  async stop (): Promise<void> {
    await Promise.all([this.nodeWatch.stop(), this.podWatch.stop()])
  }

  /** The node a pod of ours runs on (for checking a token's pod claim when it carries no node). */
  nodeOfPod (pod: string): string | null {
    const found = this.pods.get(pod)
    return found === undefined ? null : nodeOfPod(found)
  }

  /**
   * Whether Kubernetes would have this agent pod speak for this node, for choosing between two agents
   * that claim one node: false when the pod is being deleted, finished, not ready, or scheduled to
   * another node; true otherwise, including a pod the watch has not delivered yet (a new rollout pod
   * may connect before its watch event arrives) and any pod before the first list.
   */
  podStanding (node: string, pod: string): boolean {
    if (!this.podWatch.synced) return true
    const found = this.pods.get(pod)
    if (found === undefined) return true
    if (nodeOfPod(found) !== node) return false
    if (found.metadata.deletionTimestamp !== undefined) return false
    const phase = found.status?.phase
    if (phase === 'Succeeded' || phase === 'Failed') return false
    return found.status?.conditions?.find(c => c.type === 'Ready')?.status !== 'False'
  }

  /**
   * The nodes that should run an agent (a live agent pod on a node that exists and is not cordoned),
   * each with all its labels (not copied: read only); null until both watches have listed.
   */
  expectedNodes (): Map<string, Readonly<Labels>> | null {
    if (!this.synced) return null
    const out = new Map<string, Readonly<Labels>>()
    for (const node of this.expectedNames()) out.set(node, this.nodes.get(node)!.metadata.labels ?? {})
    return out
  }

  /**
   * Every node of the cluster with all its labels (node-scoped gates select on any of them, not
   * only the ones laid over the roster), its cordon, and whether its agent pod is ready: live and
   * ready by podNotReadyReason(). Null until both watches have listed.
   */
  nodeFacts (): Map<string, KubeNodeFacts> | null {
    if (!this.synced) return null
    const out = new Map<string, KubeNodeFacts>()
    for (const [name, node] of this.nodes) {
      const pod = this.livePod(name)
      const reason = pod === undefined ? 'no live agent pod on the node' : podNotReadyReason(pod)
      const facts: KubeNodeFacts = { labels: { ...node.metadata.labels }, cordoned: node.spec?.unschedulable === true, podReady: reason === null }
      if (reason !== null) facts.podReason = reason
      out.set(name, facts)
    }
    return out
  }

  /** Expected agents with no open websocket, each with why, sorted by node. */
  missing (): ExpectedAgent[] {
    const out: ExpectedAgent[] = []
    for (const node of this.expectedNames()) {
      const entry = this.options.roster.get(node)
      if (entry?.connected === true) continue
      const pod = this.livePod(node)!
      const reason = podNotReadyReason(pod) ?? (entry === undefined
        ? `agent pod ${pod.metadata.name} is Running but has not connected to the aggregator`
        : `agent pod ${pod.metadata.name} is Running but disconnected from the aggregator`)
      const labels = this.labelsOf(this.nodes.get(node)!)
      out.push({ node, pod: pod.metadata.name, podIp: pod.status?.podIP ?? '', labels, reason })
    }
    return out.sort((a, b) => a.node.localeCompare(b.node))
  }

  /** Why a known but disconnected agent is not expected, or null when it is. */
  unexpectedReason (node: string): string | null {
    if (!this.synced) return null
    const found = this.nodes.get(node)
    if (found === undefined) return `node ${node} is not in the cluster`
    if (found.spec?.unschedulable === true) return `node ${node} is cordoned`
    if (this.livePod(node) === undefined) return `no live agent pod on node ${node}`
    return null
  }

  private * expectedNames (): Iterable<string> {
    for (const [name, node] of this.nodes) {
      if (node.spec?.unschedulable === true) continue
      if (this.livePod(name) !== undefined) yield name
    }
  }

  private livePod (node: string): KubePod | undefined {
    for (const name of this.podsByNode.get(node) ?? []) {
      const pod = this.pods.get(name)!
      if (pod.metadata.deletionTimestamp === undefined && pod.status?.phase !== 'Succeeded' && pod.status?.phase !== 'Failed') return pod
    }
    return undefined
  }

  private labelsOf (node: KubeNode): Labels {
    const labels: Labels = {}
    for (const key of this.managed) {
      const value = node.metadata.labels?.[key]
      if (value !== undefined) labels[key] = value
    }
    return labels
  }

  private putPod (pod: KubePod): void {
    this.pods.set(pod.metadata.name, pod)
    const node = nodeOfPod(pod)
    if (node === null) return
    let set = this.podsByNode.get(node)
    if (set === undefined) this.podsByNode.set(node, set = new Set())
    set.add(pod.metadata.name)
  }

  private dropPod (name: string): void {
    const pod = this.pods.get(name)
    if (pod === undefined) return
    this.pods.delete(name)
    const node = nodeOfPod(pod)
    if (node === null) return
    const set = this.podsByNode.get(node)
    set?.delete(name)
    if (set?.size === 0) this.podsByNode.delete(node)
  }

  /** Tells the roster what Kubernetes now says about one node. */
  private refresh (name: string): void {
    const node = this.nodes.get(name)
    if (node === undefined) {
      this.options.roster.setKube(name, null)
      return
    }
    const terminatingPods: string[] = []
    for (const podName of this.podsByNode.get(name) ?? []) {
      if (this.pods.get(podName)!.metadata.deletionTimestamp !== undefined) terminatingPods.push(podName)
    }
    this.options.roster.setKube(name, {
      labels: this.labelsOf(node),
      replaces: this.managed,
      cordoned: node.spec?.unschedulable === true,
      terminatingPods
    })
  }
}
