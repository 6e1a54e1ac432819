import t from 'tap'
import { BUCKET_COUNT, bucketIndex, bucketLower, bucketUpper, bucketValue, sparseProblem, OVERFLOW_INDEX } from '../src/histogram.ts'

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

t.test('sparse encoding is checked', async t => {
  t.equal(sparseProblem([1, 2, 5, 1]), null)
  t.match(sparseProblem([1, 2, 5]), /even/)
  t.match(sparseProblem([5, 1, 1, 1]), /index/)
  t.match(sparseProblem([BUCKET_COUNT, 1]), /index/)
  t.match(sparseProblem([1, 0]), /count/)
  t.match(sparseProblem([1, 1.5]), /count/)
})
