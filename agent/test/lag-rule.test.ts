import t from 'tap'
import { PROBE_KIND_NAMES } from '@pingfleet/protocol'
import { DEFAULT_TURNS, isExcusable, isLagged, PROBE_TURNS, turnsOf } from '../src/lag-rule.ts'
import type { ProbeResult } from '../src/probe.ts'

const quiet = { stalled: false, delayBoundMs: 0, timeoutMs: 2000 }
const timeout: ProbeResult = { ok: false, reason: 'CONNECT_TIMEOUT', raw: 'TIMEOUT', seconds: 2 }

t.test('a timeout is lagged only when the agent could have caused it', async t => {
  t.equal(isLagged(timeout, quiet), false, 'no stall: an error')
  t.equal(isLagged(timeout, { stalled: true, delayBoundMs: 285, timeoutMs: 2000 }), false, 'three 95 ms freezes cannot explain 2 s')
  t.equal(isLagged(timeout, { stalled: true, delayBoundMs: 3000, timeoutMs: 2000 }), true, 'a 3 s freeze can')
  t.equal(isLagged(timeout, { stalled: true, delayBoundMs: 2000, timeoutMs: 2000 }), true, 'reaching the timeout is enough')
  t.equal(isLagged({ ...timeout, heldMs: 30 }, { stalled: true, delayBoundMs: 285, timeoutMs: 2000 }), false, 'a threadpool canary 30 ms late cannot either')
  t.equal(isLagged({ ...timeout, heldMs: 1800 }, { stalled: true, delayBoundMs: 285, timeoutMs: 2000 }), true, 'a pool that held the probe most of its time can, with the stalls')
  const overloaded: ProbeResult = { ok: false, reason: 'AGENT_OVERLOADED', raw: 'THREADPOOL_SATURATED', seconds: 2 }
  t.equal(isLagged(overloaded, quiet), false, 'a saturated pool stays the agent\'s error')
  t.equal(isLagged(overloaded, { stalled: true, delayBoundMs: 2500, timeoutMs: 2000 }), true, 'unless the loop alone explains it')
})

t.test('failures that are not about time stand, whatever the stall', async t => {
  for (const reason of ['ECONNREFUSED', 'ECONNRESET', 'NXDOMAIN', 'BAD_RESPONSE', 'HTTP_5XX'] as const) {
    t.equal(isLagged({ ok: false, reason, raw: reason, seconds: 0.01 }, { stalled: true, delayBoundMs: 1e6, timeoutMs: 10 }), false, reason)
    t.equal(isExcusable(reason), false)
  }
})

t.test('a success is lagged when any stall overlapped it or the probe says so', async t => {
  const ok: ProbeResult = { ok: true, seconds: 0.01 }
  t.equal(isLagged(ok, quiet), false)
  t.equal(isLagged(ok, { ...quiet, stalled: true }), true)
  t.equal(isLagged({ ...ok, lagged: true }, quiet), true)
})

t.test('every probe kind has a turn count', async t => {
  for (const kind of PROBE_KIND_NAMES) t.ok(PROBE_TURNS[kind]! >= 1, kind)
  t.equal(turnsOf('pod'), 3)
  t.equal(turnsOf('nope' as never), DEFAULT_TURNS)
})
