// Builds the latency/error matrix for one probe kind and window, by node or by any label.
// Quantiles always come from merged buckets, never from averaged quantiles.

import { BUCKET_COUNT, Histogram, bucketValue, type ProbeKind } from '@pingfleet/protocol'
import { packedQuantiles, unpackInto, type SlotArena } from './slot-arena.ts'
import type { CellKey, Store } from './store.ts'

export interface MatrixCell {
  src: string
  dst: string
  samples: number
  errors: number
  errorRatio: number
  errorsByReason: Record<string, number>
  errorsByCode: Record<string, number>
  lagged: number
  latency: { p50: number | null, p90: number | null, p99: number | null }
}

export interface Matrix {
  probe: ProbeKind
  groupBy: string
  window: string
  generatedAt: string
  rows: string[]
  cols: string[]
  cells: MatrixCell[]
}

/** Maps a stored cell to its matrix row and column; null leaves the cell out. */
export type Placement = (key: CellKey) => { row: string, col: string } | null

interface Acc {
  row: string
  col: string
  samples: number
  lagged: number
  /** Few samples: packed pairs. Past PACKED_LIMIT they move to a dense histogram. */
  packed: number[]
  dense: Histogram | null
  reasons: Map<string, number>
  codes: Map<string, number>
  errors: number
}

const QUANTILES = [0.5, 0.9, 0.99] as const
const PACKED_LIMIT = 4 * BUCKET_COUNT

export function buildMatrix (store: Store, options: { probe: ProbeKind, windowMs: number, now: number, place: Placement }): Omit<Matrix, 'groupBy' | 'window' | 'generatedAt' | 'probe'> {
  const arenas = store.arenas(options.windowMs, options.now)
  const outputs = new Map<string, Acc>()
  const cells = store.cellCount
  for (let id = 0; id < cells; id++) {
    const key = store.key(id)
    if (key.probe !== options.probe) continue
    if (!arenas.some(a => a.has(id))) continue
    const place = options.place(key)
    if (place === null) continue
    const outKey = place.row + '\u0000' + place.col
    let acc = outputs.get(outKey)
    if (acc === undefined) {
      outputs.set(outKey, acc = { row: place.row, col: place.col, samples: 0, lagged: 0, packed: [], dense: null, reasons: new Map(), codes: new Map(), errors: 0 })
    }
    collectCell(arenas, id, acc)
  }
  const rows = new Set<string>()
  const cols = new Set<string>()
  const out: MatrixCell[] = []
  for (const acc of outputs.values()) {
    rows.add(acc.row)
    cols.add(acc.col)
    const [p50, p90, p99] = acc.dense !== null
      ? QUANTILES.map(q => acc.dense!.quantile(q))
      : packedQuantiles(acc.packed, QUANTILES, bucketValue)
    out.push({
      src: acc.row,
      dst: acc.col,
      samples: acc.samples,
      errors: acc.errors,
      errorRatio: acc.samples > 0 ? acc.errors / acc.samples : 0,
      errorsByReason: Object.fromEntries(acc.reasons),
      errorsByCode: Object.fromEntries(acc.codes),
      lagged: acc.lagged,
      latency: { p50: p50 ?? null, p90: p90 ?? null, p99: p99 ?? null }
    })
  }
  return { rows: [...rows].sort(), cols: [...cols].sort(), cells: out }
}

function collectCell (arenas: readonly SlotArena[], id: number, acc: Acc): void {
  for (const arena of arenas) {
    if (!arena.has(id)) continue
    if (acc.dense !== null) {
      acc.samples += arena.addTo(id, acc.dense)
    } else {
      acc.samples += arena.collectPacked(id, acc.packed)
      if (acc.packed.length > PACKED_LIMIT) {
        acc.dense = new Histogram()
        unpackInto(acc.packed, acc.dense)
        acc.packed = []
      }
    }
    acc.lagged += arena.lagged.get(id) ?? 0
    const errors = arena.errors.get(id)
    if (errors === undefined) continue
    for (const e of errors) {
      acc.errors += e.count
      acc.reasons.set(e.reason, (acc.reasons.get(e.reason) ?? 0) + e.count)
      acc.codes.set(e.raw, (acc.codes.get(e.raw) ?? 0) + e.count)
    }
  }
}

