// One evaluation: every family's detections, with the explaining-away across families (a node
// whose own network is broken fails its DNS and Service probes too; that is one finding, not three).

import { dnsServiceFindings, readDnsServiceInput } from './dns-service.ts'
import type { Detection } from './finding.ts'
import type { FindingsContext, FindingsSources } from './input.ts'
import { networkFindings, readNetworkInput } from './network.ts'

/**
 * Node kinds that explain every other failure of their node's own probes. `loss` about a node too:
 * its DNS and Service packets are lost as its pod ones are (30% loss toward a node timed out its
 * lookups: a dns-group finding beside its loss one). A group link's loss names no node.
 */
const EXPLAINING_KINDS: ReadonlySet<string> = new Set(['node-outbound', 'node-isolated', 'agent-degraded', 'loss'])

/** The nodes whose own network finding (EXPLAINING_KINDS) explains their other failures. */
export function explainedNodes (network: readonly Detection[]): Set<string> {
  return new Set(network.filter(d => EXPLAINING_KINDS.has(d.kind)).flatMap(d => d.nodes))
}

/** All detections for `ctx`, read from `sources`, network first. */
export function evaluateFindings (ctx: FindingsContext, sources: FindingsSources): Detection[] {
  const network = networkFindings(ctx, readNetworkInput(sources, ctx))
  return [...network, ...dnsServiceFindings(ctx, readDnsServiceInput(sources, ctx), explainedNodes(network))]
}
