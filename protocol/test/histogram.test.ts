import t from 'tap'
import { BUCKET_COUNT, Histogram, bucketIndex, bucketLower, bucketUpper, bucketValue, sparseProblem, OVERFLOW_INDEX } from '../src/histogram.ts'

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

t.test('every value from 10 µs to 60 s sits in a bucket whose midpoint is within 5%', async t => {
  let worst = 0
  const outside: number[] = []
  for (let v = 10e-6; v <= 60; v *= 1.0007) {
    const i = bucketIndex(v)
    if (!(bucketLower(i) <= v && v < bucketUpper(i))) outside.push(v)
    worst = Math.max(worst, Math.abs(bucketValue(i) - v) / v)
  }
  t.same(outside, [], 'every value lies between its bucket\'s edges')
  t.ok(worst <= 0.05, `worst relative error ${worst.toFixed(4)} ≤ 0.05`)
})

t.test('the 1 s, 3 s, 5 s and 10 s signatures are bucket edges', async t => {
  for (const edge of [1, 3, 5, 10]) {
    t.equal(bucketLower(bucketIndex(edge)), edge, `${edge} s starts a bucket`)
  }
})

t.test('underflow, overflow and junk land in the end buckets', async t => {
  t.equal(bucketIndex(0), 0)
  t.equal(bucketIndex(1e-7), 0)
  t.equal(bucketIndex(Number.NaN), 0)
  t.equal(bucketIndex(120), OVERFLOW_INDEX)
  t.equal(bucketIndex(Infinity), OVERFLOW_INDEX)
  t.equal(bucketUpper(OVERFLOW_INDEX), Infinity)
})

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

t.test('sparse encoding is checked', async t => {
  t.equal(sparseProblem([1, 2, 5, 1]), null)
  t.match(sparseProblem([1, 2, 5]), /even/)
  t.match(sparseProblem([5, 1, 1, 1]), /index/)
  t.match(sparseProblem([BUCKET_COUNT, 1]), /index/)
  t.match(sparseProblem([1, 0]), /count/)
  t.match(sparseProblem([1, 1.5]), /count/)
})
