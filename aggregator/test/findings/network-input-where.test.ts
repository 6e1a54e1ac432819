// readNetworkInput's failedWhere (the pair tested before a failed cell is read) against its
// `failed` filtered, over real stores; and a broken boundary's mtu failures left to the pod mesh.

import t from 'tap'
import { bucketIndex, type Cell } from '@pingfleet/protocol'
import { evaluateFindings } from '../../src/findings/evaluate.ts'
import { findingsContext } from '../../src/findings/input.ts'
import { readNetworkInput } from '../../src/findings/network.ts'
import { NETWORK_WINDOW_MS } from '../../src/findings/network-thresholds.ts'
import { AgentHealth } from '../../src/fleet/agent-health.ts'
import { Fleet } from '../../src/fleet/fleet.ts'
import { Roster } from '../../src/fleet/roster.ts'
import { Ingest } from '../../src/store/ingest.ts'
import { defaultTiers, GROUP_TIERS, NODE_TIERS, Store } from '../../src/store/store.ts'
import { Totals } from '../../src/store/totals.ts'

const INTERVAL = 5000
const b = bucketIndex(0.001)
const timeout = [{ reason: 'CONNECT_TIMEOUT' as const, raw: 'UND_ERR_CONNECT_TIMEOUT', count: 1 }]

/** `nodes` agents in two groups (even: aws, odd: cilium), twelve 5 s reports of `cells(src)` each. */
function fleetOf (nodes: number, cells: (src: string, names: string[]) => Cell[]) {
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
  for (let seq = 1; seq <= 12; seq++) {
    clock += INTERVAL
    store.advance(clock)
    groups.advance(clock)
    for (const node of names) {
      const entry = roster.get(node)!
      if (roster.accept(node, entry.bootId, seq, clock)) ingest.apply(entry, { type: 'report', v: 1, seq, start: clock - INTERVAL, end: clock, cells: cells(node, names) } as never)
    }
  }
  const sources = { nodes: store, groups, fleet, health }
  return { names, sources, ctx: findingsContext(sources, clock, NETWORK_WINDOW_MS, 'cniplugin') }
}

t.test('failedWhere gives what failed.filter gives, in the same order, for mtu and udp', async t => {
  const { sources, ctx } = fleetOf(10, (src, names) => names.filter(n => n !== src).flatMap((dst): Cell[] => {
    const bad = dst === 'node-03' || (src === 'node-04' && dst === 'node-08')
    return [
      { probe: 'pod', target: dst, count: 1, latency: [b, 1] },
      ...[1400, 8500].map((size): Cell => ({ probe: 'mtu', target: `${dst}/${size}`, count: 1, latency: bad && size === 8500 ? [] : [b, 1], ...(bad && size === 8500 ? { errors: timeout } : {}) })),
      { probe: 'udp', target: dst, count: 1, latency: bad ? [] : [b, 1], sent: 5, lost: bad ? 5 : 0, ...(bad ? { errors: [{ reason: 'UDP_NO_ECHO' as const, raw: 'TIMEOUT', count: 1 }] } : {}) }
    ]
  }))
  const input = readNetworkInput(sources, ctx)
  for (const kind of ['mtu', 'udp'] as const) {
    const all = input[kind].failed
    t.equal(all.length, 9 + 1, `${kind}: toward node-03 from 9 peers, node-04 → node-08`)
    const odd = (src: string, dst: string): boolean => src === 'node-04' || dst.endsWith('3')
    t.same(input[kind].failedWhere!(odd), all.filter(c => odd(c.src, c.dst)), `${kind}: a pair filter`)
    t.same(input[kind].failedWhere!(() => true), all, `${kind}: every pair`)
    t.same(input[kind].failedWhere!(() => false), [], `${kind}: no pair`)
  }
})

t.test('a broken boundary with failing mtu probes too is one group-boundary finding, not an mtu finding', async t => {
  const { sources, ctx } = fleetOf(12, (src, names) => names.filter(n => n !== src).flatMap((dst): Cell[] => {
    const bad = names.indexOf(src) % 2 === 0 && names.indexOf(dst) % 2 === 1
    return [
      bad ? { probe: 'pod', target: dst, count: 1, latency: [], errors: timeout } : { probe: 'pod', target: dst, count: 1, latency: [b, 1] },
      bad ? { probe: 'mtu', target: `${dst}/8500`, count: 1, latency: [], errors: timeout } : { probe: 'mtu', target: `${dst}/8500`, count: 1, latency: [b, 1] }
    ]
  }))
  const input = readNetworkInput(sources, ctx)
  t.equal(input.mtu.failed.length, 6 * 6, 'the mtu failures are in the input')
  t.same(evaluateFindings(ctx, sources).map(d => `${d.kind} ${d.subject.id}`), ['group-boundary groups/aws->cilium'])
})
