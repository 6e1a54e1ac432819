// npm run bench: aggregator ingest over real websockets, memory of a 15-minute 1,000-node mesh,
// and matrix query times. The aggregator runs as its own process so its CPU and RSS are its own.
// Flags: --quick (smaller runs), --only <name>. Results: bench/results/latest.json, BENCHMARKS.md.

import { spawn, type ChildProcess } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { runFleet } from './fleet-sim.ts'
import { cpuSeconds, median, percentile, rss } from './proc.ts'

const { values: args } = parseArgs({ options: { quick: { type: 'boolean', default: false }, only: { type: 'string' } } })
const TOKEN = 'bench-token-0123456789'
const results: Record<string, unknown> = {}

interface Server { child: ChildProcess, url: string }

async function startAggregator (port: number, env: Record<string, string> = {}): Promise<Server> {
  const child = spawn(process.execPath, ['aggregator/src/main.ts'], {
    env: { ...process.env, PINGFLEET_LISTEN: `127.0.0.1:${port}`, PINGFLEET_TOKEN: TOKEN, PINGFLEET_LOG_LEVEL: 'warn', ...env },
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

async function timeGet (url: string, reps: number): Promise<{ medianMs: number, bytes: number }> {
  const times: number[] = []
  let bytes = 0
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now()
    const body = await (await fetch(url)).arrayBuffer()
    times.push(performance.now() - t0)
    bytes = body.byteLength
  }
  return { medianMs: median(times), bytes }
}

function fmt (n: number, digits = 0): string {
  return n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })
}

async function ingest (name: string, agents: number, targets: number, reports: number, rounds: number): Promise<void> {
  const rates: number[] = []
  const acks: number[] = []
  let peak = 0
  for (let round = 0; round < rounds; round++) {
    const server = await startAggregator(18100 + round)
    const pid = server.child.pid!
    const cpu0 = cpuSeconds(pid)
    const now = Date.now()
    const sim = await runFleet({ url: server.url, token: TOKEN, agents, targets, reports, inFlight: 2, from: now - 60_000, to: now })
    const cpu = cpuSeconds(pid) - cpu0
    rates.push(sim.cells / cpu)
    acks.push(...sim.ackLatencyMs)
    peak = Math.max(peak, rss(pid).peak)
    console.log(`  ${name} round ${round + 1}: ${fmt(sim.cells)} cells in ${fmt(sim.wallMs / 1000, 1)} s wall, ${fmt(cpu, 2)} s aggregator CPU → ${fmt(sim.cells / cpu)} cells/CPU-s`)
    await stop(server)
  }
  results[name] = {
    agents, targets, reportsPerAgent: reports, rounds,
    cellsPerCpuSecondMedian: Math.round(median(rates)),
    ackLatencyMs: { p50: median(acks), p99: percentile(acks, 0.99) },
    peakRssBytes: peak
  }
  console.log(`${name}: median ${fmt(median(rates))} cells per aggregator CPU-second; ack p50 ${fmt(median(acks), 1)} ms, p99 ${fmt(percentile(acks, 0.99), 1)} ms; peak RSS ${fmt(peak / 2 ** 20)} MiB`)
}

async function mesh (nodes: number, minutes: number): Promise<void> {
  const server = await startAggregator(18200, { PINGFLEET_MAX_WINDOW: `${minutes}m` })
  const pid = server.child.pid!
  const reports = minutes * 12
  const now = Date.now()
  const t0 = performance.now()
  const sim = await runFleet({ url: server.url, token: TOKEN, agents: nodes, targets: nodes, reports, inFlight: 2, from: now - minutes * 60_000 + 5000, to: now })
  console.log(`  mesh ${nodes}: ${fmt(sim.cells)} cells (${minutes} min of 5 s reports) loaded in ${fmt((performance.now() - t0) / 1000, 1)} s`)
  // Let the store fold and pack its slots (it ticks every second).
  await new Promise(resolve => setTimeout(resolve, 3000))
  const memory = rss(pid)
  const window = `${minutes}m`
  const nodeMatrix = await timeGet(`${server.url}/api/v1/matrix?probe=pod&groupBy=node&window=${window}`, 3)
  const nodeMatrix1m = await timeGet(`${server.url}/api/v1/matrix?probe=pod&groupBy=node&window=1m`, 3)
  const groupMatrix = await timeGet(`${server.url}/api/v1/matrix?probe=pod&groupBy=cniplugin&window=${window}`, 20)
  results[`mesh-${nodes}`] = {
    nodes, minutes, cells: sim.cells,
    rssBytes: memory.now, peakRssBytes: memory.peak,
    nodeMatrixMs: nodeMatrix.medianMs, nodeMatrixBytes: nodeMatrix.bytes,
    nodeMatrix1mMs: nodeMatrix1m.medianMs,
    groupMatrixMs: groupMatrix.medianMs
  }
  console.log(`mesh-${nodes}: RSS ${fmt(memory.now / 2 ** 20)} MiB (peak ${fmt(memory.peak / 2 ** 20)} MiB) holding ${minutes} min; ` +
    `node×node matrix ${window} ${fmt(nodeMatrix.medianMs)} ms (${fmt(nodeMatrix.bytes / 2 ** 20, 1)} MiB), 1m ${fmt(nodeMatrix1m.medianMs)} ms; group matrix ${fmt(groupMatrix.medianMs, 2)} ms`)
  await stop(server)
}

const quick = args.quick
const only = args.only
const run = (name: string): boolean => only === undefined || only === name
if (run('ingest-100')) await ingest('ingest-100', 100, 1000, quick ? 10 : 30, 3)
if (run('ingest-1000')) await ingest('ingest-1000', 1000, 1000, quick ? 3 : 6, 3)
if (run('mesh')) await mesh(quick ? 300 : 1000, 15)
if (run('metrics')) {
  // Time and size to render /metrics at 1,000 nodes (full mesh, 2 groups): the median of repeated
  // scrapes after a warm-up. Targets: ≤ 50 ms and ≤ 30,000 series (docs/metrics.md).
  const nodes = 1000
  const server = await startAggregator(18300)
  const now = Date.now()
  await runFleet({ url: server.url, token: TOKEN, agents: nodes, targets: nodes, reports: quick ? 1 : 3, inFlight: 1, from: now - 10_000, to: now })
  const url = `${server.url}/metrics`
  const series = (await (await fetch(url)).text()).split('\n').filter(line => line !== '' && !line.startsWith('#')).length
  const scrape = await timeGet(url, quick ? 10 : 30)
  results['metrics-1000'] = { nodes, series, bytes: scrape.bytes, renderMsMedian: scrape.medianMs, targets: { maxMs: 50, maxSeries: 30_000 } }
  console.log(`metrics-1000: ${fmt(series)} series (target ≤ 30,000), ${fmt(scrape.bytes / 1024)} KiB, median ${fmt(scrape.medianMs, 1)} ms per scrape (target ≤ 50 ms)`)
  await stop(server)
}

mkdirSync('bench/results', { recursive: true })
writeFileSync('bench/results/latest.json', JSON.stringify({ date: new Date().toISOString(), node: process.version, quick, results }, null, 2) + '\n')
console.log('written bench/results/latest.json')
