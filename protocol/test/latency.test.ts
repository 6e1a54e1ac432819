import t from 'tap'
import { BUCKET_COUNT, bucketIndex, bucketValue, OVERFLOW_INDEX } from '../src/histogram.ts'
import { Histogram, nearestRank, PrometheusBuckets, SparseBuilder } from '../src/latency.ts'

function exactQuantile (sorted: number[], q: number): number {
  return sorted[Math.max(1, Math.ceil(q * sorted.length)) - 1]!
}

// A deterministic generator, so a failure can be reproduced.
function lcg (seed: number): () => number {
  let s = seed >>> 0
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0
    return s / 2 ** 32
  }
}

t.test('quantiles of merged histograms match exact quantiles within 5%', async t => {
  const rand = lcg(42)
  const parts = [new Histogram(), new Histogram(), new Histogram()]
  const all: number[] = []
  for (let i = 0; i < 30_000; i++) {
    // log-normal-ish around 1 ms, with a tail out to seconds
    const v = 0.001 * Math.exp((rand() + rand() + rand() - 1.5) * 2) * (rand() < 0.01 ? 1000 : 1)
    all.push(v)
    parts[i % 3]!.record(v)
  }
  const merged = new Histogram()
  for (const p of parts) merged.addSparse(p.toSparse())
  all.sort((a, b) => a - b)
  t.equal(merged.total, all.length)
  for (const q of [0.01, 0.5, 0.9, 0.99, 0.999, 1]) {
    const exact = exactQuantile(all, q)
    const got = merged.quantile(q)!
    t.ok(Math.abs(got - exact) / exact <= 0.05, `q${q}: ${got} vs exact ${exact}`)
  }
})

t.test('merge is the same as recording everything in one place', async t => {
  const a = new Histogram()
  const b = new Histogram()
  const both = new Histogram()
  for (const v of [0.0001, 0.002, 0.002, 1.5]) { a.record(v); both.record(v) }
  for (const v of [0.003, 9]) { b.record(v); both.record(v) }
  a.merge(b)
  t.same(a.toSparse(), both.toSparse())
  t.equal(new Histogram().quantile(0.5), null)
})

t.test('the sparse builder keeps what it was given, indexes ascending', async t => {
  const b = new SparseBuilder()
  t.ok(b.empty)
  t.same(b.toSparse(), [])
  for (const v of [1.2, 0.001, 0.001, 120]) b.record(v)
  b.add(3, 4)
  t.notOk(b.empty)
  t.same(b.toSparse(), [3, 4, bucketIndex(0.001), 2, bucketIndex(1.2), 1, OVERFLOW_INDEX, 1])
})

t.test('the dense accumulator: buckets added out of order, reset, then reused', async t => {
  const h = new Histogram()
  h.addSparse([40, 2, 7, 1])
  h.add(20, 3)
  h.add(7, 1)
  h.add(99, 0)
  t.same(h.touched(), [7, 20, 40], 'touched buckets come back sorted, empty adds not among them')
  t.same(h.toSparse(), [7, 2, 20, 3, 40, 2])
  t.equal(h.total, 7)
  t.same(h.quantiles([0.1, 0.5, 0.99, 1]), [bucketValue(7), bucketValue(20), bucketValue(40), bucketValue(40)])
  h.reset()
  t.equal(h.total, 0)
  t.same(h.toSparse(), [])
  t.ok(h.counts.every(c => c === 0), 'reset clears every count it set')
  t.same(h.quantiles([0.5, 0.9]), [null, null])
  h.add(5, 1)
  t.equal(h.quantile(0.5), bucketValue(5))
})

t.test('nearestRank agrees with the accumulator, also on a row of a larger array', async t => {
  const rand = lcg(7)
  const h = new Histogram()
  for (let i = 0; i < 1000; i++) h.add(Math.floor(rand() * 40) + 100, 1 + Math.floor(rand() * 3))
  const slab = new Float64Array(3 * BUCKET_COUNT)
  slab.set(h.counts, BUCKET_COUNT)
  for (const q of [0, 0.01, 0.5, 0.9, 0.99, 1]) {
    t.equal(nearestRank(h.counts, h.total, q), h.quantile(q), `q${q}`)
    t.equal(nearestRank(slab, h.total, q, BUCKET_COUNT), h.quantile(q), `q${q}, row 1 of 3`)
  }
  t.equal(nearestRank(new Float64Array(BUCKET_COUNT), 0, 0.5), null)
  t.equal(nearestRank(new Float64Array(BUCKET_COUNT), 5, 0.5), bucketValue(OVERFLOW_INDEX), 'a total the counts do not reach: the overflow bucket')
})

t.test('Prometheus buckets: cumulative counts by midpoint, the signatures on their edges', async t => {
  const bounds = [0.001, 1, 3, 5, 10] as const
  const prom = new PrometheusBuckets(bounds)
  t.equal(prom.boundOf(bucketIndex(0.0005)), 0)
  t.equal(prom.boundOf(bucketIndex(0.99)), 1, 'just under 1 s counts at le=1')
  t.equal(prom.boundOf(bucketIndex(1)), 2, '1 s itself (a SYN retransmit) counts past le=1')
  t.equal(prom.boundOf(OVERFLOW_INDEX), bounds.length, '+Inf')
  const h = new Histogram()
  for (const v of [0.0005, 0.002, 2, 4, 4, 60]) h.record(v)
  const out = new Float64Array(bounds.length + 1)
  const { sum, count } = prom.cumulative(h, out)
  t.same([...out], [1, 2, 3, 5, 5, 6])
  t.equal(count, 6)
  let expected = 0
  for (const i of h.touched()) expected += h.counts[i]! * bucketValue(i)
  t.equal(sum, expected, 'the sum of bucket values, in ascending bucket order')
})
