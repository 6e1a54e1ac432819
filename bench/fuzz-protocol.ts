// Protocol fuzzing figure (RELIABILITY.md): a live aggregator process, honest agents reporting, and
// N fuzzed frames (bench/fuzz/). Pass: the aggregator never exits, every frame gets its expected
// outcome (valid: acked; invalid: closed with a code and a reason, counted and logged), the honest
// agents' rows hold exactly what they sent, and memory stays bounded.
// Usage: node bench/fuzz-protocol.ts [--frames 100000] [--seed 1] [--workers 16] [--honest 4]

import { spawn } from 'node:child_process'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { createServer, type AddressInfo } from 'node:net'
import { parseArgs } from 'node:util'
import { runFuzz } from './fuzz/run-fuzz.ts'
import { rss } from './proc.ts'

const { values: args } = parseArgs({
  options: {
    frames: { type: 'string', default: '100000' },
    seed: { type: 'string', default: '1' },
    workers: { type: 'string', default: '16' },
    honest: { type: 'string', default: '4' },
    port: { type: 'string', default: '0' },
    // A short longest window fills early, so a flat RSS afterwards says ingest itself holds nothing.
    window: { type: 'string', default: '1m' }
  }
})
const TOKEN = 'fuzz-token-0123456789'
// A free port (0: ask the kernel for one), so a left-over process on a fixed port is never fuzzed instead.
const port = args.port !== '0' ? Number(args.port) : await new Promise<number>(resolve => {
  const probe = createServer().listen(0, '127.0.0.1', () => { const p = (probe.address() as AddressInfo).port; probe.close(() => resolve(p)) })
})
const url = `http://127.0.0.1:${port}`
mkdirSync('.cache/fuzz', { recursive: true })
const logFile = `.cache/fuzz/aggregator-${args.seed}.log`
const { openSync } = await import('node:fs')
const out = openSync(logFile, 'w')
const child = spawn(process.execPath, [...(process.env.FUZZ_NODE_ARGS ?? '').split(' ').filter(a => a !== ''), 'aggregator/src/main.ts'], {
  env: { ...process.env, MALLOC_MMAP_THRESHOLD_: '131072', PINGFLEET_LISTEN: `127.0.0.1:${port}`, PINGFLEET_TOKEN: TOKEN, PINGFLEET_INTERVAL: '1s', PINGFLEET_MAX_WINDOW: args.window, PINGFLEET_LOG_LEVEL: 'warn' },
  stdio: ['ignore', out, out]
})
let exited: string | null = null
child.on('exit', (code, signal) => { exited = `exit code ${code} signal ${signal}` })
// Never leave our aggregator behind, whatever ends this process.
process.on('exit', () => { if (exited === null) child.kill('SIGKILL') })
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => process.exit(130))
for (let i = 0; ; i++) {
  try { if (exited === null && (await fetch(`${url}/healthz`)).ok) break } catch {}
  if (i > 100 || exited !== null) throw new Error(`aggregator did not start: ${exited ?? 'no answer'}`)
  await new Promise(resolve => setTimeout(resolve, 100))
}

const samples: Array<{ frames: number, rss: number }> = []
const sample = (frames: number): void => {
  if (exited !== null) return
  samples.push({ frames, rss: rss(child.pid!).now })
  process.stderr.write(`\r${frames} frames, aggregator RSS ${(samples.at(-1)!.rss / 1048576).toFixed(1)} MiB   `)
}
sample(0)
const result = await runFuzz({
  url, token: TOKEN, frames: Number(args.frames), seed: Number(args.seed), workers: Number(args.workers),
  honest: Number(args.honest), honestIntervalMs: 1000, onProgress: sample
})
sample(result.frames)
const healthy = exited === null && (await fetch(`${url}/healthz`).then(r => r.ok, () => false))
const metrics = exited === null ? await (await fetch(`${url}/metrics`)).text() : ''
const rejectedTotal = [...metrics.matchAll(/^pingfleet_ingest_rejected_total\{code="([^"]+)"\} (\d+)$/gm)].map(m => [m[1]!, Number(m[2])] as const)
const storeCells = Number(/^pingfleet_ingest_store_cells\{store="node"\} (\d+)$/m.exec(metrics)?.[1] ?? NaN)
const crashed = exited
child.kill('SIGTERM')
await new Promise(resolve => child.once('exit', resolve))
const warned = readFileSync(logFile, 'utf8').split('\n').filter(l => /"level":40/.test(l) && /PINGFLEET_ERR_PROTOCOL_/.test(l)).length

// Memory: RSS over the second half of the run against the first half (medians of the samples).
const half = (from: number, to: number): number => {
  const xs = samples.slice(from, to).map(s => s.rss).sort((a, b) => a - b)
  return xs[xs.length >> 1] ?? NaN
}
const mid = samples.length >> 1
const mib = (b: number): number => Math.round(b / 1048576 * 10) / 10
const summary = {
  command: `node bench/fuzz-protocol.ts --frames ${args.frames} --seed ${args.seed} --workers ${args.workers} --honest ${args.honest} --window ${args.window}`,
  frames: result.frames,
  accepted: result.accepted,
  rejected: result.rejected,
  displaced: result.displaced,
  wrong: result.wrong.length,
  crashed: crashed,
  healthyAfter: healthy,
  rejectedCountedByAggregator: rejectedTotal.reduce((n, [, v]) => n + v, 0),
  rejectedByCode: Object.fromEntries(rejectedTotal),
  warnLinesForProtocolErrors: warned,
  honest: result.honest,
  rssMiB: { start: mib(samples[0]!.rss), firstHalfMedian: mib(half(0, mid)), secondHalfMedian: mib(half(mid, samples.length)), peak: mib(Math.max(...samples.map(s => s.rss))), end: mib(samples.at(-1)!.rss) },
  nodeStoreCells: storeCells,
  kinds: result.kinds,
  closes: result.closes,
  wallSeconds: Math.round(result.wallMs / 100) / 10,
  firstWrong: result.wrong.slice(0, 5)
}
writeFileSync(`.cache/fuzz/result-${args.seed}.json`, JSON.stringify(summary, null, 2))
console.log(JSON.stringify(summary, null, 2))
const pass = crashed === null && healthy && result.wrong.length === 0 && result.honest.ok
console.log(pass ? 'PASS' : 'FAIL')
process.exitCode = pass ? 0 : 1
