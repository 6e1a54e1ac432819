// Running totals since start, for Prometheus counters: per group pair and per node, never per
// node pair, so the series count stays O(groups² + nodes).

import { BUCKET_COUNT, type ProbeKind } from '@pingfleet/protocol'
import type { CellErrors } from './slot-arena.ts'

export interface PairTotals {
  probe: ProbeKind
  src: string
  dst: string
  count: number
  /** Failures by reason (raw codes are in the JSON API, not in label values). */
  errors: Map<string, number>
  latency: Float64Array
}

export interface NodeTotals {
  node: string
  probe: ProbeKind
  direction: 'in' | 'out'
  count: number
  errors: number
}

export class Totals {
  readonly pairs = new Map<string, PairTotals>()
  readonly nodes = new Map<string, NodeTotals>()

  pair (probe: ProbeKind, src: string, dst: string, count: number, latency: Float64Array, errors: readonly CellErrors[]): void {
    const key = probe + '\u0000' + src + '\u0000' + dst
    let entry = this.pairs.get(key)
    if (entry === undefined) {
      this.pairs.set(key, entry = { probe, src, dst, count: 0, errors: new Map(), latency: new Float64Array(BUCKET_COUNT) })
    }
    entry.count += count
    for (let i = 0; i < BUCKET_COUNT; i++) entry.latency[i]! += latency[i]!
    for (const e of errors) entry.errors.set(e.reason, (entry.errors.get(e.reason) ?? 0) + e.count)
  }

  node (node: string, direction: 'in' | 'out', probe: ProbeKind, count: number, errors: number): void {
    const key = node + '\u0000' + direction + '\u0000' + probe
    let entry = this.nodes.get(key)
    if (entry === undefined) this.nodes.set(key, entry = { node, probe, direction, count: 0, errors: 0 })
    entry.count += count
    entry.errors += errors
  }

  /** Drops a node's series once it has left the roster, so series do not pile up. */
  forgetNode (node: string): void {
    for (const [key, entry] of this.nodes) if (entry.node === node) this.nodes.delete(key)
  }
}
