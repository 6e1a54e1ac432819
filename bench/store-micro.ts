// In-process A/B of the store's hot paths, by CPU time of this process: Ingest.apply per report and
// buildMatrix (node × node, by group from the node store, one row) over a 1m window of a full mesh.
// `node bench/store-micro.ts <checkout> [nodes=500] [reports=16]` loads the modules of <checkout>
// (with its node_modules), so two checkouts run alternately compare old and new code without
// websockets, JSON or another process in the way. Prints one JSON line.

const root = process.argv[2] ?? '.'
const nodes = Number(process.argv[3] ?? 500)
const reports = Number(process.argv[4] ?? 16)
const { bucketIndex } = await import(`${root}/protocol/src/histogram.ts`)
const { Ingest } = await import(`${root}/aggregator/src/store/ingest.ts`)
const { Roster } = await import(`${root}/aggregator/src/fleet/roster.ts`)
const { defaultTiers, GROUP_TIERS, NODE_TIERS, Store } = await import(`${root}/aggregator/src/store/store.ts`)
const { Totals } = await import(`${root}/aggregator/src/store/totals.ts`)
const { buildMatrix } = await import(`${root}/aggregator/src/views/matrix.ts`)
// The fleet model replaced Ingest's roster and groupLabel options during issue 10; take whichever exists.
const fleetModule = await import(`${root}/aggregator/src/fleet/fleet.ts`).catch(() => null)

const INTERVAL = 5000
let clock = Date.UTC(2026, 10, 29, 12)
const store = new Store(defaultTiers(INTERVAL, 15 * 60_000, NODE_TIERS), () => clock)
const groups = new Store(defaultTiers(INTERVAL, 15 * 60_000, GROUP_TIERS), () => clock)
const roster = new Roster(10 * 60_000)
const fleet = fleetModule === null ? null : new fleetModule.Fleet({ roster, groupLabel: 'cniplugin' })
const ingest = fleet === null
  ? new Ingest({ nodes: store, groups, totals: new Totals(), roster, groupLabel: 'cniplugin' })
  : new Ingest({ nodes: store, groups, totals: new Totals(), fleet })
const names = Array.from({ length: nodes }, (_, i) => `node-${String(i).padStart(4, '0')}`)
for (const [i, node] of names.entries()) {
  roster.join({ type: 'hello', v: 1, node, pod: `a-${i}`, podIp: '127.0.0.1', port: 8081, labels: { cniplugin: i % 2 === 0 ? 'cilium' : 'aws' }, version: 'b', bootId: `b-${i}` } as never, clock)
}
// Latencies around 1 ms; every 50th cell a slow connect, every 97th a failure: several cell shapes, as in a fleet.
const cellsOf = names.map((self, i) => names.filter(n => n !== self).map((target, t) => ({
  probe: 'pod', target, count: 1, latency: [bucketIndex(0.001 * (1 + ((i + t) % 7) / 10)), 1],
  ...((i + t) % 50 === 0 ? { slowConnects: 1 } : {}),
  ...((i + t) % 97 === 0 ? { errors: [{ reason: 'ECONNREFUSED', raw: 'ECONNREFUSED', count: 1 }] } : {})
})))
const cpuMs = (): number => {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1000
}
let applyMs = 0
for (let seq = 1; seq <= reports; seq++) {
  clock += INTERVAL
  store.advance(clock)
  groups.advance(clock)
  const c0 = cpuMs()
  for (const [i, node] of names.entries()) {
    const entry = roster.get(node)!
    if (roster.accept(node, entry.bootId, seq, clock)) ingest.apply(entry, { type: 'report', v: 1, seq, start: clock - INTERVAL, end: clock, cells: cellsOf[i]! } as never)
  }
  // The first two reports resolve every cell (JIT warm-up, layouts); the rest are the steady state.
  if (seq > 2) applyMs += cpuMs() - c0
}
const medianOf = (reps: number, run: () => void): number => {
  const times: number[] = []
  for (let r = 0; r < reps; r++) {
    const c0 = cpuMs()
    run()
    times.push(cpuMs() - c0)
  }
  return times.sort((a, b) => a - b)[Math.floor(reps / 2)]!
}
const groupOf = (n: string): string => roster.get(n)?.labels.cniplugin ?? '(none)'
const matrix = (extra: object) => (): void => { buildMatrix(store, { probe: 'pod', windowMs: 60_000, now: clock, ...extra }) }
console.log(JSON.stringify({
  root,
  applyUsPerReport: Number((applyMs * 1000 / ((reports - 2) * nodes)).toFixed(1)),
  nodeMatrixMs: Number(medianOf(7, matrix({})).toFixed(1)),
  groupMatrixFromNodesMs: Number(medianOf(7, matrix({ rowOf: groupOf, colOf: groupOf })).toFixed(1)),
  rowMs: Number((medianOf(9, () => { for (let k = 0; k < 20; k++) matrix({ rowOf: (n: string) => n === names[7] ? n : null })() }) / 20).toFixed(2))
}))
