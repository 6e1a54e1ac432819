// Synthetic detections for the findings tests: the evaluators are written elsewhere, so the tracker,
// incidents, routes, metrics and CLI are tested with detections of any kind made here.

import type { Detection, FindingKind } from '../../src/findings/finding.ts'

/** A node finding of `kind` about `node` in `group`, `errorRatio` of its inbound pod probes failing. */
export function nodeDetection (node: string, group: string, options: { kind?: FindingKind, score?: number, errorRatio?: number, reason?: string, agreeing?: number } = {}): Detection {
  const errorRatio = options.errorRatio ?? 0.9
  const agreeing = options.agreeing ?? 9
  const reason = options.reason ?? 'CONNECT_TIMEOUT'
  return {
    kind: options.kind ?? 'node-inbound',
    subject: { type: 'node', id: `node/${node}`, node, group },
    evidence: [{
      probe: 'pod',
      scope: 'inbound',
      samples: 100,
      errors: Math.round(100 * errorRatio),
      errorRatio,
      agreeing: { count: agreeing, of: 10 },
      reasons: [{ reason, raw: reason === 'CONNECT_TIMEOUT' ? 'ETIMEDOUT' : reason, count: Math.round(100 * errorRatio) }],
      cells: [{ src: 'peer-1', target: node, samples: 10, errors: 9 }]
    }],
    score: options.score ?? 0.9,
    scoreBasis: `${agreeing} of 10 peers agree`,
    lead: `${node} (${group}): inbound pod probes fail from ${agreeing} of 10 peers`,
    rest: `(${reason}); its own outbound probes succeed`,
    nodes: [node],
    groups: [group]
  }
}

/** A group-boundary detection src -> dst. */
export function boundaryDetection (src: string, dst: string, score = 0.8): Detection {
  return {
    kind: 'group-boundary',
    subject: { type: 'group-pair', id: `groups/${src}->${dst}`, src, dst, bothWays: false },
    evidence: [{ probe: 'pod', scope: `${src}->${dst}`, samples: 400, errors: 380, errorRatio: 0.95, reasons: [{ reason: 'CONNECT_TIMEOUT', raw: 'ETIMEDOUT', count: 380 }] }],
    score,
    scoreBasis: 'every node pair across the boundary fails',
    lead: `${src} -> ${dst}: pod probes fail across the boundary`,
    rest: '',
    nodes: [],
    groups: [src, dst]
  }
}

/** A resolver detection: names no node and no group. */
export function resolverDetection (resolver: string, score = 0.7): Detection {
  return {
    kind: 'dns-resolver',
    subject: { type: 'resolver', id: `resolver/${resolver}`, resolver },
    evidence: [{ probe: 'dns-wire', scope: 'wire', samples: 50, errors: 50, errorRatio: 1, reasons: [{ reason: 'DNS_TIMEOUT', raw: 'ETIMEOUT', count: 50 }] }],
    score,
    scoreBasis: 'every node fails toward it',
    lead: `resolver ${resolver} does not answer`,
    rest: '(DNS_TIMEOUT)',
    nodes: [],
    groups: []
  }
}
