// WindowRead.failedOf over the slots' flat failure indexes (failure-index.ts): the same failures as
// reading the records cell by cell, kind by kind, through folds and late failures.

import t from 'tap'
import { bucketIndex, type ProbeKind } from '@pingfleet/protocol'
import type { CellErrors } from '../../src/store/cell-sum.ts'
import { defaultTiers, NODE_TIERS, Store } from '../../src/store/store.ts'
import type { WindowRead } from '../../src/store/window-read.ts'

const ms = bucketIndex(0.001)
const timeout = (count: number): CellErrors => ({ reason: 'CONNECT_TIMEOUT', raw: 'UND_ERR_CONNECT_TIMEOUT', count })
const refused = (count: number): CellErrors => ({ reason: 'CONNECT_REFUSED', raw: 'ECONNREFUSED', count })

/** What failedOf says, as plain rows: [id, errors, reasons ('several' when it has several pairs)]. */
function rows (read: WindowRead, probe: ProbeKind): Array<[number, number, string]> {
  const f = read.failedOf(probe)
  return Array.from(f.ids, (id, k) => [id, f.errors[k]!, f.pair[k] === -1 ? 'several' : `${f.pairs[f.pair[k]!]!.reason}/${f.pairs[f.pair[k]!]!.raw}`])
}

/** The same from the records, cell by cell (forEachError over every cell of the kind). */
function expected (store: Store, read: WindowRead, probe: ProbeKind): Array<[number, number, string]> {
  const out: Array<[number, number, string]> = []
  for (const id of [...store.idsOf(probe)].sort((a, b) => a - b)) {
    let errors = 0
    const pairs = new Set<string>()
    read.forEachError(id, e => { errors += e.count; pairs.add(`${e.reason}/${e.raw}`) })
    if (pairs.size > 0) out.push([id, errors, pairs.size === 1 ? [...pairs][0]! : 'several'])
  }
  return out
}

t.test('failedOf gives each failed cell of one kind once, its failures summed over the slots, ids ascending', async t => {
  let now = 1_800_000_000_000
  const store = new Store(defaultTiers(5000, 15 * 60_000, NODE_TIERS), () => now)
  const nodes = Array.from({ length: 8 }, (_, i) => `n${i}`)
  // Cells created in an order that is not their failure order.
  for (const src of [...nodes].reverse()) for (const dst of nodes) if (src !== dst) { store.cellId(src, 'pod', dst); store.cellId(src, 'mtu', `${dst}/8500`) }
  for (let r = 0; r < 12; r++) {
    now += 5000
    store.advance(now)
    for (const src of nodes) {
      for (const dst of nodes) {
        if (src === dst) continue
        const pod = store.cellId(src, 'pod', dst)
        const mtu = store.cellId(src, 'mtu', `${dst}/8500`)
        // n3 dead inbound; n1 → n2 refused in odd reports only (a pair that changes between slots);
        // n5 → n6 both reasons in one report; mtu toward n7 fails.
        const errors = dst === 'n3' ? [timeout(1)] : src === 'n1' && dst === 'n2' && r % 2 === 1 ? [refused(1)] : src === 'n5' && dst === 'n6' ? [timeout(1), refused(2)] : undefined
        store.add(pod, now, { count: 3, latency: errors === undefined ? [ms, 3] : [], ...(errors === undefined ? {} : { errors }) })
        store.add(mtu, now, { count: 1, latency: dst === 'n7' ? [] : [ms, 1], ...(dst === 'n7' ? { errors: [{ reason: 'MTU_BLACKHOLE', raw: 'BODY_TIMEOUT', count: 1 }] } : {}) })
      }
    }
  }
  const read = store.read(30_000, now)
  const pod = rows(read, 'pod')
  t.same(pod, expected(store, read, 'pod'), 'pod: the records cell by cell')
  t.equal(pod.length, 7 + 1 + 1, 'toward n3 from 7 peers, n1 → n2, n5 → n6')
  t.same(pod.find(([id]) => id === store.cellId('n5', 'pod', 'n6')), [store.cellId('n5', 'pod', 'n6'), 3 * 7, 'several'])
  t.same(pod.find(([id]) => id === store.cellId('n0', 'pod', 'n3')), [store.cellId('n0', 'pod', 'n3'), 7, 'CONNECT_TIMEOUT/UND_ERR_CONNECT_TIMEOUT'], '7 slots overlap a 30 s window')
  t.ok(pod.every(([id], k) => k === 0 || id > pod[k - 1]![0]), 'ids ascending')
  const mtu = rows(read, 'mtu')
  t.same(mtu, expected(store, read, 'mtu'))
  t.equal(mtu.length, 7)
  t.same(rows(read, 'udp'), [], 'a kind without failures')
  // A longer window takes folded (minute) slots too.
  now += 3 * 60_000
  store.advance(now)
  const long = store.read(10 * 60_000, now)
  t.same(rows(long, 'pod'), expected(store, long, 'pod'), 'through folds')
  t.same(rows(store.read(30_000, now), 'pod'), [], 'nothing failed in the last 30 s')
})

t.test('a slot that takes another failure after it was read is read again', async t => {
  let now = 1_800_000_000_000
  const store = new Store([{ width: 5000, span: 60_000 }], () => now)
  const a = store.cellId('a', 'pod', 'b')
  const b = store.cellId('b', 'pod', 'a')
  now += 5000
  store.advance(now)
  store.add(a, now, { count: 1, latency: [], errors: [timeout(1)] })
  t.same(rows(store.read(5000, now), 'pod'), [[a, 1, 'CONNECT_TIMEOUT/UND_ERR_CONNECT_TIMEOUT']])
  store.add(a, now, { count: 1, latency: [], errors: [refused(1)] })
  store.add(b, now, { count: 1, latency: [], errors: [refused(4)] })
  const read = store.read(5000, now)
  t.same(rows(read, 'pod'), [[a, 2, 'several'], [b, 4, 'CONNECT_REFUSED/ECONNREFUSED']])
  t.same(rows(read, 'pod'), expected(store, read, 'pod'))
})
