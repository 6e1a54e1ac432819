// What the store takes per cell (CellInput, protocol's Cell fits it) and the one way cells are
// summed: per report into a group pair (ingest) and since start into the totals /metrics exports.

import { Histogram, PHASE_NAMES, type Phase } from '@pingfleet/protocol'

/** Failures of one (reason, raw code) in a cell. */
export interface CellErrors {
  reason: string
  raw: string
  count: number
}

/** The loss counters a cell may carry beside its latency (protocol Cell fields of the same names). */
export const LOSS_NAMES = ['slowConnects', 'sent', 'lost', 'jitterUs', 'jitterPairs'] as const
export type LossName = typeof LOSS_NAMES[number]
export type LossCounters = Record<LossName, number>

/** Per-phase latency of a cell (protocol Cell.phases): a sparse histogram per phase it went through. */
export type CellPhases = Partial<Record<Phase, ArrayLike<number>>>

/**
 * One cell's results for one report, as the store files them: protocol's `Cell` has this shape.
 * `count` probes (failures included); `latency` a sparse histogram `[index, count, …]` with indexes
 * ascending; the loss counters are absent or 0 when none; `phases` absent when the agent sent none
 * (protocol's reportProblem has checked them: valid sparse histograms, a phase kind, none with more
 * observations than `latency`; the store relies on that, as a phase bucket past BUCKET_COUNT would
 * land in the next phase's).
 */
export interface CellInput extends Partial<LossCounters> {
  count: number
  latency: ArrayLike<number>
  phases?: CellPhases
  errors?: readonly CellErrors[]
  lagged?: number
  backends?: ReadonlyArray<{ node: string, count: number }>
}

/** Loss counters all at zero: a fresh accumulator for addLoss(). */
export function zeroLoss (): LossCounters {
  return { slowConnects: 0, sent: 0, lost: 0, jitterUs: 0, jitterPairs: 0 }
}

/** Whether a cell carries any loss counter (most do not: the common case allocates nothing). */
export function hasLoss (cell: Partial<LossCounters>): boolean {
  return cell.slowConnects !== undefined || cell.sent !== undefined || cell.lost !== undefined || cell.jitterUs !== undefined || cell.jitterPairs !== undefined
}

/** Adds `from`'s counters (absent: 0) to `into`. */
export function addLoss (into: LossCounters, from: Partial<LossCounters>): void {
  into.slowConnects += from.slowConnects ?? 0
  into.sent += from.sent ?? 0
  into.lost += from.lost ?? 0
  into.jitterUs += from.jitterUs ?? 0
  into.jitterPairs += from.jitterPairs ?? 0
}

/** Adds failure records to `list`, one record per (reason, raw code); returns the failures added. */
export function mergeErrors (list: CellErrors[], errors: readonly CellErrors[]): number {
  let failed = 0
  for (const e of errors) {
    failed += e.count
    const same = list.find(x => x.reason === e.reason && x.raw === e.raw)
    if (same !== undefined) same.count += e.count
    else list.push({ reason: e.reason, raw: e.raw, count: e.count })
  }
  return failed
}

/**
 * The sum of many cells; input() gives it as a CellInput. reset() makes it reusable: ingest keeps one
 * per (probe, destination group) of an agent's report layout.
 */
export class CellSum {
  /** Cells added since the last reset. */
  cells = 0
  count = 0
  lagged = 0
  /** Failed probes (the errors' counts summed). */
  failed = 0
  readonly histogram = new Histogram()
  readonly errors: CellErrors[] = []
  /** Null until a summed cell carried loss counters. */
  loss: LossCounters | null = null
  /** Per phase (PHASE_NAMES order), null until a summed cell carried it. */
  readonly phases: Array<Histogram | null> = PHASE_NAMES.map(() => null)
  private phased = false

  /**
   * Adds one cell; returns its failures. `loss` says whether it carries loss counters, for a caller
   * that already looked (the check costs five property reads per cell, on every cell of a report).
   */
  add (cell: CellInput, loss = hasLoss(cell)): number {
    this.cells++
    this.count += cell.count
    if (cell.lagged !== undefined) this.lagged += cell.lagged
    this.histogram.addSparse(cell.latency)
    if (loss) addLoss(this.loss ??= zeroLoss(), cell)
    if (cell.phases !== undefined) this.addPhases(cell.phases)
    const failed = cell.errors === undefined ? 0 : mergeErrors(this.errors, cell.errors)
    this.failed += failed
    return failed
  }

  private addPhases (phases: CellPhases): void {
    this.phased = true
    // Named reads, PHASE_NAMES order (see withCounters in slot-arena.ts on keyed reads).
    const { dns, connect, tls, firstByte } = phases
    if (dns !== undefined) (this.phases[0] ??= new Histogram()).addSparse(dns)
    if (connect !== undefined) (this.phases[1] ??= new Histogram()).addSparse(connect)
    if (tls !== undefined) (this.phases[2] ??= new Histogram()).addSparse(tls)
    if (firstByte !== undefined) (this.phases[3] ??= new Histogram()).addSparse(firstByte)
  }

  /** The sum as the store takes it: a plain object, like the cells of a report (a getter here would slow their path). */
  input (): CellInput {
    const input: CellInput = { count: this.count, latency: this.histogram.toSparse(), errors: this.errors, lagged: this.lagged }
    if (this.loss !== null) Object.assign(input, this.loss)
    if (this.phased) {
      const phases: CellPhases = {}
      for (let p = 0; p < PHASE_NAMES.length; p++) {
        const h = this.phases[p]
        if (h != null && h.total > 0) phases[PHASE_NAMES[p]!] = h.toSparse()
      }
      input.phases = phases
    }
    return input
  }

  reset (): void {
    this.cells = this.count = this.lagged = this.failed = 0
    this.histogram.reset()
    this.errors.length = 0
    this.loss = null
    if (this.phased) for (const h of this.phases) h?.reset()
    this.phased = false
  }
}
