// The one latency accumulator both sides use, over histogram.ts's bucket layout: a sparse builder
// (the agent, per cell), a dense accumulator with nearest-rank quantiles (the aggregator's sums and
// matrices), and the mapping onto Prometheus `le` buckets.

import { BUCKET_COUNT, bucketIndex, bucketValue, type SparseHistogram } from './histogram.ts'

/**
 * Counts per bucket kept in a Map: a cell usually touches a handful of the BUCKET_COUNT buckets, so
 * an agent with a thousand cells open holds a few words per cell, not a dense array each.
 */
export class SparseBuilder {
  private readonly counts = new Map<number, number>()

  /** Counts one latency, in seconds. */
  record (seconds: number): void {
    this.add(bucketIndex(seconds), 1)
  }

  /** Adds `n` to bucket `index` (0 .. BUCKET_COUNT - 1). */
  add (index: number, n: number): void {
    this.counts.set(index, (this.counts.get(index) ?? 0) + n)
  }

  get empty (): boolean { return this.counts.size === 0 }

  /** The wire form: `[index, count, …]`, indexes ascending (see SparseHistogram). */
  toSparse (): SparseHistogram {
    const out: number[] = []
    for (const index of [...this.counts.keys()].sort((a, b) => a - b)) out.push(index, this.counts.get(index)!)
    return out
  }
}

/**
 * Nearest-rank quantile `q` (0..1) of dense counts whose sum is `total`: the value (seconds) of the
 * bucket holding the ceil(q × total)-th sample, at least the first (Hyndman & Fan's definition 1).
 * Null when `total` is 0. `counts` may be a row of a larger array: `offset` is where it starts.
 */
export function nearestRank (counts: ArrayLike<number>, total: number, q: number, offset = 0): number | null {
  if (total === 0) return null
  const rank = Math.max(1, Math.ceil(q * total))
  let seen = 0
  for (let i = 0; i < BUCKET_COUNT; i++) {
    seen += counts[offset + i]!
    if (seen >= rank) return bucketValue(i)
  }
  return bucketValue(BUCKET_COUNT - 1)
}

/**
 * A dense accumulator: one count per bucket, for summing many cells (a group pair's report, the
 * totals since start, one matrix output). It remembers which buckets it touched, so quantiles,
 * toSparse() and reset() cost the touched buckets, not all BUCKET_COUNT: a matrix reuses one
 * Histogram for a million outputs. Counts are float64: exact integers up to 2^53.
 */
export class Histogram {
  /** Counts by bucket index; write through add(), never directly, or touched() goes stale. */
  readonly counts = new Float64Array(BUCKET_COUNT)
  /** The sum of the counts. */
  total = 0
  private readonly seen: number[] = []
  private sorted = true

  /** Counts one latency, in seconds. */
  record (seconds: number): void {
    this.add(bucketIndex(seconds), 1)
  }

  /** Adds `n` (≥ 0) to bucket `index` (0 .. BUCKET_COUNT - 1). */
  add (index: number, n: number): void {
    const counts = this.counts
    if (counts[index] === 0 && n !== 0) this.touch(index)
    counts[index]! += n
    this.total += n
  }

  /** Notes the first count in a bucket. */
  private touch (index: number): void {
    const seen = this.seen
    if (seen.length > 0 && seen[seen.length - 1]! > index) this.sorted = false
    seen.push(index)
  }

  /** Adds a sparse histogram `[index, count, …]` (any order). */
  addSparse (sparse: ArrayLike<number>): void {
    // add() inlined: ingest sums every cell of every report through here.
    const counts = this.counts
    let total = 0
    for (let i = 0; i < sparse.length; i += 2) {
      const index = sparse[i]!
      const n = sparse[i + 1]!
      if (counts[index] === 0 && n !== 0) this.touch(index)
      counts[index]! += n
      total += n
    }
    this.total += total
  }

  /** Adds every count of `other`. */
  merge (other: Histogram): void {
    const touched = other.touched()
    for (let k = 0; k < touched.length; k++) {
      const index = touched[k]!
      this.add(index, other.counts[index]!)
    }
  }

  /** The indexes of the buckets with a count, ascending. */
  touched (): readonly number[] {
    if (!this.sorted) {
      // Few distinct buckets, mostly in order: insertion sort beats a comparator sort here.
      const seen = this.seen
      for (let i = 1; i < seen.length; i++) {
        const v = seen[i]!
        let j = i - 1
        while (j >= 0 && seen[j]! > v) { seen[j + 1] = seen[j]!; j-- }
        seen[j + 1] = v
      }
      this.sorted = true
    }
    return this.seen
  }

  /** Empties the accumulator (at the cost of the buckets it touched). */
  reset (): void {
    const seen = this.seen
    for (let k = 0; k < seen.length; k++) this.counts[seen[k]!] = 0
    seen.length = 0
    this.sorted = true
    this.total = 0
  }

  /** The wire form: `[index, count, …]`, indexes ascending. */
  toSparse (): SparseHistogram {
    const touched = this.touched()
    const out: number[] = []
    for (let k = 0; k < touched.length; k++) out.push(touched[k]!, this.counts[touched[k]!]!)
    return out
  }

  /** Nearest-rank quantile (see nearestRank), seconds; null when empty. */
  quantile (q: number): number | null {
    return this.quantiles([q])[0]!
  }

  /** Nearest-rank quantiles for ascending `qs` in one walk, seconds; nulls when empty. */
  quantiles (qs: readonly number[]): Array<number | null> {
    const out: Array<number | null> = []
    if (this.total === 0) {
      for (let i = 0; i < qs.length; i++) out.push(null)
      return out
    }
    const touched = this.touched()
    let k = 0
    let seen = 0
    for (const q of qs) {
      const rank = Math.max(1, Math.ceil(q * this.total))
      while (k < touched.length - 1 && seen + this.counts[touched[k]!]! < rank) seen += this.counts[touched[k++]!]!
      out.push(bucketValue(touched[k]!))
    }
    return out
  }
}

/**
 * The fine buckets mapped onto Prometheus histogram bounds (`le`, seconds, ascending): each fine
 * bucket counts under the first bound at or above its midpoint (bucketValue), or +Inf. With bounds on
 * bucket edges (1, 3, 5 and 10 s are: see histogram.ts) no bucket straddles a bound.
 */
export class PrometheusBuckets {
  readonly bounds: readonly number[]
  private readonly of = new Int32Array(BUCKET_COUNT)

  constructor (bounds: readonly number[]) {
    this.bounds = bounds
    for (let i = 0; i < BUCKET_COUNT; i++) {
      const v = bucketValue(i)
      const b = bounds.findIndex(le => v <= le)
      this.of[i] = b === -1 ? bounds.length : b
    }
  }

  /** The index into `bounds` a fine bucket counts under; bounds.length is +Inf. */
  boundOf (index: number): number {
    return this.of[index]!
  }

  /**
   * Writes `hist`'s cumulative counts per bound into `out` (bounds.length + 1 entries, the last for
   * +Inf, which is the count) and returns the sum of the values (seconds, each sample at its bucket's
   * midpoint, added in ascending bucket order) and the count.
   */
  cumulative (hist: Histogram, out: Float64Array): { sum: number, count: number } {
    out.fill(0)
    let sum = 0
    let count = 0
    const touched = hist.touched()
    for (let k = 0; k < touched.length; k++) {
      const i = touched[k]!
      const n = hist.counts[i]!
      out[this.of[i]!]! += n
      sum += n * bucketValue(i)
      count += n
    }
    for (let b = 1; b < out.length; b++) out[b]! += out[b - 1]!
    return { sum, count }
  }
}
