// Running totals since start, for Prometheus counters: per group pair and per node, never per
// node pair, so the series count stays O(groups² + nodes).

import { Histogram, PHASE_NAMES, PROBE_KIND_NAMES, type Phase, type ProbeKind } from '@pingfleet/protocol'
import type { Roster } from '../fleet/roster.ts'
import { addLoss, zeroLoss, type CellSum, type LossCounters } from './cell-sum.ts'

export interface PairTotals {
  probe: ProbeKind
  src: string
  dst: string
  count: number
  /** Failures by reason (raw codes are in the JSON API, not in label values). */
  errors: Map<string, number>
  latency: Histogram
  /** Loss counters since start; null until the pair reported any. */
  loss: LossCounters | null
  /** Per-phase latency since start, a phase present once the pair reported it. */
  phases: Partial<Record<Phase, Histogram>>
}

/** One node's probes, indexed by probe kind (PROBE_KIND_NAMES order). */
export interface NodeTotals {
  node: string
  outCount: Float64Array
  outErrors: Float64Array
  inCount: Float64Array
  inErrors: Float64Array
}

const KIND_INDEX = new Map<string, number>(PROBE_KIND_NAMES.map((k, i) => [k, i]))

export class Totals {
  readonly pairs = new Map<string, PairTotals>()
  readonly nodes = new Map<string, NodeTotals>()

  /** With a roster, a node's series are dropped when it expires from it, so series do not pile up. */
  constructor (roster?: Roster) {
    roster?.on('expire', node => this.forgetNode(node))
  }

  /** Adds one report's sum for a (probe, source group, destination group or target) pair. */
  pair (probe: ProbeKind, src: string, dst: string, sum: CellSum): void {
    const key = probe + '\u0000' + src + '\u0000' + dst
    let entry = this.pairs.get(key)
    if (entry === undefined) {
      this.pairs.set(key, entry = { probe, src, dst, count: 0, errors: new Map(), latency: new Histogram(), loss: null, phases: {} })
    }
    if (sum.loss !== null) addLoss(entry.loss ??= zeroLoss(), sum.loss)
    entry.count += sum.count
    entry.latency.merge(sum.histogram)
    for (let p = 0; p < PHASE_NAMES.length; p++) {
      const h = sum.phases[p]
      if (h != null && h.total > 0) (entry.phases[PHASE_NAMES[p]!] ??= new Histogram()).merge(h)
    }
    for (const e of sum.errors) entry.errors.set(e.reason, (entry.errors.get(e.reason) ?? 0) + e.count)
  }

  /** Adds a node's probes of one kind, as their source ('out') or as their peer target ('in'). */
  node (node: string, direction: 'in' | 'out', probe: ProbeKind, count: number, errors: number): void {
    let entry = this.nodes.get(node)
    if (entry === undefined) {
      const n = PROBE_KIND_NAMES.length
      this.nodes.set(node, entry = { node, outCount: new Float64Array(n), outErrors: new Float64Array(n), inCount: new Float64Array(n), inErrors: new Float64Array(n) })
    }
    const k = KIND_INDEX.get(probe)!
    if (direction === 'out') {
      entry.outCount[k]! += count
      entry.outErrors[k]! += errors
    } else {
      entry.inCount[k]! += count
      entry.inErrors[k]! += errors
    }
  }

  /** Drops a node's series (it left the roster). */
  forgetNode (node: string): void {
    this.nodes.delete(node)
  }
}
