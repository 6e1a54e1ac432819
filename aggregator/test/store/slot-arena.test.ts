import t from 'tap'
import { SlotArena } from '../../src/store/slot-arena.ts'

function pairs (arena: SlotArena, cell: number): { count: number, latency: number[] } {
  return arena.merged(cell)
}

t.test('union merges both arenas cell by cell, summing equal buckets, and leaves its inputs alone', async t => {
  const coarse = new SlotArena(0, 60_000)
  coarse.add(0, 3, [10, 2, 20, 1])
  coarse.add(2, 1, [5, 1])
  coarse.compact()
  const fine = new SlotArena(5000, 5000)
  fine.add(0, 2, [10, 1, 15, 1], [{ reason: 'ECONNREFUSED', raw: 'ECONNREFUSED', count: 1 }])
  fine.add(1, 1, [7, 1], undefined, 1)
  fine.addBackends(1, [{ node: 'n9', count: 1 }])
  const out = SlotArena.union(coarse, fine)
  t.same(pairs(out, 0), { count: 5, latency: [10, 3, 15, 1, 20, 1] })
  t.same(pairs(out, 1), { count: 1, latency: [7, 1] })
  t.same(pairs(out, 2), { count: 1, latency: [5, 1] })
  t.same(out.errors.get(0), [{ reason: 'ECONNREFUSED', raw: 'ECONNREFUSED', count: 1 }])
  t.equal(out.lagged.get(1), 1)
  t.same([...out.backends.get(1)!], [['n9', 1]])
  t.same(pairs(coarse, 0), { count: 3, latency: [10, 2, 20, 1] }, 'the coarse input is unchanged')
  t.equal(out.start, 0)
  t.equal(out.width, 60_000)
})

t.test('union reads chained cells (late reports) correctly', async t => {
  const a = new SlotArena(0, 60_000)
  a.add(0, 1, [30, 1])
  a.add(0, 1, [10, 1]) // a second record for the same cell: a chain, newest first
  const b = new SlotArena(0, 5000)
  b.add(0, 2, [20, 1, 30, 1])
  t.same(pairs(SlotArena.union(a, b), 0), { count: 4, latency: [10, 1, 20, 1, 30, 2] })
})

t.test('union splits a bucket whose merged count no longer fits one pair', async t => {
  const a = new SlotArena(0, 60_000)
  a.add(0, 8_000_000, [3, 8_000_000])
  const b = new SlotArena(0, 5000)
  b.add(0, 1_000_000, [3, 1_000_000])
  t.same(pairs(SlotArena.union(a, b), 0), { count: 9_000_000, latency: [3, 9_000_000] })
})

t.test('compact packs chains into one sorted record per cell and trims spare room', async t => {
  const a = new SlotArena(0, 60_000)
  for (let i = 0; i < 50; i++) a.add(i % 5, 1, [i % 7, 1])
  const before = a.bytes
  a.compact()
  t.ok(a.bytes < before, `${a.bytes} < ${before} bytes`)
  let total = 0
  for (let cell = 0; cell < 5; cell++) total += pairs(a, cell).count
  t.equal(total, 50)
})

t.test('an arena compacted while empty (a late report with no cells opened it) still takes a later report', async t => {
  // compact() trimmed the data array to zero words, and ensure() then doubled zero forever: the
  // aggregator hung on the next late report for that slot (found by bench/fuzz-protocol.ts).
  const arena = new SlotArena(0, 5000)
  arena.compact()
  arena.add(0, 2, [10, 2])
  t.same(arena.merged(0), { count: 2, latency: [10, 2] })
  const empty = SlotArena.union(new SlotArena(0, 60_000, 0), new SlotArena(0, 5000, 0))
  empty.compact()
  empty.add(3, 1, [7, 1])
  t.same(empty.merged(3), { count: 1, latency: [7, 1] })
})

t.test('loss counters ride as pairs past the latency buckets and survive union and compact', async t => {
  const { COUNTER_BASE, withCounters } = await import('../../src/store/slot-arena.ts')
  const a = new SlotArena(0, 1000)
  t.same(withCounters([10, 1], {}), [10, 1], 'no counters: the histogram as it is')
  a.add(0, 3, withCounters([10, 2], { slowConnects: 1, sent: 10, lost: 0 }))
  a.add(0, 2, withCounters([12, 1], { sent: 5, lost: 2, jitterUs: 9_000_000 }))
  a.compact()
  t.same(a.merged(0), { count: 5, latency: [10, 2, 12, 1, COUNTER_BASE, 1, COUNTER_BASE + 1, 15, COUNTER_BASE + 2, 2, COUNTER_BASE + 3, 9_000_000] })
  const b = new SlotArena(0, 1000)
  b.add(0, 1, withCounters([10, 1], { lost: 1, jitterUs: 9_000_000 }))
  const u = SlotArena.union(a, b)
  t.same(u.merged(0), { count: 6, latency: [10, 3, 12, 1, COUNTER_BASE, 1, COUNTER_BASE + 1, 15, COUNTER_BASE + 2, 3, COUNTER_BASE + 3, 18_000_000] }, 'sums past one pair\'s 23-bit count still add up')
  t.equal(u.countOf(0), 6)
})

t.test('compaction keeps the backends beside the packed data', async t => {
  const a = new SlotArena(0, 1000)
  a.addBackends(3, [{ node: 'x', count: 2 }])
  const before = a.bytes
  a.add(3, 2, [10, 2])
  a.add(3, 1, [10, 1])
  a.compact()
  t.same([...a.backends.get(3)!], [['x', 2]], 'compaction keeps the side map')
  t.equal(a.countOf(3), 3)
  t.equal(a.countOf(99), 0)
  t.ok(before > 0)
})
