// The node store alone holding a 1,000-node full mesh for 15 minutes, in process: its bytes and this
// process's RSS, for A/B of store layouts when the whole mesh (`run.ts --only mesh`: websockets, JSON,
// ingest, another process) cannot keep up with its clock on a loaded machine. `node --expose-gc
// bench/store-mesh.ts <checkout> [nodes=1000] [minutes=15]` loads <checkout>'s store. Each 5 s
// interval every node files one report of `nodes` pod cells (count 1, latency around 1 ms, connect
// and firstByte as fleet-sim draws them, 4 variants per node), the store advancing each interval as
// the aggregator's tick does. Run it with MALLOC_MMAP_THRESHOLD_=131072, the image's setting. Prints one JSON line.

import { readFileSync } from 'node:fs'

const root = process.argv[2] ?? '.'
const nodes = Number(process.argv[3] ?? 1000)
const minutes = Number(process.argv[4] ?? 15)
const { bucketIndex } = await import(`${root}/protocol/src/histogram.ts`)
const { defaultTiers, NODE_TIERS, Store } = await import(`${root}/aggregator/src/store/store.ts`)

const memory = (): { rss: number, peak: number } => {
  const status = readFileSync('/proc/self/status', 'utf8')
  const kb = (key: string): number => Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? 0) * 1024
  return { rss: kb('VmRSS'), peak: kb('VmHWM') }
}
const INTERVAL = 5000
const start = Date.UTC(2026, 10, 29, 12)
let now = start
const store = new Store(defaultTiers(INTERVAL, minutes * 60_000, NODE_TIERS), () => now)
const name = (i: number): string => `node-${String(i).padStart(4, '0')}`
const ids = Array.from({ length: nodes }, (_, src) => Int32Array.from({ length: nodes }, (_, t) => store.cellId(name(src), 'pod', name(t))))
// One reusable report: the harness's own memory stays small beside the store's.
const cells = Array.from({ length: nodes }, () => ({ count: 1, latency: [0, 1], phases: { connect: [0, 1], firstByte: [0, 1] } }))
/** fleet-sim's draw for (agent, variant): the same latencies and phases it sends. */
const fill = (agent: number, variant: number): void => {
  let seed = (agent * 7919 + variant * 104729) >>> 0
  const rand = (): number => {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0
    return seed / 2 ** 32
  }
  for (const cell of cells) {
    const seconds = 0.001 * Math.exp((rand() + rand() + rand() - 1.5) * 0.6)
    const connect = seconds * (0.3 + 0.2 * rand())
    cell.latency[0] = bucketIndex(seconds)
    cell.phases.connect[0] = bucketIndex(connect)
    cell.phases.firstByte[0] = bucketIndex(seconds - connect)
  }
}
const t0 = performance.now()
let peakStore = 0
for (let seq = 1; seq <= minutes * 12; seq++) {
  now = start + seq * INTERVAL
  store.advance(now)
  for (let agent = 0; agent < nodes; agent++) {
    fill(agent, seq % 4)
    store.write(now - 1, ids[agent]!, cells)
  }
  peakStore = Math.max(peakStore, store.stats().bytes)
}
const loadMs = performance.now() - t0
// Let closed slots pack, as the aggregator's ticks do after the last report.
for (let s = 1; s <= 5; s++) { now += 1000; store.advance(now) }
const loaded = memory()
globalThis.gc?.()
const settled = memory()
const stats = store.stats()
console.log(JSON.stringify({
  root, nodes, minutes, cells: stats.cells, slots: stats.slots, loadMs: Math.round(loadMs),
  storeBytes: stats.bytes, peakStoreBytes: peakStore, rssLoadedBytes: loaded.rss, rssAfterGcBytes: settled.rss, peakRssBytes: settled.peak,
  heapUsedBytes: process.memoryUsage().heapUsed, arrayBuffersBytes: process.memoryUsage().arrayBuffers
}))
