// One evaluation: every family's detections, with the explaining-away across families (a node
// whose own network is broken fails its DNS and Service probes too; that is one finding, not three).

import { dnsServiceFindings, readDnsServiceInput } from './dns-service.ts'
import type { Detection } from './finding.ts'
import type { FindingsContext, FindingsSources } from './input.ts'
import { networkFindings, readNetworkInput } from './network.ts'

/** Node kinds that explain every other failure of their node's own probes. */
const EXPLAINING_KINDS: ReadonlySet<string> = new Set(['node-outbound', 'node-isolated', 'agent-degraded'])

/** All detections for `ctx`, read from `sources`, network first. */
export function evaluateFindings (ctx: FindingsContext, sources: FindingsSources): Detection[] {
  const network = networkFindings(ctx, readNetworkInput(sources, ctx))
  const explained = new Set(network.filter(d => EXPLAINING_KINDS.has(d.kind)).flatMap(d => d.nodes))
  return [...network, ...dnsServiceFindings(ctx, readDnsServiceInput(sources, ctx), explained)]
}
