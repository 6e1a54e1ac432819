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
