// Gates that cannot flap (passFor) and the status form's brief answer (view=brief), issue 16:
// the tracker on its own, then through a named gate over the real websocket and HTTP routes with a
// fake clock.

import t from 'tap'
import { mock } from 'node:test'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { bucketIndex, type Cell } from '@pingfleet/protocol'
import type { GateResult, Verdict } from '../../src/gates/eval.ts'
import { applyStability } from '../../src/gates/stability.ts'
import { SCOPES_LIMIT } from '../../src/gates/monitor.ts'
import { BRIEF_IDS } from '../../src/gates/brief.ts'
import { aggregator, hello, RawAgent, report } from '../helpers.ts'

function result (verdict: Verdict): GateResult {
  const at = new Date(0).toISOString()
  return {
    name: 'g', description: '', verdict, evaluatedAt: at, window: '1m', from: at, to: at, maxStaleness: '15s',
    summary: { pass: verdict === 'pass' ? 1 : 0, fail: verdict === 'fail' ? 1 : 0, insufficient_data: verdict === 'insufficient_data' ? 1 : 0 },
    skipped: [],
    checks: [{ id: 'pod aws->cilium maxErrorRatio', criterion: 'maxErrorRatio', verdict, observed: 0, threshold: 0, samples: 10, window: '1m', detail: '' }]
  }
}

t.test('passFor: a pass counts once every evaluation passed for that long; anything else restarts the clock', async t => {
  const clock = { passingSince: null }
  const seen = (verdict: Verdict, at: number): [Verdict, number | null] => {
    const r = applyStability(clock, 120_000, result(verdict), at)
    const check = r.checks.find(c => c.criterion === 'passFor')!
    t.equal(r.summary.pass + r.summary.fail + r.summary.insufficient_data, r.checks.length, 'the summary counts the passFor check too')
    return [r.verdict, check.observed]
  }
  t.same(seen('pass', 0), ['insufficient_data', 0], 'a first pass is not yet a pass')
  t.same(seen('pass', 60_000), ['insufficient_data', 60])
  t.same(seen('fail', 70_000), ['fail', 0], 'a fail is a fail, and restarts the clock')
  t.same(seen('pass', 80_000), ['insufficient_data', 0])
  t.same(seen('insufficient_data', 90_000), ['insufficient_data', 0], 'insufficient data restarts it too')
  t.same(seen('pass', 100_000), ['insufficient_data', 0])
  t.same(seen('pass', 219_999), ['insufficient_data', 119])
  t.same(seen('pass', 220_000), ['pass', 120], 'two minutes of passes without a break: pass')
  t.same(seen('pass', 400_000), ['pass', 300])
  t.match(applyStability({ passingSince: 0 }, 120_000, result('pass'), 40_000).checks.at(-1), { window: null, detail: /40 s of the 2m required/ })
  t.equal(applyStability({ passingSince: null }, 0, result('pass'), 0).checks.length, 1, 'without passFor the result is untouched')
})

t.test('a named gate with passFor over the websocket and HTTP, and the brief status answer', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'pingfleet-gate-stability-'))
  const gatesFile = join(dir, 'gates.yaml')
  writeFileSync(gatesFile, `
gates:
  - name: steady
    window: 30s
    minSamples: 1
    maxStaleness: 1h
    passFor: 20s
    rules:
      - { probe: pod, src: aws, dst: cilium, maxErrorRatio: 0 }
      - { probe: pod, src: aws, dst: cilium, maxP99: 1s }
`)
  let clock = Date.UTC(2026, 0, 1, 12, 0, 0)
  // The monitor's every-interval evaluations run when the test ticks, on the fake clock.
  mock.timers.enable({ apis: ['setInterval'] })
  const agg = await aggregator({ PINGFLEET_GATES_FILE: gatesFile, PINGFLEET_HEARTBEAT: '1h', PINGFLEET_PEER_TTL: '1h' }, () => clock)
  t.teardown(async () => {
    await agg.close()
    mock.timers.reset()
  })
  const agent = new RawAgent(agg.address())
  await agent.opened()
  agent.send(hello('a1', { cniplugin: 'aws' }))
  await agent.waitFor(m => m.type === 'welcome')
  const c1 = new RawAgent(agg.address())
  await c1.opened()
  c1.send(hello('c1', { cniplugin: 'cilium' }))
  await c1.waitFor(m => m.type === 'welcome')
  let seq = 0
  let seqC1 = 0
  const send = async (failed: number): Promise<void> => {
    const cell: Cell = { probe: 'pod', target: 'c1', count: 5, latency: failed < 5 ? [bucketIndex(0.002), 5 - failed] : [] }
    if (failed > 0) cell.errors = [{ reason: 'ECONNREFUSED', raw: 'ECONNREFUSED', count: failed }]
    const n = ++seq
    agent.send(report(n, clock, [cell]))
    await agent.waitFor(m => m.type === 'ack' && m.seq === n)
    // c1 reports too (healthy toward a1), so a gate scoped to c1 has a covered node.
    const m = ++seqC1
    c1.send(report(m, clock, [{ probe: 'pod', target: 'a1', count: 5, latency: [bucketIndex(0.002), 5] }]))
    await c1.waitFor(x => x.type === 'ack' && x.seq === m)
  }
  const gate = async (path = '/api/v1/gates/steady'): Promise<{ verdict: string, checks: Array<{ id: string, verdict: string, observed: number | null }> }> =>
    (await agg.app.inject(path)).json()

  // One evaluation every 5 s of fake time, as the monitor would do.
  const verdicts: string[] = []
  for (let i = 0; i < 6; i++) {
    clock += 5000
    await send(i === 2 ? 5 : 0)
    verdicts.push((await gate()).verdict)
  }
  // healthy, healthy, a failing report (the 30 s window keeps failing after it), …
  t.same(verdicts.slice(0, 3), ['insufficient_data', 'insufficient_data', 'fail'], 'passes that have not lasted 20 s are not a pass; the fail shows at once')
  const answer = await gate()
  t.match(answer.checks.find(c => c.id === 'passFor'), { verdict: 'insufficient_data', observed: 0 }, 'the window still holds the failure: the clock has not started')

  // Past the window the failure drops out; 20 s of passes later the gate passes.
  const passing: Array<[number, string]> = []
  for (let i = 0; i < 12; i++) {
    clock += 5000
    await send(0)
    const g = await gate()
    passing.push([g.checks.find(c => c.id === 'passFor')!.observed!, g.verdict])
  }
  const firstPass = passing.findIndex(([, v]) => v === 'pass')
  t.ok(firstPass > 0, 'the gate passes in the end')
  t.equal(passing[firstPass]![0], 20, 'exactly when it has passed for passFor')
  t.ok(passing.slice(0, firstPass).every(([, v]) => v !== 'pass'), 'never before')
  t.same(passing.slice(firstPass - 4, firstPass + 1), [[0, 'insufficient_data'], [5, 'insufficient_data'], [10, 'insufficient_data'], [15, 'insufficient_data'], [20, 'pass']],
    'once the failure has left the window: insufficient while the clock runs, with how long it has run')

  const history = (await agg.app.inject('/api/v1/gates/steady/history')).json() as { transitions: Array<{ verdict: string }> }
  t.same(history.transitions.map(x => x.verdict), ['insufficient_data', 'fail', 'insufficient_data', 'pass'], 'the history shows the stabilised verdicts')

  // Reads of many other scopes do not touch the gate's own clock.
  const before = (await gate()).checks.find(c => c.id === 'passFor')!.observed!
  for (let i = 0; i < SCOPES_LIMIT * 3; i++) await gate(`/api/v1/gates/steady?nodes=elsewhere-${i}`)
  clock += 5000
  await send(0)
  t.match((await gate()).checks.find(c => c.id === 'passFor'), { verdict: 'pass', observed: before + 5 }, 'the gate\'s clock runs on through a burst of scoped reads')

  // A scoped read keeps its own clock: it starts at its first read …
  const scoped = await gate('/api/v1/gates/steady?nodes=c1')
  t.match(scoped.checks.find(c => c.id === 'passFor'), { verdict: 'insufficient_data', observed: 0 })
  t.equal(scoped.checks.filter(c => c.verdict !== 'pass').map(c => c.id).join(), 'passFor', 'the scope passes every other check: only its clock holds it')
  t.match((await gate('/api/v1/gates/steady?nodes=c1,c1')).checks.find(c => c.id === 'passFor'), { observed: 0 }, 'one clock however the scope is written')
  // … and runs between reads: a failure nobody read still restarts it.
  for (let i = 0; i < 16; i++) {
    clock += 5000
    await send(i === 2 ? 5 : 0)
    mock.timers.tick(1000) // the monitor's interval (PINGFLEET_INTERVAL=1s): gates and live scopes evaluated
  }
  const later = (await gate('/api/v1/gates/steady?nodes=c1')).checks.find(c => c.id === 'passFor')!
  t.ok(later.observed! > 0 && later.observed! <= 80 - 15 - 30, `the scope's clock restarted when the unread failure left the window (${later.observed} s, read 80 s after the first)`)

  // The brief status answer, failing: ids of the checks that did not pass, and where the evidence is.
  clock += 5000
  await send(5)
  const status = await agg.app.inject({ method: 'POST', url: '/api/v1/gates/steady/status?view=brief', payload: { name: 'podinfo', namespace: 'test', phase: '', checksum: 'x' } })
  t.equal(status.statusCode, 412)
  t.ok(status.body.length <= 512, `brief answer is ${status.body.length} bytes`)
  t.match(status.json(), { name: 'steady', verdict: 'fail', failing: ['pod aws->cilium maxErrorRatio'], more: 0, evidence: '/api/v1/gates/steady' })
  t.ok(status.json().insufficient.includes('passFor'))
  const full = await agg.app.inject('/api/v1/gates/steady/status')
  t.equal(full.statusCode, 412)
  t.ok(full.json().checks.length > 0, 'without view the status form answers in full, as before')
  const scopedBrief = await agg.app.inject('/api/v1/gates/steady/status?nodes=c1&view=brief')
  t.equal(scopedBrief.statusCode, 412)
  t.equal(scopedBrief.json().evidence, '/api/v1/gates/steady?nodes=c1', 'the evidence path keeps the scope')
  const bad = await agg.app.inject('/api/v1/gates/steady/status?view=short')
  t.equal(bad.statusCode, 400, 'an unknown view is refused')
  t.equal(BRIEF_IDS, 3)
})
