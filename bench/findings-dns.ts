// DNS, Service and egress findings at N nodes (default 1,000), full pod mesh: a real node store filled
// with a minute of 5 s reports, then readDnsServiceInput + dnsServiceFindings timed in-process, healthy
// and with faults on every path (a group's DNS, a resolver's AAAA, a wrong Service backend, a group's egress).
// Run: node bench/findings-dns.ts [--nodes 1000] [--reps 50]. Prints JSON; figures go in BENCHMARKS.md.

import { parseArgs } from 'node:util'
import { bucketIndex, type ProbeKind } from '@pingfleet/protocol'
import { dnsServiceFindings, readDnsServiceInput } from '../aggregator/src/findings/dns-service.ts'
import type { FindingsContext, FindingsSources } from '../aggregator/src/findings/input.ts'
import type { CellInput } from '../aggregator/src/store/cell-sum.ts'
import { defaultTiers, Store } from '../aggregator/src/store/store.ts'
import { median, percentile } from './proc.ts'

const { values: args } = parseArgs({ options: { nodes: { type: 'string', default: '1000' }, reps: { type: 'string', default: '50' } } })
const N = Number(args.nodes)
const REPS = Number(args.reps)
const INTERVAL = 5000
const AT = Date.UTC(2026, 10, 29, 10, 0, 0)
const ms = bucketIndex(0.002)

function build (faulty: boolean): { store: Store, ctx: FindingsContext } {
  const names = Array.from({ length: N }, (_, i) => `node-${String(i).padStart(4, '0')}`)
  const group = (i: number): string => i < N / 2 ? 'aws' : 'cilium'
  const ctx: FindingsContext = { at: AT, windowMs: 60_000, groupLabel: 'cniplugin', nodes: names.map((name, i) => ({ name, group: group(i), connected: true, podReady: true, degraded: null })) }
  const store = new Store(defaultTiers(INTERVAL, 15 * 60_000), () => AT)
  store.advance(AT - 60_000)
  const ok: CellInput = { count: 1, latency: [ms, 1] }
  const failed = (reason: string, raw: string): CellInput => ({ count: 1, latency: [], errors: [{ reason, raw, count: 1 }] })
  for (let k = 0; k < 12; k++) {
    const at = AT - 57_500 + k * INTERVAL
    store.advance(at)
    for (let i = 0; i < N; i++) {
      const src = names[i]!
      const cilium = group(i) === 'cilium'
      const ids: number[] = []
      const cells: CellInput[] = []
      const add = (probe: ProbeKind, target: string, cell: CellInput): void => { ids.push(store.cellId(src, probe, target)); cells.push(cell) }
      for (let j = 0; j < N; j++) if (j !== i) add('pod', names[j]!, ok)
      add('dns-lookup', 'kubernetes.default@getaddrinfo', ok)
      add('dns-lookup', 'kubernetes.default.svc.cluster.local.@getaddrinfo', ok)
      add('dns-lookup', 'db.example.@getaddrinfo', faulty && cilium ? failed('ENOTFOUND', 'EAI_NONAME') : ok)
      for (const name of ['kubernetes.default.svc.cluster.local', 'db.example']) {
        add('dns-wire', `${name}@10.96.0.10:53/A`, ok)
        add('dns-wire', `${name}@10.96.0.10:53/AAAA`, faulty ? failed('SERVFAIL', 'SERVFAIL') : ok)
      }
      const backend = names[(i * 12 + k) * 7919 % N]!
      const wrong = faulty && (i + k) % 6 === 0
      for (const service of ['10.96.0.20:8081', 'pingfleet-agent:8081']) add('service', service, wrong ? failed('ECONNREFUSED', 'ECONNREFUSED') : { ...ok, backends: [{ node: backend, count: 1 }] })
      add('http', 'https://example.com/health', faulty && cilium ? failed('CONNECT_TIMEOUT', 'TIMEOUT') : ok)
      add('tcp', 'example.com:443', faulty && cilium ? failed('CONNECT_TIMEOUT', 'TIMEOUT') : ok)
      store.write(at, ids, cells)
    }
  }
  store.advance(AT)
  return { store, ctx }
}

const out: Record<string, unknown> = { nodes: N, reps: REPS, cellsPerNode: N - 1 + 11 }
for (const faulty of [false, true]) {
  const built = Date.now()
  const { store, ctx } = build(faulty)
  const buildMs = Date.now() - built
  const sources = { nodes: store } as unknown as FindingsSources
  const read: number[] = []
  const evaluate: number[] = []
  // CPU time too: on a shared machine, wall time includes waiting for a core.
  const readCpu: number[] = []
  const evaluateCpu: number[] = []
  let found: string[] = []
  for (let r = 0; r < REPS + 5; r++) {
    const c0 = process.cpuUsage()
    const t0 = performance.now()
    const input = readDnsServiceInput(sources, ctx)
    const t1 = performance.now()
    const c1 = process.cpuUsage()
    const detections = dnsServiceFindings(ctx, input, new Set())
    const t2 = performance.now()
    const c2 = process.cpuUsage()
    if (r < 5) continue // warm-up
    read.push(t1 - t0)
    evaluate.push(t2 - t1)
    readCpu.push((c1.user + c1.system - c0.user - c0.system) / 1000)
    evaluateCpu.push((c2.user + c2.system - c1.user - c1.system) / 1000)
    found = detections.map(d => `${d.kind} ${d.subject.id}`)
  }
  out[faulty ? 'faulty' : 'healthy'] = {
    buildMs,
    readMedianMs: +median(read).toFixed(2),
    readP95Ms: +percentile(read, 95).toFixed(2),
    evaluateMedianMs: +median(evaluate).toFixed(2),
    evaluateP95Ms: +percentile(evaluate, 95).toFixed(2),
    readCpuMedianMs: +median(readCpu).toFixed(2),
    evaluateCpuMedianMs: +median(evaluateCpu).toFixed(2),
    found
  }
}
console.log(JSON.stringify(out, null, 2))
