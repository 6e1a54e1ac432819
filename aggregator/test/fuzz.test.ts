// A small protocol fuzzing run in the suite (the figure, with 10^5 frames against an aggregator
// process, is bench/fuzz-protocol.ts and RELIABILITY.md): every frame gets the outcome the
// protocol's own decoder predicts, refusals are counted, and the honest agents' totals are exact.

import t from 'tap'
import { runFuzz } from '../../bench/fuzz/run-fuzz.ts'
import { aggregator, TOKEN } from './helpers.ts'

t.setTimeout(300_000)

for (const seed of [7, 8]) {
  t.test(`seed ${seed}: 1,500 fuzzed frames, honest agents untouched`, async t => {
    const agg = await aggregator({ PINGFLEET_MAX_WINDOW: '1m' })
    t.teardown(() => agg.close())
    const result = await runFuzz({ url: agg.address(), token: TOKEN, frames: 1500, seed, workers: 4, honest: 2, honestIntervalMs: 500 })
    t.equal(result.frames, 1500)
    t.same(result.wrong, [], 'every frame got its expected outcome')
    t.ok(result.rejected > 300 && result.accepted > 300, `both outcomes exercised: ${result.accepted} accepted, ${result.rejected} refused`)
    t.ok(result.honest.ok, result.honest.detail.join('; ') || 'honest totals exact')
    t.ok(result.honest.reports > 0, 'honest agents reported throughout')
    const metrics = (await agg.app.inject('/metrics')).body
    const counted = [...metrics.matchAll(/^pingfleet_ingest_rejected_total\{code="[^"]+"\} (\d+)$/gm)].reduce((n, m) => n + Number(m[1]), 0)
    t.equal(counted, result.rejected, 'each refusal counted once by the aggregator')
    t.equal((await agg.app.inject('/healthz')).statusCode, 200)
  })
}
