// Gate logic, table-driven: a fleet's reports go through the real roster, ingest and group store,
// then each case's gate is evaluated at a chosen time. Fail-closed cases come first.

import t from 'tap'
import { bucketIndex, type Cell, type CellError, type Reason } from '@pingfleet/protocol'
import type { Labels } from '@pingfleet/protocol'
import { Fleet as FleetModel } from '../../src/fleet/fleet.ts'
import { evaluateGate, type GateSources, type Verdict } from '../../src/gates/eval.ts'
import { serviceBackendsFrom } from '../../src/gates/service-backends.ts'
import { compileGate, type GateDefinition } from '../../src/gates/spec.ts'
import { Ingest } from '../../src/store/ingest.ts'
import { Roster } from '../../src/fleet/roster.ts'
import { buildServiceView } from '../../src/views/service.ts'
import { defaultTiers, Store } from '../../src/store/store.ts'
import { Totals } from '../../src/store/totals.ts'
import { hello, report } from '../helpers.ts'

const INTERVAL = 1000
const T0 = 1_800_000_000_000
const LIMITS = { intervalMs: INTERVAL, maxWindowMs: 15 * 60_000 }

interface Fleet {
  sources: GateSources
  /** The same sources with the node store, which scoped gates read. */
  withNodes: GateSources
  /** The same sources with discovery listed: it expects these nodes (name → labels). */
  expecting: (nodes: Record<string, Labels>) => GateSources
  /** Each node sends one report per second from `from` to `to` (ms after T0). */
  run: (from: number, to: number, cellsOf: (node: string, at: number) => Cell[]) => void
  disconnect: (node: string, at: number) => void
}

const aws = { cniplugin: 'aws' }
const cilium = { cniplugin: 'cilium' }
const calico = { cniplugin: 'calico' }

const group = (node: string): string => node === 'n1' || node === 'n2' ? 'aws' : 'cilium'

/** n1, n2 in group aws; n3, n4 in group cilium. */
function fleet (nodes: Record<string, string> = { n1: 'aws', n2: 'aws', n3: 'cilium', n4: 'cilium' }): Fleet {
  const tiers = defaultTiers(INTERVAL, LIMITS.maxWindowMs)
  const groups = new Store(tiers)
  const nodeStore = new Store(tiers)
  const roster = new Roster(120_000)
  const model = new FleetModel({ roster, groupLabel: 'cniplugin' })
  const ingest = new Ingest({ nodes: nodeStore, groups, totals: new Totals(), fleet: model })
  for (const [node, group] of Object.entries(nodes)) roster.join(hello(node, { cniplugin: group }), T0)
  const seqs = new Map<string, number>()
  let nodeNow = T0
  const sources: GateSources = {
    groups, fleet: model,
    serviceBackends: serviceBackendsFrom((service, windowMs) =>
      buildServiceView({ nodes: nodeStore, fleet: model, now: () => nodeNow }, { windowMs, groupBy: 'cniplugin', service }), () => nodeNow, 0)
  }
  return {
    sources,
    withNodes: { ...sources, nodes: nodeStore },
    expecting: expected => {
      const kube = { expectedNodes: () => new Map(Object.entries(expected)), nodeFacts: () => new Map(), missing: () => [], unexpectedReason: () => null }
      return { ...sources, fleet: new FleetModel({ roster, groupLabel: 'cniplugin', kube }) }
    },
    run (from, to, cellsOf) {
      for (let at = T0 + from; at <= T0 + to; at += INTERVAL) {
        groups.advance(at)
        nodeStore.advance(at)
        nodeNow = at
        for (const node of Object.keys(nodes)) {
          const entry = roster.get(node)!
          if (!entry.connected) continue
          const seq = (seqs.get(node) ?? 0) + 1
          seqs.set(node, seq)
          if (roster.accept(node, entry.bootId, seq, at)) ingest.apply(entry, report(seq, at, cellsOf(node, at)))
        }
      }
    },
    disconnect (node, at) { roster.disconnect(node, T0 + at) }
  }
}

/** `count` probes per peer, `failed` of them with `reason`; successes take `latency` seconds. */
function peerCells (count: number, failed = 0, latency = 0.002, reason: Reason = 'ECONNREFUSED') {
  return (node: string, _at?: number): Cell[] => ['n1', 'n2', 'n3', 'n4'].filter(n => n !== node).map(target => pod(target, count, failed, latency, reason))
}

function pod (target: string, count: number, failed: number, latency: number, reason: Reason): Cell {
  const errors: CellError[] = failed > 0 ? [{ reason, raw: reason, count: failed }] : []
  return { probe: 'pod', target, count, latency: count > failed ? [bucketIndex(latency), count - failed] : [], ...(failed > 0 ? { errors } : {}) }
}

function dns (count: number, notFound: number): Cell {
  return {
    probe: 'dns-lookup', target: 'kubernetes.default.svc', count, latency: count > notFound ? [bucketIndex(0.001), count - notFound] : [],
    ...(notFound > 0 ? { errors: [{ reason: 'ENOTFOUND', raw: 'EAI_NONAME', count: notFound }] } : {})
  }
}

const podGate = (extra: Partial<GateDefinition> = {}): GateDefinition => ({
  name: 'g', window: '10s', minSamples: 20, rules: [{ probe: 'pod', src: 'aws', dst: 'cilium', maxErrorRatio: 0.01, maxP99: '50ms' }], ...extra
})

interface Case {
  name: string
  gate: GateDefinition
  setup: (f: Fleet) => void
  /** Evaluation time, ms after T0. */
  at?: number
  verdict: Verdict
  /** Checks (by id) and the verdict each must have. */
  checks?: Record<string, Verdict>
}

const cases: Case[] = [
  {
    name: 'no data at all is insufficient, never pass',
    gate: podGate(),
    setup: () => {},
    at: 0,
    verdict: 'insufficient_data',
    checks: { 'pod aws->cilium minSamples': 'insufficient_data', 'pod aws->cilium maxErrorRatio': 'insufficient_data', 'staleness aws': 'insufficient_data' }
  },
  {
    name: 'too few samples is insufficient even when every probe succeeded',
    gate: podGate({ minSamples: 1000 }),
    setup: f => f.run(0, 10_000, peerCells(2)),
    at: 10_000,
    verdict: 'insufficient_data',
    checks: { 'pod aws->cilium minSamples': 'insufficient_data', 'pod aws->cilium maxErrorRatio': 'insufficient_data', 'staleness aws': 'pass' }
  },
  {
    name: 'too few samples with errors is still only insufficient: nothing is judged on too little data',
    gate: podGate({ minSamples: 1000 }),
    setup: f => f.run(0, 10_000, peerCells(2, 2)),
    at: 10_000,
    verdict: 'insufficient_data'
  },
  {
    name: 'stale data is insufficient even when the window still holds good results',
    gate: podGate({ maxStaleness: '3s' }),
    setup: f => f.run(0, 5_000, peerCells(5)),
    at: 9_000,
    verdict: 'insufficient_data',
    checks: { 'pod aws->cilium maxErrorRatio': 'pass', 'staleness aws': 'insufficient_data' }
  },
  {
    name: 'a group named in the gate that does not exist is insufficient',
    gate: podGate({ rules: [{ probe: 'pod', src: 'aws', dst: 'calico', maxErrorRatio: 0.01 }] }),
    setup: f => f.run(0, 10_000, peerCells(5)),
    at: 10_000,
    verdict: 'insufficient_data',
    checks: { 'pod aws->calico minSamples': 'insufficient_data', 'pod aws->calico maxErrorRatio': 'insufficient_data' }
  },
  {
    name: 'a wildcard keeps a known group that has sent no data as insufficient',
    gate: podGate({ rules: [{ probe: 'pod', src: '*', dst: 'cilium', maxErrorRatio: 0.01 }] }),
    setup: f => f.run(0, 10_000, (node, at) => node === 'n3' || node === 'n4' ? [] : peerCells(5)(node, at)),
    at: 10_000,
    verdict: 'insufficient_data',
    checks: { 'pod aws->cilium maxErrorRatio': 'pass', 'pod cilium->cilium minSamples': 'insufficient_data' }
  },
  {
    name: 'agent coverage below the minimum is insufficient',
    gate: podGate({ coverage: [{ group: 'cilium', minRatio: 1 }] }),
    setup: f => { f.run(0, 10_000, peerCells(5)); f.disconnect('n4', 10_000) },
    at: 10_000,
    verdict: 'insufficient_data',
    checks: { 'coverage cilium': 'insufficient_data', 'pod aws->cilium maxErrorRatio': 'pass' }
  },
  {
    name: 'coverage of a group nobody is in is insufficient',
    gate: { name: 'g', coverage: [{ group: 'calico', minRatio: 0.5 }] },
    setup: f => f.run(0, 10_000, peerCells(5)),
    at: 10_000,
    verdict: 'insufficient_data',
    checks: { 'coverage calico': 'insufficient_data', 'staleness calico': 'insufficient_data' }
  },
  {
    name: 'service backend coverage has no data yet: insufficient, never pass',
    gate: { name: 'g', services: [{ service: 'kube-dns', minBackendRatio: 1 }] },
    setup: f => f.run(0, 10_000, peerCells(5)),
    at: 10_000,
    verdict: 'insufficient_data',
    checks: { 'service kube-dns': 'insufficient_data' }
  },
  {
    name: 'healthy traffic with enough fresh samples passes',
    gate: podGate({ coverage: [{ group: '*', minRatio: 1 }] }),
    setup: f => f.run(0, 10_000, peerCells(5)),
    at: 10_000,
    verdict: 'pass',
    checks: { 'pod aws->cilium minSamples': 'pass', 'pod aws->cilium maxErrorRatio': 'pass', 'pod aws->cilium maxP99': 'pass', 'coverage aws': 'pass', 'coverage cilium': 'pass', 'staleness aws': 'pass', 'staleness cilium': 'pass' }
  },
  {
    name: 'an error ratio above the maximum fails',
    gate: podGate(),
    setup: f => f.run(0, 10_000, peerCells(10, 1)),
    at: 10_000,
    verdict: 'fail',
    checks: { 'pod aws->cilium maxErrorRatio': 'fail', 'pod aws->cilium maxP99': 'pass' }
  },
  {
    name: 'a fail wins over insufficient data elsewhere',
    gate: podGate({ services: [{ service: 'kube-dns', minBackendRatio: 1 }] }),
    setup: f => f.run(0, 10_000, peerCells(10, 5)),
    at: 10_000,
    verdict: 'fail'
  },
  {
    name: 'p99 above the maximum fails while p50 passes its own limit',
    gate: podGate({ rules: [{ probe: 'pod', src: 'aws', dst: 'cilium', maxP50: '10ms', maxP99: '50ms' }] }),
    setup: f => f.run(0, 10_000, (node, at) => at % 10_000 === 0 ? peerCells(5, 0, 1)(node) : peerCells(5)(node)),
    at: 10_000,
    verdict: 'fail',
    checks: { 'pod aws->cilium maxP50': 'pass', 'pod aws->cilium maxP99': 'fail' }
  },
  {
    name: 'only failures: latency has nothing to measure and the error ratio fails',
    gate: podGate({ rules: [{ probe: 'pod', src: 'aws', dst: 'cilium', maxErrorRatio: 0.5, maxP99: '50ms' }] }),
    setup: f => f.run(0, 10_000, peerCells(5, 5)),
    at: 10_000,
    verdict: 'fail',
    checks: { 'pod aws->cilium maxErrorRatio': 'fail', 'pod aws->cilium maxP99': 'insufficient_data' }
  },
  {
    name: 'errors outside the gated pair do not matter',
    gate: podGate(),
    setup: f => f.run(0, 10_000, (node, at) => peerCells(5)(node, at).map(c => c.target === 'n1' ? pod('n1', 5, 5, 0, 'ECONNREFUSED') : c)),
    at: 10_000,
    verdict: 'pass'
  },
  {
    name: 'a DNS error ratio by reason fails above its maximum (rows are source groups, columns targets)',
    gate: { name: 'g', window: '10s', minSamples: 20, rules: [{ probe: 'dns-lookup', src: 'cilium', dst: '*', maxErrorRatioByReason: { ENOTFOUND: 0.01, EAI_AGAIN: 0.01 } }] },
    setup: f => f.run(0, 10_000, node => [dns(10, node === 'n3' ? 2 : 0)]),
    at: 10_000,
    verdict: 'fail',
    checks: { 'dns-lookup cilium->kubernetes.default.svc maxErrorRatioByReason ENOTFOUND': 'fail', 'dns-lookup cilium->kubernetes.default.svc maxErrorRatioByReason EAI_AGAIN': 'pass' }
  },
  {
    name: 'a DNS reason below its maximum passes',
    gate: { name: 'g', window: '10s', minSamples: 20, rules: [{ probe: 'dns-lookup', src: '*', dst: 'kubernetes.default.svc', maxErrorRatioByReason: { ENOTFOUND: 0.05 } }] },
    setup: f => f.run(0, 10_000, node => [dns(100, node === 'n3' ? 1 : 0)]),
    at: 10_000,
    verdict: 'pass'
  },
  {
    name: 'a DNS wildcard with no DNS data at all is insufficient',
    gate: { name: 'g', window: '10s', rules: [{ probe: 'dns-wire', src: 'cilium', dst: '*', maxErrorRatio: 0.01 }] },
    setup: f => f.run(0, 10_000, peerCells(5)),
    at: 10_000,
    verdict: 'insufficient_data'
  },
  {
    name: 'the window forgets an old fault: recovery passes again',
    gate: podGate({ window: '5s' }),
    setup: f => { f.run(0, 10_000, peerCells(10, 10)); f.run(11_000, 20_000, peerCells(10)) },
    at: 20_000,
    verdict: 'pass'
  }
]

for (const c of cases) {
  t.test(c.name, async t => {
    const f = fleet()
    c.setup(f)
    const result = evaluateGate(compileGate(c.gate, LIMITS), f.sources, T0 + (c.at ?? 10_000))
    t.equal(result.verdict, c.verdict, 'overall verdict')
    for (const [id, verdict] of Object.entries(c.checks ?? {})) {
      const check = result.checks.find(x => x.id === id)
      t.ok(check, `check ${id} present`, { ids: result.checks.map(x => x.id) })
      t.equal(check?.verdict, verdict, `${id}: ${check?.detail}`)
    }
    const counted = result.summary.pass + result.summary.fail + result.summary.insufficient_data
    t.equal(counted, result.checks.length, 'summary counts every check')
  })
}

t.test('evidence: observed value, threshold, samples and window on each pair check', async t => {
  const f = fleet()
  f.run(0, 10_000, peerCells(10, 1))
  const result = evaluateGate(compileGate(podGate(), LIMITS), f.sources, T0 + 10_000)
  const check = result.checks.find(c => c.id === 'pod aws->cilium maxErrorRatio')!
  // Two aws agents, two cilium peers each, ten probes per report; the 10 s window ending at a slot
  // boundary overlaps eleven one-second slots.
  t.match(check, { criterion: 'maxErrorRatio', verdict: 'fail', threshold: 0.01, samples: 440, window: '10s', probe: 'pod', src: 'aws', dst: 'cilium' })
  t.ok(Math.abs(check.observed! - 0.1) < 1e-9, 'observed is the error ratio')
  t.match(check.detail, /error ratio 0\.1\d* > 0\.01/)
  const stale = result.checks.find(c => c.id === 'staleness aws')!
  t.match(stale, { criterion: 'maxStaleness', verdict: 'pass', observed: 0, threshold: 3 })
})

t.test('a gate whose every pair was skipped judged nothing: insufficient, quoting the pairs and why', async t => {
  // One cilium node: cilium -> cilium cannot have pod data (an agent does not probe itself). Before,
  // the coverage check alone made this gate pass.
  const f = fleet({ n1: 'aws', n2: 'aws', n3: 'cilium' })
  f.run(0, 10_000, (node: string) => ['n1', 'n2', 'n3'].filter(n => n !== node).map(target => pod(target, 5, 0, 0.002, 'ECONNREFUSED')))
  const lone = compileGate({ name: 'g', rules: [{ probe: 'pod', src: 'cilium', dst: 'cilium', maxErrorRatio: 0.01 }], coverage: [{ group: 'cilium', minRatio: 1 }] }, LIMITS)
  const r = evaluateGate(lone, f.sources, T0 + 10_000)
  t.equal(r.verdict, 'insufficient_data')
  t.same(r.skipped, [{ probe: 'pod', src: 'cilium', dst: 'cilium', reason: 'group cilium has one member, and an agent does not probe itself' }])
  t.match(r.checks.find(c => c.id === 'pairs judged'), {
    criterion: 'judgedPairs', verdict: 'insufficient_data', observed: 0, threshold: 1,
    detail: 'every pair the rules name was skipped, so the gate judged none of them: pod cilium->cilium (group cilium has one member, and an agent does not probe itself)'
  })
  // A batch gate (node scope, no node rules) before the first batch: cilium has no members, so
  // aws -> cilium is skipped. Before, the scope's coverage check alone made it pass.
  const g = fleet({ n1: 'aws', n2: 'aws' })
  g.run(0, 10_000, (node: string) => ['n1', 'n2'].filter(n => n !== node).map(target => pod(target, 5, 0, 0.002, 'ECONNREFUSED')))
  const batch = compileGate({ name: 'b', nodes: ['n1'], rules: [{ probe: 'pod', src: 'aws', dst: 'cilium', maxErrorRatio: 0.01 }] }, LIMITS)
  const b = evaluateGate(batch, g.withNodes, T0 + 10_000)
  t.equal(b.verdict, 'insufficient_data')
  t.match(b.checks.find(c => c.id === 'coverage nodes'), { verdict: 'pass' }, 'the node scope itself is covered')
  t.match(b.checks.find(c => c.id === 'pairs judged'), { verdict: 'insufficient_data', detail: /pod aws->cilium \(group cilium has no members yet/ })
  // A pair that is judged, or a node rule, is something judged: the skipped pair does not hold it back.
  const judged = compileGate({ name: 'j', rules: [{ probe: 'pod', src: '*', dst: 'cilium', maxErrorRatio: 0.01 }] }, LIMITS)
  const j = evaluateGate(judged, f.sources, T0 + 10_000)
  t.equal(j.verdict, 'pass', 'aws -> cilium is judged; cilium -> cilium is skipped')
  t.notOk(j.checks.some(c => c.id === 'pairs judged'))
  const withNodeRule = compileGate({ name: 'n', nodes: ['n3'], rules: [{ probe: 'pod', src: 'cilium', dst: 'cilium', maxErrorRatio: 0.01 }], nodeRules: [{ probe: 'pod', maxNodeErrorRatio: 0.01 }] }, LIMITS)
  const n = evaluateGate(withNodeRule, f.withNodes, T0 + 10_000)
  t.notOk(n.checks.some(c => c.id === 'pairs judged'), 'a one-node batch is judged by its node rule')
  t.equal(n.verdict, 'pass')
})

t.test('expected(group) is a seam: a larger expected count lowers coverage', async t => {
  const f = fleet()
  f.run(0, 10_000, peerCells(5))
  const gate = compileGate({ name: 'g', coverage: [{ group: 'cilium', minRatio: 0.9 }] }, LIMITS)
  t.equal(evaluateGate(gate, f.sources, T0 + 10_000).verdict, 'pass')
  const result = evaluateGate(gate, f.expecting({ n1: aws, n2: aws, n3: cilium, n4: cilium, n5: cilium, n6: cilium }), T0 + 10_000)
  t.equal(result.verdict, 'insufficient_data')
  t.match(result.checks.find(c => c.id === 'coverage cilium'), { observed: 0.5, samples: 2, detail: '2 of 4 agents of group cilium connected' })
})

t.test('a wildcard coverage rule judges a group discovery expects even when none of its agents connected', async t => {
  const f = fleet()
  f.run(0, 10_000, peerCells(5))
  const gate = compileGate({ name: 'g', coverage: [{ group: '*', minRatio: 1 }] }, LIMITS)
  t.equal(evaluateGate(gate, f.sources, T0 + 10_000).verdict, 'pass', 'aws and cilium are fully connected')
  const sources = f.expecting({ n1: aws, n2: aws, n3: cilium, n4: cilium, c1: calico, c2: calico, c3: calico })
  const result = evaluateGate(gate, sources, T0 + 10_000)
  t.equal(result.verdict, 'insufficient_data')
  t.match(result.checks.find(c => c.id === 'coverage calico'), { verdict: 'insufficient_data', observed: 0, detail: '0 of 3 agents of group calico connected' })
})

t.test('service backends are judged from service probes once they exist: the lowest source group counts', async t => {
  const f = fleet()
  const VIP = 'pingfleet-agents.pingfleet.svc:8081'
  // aws pods reach every node directly but the Service only ever hands them aws backends.
  const service = (node: string): Cell => {
    const backends = group(node) === 'aws' ? [{ node: 'n1', count: 5 }, { node: 'n2', count: 5 }] : [{ node: 'n1', count: 3 }, { node: 'n2', count: 3 }, { node: 'n3', count: 2 }, { node: 'n4', count: 2 }]
    return { probe: 'service', target: VIP, count: 10, latency: [bucketIndex(0.002), 10], backends }
  }
  f.run(0, 10_000, (node, at) => [...peerCells(5)(node, at), service(node)])
  const gate = compileGate({ name: 'g', window: '10s', minSamples: 20, services: [{ service: VIP, minBackendRatio: 1 }] }, LIMITS)
  const result = evaluateGate(gate, f.sources, T0 + 10_000)
  t.equal(result.verdict, 'fail')
  t.match(result.checks.find(c => c.id === `service ${VIP}`), { verdict: 'fail', observed: 0.5, samples: 440, group: 'aws', detail: /2 of 4 backends answered through .* for group aws/ })
  const lenient = compileGate({ name: 'g', window: '10s', minSamples: 20, services: [{ service: VIP, minBackendRatio: 0.5 }] }, LIMITS)
  t.equal(evaluateGate(lenient, f.sources, T0 + 10_000).verdict, 'pass')
  const tooFew = compileGate({ name: 'g', window: '10s', minSamples: 1000, services: [{ service: VIP, minBackendRatio: 0.5 }] }, LIMITS)
  t.equal(evaluateGate(tooFew, f.sources, T0 + 10_000).verdict, 'insufficient_data', 'too few service probes')
  const other = compileGate({ name: 'g', window: '10s', services: [{ service: 'kube-dns', minBackendRatio: 0.5 }] }, LIMITS)
  t.equal(evaluateGate(other, f.sources, T0 + 10_000).verdict, 'insufficient_data', 'a Service nobody probes')
})

t.test('a Service is not judged on a few answers: missing backends may be chance', async t => {
  const f = fleet()
  const VIP = 'pingfleet-agents.pingfleet.svc:8081'
  f.run(0, 2_000, (node, at) => [...peerCells(5)(node, at), { probe: 'service', target: VIP, count: 1, latency: [bucketIndex(0.002), 1], backends: [{ node: 'n1', count: 1 }] }])
  const gate = compileGate({ name: 'g', window: '10s', minSamples: 1, services: [{ service: VIP, minBackendRatio: 0.1 }] }, LIMITS)
  const check = evaluateGate(gate, f.sources, T0 + 2_000).checks.find(c => c.id === `service ${VIP}`)
  t.match(check, { verdict: 'insufficient_data', observed: null, detail: /not enough answers yet from aws, cilium/ })
})
