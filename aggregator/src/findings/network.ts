// Network findings from node × node results: node-inbound, node-outbound, node-isolated,
// group-boundary, mtu, loss and agent-degraded, with the explaining-away between them.
// (Contract only; the evaluator lands with issue 13's network part.)

import type { Detection } from './finding.ts'
import type { FindingsContext, FindingsSources } from './input.ts'

/** The node-level results the network evaluator judges (built by readNetworkInput, or by tests). */
export interface NetworkInput { nodes: number }

/** Reads the network evaluator's input for `ctx` from the stores. */
export function readNetworkInput (_sources: FindingsSources, _ctx: FindingsContext): NetworkInput {
  return { nodes: _ctx.nodes.length }
}

/** The network detections for one evaluation. */
export function networkFindings (_ctx: FindingsContext, _input: NetworkInput): Detection[] {
  return []
}
