// DNS, Service and egress findings: dns-resolver, dns-path, dns-name, dns-group, service-path and
// egress, with the explaining-away between them. (Contract only; the evaluator lands with issue 13's DNS part.)

import type { Detection } from './finding.ts'
import type { FindingsContext, FindingsSources } from './input.ts'

/** The per-node DNS, Service and external results the evaluator judges (built by readDnsServiceInput, or by tests). */
export interface DnsServiceInput { nodes: number }

/** Reads the evaluator's input for `ctx` from the stores. */
export function readDnsServiceInput (_sources: FindingsSources, _ctx: FindingsContext): DnsServiceInput {
  return { nodes: _ctx.nodes.length }
}

/**
 * The DNS, Service and egress detections for one evaluation. `explained`: nodes whose own network
 * fault (node-outbound, node-isolated) already explains their failures, so they add no finding here.
 */
export function dnsServiceFindings (_ctx: FindingsContext, _input: DnsServiceInput, _explained: ReadonlySet<string>): Detection[] {
  return []
}
