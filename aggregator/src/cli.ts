#!/usr/bin/env node
// The pingfleet CLI: `pingfleet gate <name>` asks the aggregator for a gate's verdict and turns
// it into an exit code, so a migration script can wait for a batch to be healthy; `pingfleet
// diagnose` prints the active findings (what broke, where, since when) in plain language.

import { parseArgs } from 'node:util'
import { parseDuration } from '@pingfleet/protocol'

export const EXIT = { pass: 0, fail: 1, insufficient_data: 2, unreachable: 3 } as const

/** `pingfleet diagnose` exit codes, on gate's scale: 0 healthy, 1 a fault, 2 not judged yet, 3 no answer. */
export const DIAGNOSE_EXIT = { none: 0, active: 1, notEvaluated: 2, unreachable: 3 } as const

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

Usage: pingfleet diagnose --url <aggregator> [--timeout <duration>] [--json]

Prints the active findings (GET /api/v1/findings), worst first: each one's summary, its evidence
and the fleet events of the same minutes (GET /api/v1/incidents). Exits with:
  0  nothing active
  1  at least one finding is active
  2  the aggregator has not evaluated findings yet (it just started)
  3  no answer: aggregator unreachable, bad answer or bad usage

Options:
  --url <url>          aggregator base URL (default: $PINGFLEET_URL)
  --timeout <d>        time limit of one request (default 10s)
  --json               print the aggregator's /api/v1/findings answer as it is
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

type Attempt<T = GateAnswer> = { ok: true, answer: T, raw: string } | { ok: false, error: string }

class UsageError extends Error {}

function isAnswer (value: unknown): value is GateAnswer {
  const v = value as Partial<GateAnswer> | null
  return typeof v === 'object' && v !== null && typeof v.name === 'string' && Array.isArray(v.checks) &&
    (v.verdict === 'pass' || v.verdict === 'fail' || v.verdict === 'insufficient_data')
}

/**
 * GETs `url` and reads a JSON answer that `valid` accepts (default: a gate verdict); any other
 * outcome is `{ok: false}` with one line saying why (unreachable, a non-200 with its code, not the
 * expected answer, called `what`).
 */
async function ask<T = GateAnswer> (url: string, timeoutMs: number, valid: (v: unknown) => v is T = isAnswer as (v: unknown) => v is T, what = 'a gate verdict'): Promise<Attempt<T>> {
  let response: Response
  try {
    response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), headers: { accept: 'application/json' } })
  } catch (err) {
    const cause = (err as { cause?: { code?: string, message?: string } }).cause
    return { ok: false, error: `aggregator unreachable at ${url}: ${cause?.code ?? cause?.message ?? (err as Error).message}` }
  }
  const raw = await response.text()
  if (response.status !== 200) {
    let message = raw.trim() === '' ? '(an empty body: is this a pingfleet aggregator?)' : raw.slice(0, 300)
    try {
      const body = JSON.parse(raw) as { code?: string, message?: string }
      if (body.code !== undefined) message = `${body.code}: ${body.message ?? ''}`
    } catch {}
    return { ok: false, error: `aggregator answered ${response.status} for ${url}: ${message}` }
  }
  try {
    const body = JSON.parse(raw) as unknown
    if (valid(body)) return { ok: true, answer: body, raw }
  } catch {}
  return { ok: false, error: `aggregator answered ${url} with something that is not ${what}` }
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

/** The parts of a /api/v1/findings answer diagnose reads. */
interface FindingsAnswer {
  evaluatedAt: string | null
  active: number
  findings: DiagnosedFinding[]
}

interface DiagnosedFinding {
  id: string
  kind: string
  state: 'active' | 'resolved'
  firstSeen: string
  summary: string
  score: number
  scoreBasis: string
  evidence: Array<{
    probe: string
    scope: string
    samples: number
    errors: number
    errorRatio: number | null
    agreeing?: { count: number, of: number }
    reasons: Array<{ reason: string, raw: string, count: number }>
  }>
}

interface IncidentsAnswer { incidents: Array<{ id: string, end: string | null, events: Array<{ at: string, text: string }> }> }

function isFindings (value: unknown): value is FindingsAnswer {
  const v = value as Partial<FindingsAnswer> | null
  return typeof v === 'object' && v !== null && Array.isArray(v.findings) && typeof v.active === 'number' &&
    (v.evaluatedAt === null || typeof v.evaluatedAt === 'string')
}

function isIncidents (value: unknown): value is IncidentsAnswer {
  const v = value as Partial<IncidentsAnswer> | null
  return typeof v === 'object' && v !== null && Array.isArray(v.incidents)
}

const percent = (ratio: number): string => `${String(Number((ratio * 100).toPrecision(3)))}%`

/**
 * The active findings of `a` in plain language, worst first as the aggregator sorts them: each
 * summary, then its evidence (figures, agreeing peers, dominant reasons), its score, and the fleet
 * events `events` holds for it (by finding id).
 */
export function renderFindings (a: FindingsAnswer, events: ReadonlyMap<string, string[]> = new Map()): string {
  const active = a.findings.filter(f => f.state === 'active')
  const resolved = a.findings.length - active.length
  const recent = resolved === 0 ? '' : `; ${resolved} resolved recently`
  if (active.length === 0) return `no active findings at ${a.evaluatedAt ?? '-'}${recent}\n`
  const lines = [`${active.length} active finding${active.length === 1 ? '' : 's'} at ${a.evaluatedAt ?? '-'}${recent}, worst first:`]
  for (const f of active) {
    lines.push('', `${f.kind}: ${f.summary}`)
    for (const e of f.evidence) {
      const ratio = e.errorRatio === null ? 'no samples' : `${e.errors} of ${e.samples} failed (${percent(e.errorRatio)})`
      const agree = e.agreeing === undefined ? '' : `, ${e.agreeing.count} of ${e.agreeing.of} agree`
      const reasons = e.reasons.map(r => `${r.reason}${r.raw !== '' && r.raw !== r.reason ? ` (${r.raw})` : ''} x${r.count}`).join(', ')
      lines.push(`    ${e.probe} ${e.scope}: ${ratio}${agree}${reasons === '' ? '' : `; ${reasons}`}`)
    }
    lines.push(`    score ${Number(f.score.toFixed(2))}: ${f.scoreBasis}`)
    for (const text of events.get(f.id) ?? []) lines.push(`    fleet: ${text}`)
  }
  return lines.join('\n') + '\n'
}

async function diagnose (argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      url: { type: 'string' },
      timeout: { type: 'string', default: '10s' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false }
    }
  })
  if (values.help) {
    process.stdout.write(USAGE)
    return 0
  }
  if (positionals.length !== 0) throw new UsageError('diagnose takes no arguments')
  const base = values.url ?? process.env.PINGFLEET_URL
  if (base === undefined || !/^https?:\/\//.test(base)) throw new UsageError('--url must be the aggregator\'s http(s) base URL')
  const timeoutMs = parseDuration(values.timeout)
  if (timeoutMs === null) throw new UsageError(`--timeout ${JSON.stringify(values.timeout)} is not a duration such as 30s, 10m or 1h`)
  const root = base.replace(/\/+$/, '')
  const attempt = await ask(`${root}/api/v1/findings`, timeoutMs, isFindings, 'a findings answer')
  if (!attempt.ok) {
    process.stderr.write(`pingfleet: ${attempt.error}\n`)
    return DIAGNOSE_EXIT.unreachable
  }
  const answer = attempt.answer
  const code = answer.evaluatedAt === null ? DIAGNOSE_EXIT.notEvaluated : answer.active > 0 ? DIAGNOSE_EXIT.active : DIAGNOSE_EXIT.none
  if (values.json) {
    process.stdout.write(attempt.raw + '\n')
    return code
  }
  if (answer.evaluatedAt === null) {
    process.stdout.write('findings not evaluated yet: the aggregator has just started; try again in an interval\n')
    return code
  }
  // The fleet events of the same minutes, from each active finding's open incident.
  const events = new Map<string, string[]>()
  if (answer.active > 0) {
    const incidents = await ask(`${root}/api/v1/incidents?since=1h`, timeoutMs, isIncidents, 'an incidents answer')
    if (!incidents.ok) {
      process.stderr.write(`pingfleet: ${incidents.error}\n`)
      return DIAGNOSE_EXIT.unreachable
    }
    for (const i of incidents.answer.incidents) {
      if (i.end === null) events.set(i.id.slice(0, i.id.lastIndexOf('@')), i.events.map(e => e.text))
    }
  }
  process.stdout.write(renderFindings(answer, events))
  return code
}

export async function main (argv: string[]): Promise<number> {
  const [command, ...rest] = argv
  try {
    if (command === 'gate') return await gate(rest)
    if (command === 'diagnose') return await diagnose(rest)
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
