// npm run bench: aggregator ingest over real websockets, memory of a 15-minute 1,000-node mesh,
// and matrix query times. The aggregator runs as its own process so its CPU and RSS are its own.
// Flags: --quick (smaller runs), --only <name,…>, --nodes N (mesh and gate-nodes size), --base <dir>
// (A/B: the aggregator scenarios also run another checkout's aggregator, alternating with this one's;
// the agent scenario runs another checkout's agent instead, alternating), --no-phases (simulated
// agents send no per-phase latency, as agents do to an aggregator without feature `phases`).
// Results: bench/results/latest.json, BENCHMARKS.md.

import { spawn, type ChildProcess } from 'node:child_process'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { bucketIndex } from '@pingfleet/protocol'
import { defaultTiers, GROUP_TIERS, NODE_TIERS, Store } from '../aggregator/src/store/store.ts'
import { registerPeers, startPeers } from './agent-load.ts'
import { runFleet } from './fleet-sim.ts'
import { findingsBench } from './findings.ts'
import type { GateBenchResult } from './gate-nodes.ts'
import { cpuSeconds, median, percentile, rss } from './proc.ts'

const { values: args } = parseArgs({ options: { quick: { type: 'boolean', default: false }, only: { type: 'string' }, nodes: { type: 'string' }, rounds: { type: 'string' }, base: { type: 'string' }, 'no-phases': { type: 'boolean', default: false } } })
const TOKEN = 'bench-token-0123456789'
const results: Record<string, unknown> = {}

interface Server { child: ChildProcess, url: string }

/**
 * Whose aggregator a scenario runs: this checkout's, or with --base the other checkout's (its own
 * node_modules), whose results get the suffix `-base`. The load generator is this checkout's in both.
 */
interface Tree { suffix: string, cwd: string | undefined }
const THIS_TREE: Tree = { suffix: '', cwd: undefined }
const trees: Tree[] = args.base === undefined ? [THIS_TREE] : [THIS_TREE, { suffix: '-base', cwd: resolve(args.base) }]
/** Both trees once per round, the order flipped every other round so drift in the machine's load cancels. */
const alternate = (round: number): Tree[] => round % 2 === 0 ? trees : [...trees].reverse()

async function startAggregator (port: number, env: Record<string, string> = {}, nodeArgs: string[] = [], tree: Tree = THIS_TREE): Promise<Server> {
  const child = spawn(process.execPath, [...nodeArgs, 'aggregator/src/main.ts'], {
    cwd: tree.cwd,
    // The image's malloc setting (see Dockerfile), so the bench measures what is deployed.
    env: { ...process.env, MALLOC_MMAP_THRESHOLD_: '131072', PINGFLEET_LISTEN: `127.0.0.1:${port}`, PINGFLEET_TOKEN: TOKEN, PINGFLEET_LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'ignore', 'inherit']
  })
  const url = `http://127.0.0.1:${port}`
  for (let i = 0; i < 100; i++) {
    try {
      if ((await fetch(`${url}/healthz`)).ok) return { child, url }
    } catch {}
    await new Promise(resolve => setTimeout(resolve, 100))
  }
  throw new Error('aggregator did not start')
}

async function stop (server: Server): Promise<void> {
  server.child.kill('SIGTERM')
  await new Promise(resolve => server.child.once('exit', resolve))
}

/**
 * GETs `url` `reps` times: the median wall time per request (client side) and, with `pid`, the mean
 * CPU time per request of that process (the server), which a busy shared machine disturbs less.
 */
async function timeGet (url: string, reps: number, pid?: number): Promise<{ medianMs: number, cpuMs: number, bytes: number }> {
  const times: number[] = []
  let bytes = 0
  const cpu0 = pid === undefined ? 0 : cpuSeconds(pid)
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now()
    const body = await (await fetch(url)).arrayBuffer()
    times.push(performance.now() - t0)
    bytes = body.byteLength
  }
  const cpuMs = pid === undefined ? NaN : (cpuSeconds(pid) - cpu0) * 1000 / reps
  return { medianMs: median(times), cpuMs, bytes }
}

function fmt (n: number, digits = 0): string {
  return n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })
}

async function ingest (name: string, agents: number, targets: number, reports: number, rounds: number): Promise<void> {
  const rates = new Map<Tree, number[]>(trees.map(tree => [tree, []]))
  const acks = new Map<Tree, number[]>(trees.map(tree => [tree, []]))
  const peaks = new Map<Tree, number>(trees.map(tree => [tree, 0]))
  for (let round = 0; round < rounds; round++) {
    for (const tree of alternate(round)) {
      const server = await startAggregator(18100 + round, {}, [], tree)
      const pid = server.child.pid!
      const cpu0 = cpuSeconds(pid)
      const now = Date.now()
      const sim = await runFleet({ url: server.url, token: TOKEN, agents, targets, reports, inFlight: 2, from: now - 60_000, to: now, phases: !args['no-phases'] })
      const cpu = cpuSeconds(pid) - cpu0
      rates.get(tree)!.push(sim.cells / cpu)
      acks.get(tree)!.push(...sim.ackLatencyMs)
      peaks.set(tree, Math.max(peaks.get(tree)!, rss(pid).peak))
      console.log(`  ${name}${tree.suffix} round ${round + 1}: ${fmt(sim.cells)} cells in ${fmt(sim.wallMs / 1000, 1)} s wall, ${fmt(cpu, 2)} s aggregator CPU → ${fmt(sim.cells / cpu)} cells/CPU-s`)
      await stop(server)
    }
  }
  for (const tree of trees) {
    const r = rates.get(tree)!
    const a = acks.get(tree)!
    const peak = peaks.get(tree)!
    results[name + tree.suffix] = {
      agents, targets, reportsPerAgent: reports, rounds,
      cellsPerCpuSecondMedian: Math.round(median(r)),
      cellsPerCpuSecond: r.map(Math.round),
      ackLatencyMs: { p50: median(a), p99: percentile(a, 0.99) },
      peakRssBytes: peak
    }
    console.log(`${name}${tree.suffix}: median ${fmt(median(r))} cells per aggregator CPU-second; ack p50 ${fmt(median(a), 1)} ms, p99 ${fmt(percentile(a, 0.99), 1)} ms; peak RSS ${fmt(peak / 2 ** 20)} MiB`)
  }
}

/**
 * A full mesh holding a whole window. The aggregator runs on a bench clock at `speed` times real
 * time, so `minutes` of 5 s reports load in minutes / speed; each report is sent once the bench
 * clock reaches its end time (later, if the load falls behind), as a live fleet would send it.
 */
async function mesh (nodes: number, minutes: number, speed: number, tree: Tree = THIS_TREE): Promise<void> {
  const real0 = Date.now() + 2000
  const start = real0 - minutes * 60_000
  const reports = minutes * 12
  const endOf = (seq: number): number => start + seq * 5000
  // The clock stops a second after the last report's end: the queries below then read the window
  // as loading left it, however long they take (a 1m window would otherwise drift past the data).
  const clockEnv = { BENCH_CLOCK_START: String(start), BENCH_CLOCK_SPEED: String(speed), BENCH_CLOCK_REAL0: String(real0), BENCH_CLOCK_STOP: String(endOf(reports) + 1000) }
  // The full node × node answer is measured too, so the matrix size limit is lifted here.
  const server = await startAggregator(18200, { PINGFLEET_MAX_WINDOW: `${minutes}m`, PINGFLEET_MAX_MATRIX_CELLS: String(nodes * nodes + 1), ...clockEnv }, ['--import', './bench/clock-preload.ts'], tree)
  const pid = server.child.pid!
  const t0 = performance.now()
  const cpu0 = cpuSeconds(pid)
  let peakDuringLoad = 0
  const sampler = setInterval(() => { peakDuringLoad = Math.max(peakDuringLoad, rss(pid).now) }, 1000)
  const sim = await runFleet({
    url: server.url, token: TOKEN, agents: nodes, targets: nodes, reports, inFlight: 2,
    from: endOf(1), to: endOf(reports), phases: !args['no-phases'],
    notBefore: seq => real0 + (endOf(seq) - start) / speed
  })
  clearInterval(sampler)
  const loadSeconds = (performance.now() - t0) / 1000
  // CPU spent ingesting `minutes` of the fleet's reports: the steady-state cost at real time.
  const steadyMilliCpu = (cpuSeconds(pid) - cpu0) / (minutes * 60) * 1000
  const simNow = start + (Date.now() - real0) * speed
  const lagSeconds = (simNow - endOf(reports)) / 1000
  console.log(`  mesh ${nodes}${tree.suffix}: ${fmt(sim.cells)} cells (${minutes} min of 5 s reports) loaded in ${fmt(loadSeconds, 1)} s; bench clock ${fmt(lagSeconds, 1)} s past the last report (it stops 1 s past it); ` +
    `${fmt(steadyMilliCpu)} mCPU at real time`)
  // Holding the window: let the store fold and pack its slots (it ticks every real second); RSS
  // moves while dead buffers wait for a GC, so sample it for a while and keep the median. Queries
  // come after, and their transient memory shows in the peak.
  const settled: number[] = []
  for (let i = 0; i < 10; i++) {
    await new Promise(resolve => setTimeout(resolve, 1000))
    settled.push(rss(pid).now)
  }
  const memory = { now: median(settled), peak: rss(pid).peak }
  const window = `${minutes}m`
  const q = (query: string, reps: number): Promise<{ medianMs: number, cpuMs: number, bytes: number }> => timeGet(`${server.url}/api/v1/matrix?probe=pod&${query}`, reps, pid)
  const nodeMatrix = await q(`groupBy=node&window=${window}`, 3)
  const nodeMatrix1m = await q('groupBy=node&window=1m', 3)
  const nodeRow = await q('groupBy=node&window=1m&src=node-0007', 10)
  const failing = await q('groupBy=node&window=1m&failing=true', 5)
  const groupMatrix = await q(`groupBy=cniplugin&window=${window}`, 20)
  const groupMatrix1m = await q('groupBy=cniplugin&window=1m', 20)
  const peakWithQueries = rss(pid).peak
  const metricsText = await (await fetch(`${server.url}/metrics`)).text()
  const storeBytes = Number(/^pingfleet_ingest_store_bytes\{store="node"\} (\d+)/m.exec(metricsText)?.[1] ?? NaN)
  const groupStoreBytes = Number(/^pingfleet_ingest_store_bytes\{store="group"\} (\d+)/m.exec(metricsText)?.[1] ?? NaN)
  results[`mesh-${nodes}${tree.suffix}`] = {
    nodes, minutes, cells: sim.cells, clockSpeed: speed, loadSeconds, lagSeconds, steadyMilliCpu,
    rssBytes: memory.now, peakRssBytes: memory.peak, peakRssDuringLoadBytes: peakDuringLoad, peakRssWithQueriesBytes: peakWithQueries, storeBytes, groupStoreBytes,
    nodeMatrixMs: nodeMatrix.medianMs, nodeMatrixBytes: nodeMatrix.bytes,
    nodeMatrix1mMs: nodeMatrix1m.medianMs, nodeMatrix1mBytes: nodeMatrix1m.bytes,
    nodeRow1mMs: nodeRow.medianMs, failing1mMs: failing.medianMs,
    groupMatrixMs: groupMatrix.medianMs, groupMatrix1mMs: groupMatrix1m.medianMs,
    // The aggregator's CPU per request (mean), the steadier figure for comparing code on a busy machine.
    nodeMatrixCpuMs: nodeMatrix.cpuMs, nodeMatrix1mCpuMs: nodeMatrix1m.cpuMs, nodeRow1mCpuMs: nodeRow.cpuMs, failing1mCpuMs: failing.cpuMs
  }
  console.log(`mesh-${nodes}${tree.suffix}: RSS ${fmt(memory.now / 2 ** 20)} MiB median over 10 s (peak ${fmt(memory.peak / 2 ** 20)} MiB; ${fmt(peakWithQueries / 2 ** 20)} MiB once the full node matrix was served), node store ${fmt(storeBytes / 2 ** 20)} MiB, group store ${fmt(groupStoreBytes / 2 ** 10)} KiB, holding ${minutes} min\n` +
    `  node×node matrix: ${window} ${fmt(nodeMatrix.medianMs)} ms (${fmt(nodeMatrix.bytes / 2 ** 20, 1)} MiB), 1m ${fmt(nodeMatrix1m.medianMs)} ms (${fmt(nodeMatrix1m.bytes / 2 ** 20, 1)} MiB)\n` +
    `  one row (src=) 1m ${fmt(nodeRow.medianMs, 1)} ms; failing cells only 1m ${fmt(failing.medianMs, 1)} ms\n` +
    `  group matrix: ${window} ${fmt(groupMatrix.medianMs, 2)} ms, 1m ${fmt(groupMatrix1m.medianMs, 2)} ms\n` +
    `  aggregator CPU per request: node×node ${window} ${fmt(nodeMatrix.cpuMs)} ms, 1m ${fmt(nodeMatrix1m.cpuMs)} ms; one row ${fmt(nodeRow.cpuMs, 1)} ms; failing only ${fmt(failing.cpuMs, 1)} ms`)
  await stop(server)
}

/** The agent's NODE_OPTIONS as the chart sets them. */
function chartNodeOptions (): string {
  const daemonSet = readFileSync('charts/pingfleet/templates/agent-daemonset.yaml', 'utf8')
  return /- name: NODE_OPTIONS\n\s+value: "([^"]*)"/.exec(daemonSet)?.[1] ?? ''
}

/**
 * One real agent probing `peers` stand-ins every 5 s: its CPU (mCPU) and memory at steady state.
 * `variant` names the run and `env` adds agent settings (e.g. udp probes off). `tree` is whose agent
 * runs (with --base, the other checkout's); the aggregator and the stand-ins are this checkout's.
 */
async function agentLoad (peers: number, measureSeconds: number, variant = '', env: Record<string, string> = {}, tree: Tree = THIS_TREE): Promise<{ mCpu: number, medianRssBytes: number }> {
  const server = await startAggregator(18300, { PINGFLEET_INTERVAL: '5s', PINGFLEET_PEER_TTL: '10m' })
  const peerPort = 18301
  const stands = await startPeers(peers, peerPort)
  const registered = await registerPeers(server.url, TOKEN, peers, peerPort)
  // The agent runs with the chart's NODE_OPTIONS, as in a cluster; AGENT_NODE_OPTIONS replaces them
  // (empty: none) and AGENT_NODE_ARGS adds node flags, both for the agent only, to compare settings.
  const nodeOptions = process.env.AGENT_NODE_OPTIONS ?? chartNodeOptions()
  const nodeArgs = (process.env.AGENT_NODE_ARGS ?? '').split(' ').filter(a => a !== '')
  if (process.env.AGENT_PROF) nodeArgs.push('--cpu-prof', '--cpu-prof-dir=' + process.env.AGENT_PROF)
  const agent = spawn(process.execPath, [...nodeArgs, 'agent/src/main.ts'], {
    cwd: tree.cwd,
    env: {
      ...process.env, PINGFLEET_AGGREGATOR_URL: server.url, PINGFLEET_TOKEN: TOKEN, PINGFLEET_NODE_NAME: 'bench-agent',
      PINGFLEET_POD_IP: '127.0.9.1', PINGFLEET_LISTEN: '127.0.9.1:18302', PINGFLEET_LABELS: 'cniplugin=aws', PINGFLEET_LOG_LEVEL: 'warn',
      PINGFLEET_DNS_NAMES: '', PINGFLEET_DNS_SERVERS: '', PINGFLEET_DNS_WIRE_NAMES: '', NODE_OPTIONS: nodeOptions, ...env
    },
    stdio: ['ignore', 'ignore', 'inherit']
  })
  const pid = agent.pid!
  // Warm up: the roster arrives, the staggered first round passes, the JIT settles.
  await new Promise(resolve => setTimeout(resolve, 20_000))
  const cpu0 = cpuSeconds(pid)
  const samples: number[] = []
  const sampler = setInterval(() => samples.push(rss(pid).now), 1000)
  await new Promise(resolve => setTimeout(resolve, measureSeconds * 1000))
  clearInterval(sampler)
  const cpu = cpuSeconds(pid) - cpu0
  const memory = rss(pid)
  const m = await (await fetch(`${server.url}/api/v1/matrix?probe=pod&groupBy=node&window=1m&src=bench-agent`)).json() as { cells: Array<{ samples: number, errors: number, lagged: number }> }
  const probes = m.cells.reduce((n, c) => n + c.samples, 0)
  const errors = m.cells.reduce((n, c) => n + c.errors, 0)
  const lagged = m.cells.reduce((n, c) => n + c.lagged, 0)
  const udp = await (await fetch(`${server.url}/api/v1/matrix?probe=udp&groupBy=node&window=1m&src=bench-agent`)).json() as { cells: Array<{ samples: number, errors: number, loss?: { sent: number, lost: number } }> }
  const trains = udp.cells.reduce((n, c) => n + c.samples, 0)
  const datagrams = udp.cells.reduce((n, c) => n + (c.loss?.sent ?? 0), 0)
  const lost = udp.cells.reduce((n, c) => n + (c.loss?.lost ?? 0), 0)
  agent.kill('SIGTERM')
  await new Promise(resolve => agent.once('exit', resolve))
  registered.close()
  await stands.close()
  await stop(server)
  const mcpu = cpu / measureSeconds * 1000
  results[`agent-${peers}${variant}${tree.suffix}`] = { udpTrainsLastMinute: trains, udpDatagramsLastMinute: datagrams, udpLostLastMinute: lost, peers, intervalSeconds: 5, measureSeconds, nodeOptions, mCpu: mcpu, rssBytes: memory.now, peakRssBytes: memory.peak, medianRssBytes: median(samples), probesLastMinute: probes, errorsLastMinute: errors, laggedLastMinute: lagged }
  console.log(`agent-${peers}${variant}${tree.suffix}: ${fmt(mcpu, 1)} mCPU over ${measureSeconds} s, RSS ${fmt(median(samples) / 2 ** 20)} MiB median (peak ${fmt(memory.peak / 2 ** 20)} MiB); ` +
    `last minute: ${fmt(probes)} probes, ${fmt(errors)} errors, ${fmt(lagged)} lagged, ${fmt(trains)} udp trains (${fmt(datagrams)} datagrams, ${fmt(lost)} lost); NODE_OPTIONS=${JSON.stringify(nodeOptions)}`)
  return { mCpu: mcpu, medianRssBytes: median(samples) }
}

/**
 * Bytes of one slot of the node store for a `cells`-cell mesh at one probe per cell per interval:
 * an interval slot, a slot of 12 folded intervals (a minute at 5 s) and of 60 (five minutes), the
 * store's own accounting (`Store.stats().bytes`, what `pingfleet_ingest_store_bytes` reports) once
 * only that slot is left and closed. Latencies are drawn as in fleet-sim (around 1 ms, log-normal);
 * `variants` bounds how many distinct draws a cell gets (fleet-sim sends 4 pre-serialised variants;
 * 0: a fresh draw every interval). `phases`: each cell also carries connect and firstByte, as a pod
 * cell from an agent with feature `phases` does, and every tier keeps them (the node store keeps them
 * in its interval slots only, so only `interval` is its figure).
 */
function slotBytes (cells: number, variants: number, phases = false): { interval: number, minute: number, fiveMinutes: number } {
  let seed = 12345
  const rand = (): number => {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0
    return seed / 2 ** 32
  }
  const draw = (): number => bucketIndex(0.001 * Math.exp((rand() + rand() + rand() - 1.5) * 0.6))
  const draws = variants > 0 ? Array.from({ length: variants }, () => Array.from({ length: cells }, draw)) : null
  // A square mesh of `cells` cells (sources × targets), ids in creation order.
  const side = Math.ceil(Math.sqrt(cells))
  /**
   * The bytes once `intervals` 5 s intervals have folded into one slot, which has closed, at time
   * `end`: past the finer tiers' spans (interval slots fold at 5 s of age, minute slots at 60 s).
   */
  const bytesOf = (intervals: number, end: number): number => {
    let now = 0
    const store = new Store([{ width: 5000, span: 5000 }, { width: 60_000, span: 60_000 }, { width: 300_000, span: 3_600_000 }], () => now)
    const ids = Int32Array.from({ length: cells }, (_, c) => store.cellId(`n${Math.floor(c / side)}`, 'pod', `n${c % side}`))
    store.advance(now)
    const input = Array.from({ length: cells }, () => phases ? { count: 1, latency: [0, 1], phases: { connect: [0, 1], firstByte: [0, 1] } } : { count: 1, latency: [0, 1] })
    for (let n = 0; n < intervals; n++) {
      const d = draws?.[n % draws.length]
      for (let c = 0; c < cells; c++) {
        const cell = input[c]!
        cell.latency[0] = d?.[c] ?? draw()
        // The handshake a few buckets (~20-40%) below the total, the first byte just below it.
        if (cell.phases !== undefined) { cell.phases.connect[0] = Math.max(0, cell.latency[0] - 24 - (c % 9)); cell.phases.firstByte[0] = Math.max(0, cell.latency[0] - 8) }
      }
      now = n * 5000
      store.advance(now)
      store.write(now, ids, input)
    }
    store.advance(end)
    if (store.stats().slots !== 1) throw new Error(`${intervals} intervals left ${store.stats().slots} slots`)
    return store.stats().bytes
  }
  return { interval: bytesOf(1, 5000), minute: bytesOf(12, 65_000), fiveMinutes: bytesOf(60, 360_000) }
}

/**
 * Bytes a group store holds after `minutes` of 5 s reports from a full mesh summed into `groups`
 * groups (one pod cell per group pair, one probe per node pair per interval), with a layout's tiers;
 * `Store.stats().bytes`, as `pingfleet_ingest_store_bytes{store="group"}` reports it.
 */
function groupStoreBytes (groups: number, nodesPerGroup: number, minutes: number, tiers: ReturnType<typeof defaultTiers>): number {
  const start = 1_800_000_000_000
  let now = start
  const store = new Store(tiers, () => now)
  const ids = Array.from({ length: groups * groups }, (_, i) => store.cellId(`g${Math.floor(i / groups)}`, 'pod', `g${i % groups}`))
  for (let k = 1; k <= minutes * 12; k++) {
    now = start + k * 5000
    store.advance(now)
    // One report per node, each summed into one cell per destination group, as ingest does.
    for (let src = 0; src < groups; src++) {
      for (let node = 0; node < nodesPerGroup; node++) {
        for (let dst = 0; dst < groups; dst++) store.add(ids[src * groups + dst]!, now, { count: nodesPerGroup, latency: [bucketIndex(0.001) + (node + k) % 4, nodesPerGroup] })
      }
    }
  }
  store.advance(now)
  return store.stats().bytes
}

const quick = args.quick
const only = args.only
const run = (name: string): boolean => only === undefined || only.split(',').includes(name)
if (run('ingest-100')) await ingest('ingest-100', 100, 1000, quick ? 10 : 30, 3)
// --rounds N: more rounds than the default 3, for an A/B run whose differences are near the noise.
if (run('ingest-1000')) await ingest('ingest-1000', 1000, 1000, quick ? 3 : 6, Number(args.rounds ?? 3))
if (run('agent') && args.base !== undefined) {
  // A/B: this checkout's agent and the base's, with their defaults, alternating (the order flipped
  // every other round); the medians over the rounds and their ratio this/base.
  const rounds = Number(args.rounds ?? 3)
  const runs = new Map<Tree, Array<{ mCpu: number, medianRssBytes: number }>>(trees.map(tree => [tree, []]))
  for (let i = 0; i < rounds; i++) {
    for (const tree of alternate(i)) runs.get(tree)!.push(await agentLoad(quick ? 200 : 1000, quick ? 20 : 60, `-${i + 1}`, {}, tree))
  }
  const summary = (tree: Tree) => ({
    mCpu: median(runs.get(tree)!.map(r => r.mCpu)),
    medianRssBytes: median(runs.get(tree)!.map(r => r.medianRssBytes)),
    runs: runs.get(tree)!
  })
  const [now, base] = trees.map(summary) as [ReturnType<typeof summary>, ReturnType<typeof summary>]
  results['agent-ab'] = { rounds, this: now, base, ratio: { mCpu: now.mCpu / base.mCpu, medianRssBytes: now.medianRssBytes / base.medianRssBytes } }
  console.log(`agent A/B over ${rounds} rounds, medians: this ${fmt(now.mCpu, 1)} mCPU, ${fmt(now.medianRssBytes / 2 ** 20)} MiB; ` +
    `base ${fmt(base.mCpu, 1)} mCPU, ${fmt(base.medianRssBytes / 2 ** 20)} MiB; this/base mCPU ${fmt(now.mCpu / base.mCpu, 3)}, RSS ${fmt(now.medianRssBytes / base.medianRssBytes, 3)}`)
} else if (run('agent')) {
  // With udp probes (the default: 5 datagrams per peer every 5 s) and without, alternating in one run.
  const rounds = Number(args.rounds ?? 1)
  for (let i = 0; i < rounds; i++) {
    await agentLoad(quick ? 200 : 1000, quick ? 20 : 60, rounds > 1 ? `-udp-${i + 1}` : '-udp')
    await agentLoad(quick ? 200 : 1000, quick ? 20 : 60, rounds > 1 ? `-no-udp-${i + 1}` : '-no-udp', { PINGFLEET_UDP_COUNT: '0' })
  }
}
if (run('slots')) {
  const cells = quick ? 100_000 : 1_000_000
  for (const variants of [4, 0]) {
    const b = slotBytes(cells, variants)
    const mib = (n: number): string => fmt(n / 2 ** 20, 1)
    results[`slots-${variants}`] = { cells, variants, ...b }
    console.log(`slots, ${fmt(cells)} cells, ${variants === 0 ? 'a fresh latency draw per interval' : `${variants} latency variants per cell`}: interval slot ${mib(b.interval)} MiB, 12 intervals ${mib(b.minute)} MiB, 60 intervals ${mib(b.fiveMinutes)} MiB`)
    const p = slotBytes(cells, variants, true)
    results[`slots-${variants}-phases`] = { cells, variants, phases: ['connect', 'firstByte'], ...p }
    console.log(`  the same with connect and firstByte phases in every slot: interval slot ${mib(p.interval)} MiB, 12 intervals ${mib(p.minute)} MiB, 60 intervals ${mib(p.fiveMinutes)} MiB`)
  }
}
if (run('group-store')) {
  // The only layout change of exact windows (issue 11): the group store keeps interval slots for 5 minutes.
  for (const groups of [2, 10, 50]) {
    const nodesPerGroup = Math.max(1, Math.floor(1000 / groups))
    const before = groupStoreBytes(groups, nodesPerGroup, 15, defaultTiers(5000, 15 * 60_000, NODE_TIERS))
    const after = groupStoreBytes(groups, nodesPerGroup, 15, defaultTiers(5000, 15 * 60_000, GROUP_TIERS))
    results[`group-store-${groups}`] = { groups, nodesPerGroup, minutes: 15, beforeBytes: before, afterBytes: after }
    console.log(`group store, ${groups} groups of ${nodesPerGroup} nodes, 15 min of 5 s reports: node-store tiers ${fmt(before / 2 ** 10)} KiB, group tiers ${fmt(after / 2 ** 10)} KiB`)
  }
}
if (run('mesh')) for (const tree of trees) await mesh(args.nodes !== undefined ? Number(args.nodes) : quick ? 300 : 1000, 15, quick ? 4 : 2, tree)
if (run('metrics')) {
  // Time and size to render /metrics at 1,000 nodes (full mesh, 2 groups): the median of repeated
  // scrapes after a warm-up. Targets: ≤ 50 ms and ≤ 30,000 series (docs/metrics.md). --rounds N
  // repeats it with a fresh aggregator (alternating with --base's); the median of the rounds is kept.
  const nodes = 1000
  const rounds = Number(args.rounds ?? 1)
  const renders = new Map<Tree, number[]>(trees.map(tree => [tree, []]))
  const cpus = new Map<Tree, number[]>(trees.map(tree => [tree, []]))
  for (let round = 0; round < rounds; round++) {
    for (const tree of alternate(round)) {
      const server = await startAggregator(18400, {}, [], tree)
      const now = Date.now()
      await runFleet({ url: server.url, token: TOKEN, agents: nodes, targets: nodes, reports: quick ? 1 : 3, inFlight: 1, from: now - 10_000, to: now })
      const url = `${server.url}/metrics`
      const series = (await (await fetch(url)).text()).split('\n').filter(line => line !== '' && !line.startsWith('#')).length
      const scrape = await timeGet(url, quick ? 10 : 30, server.child.pid)
      renders.get(tree)!.push(scrape.medianMs)
      cpus.get(tree)!.push(scrape.cpuMs)
      const ms = renders.get(tree)!
      results['metrics-1000' + tree.suffix] = { nodes, series, bytes: scrape.bytes, renderMsMedian: median(ms), renderMsByRound: ms, renderCpuMsMedian: median(cpus.get(tree)!), targets: { maxMs: 50, maxSeries: 30_000 } }
      console.log(`metrics-1000${tree.suffix}: ${fmt(series)} series (target ≤ 30,000), ${fmt(scrape.bytes / 1024)} KiB, median ${fmt(scrape.medianMs, 1)} ms per scrape (target ≤ 50 ms), aggregator CPU ${fmt(scrape.cpuMs, 1)} ms per scrape`)
      await stop(server)
    }
  }
}

if (run('gate-nodes')) {
  // A node-scoped gate over 50 of 1,000 nodes of a full mesh holding 5 minutes (target ≤ 20 ms).
  // Each tree in its own process (bench/gate-nodes.ts as a script), alternating per round.
  const nodes = args.nodes !== undefined ? Number(args.nodes) : quick ? 300 : 1000
  const rounds = args.rounds !== undefined ? Number(args.rounds) : 1
  const runs = new Map<Tree, GateBenchResult[]>(trees.map(tree => [tree, []]))
  for (let round = 0; round < rounds; round++) {
    for (const tree of alternate(round)) {
      const child = spawn(process.execPath, ['bench/gate-nodes.ts', '--root', tree.cwd ?? '.', '--nodes', String(nodes), '--every', String(Math.max(1, Math.round(nodes / 50))), '--reps', String(quick ? 10 : 30)], { stdio: ['ignore', 'pipe', 'inherit'] })
      let out = ''
      child.stdout.on('data', (chunk: Buffer) => { out += chunk.toString() })
      const code = await new Promise(resolve => child.once('exit', resolve))
      if (code !== 0) throw new Error(`gate-nodes${tree.suffix} exited with ${String(code)}`)
      const r = JSON.parse(out) as GateBenchResult
      runs.get(tree)!.push(r)
      console.log(`gate-nodes-${nodes}${tree.suffix} round ${round + 1}: ${fmt(nodes)} nodes, ${r.minutes} min of 5 s reports loaded in ${fmt(r.loadSeconds, 1)} s (${fmt(r.loadCpuSeconds, 1)} CPU-s); node store ${fmt(r.storeBytes / 2 ** 20)} MiB, RSS ${fmt(r.rssBytes / 2 ** 20)} MiB; ${r.selected} selected; median of ${r.reps}:`)
      for (const [label, ms] of Object.entries(r.medianMs)) console.log(`  ${label}: ${fmt(r.medianCpuMs[label]!, 1)} ms CPU, ${fmt(ms, 1)} ms wall (${r.verdicts[label]})`)
    }
  }
  for (const tree of trees) {
    const rs = runs.get(tree)!
    const byGate = (pick: (r: GateBenchResult) => Record<string, number>): Record<string, number> =>
      Object.fromEntries(Object.keys(pick(rs[0]!)).map(label => [label, median(rs.map(r => pick(r)[label]!))]))
    results[`gate-nodes-${nodes}${tree.suffix}`] = {
      ...rs[rs.length - 1], rounds, medianMs: byGate(r => r.medianMs), medianCpuMs: byGate(r => r.medianCpuMs),
      loadCpuSeconds: median(rs.map(r => r.loadCpuSeconds)), storeBytes: median(rs.map(r => r.storeBytes)), rssBytes: median(rs.map(r => r.rssBytes))
    }
  }
}

if (run('findings')) {
  // Finding evaluation at 1,000 nodes, full mesh, in process (issue 13; target ≤ 50 ms), per scenario.
  const nodes = args.nodes !== undefined ? Number(args.nodes) : quick ? 300 : 1000
  for (const scenario of ['healthy', 'dead-node', 'boundary'] as const) {
    const r = await findingsBench(nodes, scenario, quick ? 5 : 20)
    results[`findings-${nodes}-${scenario}`] = { ...r, targets: { maxMs: 50 } }
    console.log(`findings-${nodes} ${scenario}: readNetworkInput ${fmt(r.readCpuMs, 1)} ms CPU, networkFindings ${fmt(r.judgeCpuMs, 1)} ms CPU, readDnsServiceInput ${fmt(r.dnsReadCpuMs, 1)} ms CPU, dnsServiceFindings ${fmt(r.dnsJudgeCpuMs, 1)} ms CPU; both ${fmt(r.networkMs, 1)} ms (${fmt(r.networkCpuMs, 1)} ms CPU), evaluateFindings ${fmt(r.evaluateMs, 1)} ms (${fmt(r.evaluateCpuMs, 1)} ms CPU), median of ${r.reps}; after one more interval of reports ${fmt(r.freshEvaluateCpuMs, 1)} ms CPU (median of 5) (target ≤ 50 ms); found ${r.found.join(', ') || 'nothing'}`)
  }
}

if (args.base !== undefined) {
  // The A/B summary: this checkout's figure over the base's, for each figure both runs have.
  const figures = ['loadCpuSeconds', 'cellsPerCpuSecondMedian', 'renderMsMedian', 'renderCpuMsMedian', 'nodeMatrixCpuMs', 'nodeMatrix1mCpuMs', 'nodeRow1mCpuMs', 'failing1mCpuMs', 'steadyMilliCpu', 'rssBytes', 'peakRssBytes', 'storeBytes', 'nodeMatrixMs', 'nodeMatrix1mMs', 'nodeRow1mMs', 'failing1mMs', 'groupMatrixMs', 'groupMatrix1mMs']
  for (const [name, value] of Object.entries(results)) {
    const base = results[name + '-base'] as Record<string, unknown> | undefined
    if (base === undefined) continue
    const ratios = figures.filter(f => typeof (value as Record<string, unknown>)[f] === 'number' && typeof base[f] === 'number')
      .map(f => `${f} ${fmt((value as Record<string, number>)[f]! / (base[f] as number), 3)}`)
    results[name + '-ratio'] = Object.fromEntries(ratios.map(r => r.split(' ')).map(([f, x]) => [f, Number(x)]))
    console.log(`${name} new/base: ${ratios.join(', ')}`)
  }
}

mkdirSync('bench/results', { recursive: true })
writeFileSync('bench/results/latest.json', JSON.stringify({ date: new Date().toISOString(), node: process.version, quick, results }, null, 2) + '\n')
console.log('written bench/results/latest.json')
