import t from 'tap'
import { resolveHost } from '../../src/layers/resolve.ts'
import { LookupPool } from '../../src/lookup-pool.ts'

const pool = new LookupPool()

t.test('an IP literal passes through: no lookup, no dns phase', async t => {
  t.same(await resolveHost(pool, '10.0.0.1', 0, AbortSignal.timeout(5000)), { ok: true, address: '10.0.0.1', family: 4, phases: {}, detail: { address: '10.0.0.1' }, trust: {} })
  t.match(await resolveHost(pool, '::1', 0, AbortSignal.timeout(5000)), { ok: true, address: '::1', family: 6, phases: {} })
})

// /etc/hosts answers localhost for IPv4 without DNS traffic.
t.test('a name is looked up under the pool and timed', async t => {
  t.match(await resolveHost(pool, 'localhost', 4, AbortSignal.timeout(5000)), { ok: true, address: /^127\./, family: 4, phases: { dns: Number }, detail: { address: /^127\./ } })
})

t.test('a lookup failure is already the probe result', async t => {
  t.match(await resolveHost(pool, 'localhost', 4, AbortSignal.abort()), { ok: false, result: { ok: false, reason: /^(LOOKUP_TIMEOUT|AGENT_OVERLOADED)$/ } })
})
