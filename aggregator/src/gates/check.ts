// The vocabulary of a gate's answer: verdicts, criteria, and one check with its evidence. Both pair
// rules (eval.ts) and node rules (nodes.ts) produce these.

export const VERDICTS = ['pass', 'fail', 'insufficient_data'] as const
export type Verdict = typeof VERDICTS[number]

export const CRITERIA = [
  'minSamples', 'maxErrorRatio', 'maxP50', 'maxP99', 'maxErrorRatioByReason', 'minCoverage', 'maxStaleness', 'minServiceBackendRatio',
  'probedMembers', 'nodeScope', 'nodeCoverage', 'minPeers', 'maxNodeErrorRatio', 'maxNodeP99', 'maxNodeExcessErrorRatio',
  'passFor', 'judgedPairs', 'forbidFindings'
] as const
export type Criterion = typeof CRITERIA[number]

/** A selected node's standing on one check, quoted in the evidence (worst first). */
export interface NodeEvidence {
  node: string
  verdict: Verdict
  observed: number | null
  samples: number
  peers: number
  detail: string
}

export interface Check {
  /** Stable within a gate, e.g. "pod aws->cilium maxErrorRatio"; the `check` label of the gate metrics. */
  id: string
  criterion: Criterion
  verdict: Verdict
  /** The measured value (ratio, seconds or count); null when there was nothing to measure. */
  observed: number | null
  threshold: number
  samples: number | null
  window: string | null
  probe?: string
  src?: string
  dst?: string
  group?: string
  reason?: string
  service?: string
  /** Node checks: which way the probes went, relative to the selected nodes. */
  direction?: 'inbound' | 'outbound'
  /** Node checks: the peer group (pod, mtu) or target (other kinds) the nodes were judged against, '*' for all. */
  peers?: string
  /** Node checks: the selected nodes that did worst (fail, then insufficient, then the highest values), at most 10. */
  worst?: NodeEvidence[]
  /** forbidFindings checks: the finding kind, and the ids of the active findings that fail it (at most 10). */
  kind?: string
  findings?: string[]
  detail: string
}

/** The criteria node checks use. */
export type NodeCriterion = Extract<Criterion, 'nodeScope' | 'nodeCoverage' | 'minSamples' | 'minPeers' | 'maxNodeErrorRatio' | 'maxNodeP99' | 'maxNodeExcessErrorRatio'>

/** The fields of a Check that node checks fill in. */
export type NodeCheck = Pick<Check, 'id' | 'verdict' | 'observed' | 'threshold' | 'samples' | 'window' | 'probe' | 'direction' | 'peers' | 'worst' | 'detail'> & {
  criterion: NodeCriterion
}

/** A pair a rule names that cannot have data, so it is not required. */
export interface SkippedPair {
  probe: string
  src: string
  dst: string
  reason: string
}

/**
 * A measured value for a check's detail: 3 significant digits; with `seconds`, below 1 s in ms
 * ("2.5ms"), else in s ("1.2s"); null reads "nothing".
 */
export function formatValue (value: number | null, seconds = false): string {
  if (value === null) return 'nothing'
  const digits = (n: number): string => String(Number(n.toPrecision(3)))
  if (seconds) return value < 1 ? `${digits(value * 1000)}ms` : `${digits(value)}s`
  return digits(value)
}
