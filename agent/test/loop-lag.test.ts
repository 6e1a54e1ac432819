import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { LoopLag, StallLog, sumOfLargest } from '../src/loop-lag.ts'

function block (ms: number): void {
  const until = performance.now() + ms
  while (performance.now() < until) { /* a stalled event loop */ }
}

t.test('a stall is seen both while it is pending and after the late tick ran', async t => {
  const lag = new LoopLag({ thresholdMs: 30, tickMs: 5 })
  lag.start()
  t.teardown(() => lag.stop())
  await sleep(20)
  const before = performance.now()
  t.equal(lag.stalledDuring(before, performance.now()), false, 'a quiet loop is not stalled')
  block(100)
  const end = performance.now()
  t.equal(lag.stalledDuring(before, end), true, 'the overdue tick counts before it runs')
  t.ok(lag.delayBoundMs(before, end, 3) >= 100, 'the stall in progress bounds the delay from above')
  await sleep(20)
  t.equal(lag.stalledDuring(before, end), true, 'and after it ran')
  t.ok(lag.delayBoundMs(before, end, 1) >= 100, 'as one stall of at least its length')
  t.ok(lag.takeMaxLagMs() >= 30)
  await sleep(20)
  const later = performance.now()
  t.equal(lag.stalledDuring(later, later + 1), false, 'a later probe is not flagged')
  t.equal(lag.delayBoundMs(later, later + 1, 3), 0)
})

t.test('start is idempotent and a stopped monitor reports nothing pending', async t => {
  const lag = new LoopLag({ thresholdMs: 50 })
  t.equal(lag.tickMs, 20)
  lag.start()
  lag.start()
  lag.stop()
  const from = performance.now()
  block(80)
  t.equal(lag.stalledDuring(from, performance.now()), false)
})

t.test('the delay bound is the sum of the k largest overlapping stalls, each clipped to the probe', async t => {
  const log = new StallLog(16)
  // Throttling: a 95 ms freeze every 100 ms.
  for (let at = 0; at < 3000; at += 100) log.add(at, at + 95)
  const overlaps = log.overlaps(1000, 3000)
  t.equal(overlaps.length, 16, 'only what the ring kept (the newest 16)')
  t.equal(sumOfLargest(overlaps, 3), 285, 'three turns lose at most three freezes')
  t.same(log.overlaps(2996, 2999), [], 'after the last stall')
  t.same(log.overlaps(2980, 2999), [15], 'clipped at the end of the stall')
  t.same(log.overlaps(2890, 2910), [10, 5], 'clipped on both sides, newest first')
  t.same(log.overlaps(0, 10, { start: 5, end: 50 }), [5], 'an extra (pending) stall counts too')
  t.equal(log.size, 16)
})

t.test('one freeze longer than the timeout bounds the delay by itself', async t => {
  const log = new StallLog()
  log.add(100, 3100)
  t.equal(sumOfLargest(log.overlaps(50, 3200), 3), 3000)
  t.equal(sumOfLargest(log.overlaps(3100, 3200), 3), 0, 'a probe that starts as the freeze ends lost nothing to it')
  t.equal(sumOfLargest([], 3), 0)
  t.equal(sumOfLargest([5, 1, 9], 0), 0)
  t.equal(sumOfLargest([5, 1, 9], 2), 14)
})
