import t from 'tap'
import { bucketIndex } from '@pingfleet/protocol'
import { defaultTiers, Store } from '../src/store.ts'
import { buildMatrix } from '../src/matrix.ts'

const ms = bucketIndex(0.001)

function samples (store: Store, windowMs: number, now: number): number {
  const m = buildMatrix(store, { probe: 'pod', windowMs, now, place: k => ({ row: k.src, col: k.target }) })
  return m.cells.reduce((n, c) => n + c.samples, 0)
}

t.test('results leave a window as it slides past them', async t => {
  const store = new Store([{ width: 1000, span: 10_000 }])
  const id = store.cellId('a', 'pod', 'b')
  store.advance(100_000)
  t.ok(store.add(id, 100_000, 3, [ms, 3]))
  t.equal(samples(store, 5000, 100_500), 3)
  store.advance(104_000)
  t.equal(samples(store, 5000, 104_000), 3, 'still inside 5 s')
  t.equal(samples(store, 2000, 104_000), 0, 'outside a 2 s window')
  store.advance(112_000)
  t.equal(store.stats().slots, 0, 'the slot expired from the store')
  t.notOk(store.add(id, 100_000, 1, [ms, 1]), 'a result older than every window is refused')
  t.equal(store.stats().expired, 1)
})

t.test('fine slots fold into coarse ones without losing or doubling anything', async t => {
  const store = new Store(defaultTiers(5000, 15 * 60_000))
  t.equal(store.tiers.length, 3)
  const id = store.cellId('a', 'pod', 'b')
  const start = 1_000_000_000
  let added = 0
  for (let now = start; now < start + 20 * 60_000; now += 5000) {
    store.advance(now)
    store.add(id, now, 1, [ms + (now / 5000) % 7, 1])
    added++
    if ((now - start) % 60_000 === 0) {
      const expect = Math.min(added, 15 * 12)
      const got = samples(store, 15 * 60_000, now)
      // Coarse slots are 5 minutes wide, so a 15-minute window reaches back up to 5 minutes more.
      t.ok(got >= expect && got <= expect + 60, `at +${(now - start) / 60_000}m: ${got} samples for ${expect} expected`, { diagnostic: false })
    }
  }
  const recent = samples(store, 30_000, start + 20 * 60_000 - 5000)
  t.ok(recent >= 6 && recent <= 7, `a 30 s window sees ${recent} of the newest samples`)
})

t.test('late results land in the slot of their own time', async t => {
  const store = new Store(defaultTiers(1000, 5 * 60_000))
  const id = store.cellId('a', 'pod', 'b')
  store.advance(10_000_000)
  store.add(id, 10_000_000 - 120_000, 5, [ms, 5])
  t.equal(samples(store, 60_000, 10_000_000), 0, 'not in the last minute')
  t.equal(samples(store, 3 * 60_000, 10_000_000), 5, 'but in the last three')
})

t.test('quantiles come from merged buckets across slots', async t => {
  const store = new Store([{ width: 1000, span: 60_000 }])
  const id = store.cellId('a', 'pod', 'b')
  store.advance(50_000)
  store.add(id, 48_000, 90, [bucketIndex(0.001), 90])
  store.add(id, 49_000, 10, [bucketIndex(0.5), 10])
  const m = buildMatrix(store, { probe: 'pod', windowMs: 10_000, now: 50_000, place: k => ({ row: k.src, col: k.target }) })
  const { p50, p99 } = m.cells[0]!.latency
  t.ok(Math.abs(p50! - 0.001) / 0.001 < 0.05, `p50 ${p50}`)
  t.ok(Math.abs(p99! - 0.5) / 0.5 < 0.05, `p99 ${p99}`)
})

t.test('group outputs with many inputs switch to a dense histogram and keep exact counts', async t => {
  const store = new Store([{ width: 1000, span: 60_000 }])
  store.advance(50_000)
  for (let i = 0; i < 3000; i++) store.add(store.cellId(`n${i}`, 'pod', `m${i}`), 49_000, 2, [ms + (i % 50), 1], [{ reason: 'ECONNREFUSED', raw: 'ECONNREFUSED', count: 1 }])
  const m = buildMatrix(store, { probe: 'pod', windowMs: 10_000, now: 50_000, place: () => ({ row: 'x', col: 'y' }) })
  t.equal(m.cells.length, 1)
  t.match(m.cells[0], { samples: 6000, errors: 3000, errorRatio: 0.5, errorsByReason: { ECONNREFUSED: 3000 } })
  t.ok(m.cells[0]!.latency.p50! > 0)
})

t.test('counts too large for one record are split, never lost', async t => {
  const store = new Store([{ width: 1000, span: 60_000 }, { width: 10_000, span: 120_000 }])
  const id = store.cellId('aws', 'pod', 'cilium')
  store.advance(100_000)
  // 3,000 reports of 5,000 probes each in one fine slot: past the 23-bit count of one record.
  for (let i = 0; i < 3000; i++) store.add(id, 99_500, 5000, [ms, 4000, ms + 1, 1000])
  store.add(id, 99_500, 10, Array.from({ length: 700 }, (_, i) => i % 2 === 0 ? i / 2 : 1).slice(0, 20))
  store.advance(170_000)
  t.equal(samples(store, 100_000, 170_000), 15_000_010, 'all probes survive folding into the coarse tier')
})
