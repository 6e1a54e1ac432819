// Issue 14's restart figure: SIGKILL the aggregator N times under a live fleet of real agent
// processes and account for every report. Usage:
//   node bench/restarts.ts [--restarts 100] [--agents 4] [--seed 1]
// Prints a table and exits 1 when a report was lost or applied twice.
//
// Accounting. An agent keeps a report until an aggregator acknowledges it, and the aggregator acks only
// after applying it, so:
// - within one aggregator process, each agent's applied seqs must be contiguous and each applied once:
//   at every scrape of /api/v1/agents, accepted = lastSeq − firstSeq + 1 (fewer is a hole, more a double);
// - across a kill, the next process must start where the agents' acknowledgements stopped: its first
//   seq for an agent ≤ that agent's acked seq (read from the agent's /status after the kill) + 1,
//   otherwise reports in between were never applied anywhere;
// - no agent drops a report (its buffer is far larger than an outage here);
// - at the end every report is acknowledged (acked = seq).

import { getJson, startAgent, startAggregator, type Proc } from '../scripts/fleet-processes.ts'

interface Args { restarts: number, agents: number, seed: number }

function parseArgs (argv: string[]): Args {
  const out: Args = { restarts: 100, agents: 4, seed: 1 }
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i]!.replace(/^--/, '')
    const value = Number(argv[i + 1])
    if (!(key in out) || !Number.isInteger(value) || value < 1) throw new Error(`bad argument ${argv[i]} ${argv[i + 1]}; usage: --restarts N --agents N --seed N`)
    out[key as keyof Args] = value
  }
  return out
}

/** mulberry32: a small seeded PRNG (Tommy Ettinger's public-domain generator), so a seed reproduces the kill times. */
function seeded (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6D2B79F5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

interface AgentRow { node: string, reports: { accepted: number, duplicates: number, firstSeq: number | null, lastSeq: number } }
interface AgentStatus { seq: number, acked: number, buffered: number, dropped: number }

const sleep = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))
const TOKEN = 'restarts-bench-token'

const args = parseArgs(process.argv.slice(2))
const random = seeded(args.seed)
const port = 18_000 + Math.floor(random() * 1000)
const aggregatorEnv = { PINGFLEET_INTERVAL: '1s', PINGFLEET_MAX_WINDOW: '1m', PINGFLEET_LOG_LEVEL: 'warn' }
const agentEnv = { PINGFLEET_RECONNECT_MIN: '100ms', PINGFLEET_RECONNECT_MAX: '1s', PINGFLEET_LOG_LEVEL: 'warn' }

const violations: string[] = []
/** Reports never applied anywhere, and reports applied twice within one process. */
let lost = 0
let doubled = 0
let aggregator: Proc = await startAggregator({ port, token: TOKEN, env: aggregatorEnv })
const agents: Proc[] = []
for (let i = 0; i < args.agents; i++) {
  agents.push(await startAgent({
    node: `node-${i}`, ip: `127.0.0.${10 + i}`, port: 19_081, labels: { group: i % 2 === 0 ? 'a' : 'b' },
    aggregatorUrl: aggregator.url, token: TOKEN, env: agentEnv
  }))
}

/** The latest scrape of the running aggregator, checked as it is read. */
async function scrape (incarnation: number, last: Map<string, AgentRow>): Promise<void> {
  let rows: AgentRow[]
  try {
    rows = (await getJson<{ agents: AgentRow[] }>(`${aggregator.url}/api/v1/agents`)).agents
  } catch {
    return
  }
  for (const row of rows) {
    const { accepted, firstSeq, lastSeq } = row.reports
    const span = firstSeq === null ? 0 : lastSeq - firstSeq + 1
    if (accepted !== span) {
      violations.push(`process ${incarnation}, ${row.node}: accepted ${accepted} reports for seqs ${firstSeq}..${lastSeq}`)
      if (accepted > span) doubled += accepted - span
      else lost += span - accepted
    }
    last.set(row.node, row)
  }
}

const statuses = async (): Promise<AgentStatus[]> => Promise.all(agents.map(a => getJson<AgentStatus>(`${a.url}/status`)))
let resent = 0
let maxDowntimeMs = 0
const started = Date.now()
for (let k = 1; k <= args.restarts; k++) {
  // Up for 1.5–4 s: enough for agents to reconnect, replay and report anew; killed at a random moment.
  const upUntil = Date.now() + 1500 + random() * 2500
  const last = new Map<string, AgentRow>()
  while (Date.now() < upUntil) {
    await scrape(k, last)
    await sleep(50)
  }
  aggregator.child.kill('SIGKILL')
  await new Promise(resolve => aggregator.child.once('exit', resolve))
  const down = Date.now()
  // Acks already on the wire reach the agents; nothing new can.
  await sleep(200)
  const acked = new Map((await statuses()).map((s, i) => [`node-${i}`, s.acked]))
  await sleep(random() * 1000)
  aggregator = await startAggregator({ port, token: TOKEN, env: aggregatorEnv })
  // Every agent has said hello and replayed its buffer: the new process's first seq is known.
  const next = new Map<string, AgentRow>()
  const until = Date.now() + 15_000
  while (next.size < args.agents || [...next.values()].some(r => r.reports.firstSeq === null)) {
    if (Date.now() > until) { violations.push(`process ${k + 1}: not every agent reported within 15 s`); break }
    await scrape(k + 1, next)
    await sleep(20)
  }
  maxDowntimeMs = Math.max(maxDowntimeMs, Date.now() - down)
  for (const [node, row] of next) {
    const first = row.reports.firstSeq
    const ackedSeq = acked.get(node) ?? 0
    if (first !== null && first > ackedSeq + 1) {
      violations.push(`restart ${k}, ${node}: acked up to ${ackedSeq}, next process starts at ${first}: ${first - ackedSeq - 1} reports never applied`)
      lost += first - ackedSeq - 1
    }
    if (first !== null && first <= ackedSeq) resent += ackedSeq - first + 1
  }
  if (k % 10 === 0) process.stdout.write(`${k} restarts, ${violations.length} violations\n`)
}

// Let every buffered report drain, then the agents' own books must balance.
await sleep(3000)
const end = await statuses()
let produced = 0
for (const [i, s] of end.entries()) {
  produced += s.seq
  // A drop shows above as reports never applied; here it is named.
  if (s.dropped !== 0) violations.push(`node-${i}: dropped ${s.dropped} reports`)
  if (s.acked !== s.seq || s.buffered !== 0) violations.push(`node-${i}: at the end seq ${s.seq}, acked ${s.acked}, buffered ${s.buffered}`)
}
for (const a of agents) await a.stop()
await aggregator.stop()

console.log('| restarts | agents | reports produced | lost | applied twice in one process | re-sent after an ack (harmless) | longest outage | wall time |')
console.log('|---|---|---|---|---|---|---|---|')
console.log(`| ${args.restarts} | ${args.agents} | ${produced} | ${lost} | ${doubled} | ${resent} | ${(maxDowntimeMs / 1000).toFixed(1)} s | ${((Date.now() - started) / 1000).toFixed(0)} s |`)
for (const v of violations) console.log(`VIOLATION ${v}`)
process.exit(violations.length > 0 ? 1 : 0)
