#!/usr/bin/env node
// The pingfleet CLI: `pingfleet gate <name>` asks the aggregator for a gate's verdict and turns
// it into an exit code, so a migration script can wait for a batch to be healthy.

import { parseArgs } from 'node:util'
import { parseDuration } from '@pingfleet/protocol'

export const EXIT = { pass: 0, fail: 1, insufficient_data: 2, unreachable: 3 } as const

const USAGE = `Usage: pingfleet gate <name> --url <aggregator> [--nodes <a,b> | --selector <labels>] [--wait <duration> [--interval <duration>]] [--timeout <duration>] [--json]

Evaluates a named gate (GET /api/v1/gates/<name>) and exits with its verdict:
  0  pass
  1  fail
  2  insufficient data (too few samples, stale data, missing group, low coverage),
     or --wait ran out while the last verdict was insufficient data
  3  no verdict: aggregator unreachable, unknown gate, bad answer or bad usage

Options:
  --url <url>          aggregator base URL (default: $PINGFLEET_URL)
  --nodes <a,b,…>      judge these nodes (by name) instead of the gate's own node scope
  --selector <labels>  judge the nodes this Kubernetes label selector matches instead, e.g.
                       pingfleet.io/migration-batch=7 or 'cniplugin=cilium,zone in (a,b)';
                       with --nodes too, a node must be named and match
  --wait <duration>    keep asking until the gate passes or this much time has passed, e.g. 10m;
                       on timeout the exit code is the last verdict's (1 or 2; 3 if the last
                       attempt got no verdict)
  --interval <d>       time between attempts with --wait (default 15s)
  --timeout <d>        time limit of one request (default 10s)
  --json               print the aggregator's JSON answer (the last one with --wait)
  -h, --help           this text
`

interface Check {
  id: string
  criterion?: string
  verdict: string
  observed: number | null
  threshold: number
  samples: number | null
  window: string | null
  detail: string
  worst?: Array<{ node: string, verdict: string, detail: string }>
}

interface GateAnswer {
  name: string
  verdict: 'pass' | 'fail' | 'insufficient_data'
  evaluatedAt: string
  summary: Record<string, number>
  nodes?: string[]
  skipped?: Array<{ probe: string, src: string, dst: string, reason: string }>
  checks: Check[]
}

type Attempt = { ok: true, answer: GateAnswer, raw: string } | { ok: false, error: string }

class UsageError extends Error {}

function isAnswer (value: unknown): value is GateAnswer {
  const v = value as Partial<GateAnswer> | null
  return typeof v === 'object' && v !== null && typeof v.name === 'string' && Array.isArray(v.checks) &&
    (v.verdict === 'pass' || v.verdict === 'fail' || v.verdict === 'insufficient_data')
}

async function ask (url: string, timeoutMs: number): Promise<Attempt> {
  let response: Response
  try {
    response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), headers: { accept: 'application/json' } })
  } catch (err) {
    const cause = (err as { cause?: { code?: string, message?: string } }).cause
    return { ok: false, error: `aggregator unreachable at ${url}: ${cause?.code ?? cause?.message ?? (err as Error).message}` }
  }
  const raw = await response.text()
  if (response.status !== 200) {
    let message = raw.slice(0, 300)
    try {
      const body = JSON.parse(raw) as { code?: string, message?: string }
      if (body.code !== undefined) message = `${body.code}: ${body.message ?? ''}`
    } catch {}
    return { ok: false, error: `aggregator answered ${response.status} for ${url}: ${message}` }
  }
  try {
    const body = JSON.parse(raw) as unknown
    if (isAnswer(body)) return { ok: true, answer: body, raw }
  } catch {}
  return { ok: false, error: `aggregator answered ${url} with something that is not a gate verdict` }
}

function show (value: number | null, threshold: number): string {
  if (value === null) return '-'
  const digits = (n: number): string => String(Number(n.toPrecision(3)))
  return `${digits(value)} (limit ${digits(threshold)})`
}

const MARK: Record<string, string> = { pass: 'ok  ', fail: 'FAIL', insufficient_data: '??  ' }

export function render (a: GateAnswer): string {
  const lines = [`gate ${a.name}: ${a.verdict.toUpperCase()} at ${a.evaluatedAt} (${a.summary.pass ?? 0} pass, ${a.summary.fail ?? 0} fail, ${a.summary.insufficient_data ?? 0} insufficient)`]
  if (a.nodes !== undefined) lines.push(`  nodes (${a.nodes.length}): ${a.nodes.length === 0 ? 'none' : a.nodes.length <= 10 ? a.nodes.join(', ') : `${a.nodes.slice(0, 10).join(', ')} and ${a.nodes.length - 10} more`}`)
  // Problems first: that is what someone watching a migration needs.
  const order: Record<string, number> = { fail: 0, insufficient_data: 1, pass: 2 }
  for (const c of [...a.checks].sort((x, y) => order[x.verdict]! - order[y.verdict]!)) {
    const extra = [c.samples === null ? null : `samples ${c.samples}`, c.window === null ? null : `window ${c.window}`].filter(Boolean).join(', ')
    lines.push(`  ${MARK[c.verdict] ?? c.verdict} ${c.id}: ${show(c.observed, c.threshold)}${extra === '' ? '' : ` [${extra}]`} - ${c.detail}`)
    // The nodes behind a node check that did not pass, worst first.
    for (const w of (c.worst ?? []).filter(w => w.verdict !== 'pass').slice(0, 3)) lines.push(`         ${MARK[w.verdict] ?? w.verdict} ${w.node}: ${w.detail}`)
  }
  for (const s of a.skipped ?? []) lines.push(`  skip ${s.probe} ${s.src}->${s.dst}: ${s.reason}`)
  return lines.join('\n') + '\n'
}

async function gate (argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      url: { type: 'string' },
      nodes: { type: 'string' },
      selector: { type: 'string' },
      wait: { type: 'string' },
      interval: { type: 'string', default: '15s' },
      timeout: { type: 'string', default: '10s' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false }
    }
  })
  if (values.help) {
    process.stdout.write(USAGE)
    return 0
  }
  if (positionals.length !== 1) throw new UsageError('expected exactly one gate name')
  const base = values.url ?? process.env.PINGFLEET_URL
  if (base === undefined || !/^https?:\/\//.test(base)) throw new UsageError('--url must be the aggregator\'s http(s) base URL')
  const duration = (flag: string, text: string): number => {
    const ms = parseDuration(text)
    if (ms === null) throw new UsageError(`--${flag} ${JSON.stringify(text)} is not a duration such as 30s, 10m or 1h`)
    return ms
  }
  const waitMs = values.wait === undefined ? 0 : duration('wait', values.wait)
  const intervalMs = duration('interval', values.interval)
  const timeoutMs = duration('timeout', values.timeout)
  const scope = new URLSearchParams()
  if (values.nodes !== undefined) {
    if (!/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?(,[a-z0-9]([-a-z0-9.]*[a-z0-9])?)*$/.test(values.nodes)) throw new UsageError(`--nodes ${JSON.stringify(values.nodes)} is not a comma-separated list of node names`)
    scope.set('nodes', values.nodes)
  }
  if (values.selector !== undefined) {
    // The aggregator parses it and answers 400 with where it went wrong; an empty one is a slip here.
    if (values.selector.trim() === '') throw new UsageError('--selector is empty; give a label selector such as pingfleet.io/migration-batch=7')
    scope.set('nodeSelector', values.selector)
  }
  const query = scope.size > 0 ? `?${scope.toString()}` : ''
  const url = `${base.replace(/\/+$/, '')}/api/v1/gates/${encodeURIComponent(positionals[0]!)}${query}`
  const deadline = Date.now() + waitMs
  // While waiting, full evidence is printed when the verdict changes and at the end; in between,
  // one line per attempt.
  let shown: string | null = null
  for (;;) {
    const attempt = await ask(url, timeoutMs)
    const done = (attempt.ok && attempt.answer.verdict === 'pass') || Date.now() + intervalMs > deadline ||
      // An unknown gate will not appear by waiting, nor will a bad selector parse.
      (!attempt.ok && / (400|404) /.test(attempt.error))
    if (!attempt.ok) {
      if (done || !values.json) process.stderr.write(`pingfleet: ${attempt.error}\n`)
      shown = null
    } else if (values.json) {
      if (done) process.stdout.write(attempt.raw + '\n')
    } else if (done || attempt.answer.verdict !== shown) {
      process.stdout.write(render(attempt.answer))
      shown = attempt.answer.verdict
    } else {
      const s = attempt.answer.summary
      // A gate waiting out its passFor says how far along it is.
      const stability = attempt.answer.checks.find(c => c.criterion === 'passFor' && c.verdict !== 'pass')
      const progress = stability === undefined ? '' : `; passing for ${stability.observed ?? 0} s of ${stability.threshold} s`
      process.stdout.write(`gate ${attempt.answer.name}: still ${shown.toUpperCase()} at ${attempt.answer.evaluatedAt} (${s.pass ?? 0} pass, ${s.fail ?? 0} fail, ${s.insufficient_data ?? 0} insufficient${progress})\n`)
    }
    if (done) return attempt.ok ? EXIT[attempt.answer.verdict] : EXIT.unreachable
    await new Promise(resolve => setTimeout(resolve, intervalMs))
  }
}

export async function main (argv: string[]): Promise<number> {
  const [command, ...rest] = argv
  try {
    if (command === 'gate') return await gate(rest)
    if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
      process.stdout.write(USAGE)
      return command === undefined ? EXIT.unreachable : 0
    }
    throw new UsageError(`unknown command ${JSON.stringify(command)}`)
  } catch (err) {
    const usage = err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS') === true
    process.stderr.write(`pingfleet: ${(err as Error).message}\n${usage ? 'Run pingfleet --help for usage.\n' : ''}`)
    return EXIT.unreachable
  }
}

if (import.meta.main) process.exitCode = await main(process.argv.slice(2))
