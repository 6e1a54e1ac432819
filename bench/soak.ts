// Issue 14's soak figure: a fleet of real agents probing each other on a short interval for at least
// N probe rounds (one round = one agent's interval: it probes every peer and reports once), with agents
// restarting all along (peers churning), while file descriptors, RSS and heap of the aggregator and of
// the agents that stay up are sampled. Usage:
//   node bench/soak.ts [--rounds 100000] [--agents 8] [--churn 4] [--interval-ms 100]
// Prints each series' least-squares slope over the second half of the run (after warm-up) and exits 1
// when one grows by more than its bound over that half: that is a leak, not noise.

import { readdirSync } from 'node:fs'
import { rss } from './proc.ts'
import { getJson, startAgent, startAggregator, type Proc } from '../scripts/fleet-processes.ts'

interface Args { rounds: number, agents: number, churn: number, intervalMs: number }

function parseArgs (argv: string[]): Args {
  const out: Args = { rounds: 100_000, agents: 8, churn: 4, intervalMs: 100 }
  const keys: Record<string, keyof Args> = { '--rounds': 'rounds', '--agents': 'agents', '--churn': 'churn', '--interval-ms': 'intervalMs' }
  for (let i = 0; i < argv.length; i += 2) {
    const key = keys[argv[i]!]
    const value = Number(argv[i + 1])
    if (key === undefined || !Number.isInteger(value) || value < 1) throw new Error(`bad argument ${argv[i]} ${argv[i + 1]}; usage: --rounds N --agents N --churn N --interval-ms N`)
    out[key] = value
  }
  if (out.churn >= out.agents) throw new Error('--churn must leave some agents up the whole time')
  return out
}

interface Sample { at: number, fds: number, rssMiB: number, heapMiB: number }
interface AgentStatus { seq: number, memory: { heapUsedBytes: number } }

const sleep = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))
const TOKEN = 'soak-bench-token'
const args = parseArgs(process.argv.slice(2))
const fds = (pid: number): number => readdirSync(`/proc/${pid}/fd`).length
const MiB = 2 ** 20

const aggregator = await startAggregator({ port: 18_950, token: TOKEN, env: { PINGFLEET_INTERVAL: `${args.intervalMs}ms`, PINGFLEET_MAX_WINDOW: '2m', PINGFLEET_LOG_LEVEL: 'warn' } })
const agentAt = (i: number): Promise<Proc> => startAgent({
  node: `node-${i}`, ip: `127.0.0.${80 + i}`, port: 19_600, labels: { group: i % 2 === 0 ? 'a' : 'b' },
  aggregatorUrl: aggregator.url, token: TOKEN,
  env: { PINGFLEET_LOG_LEVEL: 'warn', PINGFLEET_MTU_INTERVAL: '1s', PINGFLEET_UDP_INTERVAL: '1s' }
})
const agents: Proc[] = []
for (let i = 0; i < args.agents; i++) agents.push(await agentAt(i))
const stable = agents.slice(args.churn)

// Rounds: every report is one round of one agent. Restarted agents start their seqs over, so count as we go.
const lastSeq = new Map<string, number>()
let rounds = 0
const countRounds = async (): Promise<void> => {
  for (const [i, a] of agents.entries()) {
    try {
      const s = await getJson<AgentStatus>(`${a.url}/status`)
      const key = `${i}:${a.child.pid}`
      rounds += s.seq - (lastSeq.get(key) ?? 0)
      lastSeq.set(key, s.seq)
    } catch {}
  }
}

const series = new Map<string, Sample[]>()
const sample = async (): Promise<void> => {
  const at = Date.now()
  const metrics = await (await fetch(`${aggregator.url}/metrics`)).text()
  const heap = Number(/^nodejs_heap_size_used_bytes (\d+)/m.exec(metrics)?.[1] ?? NaN)
  const agg = aggregator.child.pid!
  const push = (name: string, s: Sample): void => { series.set(name, [...(series.get(name) ?? []), s]) }
  push('aggregator', { at, fds: fds(agg), rssMiB: rss(agg).now / MiB, heapMiB: heap / MiB })
  for (const a of stable) {
    const s = await getJson<AgentStatus>(`${a.url}/status`)
    push(a.name, { at, fds: fds(a.child.pid!), rssMiB: rss(a.child.pid!).now / MiB, heapMiB: s.memory.heapUsedBytes / MiB })
  }
}

const started = Date.now()
let restarts = 0
let next = 0
while (rounds < args.rounds) {
  await sleep(5000)
  // Churn: one of the first `churn` agents stops (SIGTERM, a planned departure) and a new boot takes its place.
  const i = next++ % args.churn
  await agents[i]!.stop()
  agents[i] = await agentAt(i)
  restarts++
  await countRounds()
  await sample()
  if (restarts % 20 === 0) process.stdout.write(`${rounds} rounds, ${restarts} restarts, ${((Date.now() - started) / 60_000).toFixed(1)} min\n`)
}
for (const a of agents) await a.stop()
await aggregator.stop()

/** Least-squares slope of y over x. */
function slope (xs: number[], ys: number[]): number {
  const n = xs.length
  const mx = xs.reduce((a, b) => a + b, 0) / n
  const my = ys.reduce((a, b) => a + b, 0) / n
  let num = 0
  let den = 0
  for (let k = 0; k < n; k++) { num += (xs[k]! - mx) * (ys[k]! - my); den += (xs[k]! - mx) ** 2 }
  return den === 0 ? 0 : num / den
}

// Bounds on growth over the judged half: a leak of one fd per restart, or of a few MiB, shows.
const BOUND = { fds: 2, rssMiB: 8, heapMiB: 4 }
let leaks = 0
console.log(`${rounds} probe rounds, ${restarts} agent restarts, ${((Date.now() - started) / 60_000).toFixed(1)} min, interval ${args.intervalMs} ms, ${args.agents} agents (${args.churn} churning)`)
console.log('| process | fds: slope per hour, growth over the second half | RSS MiB: slope per hour, growth | heap MiB: slope per hour, growth | flat |')
console.log('|---|---|---|---|---|')
for (const [name, samples] of series) {
  const half = samples.slice(Math.floor(samples.length / 2))
  const hours = half.map(s => (s.at - half[0]!.at) / 3_600_000)
  const span = hours.at(-1)! - hours[0]!
  const cells: string[] = []
  let flat = true
  for (const key of ['fds', 'rssMiB', 'heapMiB'] as const) {
    const k = slope(hours, half.map(s => s[key]))
    const growth = k * span
    if (growth > BOUND[key]) flat = false
    cells.push(`${k.toFixed(2)}, ${growth >= 0 ? '+' : ''}${growth.toFixed(2)}`)
  }
  if (!flat) leaks++
  console.log(`| ${name} | ${cells.join(' | ')} | ${flat ? 'yes' : 'NO'} |`)
}
process.exit(leaks > 0 ? 1 : 0)
