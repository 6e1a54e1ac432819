// Issue 14's outage figure: the aggregator unreachable for a while (a proxy in front of it refuses
// connections; the aggregator itself keeps running, as in a network partition), then back. Usage:
//   node bench/outages.ts [--outages 120,900] [--agents 4] [--buffer 720]
// Agents report every second, so a buffer of 720 reports holds 12 minutes: a 2-minute outage must
// lose nothing, a 15-minute one must drop the oldest reports, count them on the agent and show them
// on the aggregator as missed seqs. Prints a table; exits 1 when the books do not balance.
//
// Per agent, after each outage has drained (acked = seq, nothing buffered):
// - the aggregator's last applied seq is the agent's last seq, and it refused no report as a duplicate
//   (a replay out of seq order would be refused so);
// - what it counts missed is exactly what the agent dropped, also after an outage longer than the
//   peer TTL (when the roster forgot the agent itself);
// - no cell was refused as too old for the window (`pingfleet_ingest_expired_cells_total` stays 0).

import { createServer, connect, type Socket } from 'node:net'
import { getJson, startAgent, startAggregator, type Proc } from '../scripts/fleet-processes.ts'
import { forward } from '../scripts/stand-ins/tcp-forwarder.ts'

interface Args { outages: number[], agents: number, buffer: number }

function parseArgs (argv: string[]): Args {
  const out: Args = { outages: [120, 900], agents: 4, buffer: 720 }
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i]
    const value = argv[i + 1] ?? ''
    if (key === '--outages') out.outages = value.split(',').map(Number)
    else if (key === '--agents') out.agents = Number(value)
    else if (key === '--buffer') out.buffer = Number(value)
    else throw new Error(`unknown argument ${key}; usage: --outages S,S --agents N --buffer N`)
  }
  if (out.outages.some(s => !(s > 0)) || !(out.agents >= 1) || !(out.buffer >= 1)) throw new Error('--outages, --agents and --buffer take positive numbers')
  return out
}

interface AgentRow { node: string, reports: { accepted: number, duplicates: number, missed: number, firstSeq: number | null, lastSeq: number } }
interface AgentStatus { seq: number, acked: number, buffered: number, dropped: number }

const sleep = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))
const TOKEN = 'outages-bench-token'
const args = parseArgs(process.argv.slice(2))
const aggregatorPort = 18_500
const proxyPort = 18_501

const aggregator = await startAggregator({ port: aggregatorPort, token: TOKEN, env: { PINGFLEET_INTERVAL: '1s', PINGFLEET_MAX_WINDOW: '30m', PINGFLEET_LOG_LEVEL: 'warn' } })

/** The path to the aggregator: up forwards, down refuses new connections and cuts open ones. */
const open = new Set<Socket>()
const proxy = createServer({ allowHalfOpen: true }, client => {
  const upstream = connect({ host: '127.0.0.1', port: aggregatorPort, allowHalfOpen: true })
  open.add(client)
  client.on('close', () => open.delete(client))
  forward(client, upstream)
})
const up = (): Promise<void> => new Promise(resolve => proxy.listen(proxyPort, '127.0.0.1', resolve))
const down = (): Promise<void> => {
  for (const s of open) s.resetAndDestroy()
  return new Promise(resolve => proxy.close(() => resolve()))
}
await up()

const agents: Proc[] = []
for (let i = 0; i < args.agents; i++) {
  agents.push(await startAgent({
    node: `node-${i}`, ip: `127.0.0.${20 + i}`, port: 19_181, labels: { group: i % 2 === 0 ? 'a' : 'b' },
    aggregatorUrl: `http://127.0.0.1:${proxyPort}`, token: TOKEN,
    env: { PINGFLEET_REPORT_BUFFER: String(args.buffer), PINGFLEET_RECONNECT_MAX: '5s', PINGFLEET_LOG_LEVEL: 'warn' }
  }))
}
const statuses = (): Promise<AgentStatus[]> => Promise.all(agents.map(a => getJson<AgentStatus>(`${a.url}/status`)))
const expiredCells = async (): Promise<number> => {
  const text = await (await fetch(`${aggregator.url}/metrics`)).text()
  return Number(/^pingfleet_ingest_expired_cells_total (\d+)/m.exec(text)?.[1] ?? NaN)
}

const violations: string[] = []
const rows: string[] = []
let inFlightSoFar = 0
await sleep(10_000)
for (const seconds of args.outages) {
  const before = await statuses()
  await down()
  const cutAt = Date.now()
  await sleep(seconds * 1000)
  const peak = await statuses()
  await up()
  const backAt = Date.now()
  let drained = false
  while (Date.now() - backAt < 120_000) {
    const s = await statuses()
    if (s.every(x => x.buffered === 0 && x.acked === x.seq)) { drained = true; break }
    await sleep(200)
  }
  const replayMs = Date.now() - backAt
  // Agents keep reporting: bracket the aggregator's answer between two reads of theirs.
  const after = await statuses()
  const seen = new Map((await getJson<{ agents: AgentRow[] }>(`${aggregator.url}/api/v1/agents`)).agents.map(r => [r.node, r.reports]))
  const later = await statuses()
  if (!drained) violations.push(`${seconds} s outage: the agents had not drained their buffers 120 s after the path came back`)
  let dropped = 0
  let missed = 0
  // Over several outages, earlier cuts' in-flight reports stay in the cumulative counts.
  const inFlightBefore = inFlightSoFar
  for (const [i, s] of after.entries()) {
    const node = `node-${i}`
    const r = seen.get(node)
    if (r === undefined || r.firstSeq === null) { violations.push(`${node}: unknown to the aggregator`); continue }
    dropped += s.dropped - before[i]!.dropped
    missed += r.missed
    if (r.lastSeq < s.seq || r.lastSeq > later[i]!.seq || r.duplicates !== 0) violations.push(`${seconds} s outage, ${node}: the aggregator's last seq is ${r.lastSeq} with ${r.duplicates} duplicates; the agent's went from ${s.seq} to ${later[i]!.seq} meanwhile`)
    // A report on the wire when the path was cut may have been applied with its ack lost: the agent
    // keeps it, may drop it later and counts it dropped, but it was not missed. At most the reports
    // buffered when read just before the cut, plus one sent between that read and the cut, can be such.
    const agentDropped = later[i]!.dropped
    if (r.missed > agentDropped || r.missed < agentDropped - before[i]!.buffered - 1 - inFlightBefore) violations.push(`${seconds} s outage, ${node}: the aggregator counts ${r.missed} missed, the agent dropped ${agentDropped} (${before[i]!.buffered} buffered at the cut)`)
  }
  inFlightSoFar += Math.max(...before.map(b => b.buffered)) + 1
  const expired = await expiredCells()
  if (expired !== 0) violations.push(`${seconds} s outage: ${expired} cells refused as older than the window`)
  const buffered = Math.max(...peak.map(p => p.buffered))
  rows.push(`| ${seconds} s | ${args.buffer} | ${buffered} | ${dropped} | ${missed} | ${(replayMs / 1000).toFixed(1)} s | ${expired} | ${((backAt - cutAt) / 1000).toFixed(0)} s |`)
  process.stdout.write(`${seconds} s outage done\n`)
}
for (const a of agents) await a.stop()
await down().catch(() => {})
await aggregator.stop()

console.log('| outage | buffer (reports) | most buffered | dropped by agents (this outage) | missed seqs seen by the aggregator (cumulative) | replay until drained | cells refused as too old | measured outage |')
console.log('|---|---|---|---|---|---|---|---|')
for (const r of rows) console.log(r)
for (const v of violations) console.log(`VIOLATION ${v}`)
process.exit(violations.length > 0 ? 1 : 0)
