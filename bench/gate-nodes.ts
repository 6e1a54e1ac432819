// Gate evaluation at a 1,000-node full mesh, in process: five minutes of 5 s reports go through the
// aggregator's own roster, ingest and stores (as the running aggregator builds them), then gates are
// evaluated repeatedly and the median time of each is kept. Target: a node-scoped gate over 50
// selected nodes in ≤ 20 ms (issue 12). Run as a script (`node bench/gate-nodes.ts --root <checkout>
// …`) it benchmarks another checkout's aggregator in its own process and prints the result as JSON:
// how `bench/run.ts --base` compares two trees.

import { resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { bucketIndex, type Cell } from '@pingfleet/protocol'
import type { GateSources } from '../aggregator/src/gates/eval.ts'
import type { GateDefinition } from '../aggregator/src/gates/spec.ts'
import type * as FleetModule from '../aggregator/src/fleet/fleet.ts'
import type * as EvalModule from '../aggregator/src/gates/eval.ts'
import type * as SpecModule from '../aggregator/src/gates/spec.ts'
import type * as IngestModule from '../aggregator/src/store/ingest.ts'
import type * as RosterModule from '../aggregator/src/fleet/roster.ts'
import type * as StoreModule from '../aggregator/src/store/store.ts'
import type * as TotalsModule from '../aggregator/src/store/totals.ts'
import { nodeName } from './fleet-sim.ts'
import { median } from './proc.ts'

/** A module of the aggregator in checkout `root` (this one by default), typed as this checkout's. */
async function load<T> (root: string, path: string): Promise<T> {
  return await import(pathToFileURL(resolve(root, path)).href) as T
}

export interface GateBenchResult {
  nodes: number
  selected: number
  minutes: number
  loadSeconds: number
  reps: number
  /** Median milliseconds per evaluation, by gate: wall clock, and this thread's CPU time (what a shared machine disturbs least). */
  medianMs: Record<string, number>
  medianCpuMs: Record<string, number>
  verdicts: Record<string, string>
  /** CPU seconds (this thread) spent loading the reports: roster, ingest, both stores. */
  loadCpuSeconds: number
  /** The node store's own accounting (Store.stats().bytes) and the process's RSS once loaded. */
  storeBytes: number
  rssBytes: number
}

/**
 * Loads `minutes` of a `nodes`-node mesh, selects every `selectedEvery`th node, and times each gate
 * `reps` times after 3 warm-ups. `root`: the checkout whose aggregator is measured.
 */
export async function gateBench (nodes: number, selectedEvery: number, minutes: number, reps: number, root = resolve(import.meta.dirname, '..')): Promise<GateBenchResult> {
  const { Fleet } = await load<typeof FleetModule>(root, 'aggregator/src/fleet/fleet.ts')
  const { evaluateGate } = await load<typeof EvalModule>(root, 'aggregator/src/gates/eval.ts')
  const { compileGate } = await load<typeof SpecModule>(root, 'aggregator/src/gates/spec.ts')
  const { Ingest } = await load<typeof IngestModule>(root, 'aggregator/src/store/ingest.ts')
  const { Roster } = await load<typeof RosterModule>(root, 'aggregator/src/fleet/roster.ts')
  const { defaultTiers, GROUP_TIERS, NODE_TIERS, Store } = await load<typeof StoreModule>(root, 'aggregator/src/store/store.ts')
  const { Totals } = await load<typeof TotalsModule>(root, 'aggregator/src/store/totals.ts')
  const INTERVAL = 5000
  const MAX_WINDOW = 15 * 60_000
  let clock = Date.UTC(2026, 10, 29, 12)
  const store = new Store(defaultTiers(INTERVAL, MAX_WINDOW, NODE_TIERS), () => clock)
  const groups = new Store(defaultTiers(INTERVAL, MAX_WINDOW, GROUP_TIERS), () => clock)
  const roster = new Roster(10 * 60_000)
  const fleet = new Fleet({ roster, groupLabel: 'cniplugin' })
  const ingest = new Ingest({ nodes: store, groups, totals: new Totals(), fleet })
  const names = Array.from({ length: nodes }, (_, i) => nodeName(i))
  for (const [i, node] of names.entries()) {
    const labels: Record<string, string> = { cniplugin: i % 2 === 0 ? 'aws' : 'cilium' }
    if (i % selectedEvery === 0) labels['migration-batch'] = '7'
    roster.join({ type: 'hello', v: 1, node, pod: `agent-${i}`, podIp: '127.0.0.1', port: 8081, labels, version: 'bench', bootId: `bench-${i}` } as never, clock)
  }
  // Latencies around 1 ms, one probe per peer per report, as bench/fleet-sim.ts sends them.
  const cellsOf = names.map((self, i) => names.filter(n => n !== self).map((target, t): Cell => ({ probe: 'pod', target, count: 1, latency: [bucketIndex(0.001 * (1 + ((i + t) % 7) / 10)), 1] })))
  const reports = minutes * 60_000 / INTERVAL
  const t0 = performance.now()
  const loadCpu0 = process.cpuUsage()
  for (let seq = 1; seq <= reports; seq++) {
    clock += INTERVAL
    store.advance(clock)
    groups.advance(clock)
    for (const [i, node] of names.entries()) {
      const entry = roster.get(node)!
      if (roster.accept(node, entry.bootId, seq, clock)) ingest.apply(entry, { type: 'report', v: 1, seq, start: clock - INTERVAL, end: clock, cells: cellsOf[i]! } as never)
    }
  }
  const loadSeconds = (performance.now() - t0) / 1000
  const loadCpu = process.cpuUsage(loadCpu0)
  const sources: GateSources = { groups, nodes: store, fleet, serviceBackends: () => null }
  const limits = { intervalMs: INTERVAL, maxWindowMs: MAX_WINDOW }
  const gates: Record<string, GateDefinition> = {
    'node-scoped': { name: 'b', window: '5m', nodeSelector: 'migration-batch=7', nodeRules: [{ probe: 'pod', maxNodeErrorRatio: 0.01, maxNodeP99: '500ms', minPeers: 100 }] },
    'node-scoped, ratio only': { name: 'b', window: '5m', nodeSelector: 'migration-batch=7', nodeRules: [{ probe: 'pod', maxNodeErrorRatio: 0.01 }] },
    'node-scoped, relative bound': { name: 'b', window: '5m', nodeSelector: 'migration-batch=7', nodeRules: [{ probe: 'pod', maxNodeErrorRatio: 0.01, maxNodeExcessErrorRatio: 0.01 }] },
    'node-scoped, peers: cilium': { name: 'b', window: '5m', nodeSelector: 'migration-batch=7', nodeRules: [{ probe: 'pod', peers: 'cilium', maxNodeErrorRatio: 0.01, maxNodeP99: '500ms', minPeers: 100 }] },
    'group pair * -> * (with probedMembers)': { name: 'g', window: '5m', rules: [{ probe: 'pod', src: '*', dst: '*', maxErrorRatio: 0.01, maxP99: '500ms' }] }
  }
  const medianMs: Record<string, number> = {}
  const medianCpuMs: Record<string, number> = {}
  const verdicts: Record<string, string> = {}
  let selected = 0
  for (const [label, def] of Object.entries(gates)) {
    const spec = compileGate(def, limits)
    for (let i = 0; i < 3; i++) evaluateGate(spec, sources, clock) // warm-up
    const times: number[] = []
    const cpu: number[] = []
    for (let i = 0; i < reps; i++) {
      const start = performance.now()
      const cpu0 = process.cpuUsage()
      const result = evaluateGate(spec, sources, clock)
      const used = process.cpuUsage(cpu0)
      times.push(performance.now() - start)
      cpu.push((used.user + used.system) / 1000)
      verdicts[label] = result.verdict
      if (result.nodes !== undefined) selected = result.nodes.length
    }
    medianMs[label] = median(times)
    medianCpuMs[label] = median(cpu)
  }
  return {
    nodes, selected, minutes, loadSeconds, reps, medianMs, medianCpuMs, verdicts,
    loadCpuSeconds: (loadCpu.user + loadCpu.system) / 1e6, storeBytes: store.stats().bytes, rssBytes: process.memoryUsage().rss
  }
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === import.meta.filename) {
  const { values: a } = parseArgs({ options: { root: { type: 'string' }, nodes: { type: 'string', default: '1000' }, every: { type: 'string', default: '20' }, minutes: { type: 'string', default: '5' }, reps: { type: 'string', default: '30' } } })
  const r = await gateBench(Number(a.nodes), Number(a.every), Number(a.minutes), Number(a.reps), a.root === undefined ? undefined : resolve(a.root))
  process.stdout.write(JSON.stringify(r) + '\n')
}
