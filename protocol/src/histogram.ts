// The one latency bucket layout both sides share: log-linear, 16 sub-buckets per octave,
// so any bucket's midpoint is within 3.2% of every value it holds (10 µs .. 60 s and beyond).

/** Lower edge of bucket 1, in seconds (about 7.6 µs). Bucket 0 holds everything below it. */
export const HIST_MIN_SECONDS = 2 ** -17
export const SUB_BUCKETS = 16
/** Octaves above HIST_MIN_SECONDS: the last regular bucket ends at 2^6 = 64 s. */
export const OCTAVES = 23
/** Regular buckets plus an underflow (index 0) and an overflow (last index) bucket. */
export const BUCKET_COUNT = OCTAVES * SUB_BUCKETS + 2
export const OVERFLOW_INDEX = BUCKET_COUNT - 1

/**
 * Sparse histogram as sent on the wire: `[index, count, index, count, …]`,
 * indexes strictly ascending, counts positive integers.
 */
export type SparseHistogram = number[]

/** The bucket (0 .. OVERFLOW_INDEX) that holds `seconds`; NaN and values below HIST_MIN_SECONDS go to 0. */
export function bucketIndex (seconds: number): number {
  if (!(seconds >= HIST_MIN_SECONDS)) return 0
  const ratio = seconds / HIST_MIN_SECONDS
  let octave = Math.floor(Math.log2(ratio))
  // log2 can land one off at exact powers of two; correct against the real edges.
  if (2 ** octave > ratio) octave--
  else if (2 ** (octave + 1) <= ratio) octave++
  if (octave >= OCTAVES) return OVERFLOW_INDEX
  const sub = Math.min(SUB_BUCKETS - 1, Math.floor((ratio / 2 ** octave - 1) * SUB_BUCKETS))
  return 1 + octave * SUB_BUCKETS + sub
}

/** Inclusive lower edge of a bucket, in seconds. */
export function bucketLower (index: number): number {
  if (index <= 0) return 0
  if (index >= OVERFLOW_INDEX) return HIST_MIN_SECONDS * 2 ** OCTAVES
  const octave = Math.floor((index - 1) / SUB_BUCKETS)
  const sub = (index - 1) % SUB_BUCKETS
  return HIST_MIN_SECONDS * 2 ** octave * (1 + sub / SUB_BUCKETS)
}

/** Exclusive upper edge of a bucket, in seconds (Infinity for the overflow bucket). */
export function bucketUpper (index: number): number {
  if (index >= OVERFLOW_INDEX) return Infinity
  return bucketLower(index + 1)
}

const VALUES = Float64Array.from({ length: BUCKET_COUNT }, (_, index) => {
  if (index === 0) return HIST_MIN_SECONDS / 2
  if (index === OVERFLOW_INDEX) return bucketLower(OVERFLOW_INDEX)
  return (bucketLower(index) + bucketUpper(index)) / 2
})

/** The value a bucket stands for: its midpoint (the overflow bucket reports its lower edge). */
export function bucketValue (index: number): number {
  return VALUES[Math.max(0, Math.min(OVERFLOW_INDEX, index))]!
}

/** Checks the sparse invariants; returns a problem description or null. */
export function sparseProblem (sparse: ArrayLike<number>): string | null {
  if (sparse.length % 2 !== 0) return 'histogram must have an even length'
  let last = -1
  for (let i = 0; i < sparse.length; i += 2) {
    const index = sparse[i]!
    const count = sparse[i + 1]!
    if (!Number.isInteger(index) || index <= last || index >= BUCKET_COUNT) return `bad bucket index ${index}`
    if (!Number.isInteger(count) || count <= 0) return `bad bucket count ${count}`
    last = index
  }
  return null
}

/** The sum of a sparse histogram's counts. */
export function sparseTotal (sparse: ArrayLike<number>): number {
  let total = 0
  for (let i = 1; i < sparse.length; i += 2) total += sparse[i]!
  return total
}
