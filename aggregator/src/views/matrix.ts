// Builds a latency/error matrix from one store: its cells, rows and columns for one probe kind and
// window, placed by the caller's row/column functions. Quantiles always come from merged buckets,
// never from averaged quantiles. Which store and grouping a query reads, and the API's answer
// (MatrixAnswer), are fleet-matrix.ts's.

import { CONNECT_PROBE_KINDS, Histogram, PHASE_NAMES, PHASE_PROBE_KINDS, type Phase, type ProbeKind } from '@pingfleet/protocol'
import { zeroLoss, type LossCounters } from '../store/cell-sum.ts'
import type { CellKey, Store } from '../store/store.ts'
import type { WindowRead } from '../store/window-read.ts'

export interface MatrixCell {
  src: string
  dst: string
  samples: number
  errors: number
  errorRatio: number
  errorsByReason: Record<string, number>
  errorsByCode: Record<string, number>
  lagged: number
  latency: Quantiles
  /** Probe kinds that open a TCP connection, and udp: packet loss as each can see it. */
  loss?: LossSignal
  /**
   * Kinds in PHASE_PROBE_KINDS, when the read kept phases (matrix phasesIncluded): the quantiles of
   * each phase the cell's probes went through (a phase without observations is absent) and `total`,
   * the same as `latency`.
   */
  phases?: PhaseQuantiles
}

/** Nearest-rank quantiles in seconds, null without observations. */
export interface Quantiles { p50: number | null, p90: number | null, p99: number | null }

export type PhaseQuantiles = Partial<Record<Phase, Quantiles>> & { total: Quantiles }

/**
 * Loss apart from errors. For kinds that open one TCP connection per probe: `slowConnects`, successful
 * probes whose handshake took 1 s or more (a lost SYN or SYN-ACK, retransmitted after Linux's 1 s initial
 * RTO), and `retransmitRatio`, their share of the trusted successes (the latency samples; null for udp). For udp:
 * datagrams `sent` and `lost` (no echo) in the window, `lossRatio` = lost / sent, and `jitter`, the mean
 * |RTT difference| of consecutive echoes in seconds. Ratios and jitter are null without a denominator.
 */
export interface LossSignal {
  slowConnects: number
  retransmitRatio: number | null
  sent: number
  lost: number
  lossRatio: number | null
  jitter: number | null
}

/** Maps a stored cell to its matrix row and column; null leaves the cell out. */
export type Placement = (key: CellKey) => { row: string, col: string } | null

export interface MatrixOptions {
  probe: ProbeKind
  windowMs: number
  now: number
  /** Row and column from a cell's source and target names (cached per name: fast). */
  rowOf?: (src: string) => string | null
  colOf?: (target: string) => string | null
  /** Or both at once from the whole cell key (called per cell). */
  place?: Placement
  /** Keeps only the output cells it returns true for. */
  keep?: (cell: MatrixCell) => boolean
  /** Only cells with at least one failure in the window; the others are skipped before any work. */
  failingOnly?: boolean
  /**
   * Largest number of cells to build. Past it, tooLarge() is thrown before any histogram is read:
   * a million-cell answer is ~200 MiB of JSON and about a gigabyte of transient memory.
   */
  maxCells?: number
  tooLarge?: (cells: number) => Error
}

interface Output {
  row: number
  col: number
  /** The first cell, and any more that land on the same output. */
  first: number
  more: number[] | null
}

const QUANTILES = [0.5, 0.9, 0.99] as const
const isConnectKind = new Set<string>(CONNECT_PROBE_KINDS)
const isPhaseKind = new Set<string>(PHASE_PROBE_KINDS)

function quantilesOf (h: Histogram): Quantiles {
  const [p50, p90, p99] = h.quantiles(QUANTILES)
  return { p50: p50 ?? null, p90: p90 ?? null, p99: p99 ?? null }
}

/** The phases of one output from its per-phase histograms (PHASE_NAMES order), which it resets. */
function phaseQuantiles (phases: readonly Histogram[], total: Quantiles): PhaseQuantiles {
  const out: Partial<Record<Phase, Quantiles>> = {}
  for (let p = 0; p < phases.length; p++) {
    const h = phases[p]!
    if (h.total === 0) continue
    out[PHASE_NAMES[p]!] = quantilesOf(h)
    h.reset()
  }
  return { ...out, total }
}

/** The loss signal from one output's counters and latency samples; clears the counters. */
function lossSignal (counters: LossCounters, samples: number, connects: boolean): LossSignal {
  const { slowConnects, sent, lost, jitterUs, jitterPairs } = counters
  counters.slowConnects = counters.sent = counters.lost = counters.jitterUs = counters.jitterPairs = 0
  return {
    slowConnects,
    retransmitRatio: connects && samples > 0 ? slowConnects / samples : null,
    sent,
    lost,
    lossRatio: sent > 0 ? lost / sent : null,
    jitter: jitterPairs > 0 ? jitterUs / jitterPairs / 1e6 : null
  }
}
const NONE: Record<string, number> = Object.freeze({}) as Record<string, number>
const UNSEEN = -2
const EXCLUDED = -1

/**
 * The matrix of `options.probe` over the window (now − windowMs, now], both in ms since the epoch.
 * Each stored cell of that kind goes to a row and a column (rowOf/colOf of its source and target
 * names, or place of its key; identity by default, null leaves it out); the stored cells that land on
 * one output are summed. Per output cell: `samples` is the probes that finished (failed and lagged
 * ones included), `errors` the failed ones, `errorRatio` = errors / samples (0 without samples),
 * `errorsByReason` and `errorsByCode` split `errors` by reason and raw code, `lagged` the probes taken
 * during event-loop lag, `latency` the nearest-rank p50/p90/p99 in seconds of the merged latency
 * buckets of trusted successes (null without any), `loss` for connect kinds and udp (LossSignal),
 * and `phases` for PHASE_PROBE_KINDS when the read kept phases over its whole span (the same
 * quantiles per phase, from merged phase buckets, plus `total`, the latency).
 *
 * Returns `from` and `to` (ms since the epoch), the span the cells really cover (Store.read): exact
 * to one interval for short windows, stated for long ones; `phasesIncluded`, whether the cells carry
 * `phases` (a phase kind, and a store that kept them for every slot of the span: the node store only
 * within its exact window); `rows` and `cols`, the sorted names that
 * hold at least one returned cell; and `cells`, those `keep` accepted. Throws `options.tooLarge(n)`
 * (a RangeError when not given) when more than `maxCells` cells would be built, before any latency
 * is read.
 */
export function buildMatrix (store: Store, options: MatrixOptions): { from: number, to: number, phasesIncluded: boolean, rows: string[], cols: string[], cells: MatrixCell[] } {
  const read = store.read(options.windowMs, options.now)
  const rowNames: string[] = []
  const colNames: string[] = []
  const rowIndex = new Map<string, number>()
  const colIndex = new Map<string, number>()
  const indexOf = (names: string[], index: Map<string, number>, name: string): number => {
    let i = index.get(name)
    if (i === undefined) {
      i = names.length
      names.push(name)
      index.set(name, i)
    }
    return i
  }
  // Per interned name: its row (or column) index, EXCLUDED, or UNSEEN yet.
  const rowCache = new Int32Array(store.nameCount).fill(UNSEEN)
  const colCache = new Int32Array(store.nameCount).fill(UNSEEN)
  const cached = (cache: Int32Array, nameId: number, map: ((name: string) => string | null), names: string[], index: Map<string, number>): number => {
    let i = cache[nameId]!
    if (i === UNSEEN) {
      const label = map(store.name(nameId))
      i = cache[nameId] = label === null ? EXCLUDED : indexOf(names, index, label)
    }
    return i
  }

  // Outputs by row, then by column: small-integer keys keep the maps fast at a million cells.
  const byRow: Array<Map<number, Output> | undefined> = []
  const identity = (name: string): string => name
  const rowOf = options.rowOf ?? identity
  const colOf = options.colOf ?? identity
  for (const id of store.idsOf(options.probe)) {
    if (!read.has(id)) continue
    if (options.failingOnly === true && !read.failed(id)) continue
    let row: number
    let col: number
    if (options.place !== undefined) {
      const place = options.place(store.key(id))
      if (place === null) continue
      row = indexOf(rowNames, rowIndex, place.row)
      col = indexOf(colNames, colIndex, place.col)
    } else {
      row = cached(rowCache, store.srcOf(id), rowOf, rowNames, rowIndex)
      col = cached(colCache, store.targetOf(id), colOf, colNames, colIndex)
      if (row === EXCLUDED || col === EXCLUDED) continue
    }
    const cols = byRow[row] ??= new Map()
    const output = cols.get(col)
    if (output === undefined) cols.set(col, { row, col, first: id, more: null })
    else (output.more ??= []).push(id)
  }

  if (options.maxCells !== undefined) {
    let total = 0
    for (const cols of byRow) total += cols?.size ?? 0
    if (total > options.maxCells) throw options.tooLarge?.(total) ?? new RangeError(`${total} cells is more than ${options.maxCells}`)
  }
  const cells: MatrixCell[] = []
  const usedRows = new Set<number>()
  const usedCols = new Set<number>()
  // One accumulator for every output: reset() costs the buckets an output touched, not all of them.
  const latency = new Histogram()
  const counters = zeroLoss()
  const withLoss = isConnectKind.has(options.probe) || options.probe === 'udp'
  // Per-phase accumulators, only where phases can be answered for the whole span.
  const phasesIncluded = isPhaseKind.has(options.probe) && read.phasesKept
  const phases = phasesIncluded ? PHASE_NAMES.map(() => new Histogram()) : undefined
  const acc: Acc = { samples: 0, lagged: 0, errors: 0, reasons: null, codes: null }
  for (const cols of byRow) for (const output of cols?.values() ?? []) {
    acc.samples = acc.lagged = acc.errors = 0
    acc.reasons = acc.codes = null
    collectCell(read, output.first, acc, latency, counters, phases)
    if (output.more !== null) for (const id of output.more) collectCell(read, id, acc, latency, counters, phases)
    const total = quantilesOf(latency)
    const loss = withLoss ? lossSignal(counters, latency.total, options.probe !== 'udp') : undefined
    latency.reset()
    const cell: MatrixCell = {
      src: rowNames[output.row]!,
      dst: colNames[output.col]!,
      samples: acc.samples,
      errors: acc.errors,
      errorRatio: acc.samples > 0 ? acc.errors / acc.samples : 0,
      errorsByReason: acc.reasons === null ? NONE : Object.fromEntries(acc.reasons),
      errorsByCode: acc.codes === null ? NONE : Object.fromEntries(acc.codes),
      lagged: acc.lagged,
      latency: total
    }
    if (loss !== undefined) cell.loss = loss
    if (phases !== undefined) cell.phases = phaseQuantiles(phases, total)
    if (options.keep !== undefined && !options.keep(cell)) continue
    cells.push(cell)
    usedRows.add(output.row)
    usedCols.add(output.col)
  }
  return {
    from: read.from,
    to: read.to,
    phasesIncluded,
    rows: [...usedRows].map(i => rowNames[i]!).sort(),
    cols: [...usedCols].map(i => colNames[i]!).sort(),
    cells
  }
}

interface Acc {
  samples: number
  lagged: number
  errors: number
  reasons: Map<string, number> | null
  codes: Map<string, number> | null
}

function collectCell (read: WindowRead, id: number, acc: Acc, latency: Histogram, counters: LossCounters, phases?: readonly Histogram[]): void {
  acc.samples += read.addLatency(id, latency, counters, phases)
  acc.lagged += read.lagged(id)
  read.forEachError(id, e => {
    acc.errors += e.count
    const reasons = acc.reasons ??= new Map()
    const codes = acc.codes ??= new Map()
    reasons.set(e.reason, (reasons.get(e.reason) ?? 0) + e.count)
    codes.set(e.raw, (codes.get(e.raw) ?? 0) + e.count)
  })
}
