import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { LoopLag } from '../src/loop-lag.ts'

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
  t.equal(lag.lateSince(before), false, 'a quiet loop is not late')
  block(100)
  t.equal(lag.lateSince(before), true, 'the overdue tick counts before it runs')
  await sleep(20)
  t.equal(lag.lateSince(before), true, 'and after it ran')
  t.ok(lag.takeMaxLagMs() >= 30)
  await sleep(20)
  t.equal(lag.lateSince(performance.now()), false, 'a later probe is not flagged')
})

t.test('start is idempotent and a stopped monitor reports nothing pending', async t => {
  const lag = new LoopLag({ thresholdMs: 50 })
  t.equal(lag.tickMs, 20)
  lag.start()
  lag.start()
  lag.stop()
  block(80)
  t.equal(lag.lateSince(performance.now()), false)
})
