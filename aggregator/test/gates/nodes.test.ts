// Node-scoped gates over synthetic fleets: the dilution case (one dead node hides in a group ratio
// at 200 and 1,000 nodes, and the node-scoped gate names it), batches by label, peer groups, p99,
// the relative bound, coverage, pairs that cannot have data, unique check ids, and a destination
// nobody probes. Reports go through the real roster, ingest and stores.

import t from 'tap'
import { bucketIndex, type Cell, type Labels } from '@pingfleet/protocol'
import { Fleet as FleetModel, type KubeNodeFacts } from '../../src/fleet/fleet.ts'
import { evaluateGate, type Check, type GateResult, type GateSources } from '../../src/gates/eval.ts'
import { compileGate, type GateDefinition } from '../../src/gates/spec.ts'
import { Ingest } from '../../src/store/ingest.ts'
import { Roster } from '../../src/fleet/roster.ts'
import { defaultTiers, Store } from '../../src/store/store.ts'
import { Totals } from '../../src/store/totals.ts'
import { hello, report } from '../helpers.ts'

const INTERVAL = 1000
const T0 = 1_800_000_000_000
const LIMITS = { intervalMs: INTERVAL, maxWindowMs: 15 * 60_000 }

interface Fleet {
  sources: GateSources
  roster: Roster
  /** One report per node per second from `from` to `to` (ms after T0); `cellsOf` gives each node's cells. */
  run: (from: number, to: number, cellsOf: (node: string) => Cell[]) => void
  names: string[]
}

function fleet (labels: Record<string, Labels>, kube: Map<string, KubeNodeFacts> | null = null): Fleet {
  const tiers = defaultTiers(INTERVAL, LIMITS.maxWindowMs)
  const groups = new Store(tiers)
  const nodes = new Store(tiers)
  const roster = new Roster(120_000)
  // Kubernetes' node list, when given, without discovery's expectations: groups expect what the roster knows.
  const model = new FleetModel({ roster, groupLabel: 'cniplugin', kube: kube === null ? null : { expectedNodes: () => null, nodeFacts: () => kube, missing: () => [], unexpectedReason: () => null } })
  const ingest = new Ingest({ nodes, groups, totals: new Totals(), fleet: model })
  for (const [node, l] of Object.entries(labels)) roster.join(hello(node, l), T0)
  const seqs = new Map<string, number>()
  return {
    roster,
    names: Object.keys(labels),
    sources: { groups, nodes, fleet: model, serviceBackends: () => null },
    run (from, to, cellsOf) {
      for (let at = T0 + from; at <= T0 + to; at += INTERVAL) {
        groups.advance(at)
        nodes.advance(at)
        for (const node of Object.keys(labels)) {
          const entry = roster.get(node)!
          if (!entry.connected) continue
          const seq = (seqs.get(node) ?? 0) + 1
          seqs.set(node, seq)
          if (roster.accept(node, entry.bootId, seq, at)) ingest.apply(entry, report(seq, at, cellsOf(node)))
        }
      }
    }
  }
}

function pod (target: string, count: number, failed = 0, latency = 0.002): Cell {
  return {
    probe: 'pod', target, count, latency: count > failed ? [bucketIndex(latency), count - failed] : [],
    ...(failed > 0 ? { errors: [{ reason: 'ECONNREFUSED' as const, raw: 'ECONNREFUSED', count: failed }] } : {})
  }
}

/** Every node probes every other once per report; probes into a node in `deadInbound` are refused. */
function mesh (names: readonly string[], deadInbound: ReadonlySet<string>, slow: ReadonlySet<string> = new Set()) {
  return (node: string): Cell[] => names.filter(n => n !== node).map(n => pod(n, 1, deadInbound.has(n) ? 1 : 0, slow.has(n) ? 0.8 : 0.002))
}

const gate = (def: Omit<GateDefinition, 'name'>): ReturnType<typeof compileGate> => compileGate({ name: 'g', window: '10s', ...def }, LIMITS)
const check = (r: GateResult, id: string): Check => {
  const c = r.checks.find(x => x.id === id)
  if (c === undefined) throw new Error(`no check ${id} in ${r.checks.map(x => x.id).join(', ')}`)
  return c
}

/** `n` cilium nodes and 10 aws nodes; labels as an agent's hello gives them (static mode). */
function labelsFor (n: number, batch: readonly string[] = []): Record<string, Labels> {
  const out: Record<string, Labels> = {}
  for (let i = 0; i < 10; i++) out[`aws-${i}`] = { cniplugin: 'aws' }
  for (let i = 0; i < n; i++) {
    const name = `cil-${String(i).padStart(4, '0')}`
    out[name] = batch.includes(name) ? { cniplugin: 'cilium', 'migration-batch': '7' } : { cniplugin: 'cilium' }
  }
  return out
}

for (const size of [200, 1000]) {
  t.test(`dilution at ${size} cilium nodes: one dead node passes a group gate and fails a node gate that names it`, async t => {
    const dead = 'cil-0042'
    const f = fleet(labelsFor(size))
    f.run(0, 2000, mesh(f.names, new Set([dead])))
    const now = T0 + 2000
    // The documented group-only gate: every group into cilium at most 1% errors.
    const group = evaluateGate(gate({ rules: [{ probe: 'pod', src: '*', dst: 'cilium', maxErrorRatio: 0.01 }] }), f.sources, now)
    const groupRatio = check(group, 'pod cilium->cilium maxErrorRatio').observed!
    t.comment(`group-only gate at ${size} nodes: ${group.verdict}; cilium->cilium error ratio ${groupRatio.toFixed(4)}, aws->cilium ${check(group, 'pod aws->cilium maxErrorRatio').observed!.toFixed(4)}`)
    t.equal(group.verdict, 'pass', 'the group ratio hides the dead node')
    t.ok(groupRatio < 0.01)

    const scoped = evaluateGate(gate({ nodeSelector: 'cniplugin=cilium', nodeRules: [{ probe: 'pod', maxNodeErrorRatio: 0.01 }] }), f.sources, now)
    t.comment(`node-scoped gate at ${size} nodes: ${scoped.verdict}; ${check(scoped, 'pod nodes<-* maxNodeErrorRatio').detail}`)
    t.equal(scoped.verdict, 'fail')
    t.equal(scoped.nodes?.length, size)
    const inbound = check(scoped, 'pod nodes<-* maxNodeErrorRatio')
    t.match(inbound, { verdict: 'fail', observed: 1, direction: 'inbound', worst: [{ node: dead, verdict: 'fail', observed: 1 }] })
    t.equal(inbound.worst![1]!.verdict, 'pass', 'only the dead node fails')
    t.match(inbound.detail, new RegExp(`^1 of ${size} selected nodes over 0\\.01 \\(inbound error ratio from its peers\\): ${dead} 1 `))
    t.equal(check(scoped, 'pod nodes->* maxNodeErrorRatio').verdict, 'pass', 'its outbound path is fine')
    t.equal(check(scoped, 'coverage nodes').verdict, 'pass')
  })

  t.test(`a batch of 5 with one broken node at ${size} cilium nodes: the batch gate fails and names it; another batch passes`, async t => {
    const batch = ['cil-0010', 'cil-0011', 'cil-0012', 'cil-0013', 'cil-0014']
    const f = fleet(labelsFor(size, batch))
    f.run(0, 2000, mesh(f.names, new Set(['cil-0012'])))
    const now = T0 + 2000
    const group = evaluateGate(gate({ rules: [{ probe: 'pod', src: '*', dst: 'cilium', maxErrorRatio: 0.01 }] }), f.sources, now)
    t.comment(`group-only gate: ${group.verdict}; cilium->cilium ${check(group, 'pod cilium->cilium maxErrorRatio').observed!.toFixed(4)}`)
    t.equal(group.verdict, 'pass')
    const def = { nodeSelector: 'migration-batch=7', nodeRules: [{ probe: 'pod', maxNodeErrorRatio: 0.01, minPeers: 100 }] }
    const scoped = evaluateGate(gate(def), f.sources, now)
    t.comment(`batch gate: ${scoped.verdict}; ${check(scoped, 'pod nodes<-* maxNodeErrorRatio').detail}`)
    t.same(scoped.nodes, batch)
    t.equal(scoped.verdict, 'fail')
    t.match(check(scoped, 'pod nodes<-* maxNodeErrorRatio'), { verdict: 'fail', worst: [{ node: 'cil-0012', observed: 1 }] })
    t.match(check(scoped, 'pod nodes<-* minPeers'), { verdict: 'pass', observed: size + 9 })
    const other = evaluateGate(gate({ ...def, nodeSelector: undefined, nodes: ['cil-0020', 'cil-0021'] }), f.sources, now)
    t.equal(other.verdict, 'pass', 'a gate scoped to another batch passes')
  })
}

t.test('peers: a node is judged against one peer group only', async t => {
  const f = fleet(labelsFor(20))
  // cil-0001 refuses probes from aws nodes only.
  f.run(0, 2000, node => f.names.filter(n => n !== node).map(n => pod(n, 1, n === 'cil-0001' && node.startsWith('aws') ? 1 : 0)))
  const now = T0 + 2000
  const fromCilium = evaluateGate(gate({ nodes: ['cil-0001'], nodeRules: [{ probe: 'pod', peers: 'cilium', maxNodeErrorRatio: 0.01 }] }), f.sources, now)
  t.equal(fromCilium.verdict, 'pass')
  t.match(check(fromCilium, 'pod nodes<-cilium maxNodeErrorRatio'), { peers: 'cilium', worst: [{ node: 'cil-0001', peers: 19, observed: 0 }] })
  const fromAws = evaluateGate(gate({ nodes: ['cil-0001'], nodeRules: [{ probe: 'pod', peers: 'aws', maxNodeErrorRatio: 0.01 }] }), f.sources, now)
  t.match(check(fromAws, 'pod nodes<-aws maxNodeErrorRatio'), { verdict: 'fail', worst: [{ node: 'cil-0001', peers: 10, observed: 1 }] })
  t.equal(check(fromAws, 'pod nodes->aws maxNodeErrorRatio').verdict, 'pass')
})

t.test('maxNodeP99 fails a slow node and passes the others', async t => {
  const f = fleet(labelsFor(10))
  f.run(0, 2000, mesh(f.names, new Set(), new Set(['cil-0003'])))
  const r = evaluateGate(gate({ nodeSelector: 'cniplugin=cilium', nodeRules: [{ probe: 'pod', maxNodeP99: '100ms' }] }), f.sources, T0 + 2000)
  t.match(check(r, 'pod nodes<-* maxNodeP99'), { verdict: 'fail', worst: [{ node: 'cil-0003', verdict: 'fail' }, { verdict: 'pass' }] })
  t.ok(check(r, 'pod nodes<-* maxNodeP99').observed! > 0.5)
  // Outbound, every other node sees the slow peer in more than 1% of its probes; cil-0003's own probes are fast.
  const outbound = check(r, 'pod nodes->* maxNodeP99')
  t.equal(outbound.verdict, 'fail')
  t.match(outbound.worst!.at(-1), { node: 'cil-0003', verdict: 'pass' })
})

t.test('the relative bound: a fleet-wide background error rate passes, a node well above it fails', async t => {
  const f = fleet(labelsFor(40))
  // Every probe fails one time in ten (two of 20 per report); cil-0005 refuses everything.
  f.run(0, 2000, node => f.names.filter(n => n !== node).map(n => pod(n, 20, n === 'cil-0005' ? 20 : 2)))
  const now = T0 + 2000
  const absolute = evaluateGate(gate({ nodes: ['cil-0001'], nodeRules: [{ probe: 'pod', maxNodeErrorRatio: 0.05 }] }), f.sources, now)
  t.equal(absolute.verdict, 'fail', 'an absolute bound fails a healthy node in a noisy fleet')
  const relative = (nodes: string[]) => evaluateGate(gate({ nodes, nodeRules: [{ probe: 'pod', maxNodeExcessErrorRatio: 0.05 }] }), f.sources, now)
  const healthy = relative(['cil-0001', 'cil-0002'])
  t.equal(healthy.verdict, 'pass', check(healthy, 'pod nodes<-* maxNodeExcessErrorRatio').detail)
  const broken = relative(['cil-0001', 'cil-0005'])
  t.match(check(broken, 'pod nodes<-* maxNodeExcessErrorRatio'), { verdict: 'fail', worst: [{ node: 'cil-0005' }] })
  t.match(check(broken, 'pod nodes<-* maxNodeExcessErrorRatio').worst![0]!.detail, /^1 against 0\.1\d* for the rest of the fleet/)
})

t.test('per-node DNS and Service: outbound only, per target or all', async t => {
  const f = fleet(labelsFor(4))
  f.run(0, 2000, node => [
    { probe: 'dns-lookup', target: 'kubernetes.default@getaddrinfo', count: 5, latency: node === 'cil-0002' ? [] : [bucketIndex(0.001), 5], ...(node === 'cil-0002' ? { errors: [{ reason: 'ENOTFOUND' as const, raw: 'EAI_NONAME', count: 5 }] } : {}) },
    { probe: 'service', target: '10.96.0.20:8081', count: 5, latency: [bucketIndex(0.001), 5] }
  ])
  const now = T0 + 2000
  const r = evaluateGate(gate({ minSamples: 5, nodeSelector: 'cniplugin=cilium', nodeRules: [{ probe: 'dns-lookup', maxNodeErrorRatio: 0 }, { probe: 'service', peers: '10.96.0.20:8081', maxNodeErrorRatio: 0 }] }), f.sources, now)
  t.match(check(r, 'dns-lookup nodes->* maxNodeErrorRatio'), { verdict: 'fail', direction: 'outbound', worst: [{ node: 'cil-0002', observed: 1, peers: 1 }] })
  t.match(check(r, 'dns-lookup nodes->* maxNodeErrorRatio').worst![0]!.detail, /ENOTFOUND 15/)
  t.equal(check(r, 'service nodes->10.96.0.20:8081 maxNodeErrorRatio').verdict, 'pass')
  t.notOk(r.checks.some(c => c.id.startsWith('dns-lookup nodes<-')), 'no inbound for target kinds')
})

t.test('coverage: every selected node needs a connected, reporting agent and, with discovery, a ready pod', async t => {
  const labels = labelsFor(3)
  const kube = new Map<string, KubeNodeFacts>(Object.entries(labels).map(([n, l]) => [n, { labels: { ...l, 'kubernetes.io/hostname': n }, cordoned: false, podReady: true }]))
  kube.get('cil-0001')!.podReady = false
  kube.get('cil-0001')!.podReason = 'agent pod agent-x is Pending'
  kube.set('cil-9999', { labels: { cniplugin: 'cilium' }, cordoned: false, podReady: false, podReason: 'no live agent pod on the node' })
  const f = fleet(labels, kube)
  f.run(0, 2000, mesh(f.names, new Set()))
  f.roster.disconnect('cil-0002', T0 + 2000)
  const r = evaluateGate(gate({ nodeSelector: 'cniplugin=cilium', nodeRules: [{ probe: 'pod', maxNodeErrorRatio: 0.01 }] }), f.sources, T0 + 2000)
  t.same(r.nodes, ['cil-0000', 'cil-0001', 'cil-0002', 'cil-9999'], 'a node discovery knows is selected even without an agent')
  const coverage = check(r, 'coverage nodes')
  t.match(coverage, { verdict: 'insufficient_data', observed: 0.25, samples: 1 })
  t.same(coverage.worst!.map(w => [w.node, w.detail]), [
    ['cil-0001', 'agent pod agent-x is Pending'], ['cil-0002', 'its agent is disconnected'], ['cil-9999', 'no live agent pod on the node']
  ])
  const byHostname = evaluateGate(gate({ nodeSelector: 'kubernetes.io/hostname=cil-0000' }), f.sources, T0 + 2000)
  t.same(byHostname.nodes, ['cil-0000'], 'any Kubernetes label selects, not only those laid over the roster')
  t.equal(byHostname.verdict, 'pass')
  const stale = evaluateGate(gate({ nodes: ['cil-0000'], maxStaleness: '1s' }), f.sources, T0 + 9000)
  t.match(check(stale, 'coverage nodes').worst, [{ node: 'cil-0000', detail: 'its newest report is 7s old, older than 1s' }])
})

t.test('a selector matching nothing is insufficient, never pass', async t => {
  const f = fleet(labelsFor(3))
  f.run(0, 2000, mesh(f.names, new Set()))
  const r = evaluateGate(gate({ nodeSelector: 'migration-batch=8', nodeRules: [{ probe: 'pod', maxNodeErrorRatio: 0.01 }] }), f.sources, T0 + 2000)
  t.match(r, { verdict: 'insufficient_data', nodes: [], checks: [{ id: 'scope nodes', verdict: 'insufficient_data', detail: 'nodeSelector "migration-batch=8" selects no node (of 13 known): nothing to judge' }] })
})

t.test('a group whose other members are leaving counts as one member at once (planned departures are not members)', async t => {
  const f = fleet({ a1: { cniplugin: 'aws' }, c1: { cniplugin: 'cilium' }, c2: { cniplugin: 'cilium' }, c3: { cniplugin: 'cilium' } })
  f.run(0, 2000, mesh(f.names, new Set()))
  f.roster.depart('c2')
  f.roster.depart('c3')
  const r = evaluateGate(gate({ minSamples: 1, rules: [{ probe: 'pod', src: 'cilium', dst: 'cilium', maxErrorRatio: 0.01 }] }), f.sources, T0 + 2000)
  t.same(r.skipped, [{ probe: 'pod', src: 'cilium', dst: 'cilium', reason: 'group cilium has one member, and an agent does not probe itself' }])
  t.equal(r.checks.filter(c => c.src === 'cilium' && c.dst === 'cilium').length, 0, 'no check waits on the leaving agents')
})

t.test('pairs that cannot have data are skipped and listed; check ids are unique', async t => {
  // One cilium node: cilium -> cilium can never have pod data (an agent does not probe itself).
  const f = fleet({ a1: { cniplugin: 'aws' }, a2: { cniplugin: 'aws' }, c1: { cniplugin: 'cilium', 'migration-batch': '1' } })
  f.run(0, 2000, mesh(f.names, new Set()))
  const now = T0 + 2000
  const def = {
    minSamples: 2,
    rules: [
      { probe: 'pod', src: '*', dst: 'cilium', maxErrorRatio: 0.01 },
      { probe: 'pod', src: 'cilium', dst: '*', maxErrorRatio: 0.01 },
      { probe: 'pod', src: 'aws', dst: 'aws', maxErrorRatio: 0.05 },
      { probe: 'pod', src: 'aws', dst: 'aws', maxErrorRatio: 0.01 }
    ]
  }
  const r = evaluateGate(gate(def), f.sources, now)
  t.equal(r.verdict, 'pass', 'a one-node batch can pass')
  t.same(r.skipped, [{ probe: 'pod', src: 'cilium', dst: 'cilium', reason: 'group cilium has one member, and an agent does not probe itself' }])
  const ids = r.checks.map(c => c.id)
  t.same(ids, [...new Set(ids)], 'unique ids')
  t.equal(ids.filter(id => id === 'pod aws->aws maxErrorRatio').length, 1)
  t.ok(ids.includes('pod aws->aws maxErrorRatio #2'), 'a second, different bound on the same pair keeps its place under a new id')
  t.equal(r.summary.pass + r.summary.fail + r.summary.insufficient_data, r.checks.length, 'the summary counts each check once')
  t.equal(ids.filter(id => id === 'pod cilium->aws minSamples').length, 1, 'the same check from two rules is kept once')

  // A batch gate names a group that has no members yet (before the first batch, say): skipped, not insufficient.
  const early = fleet({ a1: { cniplugin: 'aws', 'migration-batch': '1' }, a2: { cniplugin: 'aws' } })
  early.run(0, 2000, mesh(early.names, new Set()))
  const batch = evaluateGate(gate({ minSamples: 2, nodeSelector: 'migration-batch=1', rules: [{ probe: 'pod', src: 'aws', dst: 'cilium', maxErrorRatio: 0.01 }], nodeRules: [{ probe: 'pod', maxNodeErrorRatio: 0.01 }] }), early.sources, now)
  t.equal(batch.verdict, 'pass')
  t.match(batch.skipped, [{ src: 'aws', dst: 'cilium', reason: /group cilium has no members yet/ }])
  const unscoped = evaluateGate(gate({ minSamples: 2, rules: [{ probe: 'pod', src: 'aws', dst: 'cilium', maxErrorRatio: 0.01 }] }), early.sources, now)
  t.equal(unscoped.verdict, 'insufficient_data', 'without a node scope a missing group is still insufficient')
})

t.test('a destination member nobody probes makes its pair insufficient, never pass', async t => {
  const f = fleet(labelsFor(6))
  // cil-0004 is cordoned (draining) and nobody has probed it yet (the peer list with it has not reached them).
  f.run(0, 2000, node => f.names.filter(n => n !== node && n !== 'cil-0004').map(n => pod(n, 1)))
  f.roster.setKube('cil-0004', { labels: { cniplugin: 'cilium' }, replaces: ['cniplugin'], cordoned: true, terminatingPods: [] })
  const now = T0 + 2000
  const r = evaluateGate(gate({ minSamples: 2, rules: [{ probe: 'pod', src: 'aws', dst: 'cilium', maxErrorRatio: 0.01 }] }), f.sources, now)
  t.equal(check(r, 'pod aws->cilium maxErrorRatio').verdict, 'pass', 'the ratio over the probed members is fine')
  t.match(check(r, 'pod aws->cilium probedMembers'), { verdict: 'insufficient_data', observed: 5 / 6, detail: /1 of 6 members of cilium have no pod results from aws in the last 10s: cil-0004 \(draining: cordoned\)/ })
  t.equal(r.verdict, 'insufficient_data')
  const scoped = evaluateGate(gate({ minSamples: 2, nodes: ['cil-0004'], nodeRules: [{ probe: 'pod', maxNodeErrorRatio: 0.01 }] }), f.sources, now)
  t.match(check(scoped, 'pod nodes<-* minSamples'), { verdict: 'insufficient_data', worst: [{ node: 'cil-0004', samples: 0, detail: /^nobody probed it \(its agent is draining/ }] })
  t.equal(scoped.verdict, 'insufficient_data')
})

t.test('mtu: a peer with one cell per size counts once, and a black-holed size fails its node', async t => {
  const f = fleet(labelsFor(4))
  const mtu = (target: string, count: number, failed: number): Cell => ({
    probe: 'mtu', target, count, latency: count > failed ? [bucketIndex(0.003), count - failed] : [],
    ...(failed > 0 ? { errors: [{ reason: 'MTU_BLACKHOLE' as const, raw: 'HEADERS_TIMEOUT', count: failed }] } : {})
  })
  // Probes toward cil-0001 with 8500 bytes are black-holed; 1400 passes everywhere.
  f.run(0, 2000, node => f.names.filter(n => n !== node).flatMap(n => [mtu(`${n}/1400`, 2, 0), mtu(`${n}/8500`, 2, n === 'cil-0001' ? 2 : 0)]))
  const r = evaluateGate(gate({ minSamples: 5, nodeSelector: 'cniplugin=cilium', nodeRules: [{ probe: 'mtu', maxNodeErrorRatio: 0.1, minPeers: 13 }] }), f.sources, T0 + 2000)
  t.match(check(r, 'mtu nodes<-* maxNodeErrorRatio'), { verdict: 'fail', worst: [{ node: 'cil-0001', observed: 0.5, peers: 13 }] })
  t.match(check(r, 'mtu nodes<-* minPeers'), { verdict: 'pass', observed: 13 }, 'sizes do not count as peers')
  t.match(check(r, 'mtu nodes<-* maxNodeErrorRatio').worst![0]!.detail, /^78 of 156 failed: MTU_BLACKHOLE 78; 13 peers$/)
})

// A restarted agent is judged only on what arrived since its new boot said hello: the window
// still holds its predecessor's good samples (and peers' good probes toward it), which must not
// pass a node that is broken now.
t.test('since the boot: a re-hello with a new bootId shortens the node window, and only failures since then count', async t => {
  const batch = ['cil-0010', 'cil-0011', 'cil-0012', 'cil-0013']
  const labels = labelsFor(40, batch)
  const f = fleet(labels)
  const ok = mesh(f.names, new Set())
  f.run(0, 240_000, ok)
  // cil-0013 restarted earlier and is healthy; cil-0010 and cil-0012 restart together at 240.5 s
  // (mid-slot), and only cil-0012 is broken after; cil-0011 never restarts.
  f.roster.join(hello('cil-0013', labels['cil-0013'], 'boot-cil-0013-0002'), T0 + 200_300)
  f.roster.join(hello('cil-0010', labels['cil-0010'], 'boot-cil-0010-0002'), T0 + 240_500)
  f.roster.join(hello('cil-0012', labels['cil-0012'], 'boot-cil-0012-0002'), T0 + 240_500)
  const broken = new Set(['cil-0012'])
  const after = (node: string): Cell[] => f.names.filter(n => n !== node).map(n => pod(n, 1, broken.has(n) || broken.has(node) ? 1 : 0))
  const def = { window: '5m', minSamples: 100, nodeSelector: 'migration-batch=7', nodeRules: [{ probe: 'pod', maxNodeErrorRatio: 0.05, maxNodeExcessErrorRatio: 0.05, minPeers: 20 }] }

  // Right after the hello, nothing of the new boot is in: insufficient (the old code passed here).
  let r = evaluateGate(gate(def), f.sources, T0 + 240_600)
  t.equal(check(r, 'coverage nodes').verdict, 'pass', 'the old boot reported recently: coverage alone does not hold it back')
  t.equal(r.verdict, 'insufficient_data', 'never pass on the old boot\'s samples')
  for (const id of ['pod nodes<-* minSamples', 'pod nodes->* minSamples']) {
    const c = check(r, id)
    t.match(c, { verdict: 'insufficient_data', observed: 0 }, id)
    t.same(c.worst!.map(w => w.node).sort(), ['cil-0010', 'cil-0012'], `${id}: only the two just restarted are short`)
    t.match(c.worst![0]!.detail, /; read since its agent \(boot boot-cil-0010-0002\) joined at \d\d:\d\d:\d\dZ$/)
    t.match(c.detail, /; 3 of 4 selected nodes read only since their agent's current boot joined: cil-0010 \(boot boot-cil-0010-0002\) joined at 08:04:00Z; cil-0012 .*; cil-0013 \(boot boot-cil-0013-0002\) joined at 08:03:20Z$/)
  }
  t.equal(check(r, 'pod nodes<-* maxNodeErrorRatio').verdict, 'insufficient_data')
  // The answer spans the widest read: the full 5m of the nodes that did not restart.
  t.ok(Date.parse(r.from) <= T0 + 240_600 - 4 * 60_000, `from ${r.from} spans the full window`)

  // One report since the boot (49 samples, fewer than 100): still insufficient, not pass.
  f.run(241_000, 241_000, after)
  r = evaluateGate(gate(def), f.sources, T0 + 241_000)
  t.equal(r.verdict, 'insufficient_data')
  t.match(check(r, 'pod nodes<-* minSamples').worst, [{ node: 'cil-0010', observed: 49 }, { node: 'cil-0012', observed: 49 }])

  // Enough failures since the boot: it fails on them, named, with since when; the healthy restarts pass.
  f.run(242_000, 244_000, after)
  r = evaluateGate(gate(def), f.sources, T0 + 244_000)
  t.equal(r.verdict, 'fail')
  for (const direction of ['<-', '->']) {
    for (const criterion of ['maxNodeErrorRatio', 'maxNodeExcessErrorRatio']) {
      const c = check(r, `pod nodes${direction}* ${criterion}`)
      t.match(c, { verdict: 'fail', worst: [{ node: 'cil-0012', verdict: 'fail', samples: 196 }] }, `${direction} ${criterion}`)
      t.ok(c.worst![0]!.observed! > 0.9, `${direction} ${criterion}: judged on failures only (${c.worst![0]!.observed})`)
      t.match(c.worst![0]!.detail, /since its agent \(boot boot-cil-0012-0002\) joined at 08:04:00Z$/)
      t.equal(c.worst!.filter(w => w.verdict === 'fail').length, 1, 'only cil-0012 fails')
    }
  }
  const byNode = new Map(check(r, 'pod nodes<-* maxNodeErrorRatio').worst!.map(w => [w.node, w]))
  t.equal(byNode.get('cil-0010')!.samples, 196, 'cil-0010 counts only its 4 reports since its boot')
  t.match(byNode.get('cil-0013')!.detail, /since its agent \(boot boot-cil-0013-0002\) joined/)
  t.ok(byNode.get('cil-0013')!.samples > 49 * 40 && byNode.get('cil-0013')!.samples < 49 * 45, 'cil-0013 counts from its boot at 200.3 s (slot-aligned)')
  t.ok(byNode.get('cil-0011')!.samples > 49 * 240, 'cil-0011 did not restart: its whole window counts')
  t.notMatch(byNode.get('cil-0011')!.detail, /since its agent/)
  t.equal(check(r, 'pod nodes<-* minPeers').verdict, 'pass')
})

t.test('since the boot: p99 and per-node DNS are judged since the boot too', async t => {
  const labels = labelsFor(30, ['cil-0005'])
  const f = fleet(labels)
  const dns = (bad: boolean): Cell => ({ probe: 'dns-lookup', target: 'kubernetes.default@getaddrinfo', count: 5, latency: bad ? [] : [bucketIndex(0.001), 5], ...(bad ? { errors: [{ reason: 'ENOTFOUND' as const, raw: 'EAI_NONAME', count: 5 }] } : {}) })
  f.run(0, 120_000, node => [...mesh(f.names, new Set())(node), dns(false)])
  f.roster.join(hello('cil-0005', labels['cil-0005'], 'boot-cil-0005-0002'), T0 + 120_100)
  f.run(121_000, 121_000, node => [...mesh(f.names, new Set(), new Set(['cil-0005']))(node), dns(node === 'cil-0005')])
  const r = evaluateGate(gate({ window: '5m', minSamples: 5, nodeSelector: 'migration-batch=7', nodeRules: [{ probe: 'pod', maxNodeP99: '500ms' }, { probe: 'dns-lookup', maxNodeErrorRatio: 0.05 }] }), f.sources, T0 + 121_000)
  t.match(check(r, 'pod nodes<-* maxNodeP99'), { verdict: 'fail', worst: [{ node: 'cil-0005', samples: 39 }] })
  t.ok(check(r, 'pod nodes<-* maxNodeP99').observed! > 0.5, 'its p99 is the slow probes since the boot')
  t.match(check(r, 'dns-lookup nodes->* maxNodeErrorRatio'), { verdict: 'fail', observed: 1, worst: [{ node: 'cil-0005', samples: 5 }] })
  t.match(check(r, 'dns-lookup nodes->* maxNodeErrorRatio').worst![0]!.detail, /ENOTFOUND 5; 1 target; read since its agent \(boot boot-cil-0005-0002\) joined at 08:02:00Z$/)
})

t.test('since the boot: a reconnect with the same bootId keeps the whole window', async t => {
  const labels = labelsFor(30, ['cil-0005'])
  const f = fleet(labels)
  f.run(0, 120_000, mesh(f.names, new Set()))
  f.roster.disconnect('cil-0005', T0 + 120_100)
  f.roster.join(hello('cil-0005', labels['cil-0005']), T0 + 120_500)
  t.equal(f.roster.get('cil-0005')!.bootStartedAt, T0, 'the boot keeps its start')
  f.run(121_000, 121_000, mesh(f.names, new Set(['cil-0005'])))
  const r = evaluateGate(gate({ window: '5m', minSamples: 100, nodeSelector: 'migration-batch=7', nodeRules: [{ probe: 'pod', maxNodeErrorRatio: 0.05 }] }), f.sources, T0 + 121_000)
  const c = check(r, 'pod nodes<-* maxNodeErrorRatio')
  t.match(c, { verdict: 'pass', worst: [{ node: 'cil-0005', samples: 39 * 122, observed: 1 / 122 }] })
  t.notMatch(c.detail + c.worst![0]!.detail, /since its agent/)
})
