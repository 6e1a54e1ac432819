// Gate evaluation at a 1,000-node full mesh, in process: five minutes of 5 s reports go through the
// aggregator's own roster, ingest and stores (as the running aggregator builds them), then gates are
// evaluated repeatedly and the median time of each is kept. Target: a node-scoped gate over 50
// selected nodes in ≤ 20 ms (issue 12).

import { bucketIndex, type Cell } from '@pingfleet/protocol'
import { Fleet } from '../aggregator/src/fleet/fleet.ts'
import { evaluateGate, type GateSources } from '../aggregator/src/gates/eval.ts'
import { compileGate, type GateDefinition } from '../aggregator/src/gates/spec.ts'
import { Ingest } from '../aggregator/src/store/ingest.ts'
import { Roster } from '../aggregator/src/fleet/roster.ts'
import { defaultTiers, GROUP_TIERS, NODE_TIERS, Store } from '../aggregator/src/store/store.ts'
import { Totals } from '../aggregator/src/store/totals.ts'
import { nodeName } from './fleet-sim.ts'
import { median } from './proc.ts'

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
}

export async function gateBench (nodes: number, selectedEvery: number, minutes: number, reps: number): Promise<GateBenchResult> {
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
  const sources: GateSources = { groups, nodes: store, fleet, serviceBackends: () => null }
  const limits = { intervalMs: INTERVAL, maxWindowMs: MAX_WINDOW }
  const gates: Record<string, GateDefinition> = {
    'node-scoped': { name: 'b', window: '5m', nodeSelector: 'migration-batch=7', nodeRules: [{ probe: 'pod', maxNodeErrorRatio: 0.01, maxNodeP99: '500ms', minPeers: 100 }] },
    'node-scoped, ratio only': { name: 'b', window: '5m', nodeSelector: 'migration-batch=7', nodeRules: [{ probe: 'pod', maxNodeErrorRatio: 0.01 }] },
    'node-scoped, relative bound': { name: 'b', window: '5m', nodeSelector: 'migration-batch=7', nodeRules: [{ probe: 'pod', maxNodeErrorRatio: 0.01, maxNodeExcessErrorRatio: 0.01 }] },
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
  return { nodes, selected, minutes, loadSeconds, reps, medianMs, medianCpuMs, verdicts }
}
