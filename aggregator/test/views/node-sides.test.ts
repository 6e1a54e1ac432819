// Per-node views of the node store: inbound and outbound sums per selected node, mtu peers counted
// by name, reads cut short at an agent's boot, and which destinations each source group probed.

import t from 'tap'
import { bucketIndex, type Cell } from '@pingfleet/protocol'
import { defaultTiers, Store } from '../../src/store/store.ts'
import { nodeSides, probedBy, sidesSinceBoot } from '../../src/views/node-sides.ts'

const INTERVAL = 1000
const T0 = 1_800_000_000_000

function store (): Store {
  const s = new Store(defaultTiers(INTERVAL, 15 * 60_000), () => T0 + 60_000)
  s.advance(T0)
  return s
}

const cell = (probe: Cell['probe'], target: string, count: number, failed = 0): Cell => ({
  probe, target, count, latency: count > failed ? [bucketIndex(0.002), count - failed] : [],
  ...(failed > 0 ? { errors: [{ reason: 'ECONNREFUSED' as const, raw: 'ECONNREFUSED', count: failed }] } : {})
})

function put (s: Store, at: number, src: string, cells: Cell[]): void {
  s.advance(at)
  s.write(at, cells.map(c => s.cellId(src, c.probe, c.target)), cells)
}

t.test('nodeSides: a cell n1→n2 is outbound for n1 and inbound for n2; failures and reasons are summed', async t => {
  const s = store()
  put(s, T0 + 1000, 'n1', [cell('pod', 'n2', 10, 2), cell('pod', 'n3', 5)])
  put(s, T0 + 1000, 'n2', [cell('pod', 'n1', 4)])
  put(s, T0 + 1000, 'n3', [cell('pod', 'n2', 6, 6)])
  const r = nodeSides(s, 'pod', 60_000, T0 + 1500, ['n1', 'n2'], () => true, true)
  t.match(r.outbound[0], { samples: 15, errors: 2, peers: 2 }, 'n1 probed n2 and n3')
  t.match(r.inbound[0], { samples: 4, errors: 0, peers: 1 }, 'only n2 probed n1')
  t.match(r.inbound[1], { samples: 16, errors: 8, peers: 2 }, 'n1 and n3 probed n2')
  t.same([...r.inbound[1]!.reasons!], [['ECONNREFUSED', 8]])
  t.equal(r.inbound[1]!.dense![bucketIndex(0.002)], 8, 'latency of the successes only')
  const cilium = nodeSides(s, 'pod', 60_000, T0 + 1500, ['n2'], peer => peer === 'n3', false)
  t.match(cilium.inbound[0], { samples: 6, errors: 6, peers: 1, dense: null }, 'peers filtered, no histogram unless asked')
})

t.test('nodeSides: an mtu peer has one cell per size and counts once; other kinds are outbound only', async t => {
  const s = store()
  put(s, T0 + 1000, 'n1', [cell('mtu', 'n2/1400', 2), cell('mtu', 'n2/8500', 2, 2), cell('dns-lookup', 'kubernetes.default@getaddrinfo', 3)])
  const mtu = nodeSides(s, 'mtu', 60_000, T0 + 1500, ['n1', 'n2'], () => true, false)
  t.match(mtu.outbound[0], { samples: 4, errors: 2, peers: 1 })
  t.match(mtu.inbound[1], { samples: 4, errors: 2, peers: 1 })
  const dns = nodeSides(s, 'dns-lookup', 60_000, T0 + 1500, ['n1'], () => true, false)
  t.match(dns.outbound[0], { samples: 3, peers: 1 })
  t.match(dns.inbound[0], { samples: 0, peers: 0 })
})

t.test('sidesSinceBoot: a node whose agent booted inside the window reads only whole slots after it', async t => {
  const s = store()
  for (let at = T0 + 1000; at <= T0 + 10_000; at += 1000) put(s, at, 'n1', [cell('pod', 'n2', 1, at <= T0 + 5000 ? 1 : 0)])
  const window = { probe: 'pod' as const, windowMs: 60_000, now: T0 + 10_500 }
  const boot = { bootId: 'boot-n1-0002', at: T0 + 5500 }
  const r = sidesSinceBoot(s, window, ['n1', 'n2'], node => node === 'n1' ? boot : null, () => true, false, true)
  t.same(r.since, [boot, null])
  t.match(r.outbound[0], { samples: 5, errors: 0 }, 'n1 since its boot: the slots that start at or after it (6 s on); the one it falls in is left out')
  t.match(r.inbound[1], { samples: 10, errors: 5 }, 'n2 over the whole window')
  t.match(r.full!.outbound[0], { samples: 10, errors: 5 }, 'and n1 over the whole window, when asked')
  const unshortened = sidesSinceBoot(s, window, ['n1'], () => ({ bootId: 'old', at: T0 - 600_000 }), () => true, false, false)
  t.same(unshortened.since, [null], 'a boot older than the window changes nothing')
  t.equal(unshortened.full!.outbound[0], unshortened.outbound[0], 'no node shortened: the whole-window sides are the sides')
})

t.test('probedBy: a bit per source group for every destination node it probed', async t => {
  const s = store()
  put(s, T0 + 1000, 'a1', [cell('pod', 'c1', 1), cell('pod', 'c2', 1)])
  put(s, T0 + 1000, 'c1', [cell('pod', 'c2', 1), cell('mtu', 'a1/1400', 1)])
  const group = (node: string): string => node.startsWith('a') ? 'aws' : 'cilium'
  const pod = probedBy(s, 'pod', 60_000, T0 + 1500, ['aws', 'cilium'], group)
  t.same(Object.fromEntries(pod), { c1: 0b01, c2: 0b11 })
  t.same(Object.fromEntries(probedBy(s, 'mtu', 60_000, T0 + 1500, ['aws', 'cilium'], group)), { a1: 0b10 }, 'mtu targets name the node before the size')
  t.same(Object.fromEntries(probedBy(s, 'pod', 60_000, T0 + 1500, ['cilium'], group)), { c2: 0b1 }, 'probes from groups not asked about are not counted')
})

t.test('nodeSides over every peer reads the per-node sums and answers exactly what the cells do', async t => {
  // 70 nodes (past the sums' first capacity of 64), each probing a random third of the others, over
  // 100 s of 1 s reports, so interval slots fold into minute slots; pod and mtu (two sizes);
  // failures of two reasons; some reports arrive late, into slots that have closed; an agent that
  // stops, and a node that is only probed.
  let seed = 7
  const rand = (n: number): number => { seed = (Math.imul(seed, 1103515245) + 12345) >>> 0; return (seed >>> 8) % n }
  const names = Array.from({ length: 70 }, (_, i) => `n${i}`)
  let clock = T0
  const s = new Store(defaultTiers(INTERVAL, 15 * 60_000), () => clock)
  s.advance(T0)
  const cellOf = (probe: Cell['probe'], target: string): Cell => {
    const count = rand(4)
    const failed = rand(10) === 0 ? Math.min(count, 1 + rand(2)) : 0
    const reason = rand(2) === 0 ? 'ECONNREFUSED' as const : 'CONNECT_TIMEOUT' as const
    return {
      probe, target, count, latency: count > failed ? [bucketIndex(0.0005 * (1 + rand(40))), count - failed] : [],
      ...(failed > 0 ? { errors: [{ reason, raw: reason, count: failed }] } : {})
    }
  }
  const late: Array<{ at: number, src: string, cells: Cell[] }> = []
  for (let at = T0 + 1000; at <= T0 + 100_000; at += 1000) {
    clock = at
    for (const [i, src] of names.entries()) {
      if (i === 69 || (i === 3 && at > T0 + 70_000)) continue
      const cells = names.filter(n => n !== src && rand(3) === 0).flatMap(n => rand(3) === 0 ? [cellOf('pod', n), cellOf('mtu', `${n}/1400`), cellOf('mtu', `${n}/8500`)] : [cellOf('pod', n)])
      if (rand(20) === 0) late.push({ at, src, cells })
      else put(s, at, src, cells)
    }
    // Late reports land after their slot closed (up to three seconds on).
    for (const r of late.filter(r => r.at <= at - 3000)) { s.write(r.at, r.cells.map(c => s.cellId(r.src, c.probe, c.target)), r.cells) }
    late.splice(0, late.length, ...late.filter(r => r.at > at - 3000))
  }
  const now = T0 + 100_500
  let compared = 0
  for (const probe of ['pod', 'mtu', 'udp'] as const) {
    for (const [windowMs, since] of [[30_000, null], [90_000, null], [60_000, T0 + 65_500]] as const) {
      const fast = nodeSides(s, probe, windowMs, now, [...names, 'unknown'], null, true, since)
      const slow = nodeSides(s, probe, windowMs, now, [...names, 'unknown'], () => true, true, since)
      for (const dir of ['inbound', 'outbound'] as const) {
        for (const [i, f] of fast[dir].entries()) {
          const c = slow[dir][i]!
          const same = f.samples === c.samples && f.errors === c.errors && f.peers === c.peers &&
            JSON.stringify([...f.reasons ?? []].sort()) === JSON.stringify([...c.reasons ?? []].sort()) &&
            f.dense!.every((n, b) => n === c.dense![b])
          if (!same) t.fail(`${probe} ${windowMs} ms since ${since} ${dir} ${names[i] ?? 'unknown'}: ${JSON.stringify({ ...f, dense: null, reasons: [...f.reasons ?? []] })} vs ${JSON.stringify({ ...c, dense: null, peerSet: null, reasons: [...c.reasons ?? []] })}`)
          if (f.samples > 0) compared++
        }
        t.same([fast.from, fast.to], [slow.from, slow.to])
      }
    }
  }
  t.ok(compared > 400, `${compared} non-empty sides compared`)
  // A peer-group filter on pod and udp looks cells up instead of passing over them all: it must
  // count exactly the cells a brute-force pass over every cell counts.
  const odd = (peer: string): boolean => Number(peer.slice(1)) % 2 === 1
  for (const probe of ['pod', 'udp'] as const) {
    const read = s.read(60_000, now)
    const filtered = nodeSides(s, probe, 60_000, now, names, odd, false)
    for (const [i, node] of names.entries()) {
      const want = { inbound: { samples: 0, errors: 0, peers: 0 }, outbound: { samples: 0, errors: 0, peers: 0 } }
      for (const id of s.idsOf(probe)) {
        const { src, target } = s.key(id)
        const dir = src === node && target !== node && odd(target) ? 'outbound' : target === node && src !== node && odd(src) ? 'inbound' : null
        if (dir === null) continue
        const n = read.count(id)
        if (n === 0) continue
        want[dir].samples += n
        want[dir].peers++
        read.forEachError(id, e => { want[dir].errors += e.count })
      }
      for (const dir of ['inbound', 'outbound'] as const) {
        const got = filtered[dir][i]!
        if (got.samples !== want[dir].samples || got.errors !== want[dir].errors || got.peers !== want[dir].peers) t.fail(`${probe} ${dir} ${node} with a peer filter: ${JSON.stringify({ ...got, reasons: null, dense: null })} vs ${JSON.stringify(want[dir])}`)
      }
    }
  }
  t.match(nodeSides(s, 'pod', 90_000, now, ['n69'], null, false), { inbound: [{ peers: 69 }], outbound: [{ samples: 0, peers: 0 }] }, 'a node that only is probed')
  t.throws(() => s.read(60_000, now).nodeSides('dns-lookup', ['n1'], false), RangeError, 'no node sums for kinds whose targets are not nodes')
  t.same(nodeSides(s, 'dns-lookup', 60_000, now, ['n1'], null, false).outbound[0]!.samples, 0, 'which nodeSides reads from the cells')
})
