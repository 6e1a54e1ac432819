// What a finding is: the diagnosis the aggregator draws from node-level results, one per fault, with
// its evidence. The kinds and their documentation (docs/findings.md) are defined here and nowhere else.

import type { ProbeKind } from '@pingfleet/protocol'

/** Every finding kind, with when it fires; docs/findings.md says what causes each and what to check first. */
export const FINDING_KINDS = {
  'node-inbound': 'peers fail toward one node while its own outbound probes succeed',
  'node-outbound': 'one node fails toward most peers while the others reach it',
  'node-isolated': 'both directions of one node fail, or its agent is cut off while Kubernetes says its pod is ready',
  'group-boundary': 'traffic between two groups fails, in one direction or both, and single nodes do not explain it',
  'dns-resolver': 'one resolver fails on the wire from many nodes',
  'dns-path': 'the resolver answers on the wire but getaddrinfo fails (search list, ndots, nsswitch, the A/AAAA race)',
  'dns-name': 'one name is NXDOMAIN or NODATA everywhere',
  'dns-group': 'DNS fails only from one group\'s nodes, or one node\'s',
  'service-path': 'pod probes succeed but probes through the Service fail, or some backends never answer through it',
  mtu: 'small probes succeed and large ones fail',
  loss: 'packets are lost toward or from a node, or across a boundary, while most probes still succeed',
  egress: 'external targets fail from a group while in-cluster traffic works',
  'agent-degraded': 'an agent\'s event loop lags, its threadpool saturates or it is overloaded: not a network fault'
} as const satisfies Record<string, string>

export type FindingKind = keyof typeof FINDING_KINDS
export const FINDING_KIND_NAMES = Object.keys(FINDING_KINDS) as FindingKind[]

/**
 * What a finding is about. `id` is stable while the fault lasts and names the subject in full, e.g.
 * `node/node-17`, `groups/aws->cilium`, `resolver/10.96.0.10`, `name/db.example.`, `service/pingfleet`,
 * `target/https://example.com/health`; a finding is tracked by kind and subject id.
 */
export interface FindingSubject {
  type: 'node' | 'group-pair' | 'group' | 'resolver' | 'dns-name' | 'service' | 'target'
  id: string
  node?: string
  group?: string
  /** group-pair: source and destination group, and whether both directions fail. */
  src?: string
  dst?: string
  bothWays?: boolean
  resolver?: string
  name?: string
  service?: string
  target?: string
}

/** One reason (and raw code) behind the failures, with how many failures it accounts for. */
export interface EvidenceReason {
  reason: string
  raw: string
  count: number
}

/** One cell quoted as evidence: a source node's results toward one target. */
export interface EvidenceCell {
  src: string
  target: string
  samples: number
  errors: number
}

/** The figures behind a finding for one probe kind (a finding may quote several, e.g. pod and mtu). */
export interface Evidence {
  probe: ProbeKind
  /** What the figures are, e.g. `inbound`, `outbound`, `aws->cilium`, `large`, `small`, `wire`, `getaddrinfo`. */
  scope: string
  samples: number
  errors: number
  /** errors / samples, or null with no samples (e.g. the side that is silent). */
  errorRatio: number | null
  /** Distinct peers (or nodes) that agree, out of those with results: "from 37 of 40 peers". */
  agreeing?: { count: number, of: number }
  /** Dominant first, at most 3. */
  reasons: EvidenceReason[]
  /** Worst first, at most 10. */
  cells?: EvidenceCell[]
  /** Kind-specific figures, e.g. `lossRatio`, `slowConnectRatio`, `size`. */
  figures?: Record<string, number | string>
}

/** One detection by one evaluation: a finding before it is tracked over time. */
export interface Detection {
  kind: FindingKind
  subject: FindingSubject
  evidence: Evidence[]
  /** 0..1: how sure the evaluator is; `scoreBasis` says from what, in words. */
  score: number
  scoreBasis: string
  /**
   * The summary in two parts around the time the finding started; the tracker joins them as
   * `${lead} since HH:MM:SS ${rest}` (rest may be empty), e.g. lead `node-17 (cilium): inbound pod
   * probes fail from 37 of 40 peers`, rest `(CONNECT_TIMEOUT); its own outbound probes succeed`.
   */
  lead: string
  rest: string
  /** The nodes and groups it concerns: gates' `forbidFindings` and incident correlation match on them. */
  nodes: string[]
  groups: string[]
}

export type FindingState = 'active' | 'resolved'

/** A detection tracked over evaluations, as the API shows it. */
export interface Finding extends Detection {
  /** `${kind}:${subject.id}` */
  id: string
  state: FindingState
  /** ISO 8601. */
  firstSeen: string
  lastSeen: string
  /** ISO 8601, when resolved. */
  resolvedAt?: string
  summary: string
}
