// Finding evaluation at a 1,000-node full mesh, in process (issue 13): one window of 5 s reports
// (pod every report, mtu and udp every sixth, as their 30 s default cadence) goes through the
// aggregator's roster, ingest and stores, with each node's 11 DNS, Service and external targets;
// then readNetworkInput + networkFindings, readDnsServiceInput + dnsServiceFindings, and
// evaluateFindings as a whole, are timed repeatedly. Target: ≤ 50 ms per evaluation. Scenarios: a
// healthy mesh, one dead node, and a one-way aws -> cilium boundary (failures are what cost).

import { writeFileSync } from 'node:fs'
import { Session } from 'node:inspector/promises'
import { resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { bucketIndex, type Cell } from '@pingfleet/protocol'
import { dnsServiceFindings, readDnsServiceInput } from '../aggregator/src/findings/dns-service.ts'
import { evaluateFindings } from '../aggregator/src/findings/evaluate.ts'
import { findingsContext } from '../aggregator/src/findings/input.ts'
import { networkFindings, readNetworkInput } from '../aggregator/src/findings/network.ts'
import { NETWORK_WINDOW_MS, SLOW_PROBE_WINDOW_MS } from '../aggregator/src/findings/network-thresholds.ts'
import { AgentHealth } from '../aggregator/src/fleet/agent-health.ts'
import { Fleet } from '../aggregator/src/fleet/fleet.ts'
import { Roster } from '../aggregator/src/fleet/roster.ts'
import { Ingest } from '../aggregator/src/store/ingest.ts'
import { defaultTiers, GROUP_TIERS, NODE_TIERS, Store } from '../aggregator/src/store/store.ts'
import { Totals } from '../aggregator/src/store/totals.ts'
import { nodeName } from './fleet-sim.ts'
import { median } from './proc.ts'

export type FindingsScenario = 'healthy' | 'dead-node' | 'boundary'

export interface FindingsBenchResult {
  nodes: number
  scenario: FindingsScenario
  reps: number
  loadSeconds: number
  /** Median CPU ms of its two halves: readNetworkInput alone, networkFindings alone (on one input). */
  readCpuMs: number
  judgeCpuMs: number
  /** The same for the DNS, Service and egress family: readDnsServiceInput alone, dnsServiceFindings alone. */
  dnsReadCpuMs: number
  dnsJudgeCpuMs: number
  /** Median ms per evaluation: wall and this thread's CPU. */
  networkMs: number
  networkCpuMs: number
  evaluateMs: number
  evaluateCpuMs: number
  /**
   * Median CPU ms of evaluateFindings right after one more interval of reports (5 rounds): what an
   * evaluation costs in steady state, where the newest slot has changed since the last one (the
   * slots' failure indexes are rebuilt for it), unlike the repeated evaluations of one store above.
   */
  freshEvaluateCpuMs: number
  /** What the evaluation found: `kind subject`. */
  found: string[]
}

const INTERVAL = 5000

/** Loads one window of a `nodes`-node mesh in `scenario` and times `reps` evaluations after 3 warm-ups. */
export async function findingsBench (nodes: number, scenario: FindingsScenario, reps: number, profile?: string): Promise<FindingsBenchResult> {
  let clock = Date.UTC(2026, 10, 29, 12)
  const store = new Store(defaultTiers(INTERVAL, 15 * 60_000, NODE_TIERS), () => clock)
  const groups = new Store(defaultTiers(INTERVAL, 15 * 60_000, GROUP_TIERS), () => clock)
  const roster = new Roster(10 * 60_000)
  const fleet = new Fleet({ roster, groupLabel: 'cniplugin' })
  const health = new AgentHealth({ now: () => clock, roster })
  const ingest = new Ingest({ nodes: store, groups, totals: new Totals(), fleet, health })
  const names = Array.from({ length: nodes }, (_, i) => nodeName(i))
  const group = (i: number): string => i % 2 === 0 ? 'aws' : 'cilium'
  for (const [i, node] of names.entries()) {
    roster.join({ type: 'hello', v: 1, node, pod: `agent-${i}`, podIp: '127.0.0.1', port: 8081, labels: { cniplugin: group(i) }, version: 'bench', bootId: `bench-${i}` } as never, clock)
  }
  const victim = 7
  const fails = (s: number, d: number): boolean => scenario === 'dead-node' ? s === victim || d === victim : scenario === 'boundary' ? group(s) === 'aws' && group(d) === 'cilium' : false
  const timeout = [{ reason: 'CONNECT_TIMEOUT' as const, raw: 'UND_ERR_CONNECT_TIMEOUT', count: 1 }]
  const cellsOf = (i: number, slow: boolean): Cell[] => {
    const cells: Cell[] = []
    for (let t = 0; t < nodes; t++) {
      if (t === i) continue
      const bad = fails(i, t)
      const latency = [bucketIndex(0.001 * (1 + ((i + t) % 7) / 10)), 1]
      cells.push(bad ? { probe: 'pod', target: names[t]!, count: 1, latency: [], errors: timeout } : { probe: 'pod', target: names[t]!, count: 1, latency })
      // The DNS, Service and external targets every report (dns-service.ts reads them): 11 per node,
      // healthy; Service answers spread over the live agents.
      if (t === (i + 1) % nodes) {
        const ok = { count: 1, latency }
        // A permutation (7 is coprime with the sizes run), so every agent answers somebody.
        const backend = names[(i * 7 + 3) % nodes]!
        for (const name of ['kubernetes.default', 'kubernetes.default.svc.cluster.local.', 'db.example.']) cells.push({ probe: 'dns-lookup', target: `${name}@getaddrinfo`, ...ok })
        for (const name of ['kubernetes.default.svc.cluster.local', 'db.example']) for (const type of ['A', 'AAAA']) cells.push({ probe: 'dns-wire', target: `${name}@10.96.0.10:53/${type}`, ...ok })
        for (const target of ['10.96.0.20:8081', 'pingfleet-agent:8081']) cells.push({ probe: 'service', target, ...ok, backends: [{ node: fails(i, names.indexOf(backend)) ? names[i]! : backend, count: 1 }] })
        cells.push({ probe: 'http', target: 'https://example.com/health', ...ok }, { probe: 'tcp', target: 'example.com:443', ...ok })
      }
      if (slow) {
        cells.push(bad ? { probe: 'mtu', target: `${names[t]!}/8500`, count: 1, latency: [], errors: timeout } : { probe: 'mtu', target: `${names[t]!}/8500`, count: 1, latency })
        cells.push({ probe: 'udp', target: names[t]!, count: 1, latency: bad ? [] : latency, sent: 5, lost: bad ? 5 : 0, ...(bad ? { errors: [{ reason: 'UDP_NO_ECHO' as const, raw: 'TIMEOUT', count: 1 }] } : {}) })
      }
    }
    return cells
  }
  let fast: Cell[][] = names.map((_, i) => cellsOf(i, false))
  let withSlow: Cell[][] = names.map((_, i) => cellsOf(i, true))
  const reports = SLOW_PROBE_WINDOW_MS / INTERVAL
  const t0 = performance.now()
  for (let seq = 1; seq <= reports; seq++) {
    clock += INTERVAL
    store.advance(clock)
    groups.advance(clock)
    for (const [i, node] of names.entries()) {
      const entry = roster.get(node)!
      // mtu and udp every sixth report (30 s), staggered over the agents as the scheduler spreads them.
      const slow = (seq + i) % 6 === 0
      if (roster.accept(node, entry.bootId, seq, clock)) ingest.apply(entry, { type: 'report', v: 1, seq, start: clock - INTERVAL, end: clock, cells: slow ? withSlow[i]! : fast[i]! } as never)
    }
  }
  const loadSeconds = (performance.now() - t0) / 1000
  // The reports' millions of cell objects are the generator's, not the aggregator's: drop them, so
  // collecting them is not charged to the evaluations (run with --expose-gc to collect them now).
  fast = withSlow = []
  ;(globalThis as { gc?: () => void }).gc?.()
  const sources = { nodes: store, groups, fleet, health }
  const time = (fn: () => unknown): { ms: number, cpuMs: number } => {
    for (let i = 0; i < 3; i++) fn()
    const wall: number[] = []
    const cpu: number[] = []
    for (let i = 0; i < reps; i++) {
      const c0 = process.cpuUsage()
      const w0 = performance.now()
      fn()
      wall.push(performance.now() - w0)
      const c = process.cpuUsage(c0)
      cpu.push((c.user + c.system) / 1000)
    }
    return { ms: median(wall), cpuMs: median(cpu) }
  }
  const ctx = () => findingsContext(sources, clock, NETWORK_WINDOW_MS, 'cniplugin')
  // --profile <file>: a CPU profile of the timed evaluations only (not of the load).
  const session = profile === undefined ? null : new Session()
  if (session !== null) {
    session.connect()
    await session.post('Profiler.enable')
    await session.post('Profiler.start')
  }
  const c0 = ctx()
  const read = time(() => readNetworkInput(sources, c0))
  const input = readNetworkInput(sources, c0)
  const judge = time(() => networkFindings(c0, input))
  const dnsRead = time(() => readDnsServiceInput(sources, c0))
  const dnsInput = readDnsServiceInput(sources, c0)
  const dnsJudge = time(() => dnsServiceFindings(c0, dnsInput, new Set()))
  const network = time(() => { const c = ctx(); return networkFindings(c, readNetworkInput(sources, c)) })
  const evaluate = time(() => evaluateFindings(ctx(), sources))
  const found = evaluateFindings(ctx(), sources).map(d => `${d.kind} ${d.subject.id}`)
  if (session !== null) {
    const { profile: p } = await session.post('Profiler.stop')
    writeFileSync(profile!, JSON.stringify(p))
    session.disconnect()
  }
  // Steady state: one more interval of reports (generated again, then dropped), then one evaluation.
  const fresh: number[] = []
  for (let seq = reports + 1; seq <= reports + 5; seq++) {
    clock += INTERVAL
    store.advance(clock)
    groups.advance(clock)
    for (const [i, node] of names.entries()) {
      const entry = roster.get(node)!
      if (roster.accept(node, entry.bootId, seq, clock)) ingest.apply(entry, { type: 'report', v: 1, seq, start: clock - INTERVAL, end: clock, cells: cellsOf(i, (seq + i) % 6 === 0) } as never)
    }
    ;(globalThis as { gc?: () => void }).gc?.()
    const c0 = process.cpuUsage()
    evaluateFindings(ctx(), sources)
    const c = process.cpuUsage(c0)
    fresh.push((c.user + c.system) / 1000)
  }
  return { nodes, scenario, reps, loadSeconds, readCpuMs: read.cpuMs, judgeCpuMs: judge.cpuMs, dnsReadCpuMs: dnsRead.cpuMs, dnsJudgeCpuMs: dnsJudge.cpuMs, networkMs: network.ms, networkCpuMs: network.cpuMs, evaluateMs: evaluate.ms, evaluateCpuMs: evaluate.cpuMs, freshEvaluateCpuMs: median(fresh), found }
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === import.meta.filename) {
  const { values: a } = parseArgs({ options: { nodes: { type: 'string', default: '1000' }, scenario: { type: 'string', default: 'healthy' }, reps: { type: 'string', default: '20' }, profile: { type: 'string' } } })
  process.stdout.write(JSON.stringify(await findingsBench(Number(a.nodes), a.scenario as FindingsScenario, Number(a.reps), a.profile)) + '\n')
}
