// Network findings from node × node results: node-inbound, node-outbound, node-isolated,
// group-boundary, mtu, loss and agent-degraded, with the explaining-away between them. The pod mesh
// is judged first (node-faults.ts); mtu and loss skip what it explains; degraded agents are no witnesses.

import type { Detection } from './finding.ts'
import type { FindingNode, FindingsContext } from './input.ts'
import { lossFindings } from './loss.ts'
import { mtuFindings } from './mtu.ts'
import type { NetworkInput } from './network-input.ts'
import { cellFails, meshFindings } from './node-faults.ts'
import { cellEvidence, count } from './evidence.ts'

export { readNetworkInput, type NetworkInput } from './network-input.ts'

/**
 * The network detections for one evaluation, pure over `input`: agent-degraded for every degraded
 * agent (its own samples judged by nothing else), then the pod mesh's node-* and group-boundary
 * findings, then mtu and loss on what those do not explain. Order: agent-degraded, node-*,
 * group-boundary, mtu, loss.
 */
export function networkFindings (ctx: FindingsContext, input: NetworkInput): Detection[] {
  const degraded = ctx.nodes.filter(n => n.degraded !== null).map(n => degradedDetection(n, input))
  const mesh = meshFindings(ctx, input.pod, input.recent?.pod)
  return [...degraded, ...mesh.detections, ...mtuFindings(ctx, input.mtu, mesh), ...lossFindings(ctx, input, mesh)]
}

function degradedDetection (node: FindingNode, input: NetworkInput): Detection {
  const inbound = input.pod.inbound.get(node.name)
  const outbound = input.pod.outbound.get(node.name)
  const failedOut = input.pod.failed.filter(c => c.src === node.name)
  const failedIn = input.pod.failed.filter(c => c.dst === node.name)
  const evidence = [
    cellEvidence('pod', 'outbound', failedOut, { count: failedOut.filter(cellFails).length, of: outbound?.peers ?? 0 }, outbound ?? { samples: 0, errors: 0 }),
    cellEvidence('pod', 'inbound', failedIn, { count: failedIn.filter(cellFails).length, of: inbound?.peers ?? 0 }, inbound ?? { samples: 0, errors: 0 })
  ]
  const failingIn = inbound !== undefined && inbound.errors > 0 ? `; peers' probes toward it fail ${count(inbound.errors)} of ${count(inbound.samples)} times` : ''
  return {
    kind: 'agent-degraded',
    subject: { type: 'node', id: `node/${node.name}`, node: node.name, group: node.group },
    evidence,
    score: 1,
    scoreBasis: 'the aggregator\'s agent health verdict (lagged or overloaded samples over its window)',
    lead: `${node.name} (${node.group}): agent degraded: ${node.degraded!}`,
    rest: `not a network fault; its own samples are not judged${failingIn}`,
    nodes: [node.name],
    groups: [node.group]
  }
}
