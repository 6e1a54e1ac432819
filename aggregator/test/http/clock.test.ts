// Field report 4 and its kind: no clock error on either side loses or misplaces accepted data.
// Reports carry ageMs (agent monotonic time since their window ended); the aggregator files them at
// receive time minus that age, measures each agent's clock offset from the difference to `end`,
// exports it per node and warns once. Everything goes through the websocket into the matrix.

import t from 'tap'
import type { Report } from '@pingfleet/protocol'
import { aggregator, captureLog, hello, RawAgent } from '../helpers.ts'

const MIN = 60_000
/** A total DNS outage: every lookup of the interval failed. */
const outage: Report['cells'] = [{ probe: 'dns-lookup', target: 'kubernetes.default@getaddrinfo', count: 20, latency: [], errors: [{ reason: 'LOOKUP_TIMEOUT', raw: 'ETIMEOUT', count: 20 }] }]

/** A report as an agent with the given clock offset sends it, `ageMs` after its window ended. */
function skewed (seq: number, trueEnd: number, offsetMs: number, ageMs: number | undefined, cells = outage): Report {
  const end = trueEnd + offsetMs
  const r: Report = { type: 'report', v: 1, seq, start: end - 5000, end, cells }
  if (ageMs !== undefined) r.ageMs = ageMs
  return r
}

async function agent (base: string, node = 'n1'): Promise<RawAgent> {
  const a = new RawAgent(base)
  await a.opened()
  a.send(hello(node, { cniplugin: 'aws' }))
  await a.waitFor(m => m.type === 'welcome')
  return a
}

async function deliver (a: RawAgent, r: Report): Promise<void> {
  a.send(r)
  await a.waitFor(m => m.type === 'ack' && m.seq === r.seq)
}

type Agg = Awaited<ReturnType<typeof aggregator>>
async function dnsSamples (agg: Agg, window: string): Promise<number> {
  const m = (await agg.app.inject(`/api/v1/matrix?probe=dns-lookup&groupBy=node&window=${window}`)).json() as { cells: Array<{ samples: number }> }
  return m.cells.reduce((sum, c) => sum + c.samples, 0)
}
async function metric (agg: Agg, pattern: RegExp): Promise<number | null> {
  const m = pattern.exec((await agg.app.inject('/metrics')).body)
  return m === null ? null : Number(m[1])
}
const expired = (agg: Agg): Promise<number | null> => metric(agg, /^pingfleet_ingest_expired_cells_total (\S+)$/m)
const offset = (agg: Agg, node = 'n1'): Promise<number | null> => metric(agg, new RegExp(`^pingfleet_node_clock_offset_seconds\\{node="${node}",group="aws"\\} (\\S+)$`, 'm'))

for (const behindMs of [3 * MIN, 20 * MIN]) {
  t.test(`an agent ${behindMs / MIN} min behind: its live outage is in the 1-minute matrix, its gate fails, the offset is exported and warned about once`, async t => {
    const { log, lines } = captureLog()
    const agg = await aggregator({ PINGFLEET_INTERVAL: '5s' }, undefined, log)
    t.teardown(() => agg.close())
    const a = await agent(agg.address())
    t.teardown(() => a.socket.close())
    for (let seq = 1; seq <= 3; seq++) await deliver(a, skewed(seq, Date.now(), -behindMs, 3))
    t.equal(await dnsSamples(agg, '1m'), 60, 'all three reports in the last minute')
    t.equal(await expired(agg), 0, 'nothing discarded as expired')
    const gate = (await agg.app.inject('/api/v1/gates/adhoc?probe=dns-lookup&src=aws&dst=*&window=1m&minSamples=10&maxErrorRatio=0.01')).json() as { verdict: string }
    t.equal(gate.verdict, 'fail', 'the outage fails the gate')
    const seconds = (await offset(agg))!
    t.ok(Math.abs(seconds + behindMs / 1000) < 2, `offset ${seconds} s is about -${behindMs / 1000} s`)
    const [entry] = (await agg.app.inject('/api/v1/agents')).json().agents
    t.ok(Math.abs(entry.clockOffsetSeconds + behindMs / 1000) < 2, 'and shown in /api/v1/agents')
    const warned = lines.filter(l => l.code === 'PINGFLEET_ERR_CLOCK_OFFSET')
    t.equal(warned.length, 1, 'one warning per connection')
    t.match(warned[0], { level: 40, node: 'n1' })
  })
}

t.test('an agent 10 min ahead: live reports land now, buffered ones at their true time, not all in the current slot', async t => {
  const agg = await aggregator({ PINGFLEET_INTERVAL: '5s' })
  t.teardown(() => agg.close())
  const a = await agent(agg.address())
  t.teardown(() => a.socket.close())
  const now = Date.now()
  // Produced 4 and 3 minutes ago while the aggregator was unreachable, then one live report.
  await deliver(a, skewed(1, now - 4 * MIN, 10 * MIN, 4 * MIN))
  await deliver(a, skewed(2, now - 3 * MIN, 10 * MIN, 3 * MIN))
  await deliver(a, skewed(3, now, 10 * MIN, 0))
  t.equal(await dnsSamples(agg, '1m'), 20, 'only the live report is in the last minute')
  t.equal(await dnsSamples(agg, '5m'), 60, 'the re-sent ones are in the last five')
  t.ok(Math.abs((await offset(agg))! - 600) < 2, 'offset about +600 s')
})

t.test('an agent 3 min behind replays an outage\'s buffer: each report lands at its true time, corrected by the offset', async t => {
  const agg = await aggregator({ PINGFLEET_INTERVAL: '5s' })
  t.teardown(() => agg.close())
  const a = await agent(agg.address())
  t.teardown(() => a.socket.close())
  const now = Date.now()
  // Reports from 10, 8, 2 and 0.5 minutes ago (old slots are minute- and five-minute-wide, so the
  // ages keep clear of window edges).
  const ages = [10 * MIN, 8 * MIN, 2 * MIN, MIN / 2]
  for (const [i, age] of ages.entries()) await deliver(a, skewed(i + 1, now - age, -3 * MIN, age))
  t.equal(await dnsSamples(agg, '1m'), 20, 'the last minute holds only the report from 30 s ago')
  t.equal(await dnsSamples(agg, '3m'), 40, 'three minutes: also the one from 2 min ago')
  t.equal(await dnsSamples(agg, '15m'), 80, 'all of them are kept')
  t.equal(await expired(agg), 0)
})

t.test('the aggregator\'s clock jumps 20 min forward mid-connection: later reports still land in the current minute', async t => {
  let jump = 0
  const agg = await aggregator({ PINGFLEET_INTERVAL: '5s' }, () => Date.now() + jump)
  t.teardown(() => agg.close())
  const a = await agent(agg.address())
  t.teardown(() => a.socket.close())
  await deliver(a, skewed(1, Date.now(), 0, 2))
  t.equal(await dnsSamples(agg, '1m'), 20)
  jump = 20 * MIN
  // Let the store's once-a-second tick see the new time.
  await new Promise(resolve => setTimeout(resolve, 1200))
  await deliver(a, skewed(2, Date.now(), 0, 2))
  t.equal(await dnsSamples(agg, '1m'), 20, 'the report after the jump is in the last minute')
  t.equal(await expired(agg), 0, 'and was not discarded')
  // The estimate is the largest of the last 8 samples (delays only ever lower a sample), so a step
  // down is followed within 8 reports.
  for (let seq = 3; seq <= 9; seq++) await deliver(a, skewed(seq, Date.now(), 0, 2))
  t.ok(Math.abs((await offset(agg))! + 1200) < 2, 'the agent now reads 20 min behind the aggregator')
})

t.test('a report without ageMs (an older agent) is filed at its own end time, as before', async t => {
  const agg = await aggregator({ PINGFLEET_INTERVAL: '5s' })
  t.teardown(() => agg.close())
  const a = await agent(agg.address())
  t.teardown(() => a.socket.close())
  await deliver(a, skewed(1, Date.now() - 2 * MIN, 0, undefined))
  t.equal(await dnsSamples(agg, '1m'), 0)
  t.equal(await dnsSamples(agg, '3m'), 20)
  t.equal(await offset(agg), null, 'no offset is measured')
})

t.test('an empty late report, then a late report with cells for the same closed slot: both acked and filed', async t => {
  // The empty one opened a past slot that the store then compacted to zero words; the next report
  // for that slot hung the aggregator (found by the protocol fuzzer).
  const agg = await aggregator({ PINGFLEET_INTERVAL: '5s' })
  t.teardown(() => agg.close())
  const a = await agent(agg.address())
  t.teardown(() => a.socket.close())
  const at = Date.now() - 30_000
  await deliver(a, skewed(1, at, 0, 30_000, []))
  await new Promise(resolve => setTimeout(resolve, 1200)) // a store tick compacts closed slots
  await deliver(a, skewed(2, at, 0, Date.now() - at))
  t.equal(await dnsSamples(agg, '1m'), 20)
})
