// Issue 14's slow and hostile clients figure: idle sockets, slowloris, half-open and never-hello
// websocket clients against a real agent's /ping server and a real aggregator's HTTP and websocket
// port, while a well-behaved client keeps asking. Usage:
//   node bench/hostile-clients.ts [--idle 10000] [--slow 1000]
// Prints a table; exits 1 when a hostile connection outlives its documented bound, the service stops
// answering, or the resident set grows by more than the bound below.

import { mkdirSync } from 'node:fs'
import { connect, type Socket } from 'node:net'
import WebSocket from 'ws'
import { rss } from './proc.ts'
import { startAgent, startAggregator, type Proc } from '../scripts/fleet-processes.ts'

interface Args { idle: number, slow: number }

function parseArgs (argv: string[]): Args {
  const out: Args = { idle: 10_000, slow: 1000 }
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i]!.replace(/^--/, '')
    const value = Number(argv[i + 1])
    if (!(key in out) || !Number.isInteger(value) || value < 1) throw new Error(`bad argument ${argv[i]} ${argv[i + 1]}; usage: --idle N --slow N`)
    out[key as keyof Args] = value
  }
  return out
}

type Mode = 'idle' | 'slowloris' | 'partial' | 'half-open' | 'no-hello'
interface Target { name: string, host: string, port: number, proc: Proc, path: string, boundMs: number }
interface Row { target: string, mode: Mode, n: number, closed: number, medianMs: number, maxMs: number, rssMiB: number, answered: string, ok: boolean }

const sleep = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))
const TOKEN = 'hostile-bench-token'
const args = parseArgs(process.argv.slice(2))
// Growth of the resident set a trial may cause, MiB: sockets are bounded in time, and on the agent in number.
const RSS_BOUND_MIB = 64

const logs = '.cache/hostile'
mkdirSync(logs, { recursive: true })
const aggregator = await startAggregator({ port: 18_800, token: TOKEN, log: `${logs}/aggregator.log`, env: { PINGFLEET_INTERVAL: '5s', PINGFLEET_LOG_LEVEL: 'warn' } })
const agent = await startAgent({ node: 'n0', ip: '127.0.0.60', port: 19_400, labels: {}, aggregatorUrl: aggregator.url, token: TOKEN, log: `${logs}/agent.log`, env: { PINGFLEET_LOG_LEVEL: 'warn' } })
// A process that dies under a trial is the worst outcome: say how, with what it printed.
for (const p of [aggregator, agent]) {
  let stderr = ''
  p.child.stderr?.on('data', (chunk: Buffer) => { stderr = (stderr + chunk.toString()).slice(-4000) })
  p.child.once('exit', (code, signal) => { if (!stopping) console.error(`${p.name} exited (${code ?? signal}) during the trials; stderr: ${stderr}`) })
}
let stopping = false
// Bounds from the code: agent/src/server.ts PING_SERVER_LIMITS, aggregator/src/app.ts API_SERVER_LIMITS
// and the hello deadline of http/stream.ts; each plus the check interval and a second of slack.
const agentTarget: Target = { name: 'agent /ping', host: '127.0.0.60', port: 19_400, proc: agent, path: '/ping', boundMs: 12_000 }
const apiTarget: Target = { name: 'aggregator HTTP', host: '127.0.0.1', port: 18_800, proc: aggregator, path: '/healthz', boundMs: 63_000 }

/** Opens `n` hostile connections in `mode`; resolves with when each was closed by the server (ms from its start). */
async function trial (target: Target, mode: Mode, n: number): Promise<Row> {
  const before = rss(target.proc.child.pid!).now
  const closedAfter: number[] = []
  // Only connections the server accepted can be closed by it; a SYN the full accept queue dropped is not one.
  let connected = 0
  const sockets: Array<Socket | WebSocket> = []
  const timers: NodeJS.Timeout[] = []
  const started = Date.now()
  for (let i = 0; i < n; i++) {
    if (mode === 'no-hello') {
      const ws = new WebSocket(`ws://${target.host}:${target.port}/api/v1/stream`, { headers: { authorization: `Bearer ${TOKEN}` } })
      ws.on('error', () => {})
      ws.on('upgrade', () => { connected++ })
      ws.on('close', () => closedAfter.push(Date.now() - started))
      sockets.push(ws)
    } else {
      // Half-open clients keep their side open after the server's FIN; the others close with it, as a
      // client normally does. Either way the server ending the connection (its FIN) is what counts.
      const s = connect({ host: target.host, port: target.port, allowHalfOpen: mode === 'half-open' })
      let done = false
      const ended = (): void => { if (!done) { done = true; closedAfter.push(Date.now() - started) } }
      s.on('error', () => {})
      s.on('data', () => {})
      s.on('end', ended)
      s.on('close', ended)
      s.on('connect', () => {
        connected++
        if (mode === 'partial') s.write(`GET ${target.path} HTTP/1.1\r\nHost: x\r\n`)
        if (mode === 'half-open') s.end(`GET ${target.path} HTTP/1.1\r\nHost: x\r\n\r\n`)
        if (mode === 'slowloris') {
          s.write(`GET ${target.path} HTTP/1.1\r\n`)
          timers.push(setInterval(() => { if (!s.destroyed) s.write('X-Slow: 1\r\n') }, 2000))
        }
      })
      sockets.push(s)
    }
    if (i % 500 === 499) await sleep(20)
  }
  await sleep(3000)
  const grown = (rss(target.proc.child.pid!).now - before) / 2 ** 20
  // A well-behaved client while the hostile ones are open: ten requests, each must answer.
  const times: number[] = []
  let failures = 0
  for (let i = 0; i < 10; i++) {
    const t0 = performance.now()
    try {
      if (!(await fetch(`http://${target.host}:${target.port}${target.path}`, { signal: AbortSignal.timeout(5000) })).ok) failures++
    } catch { failures++ }
    times.push(performance.now() - t0)
  }
  const deadline = started + target.boundMs + (mode === 'slowloris' ? 2000 : 0) + 5000
  while (closedAfter.length < connected && Date.now() < deadline) await sleep(200)
  // What the server closed by itself; the cleanup below closes the rest.
  const byServer = closedAfter.slice().sort((a, b) => a - b)
  for (const t of timers) clearInterval(t)
  for (const s of sockets) {
    if (s instanceof WebSocket) s.terminate()
    else s.destroy()
  }
  const maxMs = byServer.length >= connected ? byServer.at(-1)! : Infinity
  times.sort((a, b) => a - b)
  const ok = byServer.length >= connected && maxMs <= target.boundMs + (mode === 'slowloris' ? 2000 : 0) && failures === 0 && grown <= RSS_BOUND_MIB
  await sleep(1000)
  return {
    target: target.name, mode, n: connected, closed: byServer.length, medianMs: byServer[byServer.length >> 1] ?? NaN, maxMs,
    rssMiB: grown, answered: `${10 - failures}/10, p50 ${times[5]!.toFixed(0)} ms`, ok
  }
}

const rows: Row[] = []
rows.push(await trial(agentTarget, 'idle', args.idle))
rows.push(await trial(agentTarget, 'slowloris', args.slow))
rows.push(await trial(agentTarget, 'partial', args.slow))
rows.push(await trial(agentTarget, 'half-open', args.slow))
rows.push(await trial(apiTarget, 'idle', args.idle))
rows.push(await trial(apiTarget, 'slowloris', args.slow))
rows.push(await trial(apiTarget, 'partial', args.slow))
rows.push(await trial(apiTarget, 'half-open', args.slow))
// The websocket: upgraded with a valid token, then silent; the aggregator waits for a hello at most 10 s.
rows.push(await trial({ ...apiTarget, name: 'aggregator websocket', boundMs: 12_000 }, 'no-hello', Math.min(args.slow, 500)))
stopping = true
await agent.stop()
await aggregator.stop()

console.log('| target | client | connections accepted | closed by the server | median / max time to close | RSS growth | well-behaved requests meanwhile | within bounds |')
console.log('|---|---|---|---|---|---|---|---|')
for (const r of rows) {
  console.log(`| ${r.target} | ${r.mode} | ${r.n} | ${r.closed} | ${(r.medianMs / 1000).toFixed(1)} s / ${(r.maxMs / 1000).toFixed(1)} s | ${r.rssMiB.toFixed(1)} MiB | ${r.answered} | ${r.ok ? 'yes' : 'NO'} |`)
}
process.exit(rows.every(r => r.ok) ? 0 : 1)
