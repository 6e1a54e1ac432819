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
  t.same(u.merged(0), { count: 6, latency: [10, 3, 12, 1, COUNTER_BASE, 1, COUNTER_BASE + 1, 15, COUNTER_BASE + 2, 3, COUNTER_BASE + 3, 18_000_000] }, 'sums past one pair\'s 21-bit count still add up')
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

t.test('phases ride as pairs past the counters: summed by add, kept by compact and union, dropped by a slot without them', async t => {
  const { COUNTER_BASE, PHASE_BASE } = await import('../../src/store/slot-arena.ts')
  const { BUCKET_COUNT, Histogram, PHASE_NAMES } = await import('@pingfleet/protocol')
  t.same(PHASE_NAMES, ['dns', 'connect', 'tls', 'firstByte'], 'the store reads phases by name in this order (slot-arena.ts phaseList, CellSum)')
  const connect = (b: number): number => PHASE_BASE + BUCKET_COUNT + b
  const firstByte = (b: number): number => PHASE_BASE + 3 * BUCKET_COUNT + b
  const fine = new SlotArena(0, 5000)
  fine.addCell(0, { count: 2, latency: [20, 2], phases: { connect: [10, 2], firstByte: [15, 1, 16, 1] } })
  fine.addCell(0, { count: 1, latency: [21, 1], slowConnects: 1, phases: { connect: [11, 1], firstByte: [15, 1] } })
  fine.addCell(1, { count: 1, latency: [30, 1] }) // an agent without phases
  fine.compact()
  t.same(fine.merged(0), { count: 3, latency: [20, 2, 21, 1, COUNTER_BASE, 1, connect(10), 2, connect(11), 1, firstByte(15), 2, firstByte(16), 1] })
  t.same(fine.merged(1), { count: 1, latency: [30, 1] })

  const read = (arena: SlotArena, cell: number): { latency: number[], phases: number[][] } => {
    const latency = new Histogram()
    const phases = [0, 1, 2, 3].map(() => new Histogram())
    arena.addTo(cell, latency, undefined, phases)
    return { latency: latency.toSparse(), phases: phases.map(h => h.toSparse()) }
  }
  t.same(read(fine, 0), { latency: [20, 2, 21, 1], phases: [[], [10, 2, 11, 1], [], [15, 2, 16, 1]] }, 'addTo routes phase pairs, and only them, to their phase')

  const kept = SlotArena.union(new SlotArena(0, 60_000), fine)
  t.same(read(kept, 0).phases, [[], [10, 2, 11, 1], [], [15, 2, 16, 1]], 'a fold into a slot that keeps phases keeps them')
  const dropped = SlotArena.union(new SlotArena(0, 60_000, 1024, false), fine)
  t.same(dropped.merged(0), { count: 3, latency: [20, 2, 21, 1, COUNTER_BASE, 1] }, 'a fold into a slot without phases keeps latency and counters, drops phases')
  const many = new SlotArena(0, 5000)
  for (let cell = 0; cell < 1000; cell++) many.addCell(cell, { count: 1, latency: [20, 1], phases: { connect: [10, 1], firstByte: [12, 1] } })
  const [withPhases, withoutPhases] = [true, false].map(keeps => { const u = SlotArena.union(new SlotArena(0, 60_000, 1024, keeps), many); u.compact(); return u.bytes })
  t.ok(withoutPhases! < withPhases! - 1000 * 2 * 4 + 100, `dropping two phase pairs per cell saves their words: ${withoutPhases} against ${withPhases} bytes`)

  const without = new SlotArena(0, 60_000, 1024, false)
  without.addCell(0, { count: 1, latency: [20, 1], phases: { connect: [10, 1] } })
  t.same(without.merged(0), { count: 1, latency: [20, 1] }, 'a slot without phases drops them on add too')
})

t.test('a cell whose phases exceed one record is split, and its phase counts past a pair still add up', async t => {
  const { PHASE_BASE } = await import('../../src/store/slot-arena.ts')
  const { BUCKET_COUNT, Histogram } = await import('@pingfleet/protocol')
  const a = new SlotArena(0, 60_000)
  // 370 latency buckets and 370 per phase: more pairs than one record's header can count (511).
  const all = Array.from({ length: BUCKET_COUNT }, (_, b) => [b, 1]).flat()
  a.addCell(0, { count: BUCKET_COUNT, latency: all, phases: { dns: all, connect: all, tls: all, firstByte: all } })
  a.addCell(0, { count: 5_000_000, latency: [7, 5_000_000], phases: { connect: [3, 5_000_000] } })
  a.compact()
  const latency = new Histogram()
  const phases = [0, 1, 2, 3].map(() => new Histogram())
  t.equal(a.addTo(0, latency, undefined, phases), BUCKET_COUNT + 5_000_000)
  t.equal(latency.total, BUCKET_COUNT + 5_000_000)
  t.same(phases.map(h => h.total), [BUCKET_COUNT, BUCKET_COUNT + 5_000_000, BUCKET_COUNT, BUCKET_COUNT])
  t.equal(phases[1]!.counts[3], 5_000_001)
  t.ok(PHASE_BASE + 4 * BUCKET_COUNT <= 2048, 'the last phase bucket fits the 11-bit bucket field')
})

t.test('a one-probe cell (one bucket each of latency, connect, firstByte) lives in its head word: every read gives what a record gave', async t => {
  const { PHASE_BASE } = await import('../../src/store/slot-arena.ts')
  const { BUCKET_COUNT, Histogram } = await import('@pingfleet/protocol')
  const connect = (b: number): number => PHASE_BASE + BUCKET_COUNT + b
  const firstByte = (b: number): number => PHASE_BASE + 3 * BUCKET_COUNT + b
  const arena = new SlotArena(0, 5000, 16)
  arena.addCell(0, { count: 1, latency: [40, 1], phases: { connect: [0, 1], firstByte: [BUCKET_COUNT - 1, 1] } })
  arena.addCell(1, { count: 1, latency: [], errors: [{ reason: 'ECONNREFUSED', raw: 'ECONNREFUSED', count: 1 }] })
  arena.addCell(2, { count: 1, latency: [BUCKET_COUNT - 1, 1] })
  arena.addCell(3, { count: 1, latency: [0, 1], phases: { firstByte: [7, 1], connect: [] } })
  t.same(arena.merged(0), { count: 1, latency: [40, 1, connect(0), 1, firstByte(BUCKET_COUNT - 1), 1] })
  t.same(arena.merged(1), { count: 1, latency: [] })
  t.same(arena.errors.get(1), [{ reason: 'ECONNREFUSED', raw: 'ECONNREFUSED', count: 1 }])
  t.same(arena.merged(2), { count: 1, latency: [BUCKET_COUNT - 1, 1] })
  t.same(arena.merged(3), { count: 1, latency: [0, 1, firstByte(7), 1] })
  for (const cell of [0, 1, 2, 3]) t.equal(arena.countOf(cell), 1)
  t.ok(arena.has(0) && !arena.has(4))
  const latency = new Histogram()
  const phases = [0, 1, 2, 3].map(() => new Histogram())
  t.equal(arena.addTo(0, latency, undefined, phases), 1)
  t.same([latency.toSparse(), phases.map(h => h.toSparse())], [[40, 1], [[], [0, 1], [], [BUCKET_COUNT - 1, 1]]])
  const dense = new Float64Array(BUCKET_COUNT + 2)
  t.equal(arena.addToDense(3, dense, 2), 1)
  t.equal(dense[2], 1, 'addToDense adds the latency bucket at its offset')
  t.equal(dense.reduce((a, b) => a + b, 0), 1, 'and nothing for the phases')
  arena.compact()
  t.same(arena.merged(0), { count: 1, latency: [40, 1, connect(0), 1, firstByte(BUCKET_COUNT - 1), 1] }, 'compact keeps them')

  // A million-cell interval slot's bytes are its head's: no record words for one-probe cells.
  const records = new SlotArena(0, 5000, 1000)
  const inline = new SlotArena(0, 5000, 1000)
  for (let cell = 0; cell < 1000; cell++) {
    inline.addCell(cell, { count: 1, latency: [20, 1], phases: { connect: [10, 1], firstByte: [12, 1] } })
    records.addCell(cell, { count: 2, latency: [20, 2], phases: { connect: [10, 2], firstByte: [12, 2] } })
  }
  inline.compact()
  records.compact()
  t.ok(inline.bytes <= records.bytes - 1000 * 5 * 4, `${inline.bytes} bytes inline against ${records.bytes} in records`)
})

t.test('a second record for a one-probe cell (a late report) sums with it, before and after compact, and folds', async t => {
  const { COUNTER_BASE, PHASE_BASE } = await import('../../src/store/slot-arena.ts')
  const { BUCKET_COUNT } = await import('@pingfleet/protocol')
  const connect = (b: number): number => PHASE_BASE + BUCKET_COUNT + b
  const arena = new SlotArena(0, 5000)
  arena.addCell(0, { count: 1, latency: [30, 1], phases: { connect: [5, 1] } })
  arena.addCell(0, { count: 1, latency: [30, 1], lost: 2, sent: 3, phases: { connect: [6, 1] } })
  arena.add(0, 1, [31, 1])
  const want = { count: 3, latency: [30, 2, 31, 1, COUNTER_BASE + 1, 3, COUNTER_BASE + 2, 2, connect(5), 1, connect(6), 1] }
  t.same(arena.merged(0), want)
  arena.compact()
  t.same(arena.merged(0), want)
  // A count past what a record holds, on top of a one-probe cell: split over records, summed exactly.
  const big = new SlotArena(0, 5000)
  big.addCell(0, { count: 1, latency: [3, 1] })
  big.add(0, 9_000_000, [3, 9_000_000])
  t.same(big.merged(0), { count: 9_000_001, latency: [3, 9_000_001] })
  big.compact()
  t.same(big.merged(0), { count: 9_000_001, latency: [3, 9_000_001] })
  t.equal(big.countOf(0), 9_000_001)

  const other = new SlotArena(5000, 5000)
  other.addCell(0, { count: 1, latency: [30, 1], phases: { connect: [5, 1], firstByte: [9, 1] } })
  other.addCell(1, { count: 1, latency: [12, 1], phases: { connect: [5, 1] } })
  const kept = SlotArena.union(SlotArena.union(new SlotArena(0, 60_000), arena), other)
  t.same(kept.merged(0), { count: 4, latency: [30, 3, 31, 1, COUNTER_BASE + 1, 3, COUNTER_BASE + 2, 2, connect(5), 2, connect(6), 1, PHASE_BASE + 3 * BUCKET_COUNT + 9, 1] })
  t.same(kept.merged(1), { count: 1, latency: [12, 1, connect(5), 1] })
  const dropped = SlotArena.union(new SlotArena(0, 60_000, 16, false), other)
  t.same(dropped.merged(0), { count: 1, latency: [30, 1] }, 'a fold into a slot without phases drops an inline cell\'s phases')
  t.same(dropped.merged(1), { count: 1, latency: [12, 1] })
  const twice = SlotArena.union(dropped, other)
  t.same(twice.merged(1), { count: 2, latency: [12, 2] })
})

t.test('any mix of cells reads back as their sums through add, compact and folds (deterministic random cells)', async t => {
  const { COUNTER_BASE, PHASE_BASE } = await import('../../src/store/slot-arena.ts')
  const { BUCKET_COUNT, PHASE_NAMES } = await import('@pingfleet/protocol')
  let seed = 7
  const rand = (n: number): number => {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0
    return Math.floor(seed / 2 ** 32 * n)
  }
  const LOSS = ['slowConnects', 'sent', 'lost', 'jitterUs', 'jitterPairs'] as const
  /** A random one-report cell, mostly the one-probe kind, and its expected pairs (bucket → count). */
  const randomCell = (): { cell: Parameters<SlotArena['addCell']>[1], pairs: Map<number, number> } => {
    const pairs = new Map<number, number>()
    const add = (b: number, n: number): void => { pairs.set(b, (pairs.get(b) ?? 0) + n) }
    const kind = rand(10)
    const count = kind < 6 ? 1 : kind < 9 ? 1 + rand(5) : 3_000_000 + rand(5)
    const hist = (n: number): number[] => {
      if (n === 0 || rand(8) === 0) return []
      const b = rand(BUCKET_COUNT)
      if (n === 1 || rand(2) === 0) return [b, n]
      const c = Math.min(BUCKET_COUNT - 1, b + 1 + rand(3))
      return c === b ? [b, n] : [b, n - 1, c, 1]
    }
    const latency = hist(count)
    for (let i = 0; i < latency.length; i += 2) add(latency[i]!, latency[i + 1]!)
    const cell: Parameters<SlotArena['addCell']>[1] = { count, latency }
    if (rand(4) !== 0) {
      const phases: Record<string, number[]> = {}
      PHASE_NAMES.forEach((name, p) => {
        if ((name === 'dns' || name === 'tls') ? rand(6) !== 0 : rand(5) === 0) return
        const h = hist(count)
        phases[name] = h
        for (let i = 0; i < h.length; i += 2) add(PHASE_BASE + p * BUCKET_COUNT + h[i]!, h[i + 1]!)
      })
      cell.phases = phases
    }
    if (rand(6) === 0) {
      const i = rand(LOSS.length)
      cell[LOSS[i]!] = 1 + rand(4)
      add(COUNTER_BASE + i, cell[LOSS[i]!]!)
    }
    return { cell, pairs }
  }
  const expect = new Map<number, { count: number, pairs: Map<number, number> }>()
  const slots = [0, 1, 2].map(i => new SlotArena(i * 5000, 5000, 8))
  for (let n = 0; n < 3000; n++) {
    const id = rand(400)
    const slot = slots[rand(3)]!
    const { cell, pairs } = randomCell()
    slot.addCell(id, cell)
    const e = expect.get(id) ?? { count: 0, pairs: new Map() }
    e.count += cell.count
    for (const [b, c] of pairs) e.pairs.set(b, (e.pairs.get(b) ?? 0) + c)
    expect.set(id, e)
    if (rand(500) === 0) slot.compact()
  }
  const sum = (arenas: SlotArena[], id: number): { count: number, latency: number[] } => {
    const all = new Map<number, number>()
    let count = 0
    for (const a of arenas) {
      const m = a.merged(id)
      count += m.count
      for (let i = 0; i < m.latency.length; i += 2) all.set(m.latency[i]!, (all.get(m.latency[i]!) ?? 0) + m.latency[i + 1]!)
    }
    return { count, latency: [...all].sort((x, y) => x[0] - y[0]).flat() }
  }
  const want = (id: number): { count: number, latency: number[] } => {
    const e = expect.get(id) ?? { count: 0, pairs: new Map<number, number>() }
    return { count: e.count, latency: [...e.pairs].filter(([, c]) => c > 0).sort((x, y) => x[0] - y[0]).flat() }
  }
  let wrong = 0
  for (let id = 0; id < 400; id++) if (JSON.stringify(sum(slots, id)) !== JSON.stringify(want(id))) wrong++
  t.equal(wrong, 0, 'every cell, read from its slots, is the sum of what was added')
  for (const s of slots) s.compact()
  wrong = 0
  for (let id = 0; id < 400; id++) if (JSON.stringify(sum(slots, id)) !== JSON.stringify(want(id))) wrong++
  t.equal(wrong, 0, 'and after compact')
  const folded = SlotArena.union(SlotArena.union(SlotArena.union(new SlotArena(0, 60_000, 8), slots[0]!), slots[1]!), slots[2]!)
  wrong = 0
  let counts = 0
  for (let id = 0; id < 400; id++) {
    if (JSON.stringify(folded.merged(id)) !== JSON.stringify(want(id))) wrong++
    if (folded.countOf(id) !== want(id).count) counts++
  }
  t.equal(wrong, 0, 'and folded into one slot')
  t.equal(counts, 0, 'countOf agrees')
})
