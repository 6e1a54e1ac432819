// readNetworkInput over real stores, filled the way the aggregator fills them (Ingest → Store.write),
// and the network findings drawn from it: the store side of the evaluator, end to end in process.

import t from 'tap'
import { bucketIndex, type Cell } from '@pingfleet/protocol'
import { evaluateFindings } from '../../src/findings/evaluate.ts'
import { findingsContext } from '../../src/findings/input.ts'
import { networkFindings, readNetworkInput } from '../../src/findings/network.ts'
import { NETWORK_WINDOW_MS } from '../../src/findings/network-thresholds.ts'
import { AgentHealth } from '../../src/fleet/agent-health.ts'
import { Fleet } from '../../src/fleet/fleet.ts'
import { Roster } from '../../src/fleet/roster.ts'
import { Ingest } from '../../src/store/ingest.ts'
import { defaultTiers, GROUP_TIERS, NODE_TIERS, Store } from '../../src/store/store.ts'
import { Totals } from '../../src/store/totals.ts'

const INTERVAL = 5000
const b = bucketIndex(0.001)

function setup (nodes: number) {
  let clock = Date.UTC(2026, 10, 29, 10)
  const store = new Store(defaultTiers(INTERVAL, 15 * 60_000, NODE_TIERS), () => clock)
  const groups = new Store(defaultTiers(INTERVAL, 15 * 60_000, GROUP_TIERS), () => clock)
  const roster = new Roster(10 * 60_000)
  const fleet = new Fleet({ roster, groupLabel: 'cniplugin' })
  const health = new AgentHealth({ now: () => clock, roster })
  const ingest = new Ingest({ nodes: store, groups, totals: new Totals(), fleet, health })
  const names = Array.from({ length: nodes }, (_, i) => `node-${String(i).padStart(2, '0')}`)
  for (const [i, node] of names.entries()) {
    roster.join({ type: 'hello', v: 1, node, pod: `agent-${i}`, podIp: '127.0.0.1', port: 8081, labels: { cniplugin: i % 2 === 0 ? 'aws' : 'cilium' }, version: 't', bootId: `boot-${i}` } as never, clock)
  }
  let seq = 0
  /** `rounds` (six by default) 5 s reports from every agent: `cells(src)` each time. */
  const run = (cells: (src: string) => Cell[], rounds = 6): void => {
    for (let r = 0; r < rounds; r++) {
      clock += INTERVAL
      seq++
      store.advance(clock)
      groups.advance(clock)
      for (const node of names) {
        const entry = roster.get(node)!
        if (roster.accept(node, entry.bootId, seq, clock)) ingest.apply(entry, { type: 'report', v: 1, seq, start: clock - INTERVAL, end: clock, cells: cells(node) } as never)
      }
    }
  }
  const sources = { nodes: store, groups, fleet, health }
  return { names, run, sources, now: () => clock }
}

t.test('readNetworkInput sums sides, failed cells, mtu sizes, loss counters and group links from the stores', async t => {
  const { names, run, sources, now } = setup(12)
  const victim = 'node-05'
  run(src => names.filter(n => n !== src).flatMap((dst): Cell[] => [
    dst === victim
      ? { probe: 'pod', target: dst, count: 1, latency: [], errors: [{ reason: 'CONNECT_TIMEOUT', raw: 'UND_ERR_CONNECT_TIMEOUT', count: 1 }] }
      : { probe: 'pod', target: dst, count: 1, latency: [b, 1], slowConnects: src === 'node-02' ? 1 : 0 },
    { probe: 'mtu', target: `${dst}/8500`, count: 1, latency: dst === 'node-07' ? [] : [b, 1], ...(dst === 'node-07' ? { errors: [{ reason: 'MTU_BLACKHOLE', raw: 'BODY_TIMEOUT', count: 1 }] } : {}) },
    { probe: 'udp', target: dst, count: 1, latency: [b, 1], sent: 5, lost: dst === 'node-09' ? 1 : 0 }
  ]))
  const ctx = findingsContext(sources, now(), NETWORK_WINDOW_MS, 'cniplugin')
  const input = readNetworkInput(sources, ctx)
  t.match(input.pod.inbound.get(victim), { samples: 66, errors: 66, peers: 11 })
  t.match(input.pod.outbound.get(victim), { samples: 66, errors: 0, peers: 11 })
  t.equal(input.pod.failed.length, 11)
  t.match(input.pod.failed[0], { dst: victim, samples: 6, errors: 6, reasons: [{ reason: 'CONNECT_TIMEOUT', raw: 'UND_ERR_CONNECT_TIMEOUT', count: 6 }] })
  t.equal(input.pod.outbound.get('node-02')!.loss!.slowConnects, 60, 'slow connects in the per-node sums (10 healthy peers × 6)')
  t.same(input.mtu.failed.map(c => [c.dst, c.size]).filter(([d]) => d === 'node-07').length, 11)
  t.equal(input.mtu.failed[0]!.size, 8500)
  t.match(input.udp.inbound.get('node-09')!.loss, { sent: 330, lost: 66 })
  const link = input.links.udp.find(l => l.src === 'aws' && l.dst === 'cilium')!
  t.ok(link.loss.sent > 0 && link.samples > 0)
  t.ok(input.links.pod.some(l => l.errors > 0))
  t.same(networkFindings(ctx, input).map(d => `${d.kind} ${d.subject.id}`).sort(), ['loss node/node-02', 'loss node/node-09', 'mtu node/node-07', `node-inbound node/${victim}`])
  t.same(evaluateFindings(ctx, sources).map(d => `${d.kind} ${d.subject.id}`).sort(), ['loss node/node-02', 'loss node/node-09', 'mtu node/node-07', `node-inbound node/${victim}`], 'evaluateFindings gives the same')
})

t.test('a healthy fleet through the stores gives zero findings', async t => {
  const { names, run, sources, now } = setup(10)
  run(src => names.filter(n => n !== src).flatMap((dst): Cell[] => [
    { probe: 'pod', target: dst, count: 1, latency: [b, 1] },
    { probe: 'udp', target: dst, count: 1, latency: [b, 1], sent: 5, lost: 0 }
  ]))
  const ctx = findingsContext(sources, now(), NETWORK_WINDOW_MS, 'cniplugin')
  t.same(evaluateFindings(ctx, sources), [])
})

t.test('more failed cells than the map holds (a broken mesh) are all read, each with its own counts', async t => {
  const { names, run, sources, now } = setup(150)
  // 150 × 149 = 22,350 failing pod cells: past the 20,000 the failure pass indexes through a map.
  run(src => names.filter(n => n !== src).map((dst): Cell => dst === 'node-03' || src === 'node-03'
    ? { probe: 'pod', target: dst, count: 2, latency: [], errors: [{ reason: 'ECONNREFUSED', raw: 'ECONNREFUSED', count: 2 }] }
    : { probe: 'pod', target: dst, count: 2, latency: [b, 1], errors: [{ reason: 'CONNECT_TIMEOUT', raw: 'UND_ERR_CONNECT_TIMEOUT', count: 1 }] }))
  const ctx = findingsContext(sources, now(), NETWORK_WINDOW_MS, 'cniplugin')
  const input = readNetworkInput(sources, ctx)
  t.equal(input.pod.failed.length, 150 * 149)
  t.ok(input.pod.failed.every(c => c.samples === 12 && c.errors === ((c.src === 'node-03' || c.dst === 'node-03') ? 12 : 6)), 'every cell its own samples and failures')
  t.equal(input.pod.failed.filter(c => c.reasons[0]!.reason === 'ECONNREFUSED').length, 2 * 149)
})

t.test('the recent sub-window: a fault that healed three reports ago is in the window but no longer recent, and makes no finding', async t => {
  const { names, run, sources, now } = setup(12)
  const victim = 'node-04'
  const cell = (src: string, dst: string, broken: boolean): Cell => broken && dst === victim
    ? { probe: 'pod', target: dst, count: 1, latency: [], errors: [{ reason: 'ECONNREFUSED', raw: 'ECONNREFUSED', count: 1 }] }
    : { probe: 'pod', target: dst, count: 1, latency: [b, 1] }
  run(src => names.filter(n => n !== src).map(dst => cell(src, dst, true)))
  let ctx = findingsContext(sources, now(), NETWORK_WINDOW_MS, 'cniplugin')
  let input = readNetworkInput(sources, ctx)
  t.equal(input.recent!.pod.failed.filter(c => c.dst === victim).length, 11, 'recent: every peer\'s cell toward it fails')
  t.match(input.recent!.pod.inbound.get(victim), { errors: 33, samples: 33 }, 'recent: the 5 s slots that overlap the last 6 s (a fifth of a 30 s window): three reports')
  t.same(networkFindings(ctx, input).map(d => `${d.kind} ${d.subject.id}`), [`node-inbound node/${victim}`])
  run(src => names.filter(n => n !== src).map(dst => cell(src, dst, false)), 3)
  ctx = findingsContext(sources, now(), NETWORK_WINDOW_MS, 'cniplugin')
  input = readNetworkInput(sources, ctx)
  t.equal(input.pod.failed.filter(c => c.dst === victim && c.errors >= 0.5 * c.samples).length, 11, 'the window still fails half its probes toward it or more')
  t.same(input.recent!.pod.failed, [], 'nothing failed recently')
  t.same(networkFindings(ctx, input), [], 'so no finding')
})
