import t from 'tap'
import { bucketIndex, MAX_BACKENDS_PER_CELL, PROTOCOL_VERSION, reportProblem, sparseTotal, type Report } from '@pingfleet/protocol'
import { Results } from '../src/results.ts'
import type { Target } from '../src/probe.ts'

const n2: Target = { kind: 'pod', id: 'n2' }
const n3: Target = { kind: 'pod', id: 'n3' }

function valid (window: ReturnType<Results['drain']>): string | null {
  const report: Report = { type: 'report', v: PROTOCOL_VERSION, seq: 1, ...window }
  return reportProblem(report)
}

t.test('aggregates counts, latencies and errors per (probe, target)', async t => {
  const results = new Results(1000)
  results.record(n2, { ok: true, seconds: 0.001 }, false)
  results.record(n2, { ok: true, seconds: 0.001 }, false)
  results.record(n2, { ok: true, seconds: 1.2 }, false)
  results.record(n2, { ok: false, reason: 'ECONNREFUSED', raw: 'ECONNREFUSED', seconds: 0.001 }, false)
  results.record(n2, { ok: false, reason: 'ECONNREFUSED', raw: 'ECONNREFUSED', seconds: 0.001 }, false)
  results.record(n2, { ok: false, reason: 'CONNECT_TIMEOUT', raw: 'UND_ERR_CONNECT_TIMEOUT', seconds: 2 }, false)
  results.record(n3, { ok: true, seconds: 0.002 }, false)
  results.record({ kind: 'mtu', id: 'n2' }, { ok: true, seconds: 0.002 }, false)
  const window = results.drain(6000)
  t.equal(window.start, 1000)
  t.equal(window.end, 6000)
  t.equal(window.cells.length, 3)
  const cell = window.cells.find(c => c.probe === 'pod' && c.target === 'n2')!
  t.equal(cell.count, 6)
  t.same(cell.latency, [bucketIndex(0.001), 2, bucketIndex(1.2), 1])
  t.same(cell.errors, [
    { reason: 'ECONNREFUSED', raw: 'ECONNREFUSED', count: 2 },
    { reason: 'CONNECT_TIMEOUT', raw: 'UND_ERR_CONNECT_TIMEOUT', count: 1 }
  ])
  t.equal(cell.lagged, undefined)
  t.equal(valid(window), null)
})

t.test('lagged samples keep their count but not their latency; excused timeouts are not errors', async t => {
  const results = new Results(0)
  results.record(n2, { ok: true, seconds: 0.3 }, true)
  results.record(n2, { ok: false, reason: 'RESPONSE_TIMEOUT', raw: 'TimeoutError', seconds: 2 }, true)
  results.record(n2, { ok: false, reason: 'ECONNREFUSED', raw: 'ECONNREFUSED', seconds: 0.001 }, true)
  results.record(n2, { ok: false, reason: 'RESPONSE_TIMEOUT', raw: 'TimeoutError', seconds: 2 }, false)
  results.record(n2, { ok: true, seconds: 0.001 }, false)
  const window = results.drain(10)
  const cell = window.cells[0]!
  t.equal(cell.count, 5)
  t.equal(cell.lagged, 2)
  t.equal(sparseTotal(cell.latency), 1)
  t.same(cell.errors, [
    { reason: 'ECONNREFUSED', raw: 'ECONNREFUSED', count: 1 },
    { reason: 'RESPONSE_TIMEOUT', raw: 'TimeoutError', count: 1 }
  ], 'a refused connection stands even when flagged; an unexcused timeout is an error')
  t.equal(valid(window), null)
})

t.test('drain starts a new window and forgets the old cells', async t => {
  const results = new Results(0)
  results.record(n2, { ok: true, seconds: 0.001 }, false)
  t.equal(results.drain(5).cells.length, 1)
  const empty = results.drain(9)
  t.same(empty, { start: 5, end: 9, cells: [] })
  // A clock stepping backwards never yields a window that ends before it starts.
  t.same(results.drain(3), { start: 9, end: 9, cells: [] })
})

t.test('distinct raw codes beyond the protocol limit fold into one entry', async t => {
  const results = new Results(0)
  for (let i = 0; i < 100; i++) results.record(n2, { ok: false, reason: 'OTHER', raw: `E${i}`, seconds: 0 }, false)
  results.record(n2, { ok: false, reason: 'OTHER', raw: 'x'.repeat(100), seconds: 0 }, false)
  const window = results.drain(1)
  const errors = window.cells[0]!.errors!
  t.equal(errors.length, 64)
  t.same(errors.at(-1), { reason: 'OTHER', raw: 'TOO_MANY_DISTINCT_ERRORS', count: 38 })
  t.equal(valid(window), null)
})

t.test('service cells count the backends that answered, lagged answers included', async t => {
  const vip: Target = { kind: 'service', id: '10.96.0.20:8081' }
  const results = new Results(0)
  results.record(vip, { ok: true, seconds: 0.001, backend: 'n1' }, false)
  results.record(vip, { ok: true, seconds: 0.001, backend: 'n2' }, false)
  results.record(vip, { ok: true, seconds: 0.2, backend: 'n1' }, true)
  results.record(vip, { ok: false, reason: 'CONNECT_TIMEOUT', raw: 'TIMEOUT', seconds: 2 }, false)
  results.record(n2, { ok: true, seconds: 0.001 }, false)
  const window = results.drain(10)
  t.same(window.cells.find(c => c.probe === 'service')!.backends, [{ node: 'n1', count: 2 }, { node: 'n2', count: 1 }])
  t.equal(window.cells.find(c => c.probe === 'pod')!.backends, undefined, 'no field where nothing names a backend')
  t.equal(valid(window), null)
})

t.test('a cell names at most MAX_BACKENDS_PER_CELL backends', async t => {
  const vip: Target = { kind: 'service', id: 'svc:80' }
  const results = new Results(0)
  for (let i = 0; i < MAX_BACKENDS_PER_CELL + 5; i++) results.record(vip, { ok: true, seconds: 0.001, backend: `n${i}` }, false)
  results.record(vip, { ok: true, seconds: 0.001, backend: 'n0' }, false)
  const window = results.drain(10)
  const backends = window.cells[0]!.backends!
  t.equal(backends.length, MAX_BACKENDS_PER_CELL)
  t.same(backends[0], { node: 'n0', count: 2 }, 'known backends keep counting')
  t.equal(valid(window), null)
})

t.test('slow handshakes (1 s or more: a SYN retransmit) are counted for connecting kinds only', async t => {
  const results = new Results(0)
  const ok = (connect: number) => ({ ok: true as const, seconds: connect + 0.001, phases: { connect } })
  results.record(n2, ok(0.002), false)
  results.record(n2, ok(1.003), false)
  results.record(n2, ok(3.01), false)
  results.record(n2, ok(0.999), false)
  results.record(n2, ok(1.5), true) // lagged: its timing is not trusted
  results.record(n2, { ok: false, reason: 'CONNECT_TIMEOUT', raw: 'TIMEOUT', seconds: 2 }, false)
  results.record(n3, ok(0.001), false)
  for (const kind of ['mtu', 'service', 'http', 'tcp'] as const) results.record({ kind, id: 'x' }, ok(1.2), false)
  results.record({ kind: 'dns-wire', id: 'x' }, ok(1.2), false)
  const window = results.drain(10)
  t.equal(window.cells.find(c => c.probe === 'pod' && c.target === 'n2')!.slowConnects, 2)
  t.equal(window.cells.find(c => c.target === 'n3')!.slowConnects, undefined, 'absent when there were none')
  for (const kind of ['mtu', 'service', 'http', 'tcp']) t.equal(window.cells.find(c => c.probe === kind)!.slowConnects, 1, kind)
  t.equal(window.cells.find(c => c.probe === 'dns-wire')!.slowConnects, undefined, 'no TCP handshake to read')
  t.equal(valid(window), null)
})

t.test('udp cells carry datagrams of every train; jitter only from trusted trains', async t => {
  const results = new Results(0)
  const udp: Target = { kind: 'udp', id: 'n2' }
  results.record(udp, { ok: true, seconds: 0.001, datagrams: { sent: 5, lost: 1, jitterUs: 40, jitterPairs: 2 } }, false)
  results.record(udp, { ok: true, seconds: 0.3, datagrams: { sent: 5, lost: 0, jitterUs: 9000, jitterPairs: 4 } }, true)
  results.record(udp, { ok: false, reason: 'UDP_NO_ECHO', raw: 'NO_ECHO', seconds: 2, datagrams: { sent: 5, lost: 5, jitterUs: 0, jitterPairs: 0 } }, false)
  results.record({ kind: 'udp', id: 'n3' }, { ok: false, reason: 'ECONNREFUSED', raw: 'ECONNREFUSED', seconds: 0, datagrams: { sent: 0, lost: 0, jitterUs: 0, jitterPairs: 0 } }, false)
  const window = results.drain(10)
  t.match(window.cells.find(c => c.target === 'n2'), { count: 3, sent: 15, lost: 6, jitterUs: 40, jitterPairs: 2, lagged: 1, errors: [{ reason: 'UDP_NO_ECHO', count: 1 }] })
  t.match(window.cells.find(c => c.target === 'n3'), { sent: 0, lost: 0, jitterUs: 0, jitterPairs: 0 })
  t.equal(valid(window), null)
})

t.test('phases: a histogram per phase from trusted successes, for phase kinds only', async t => {
  const results = new Results(0)
  const web: Target = { kind: 'http', id: 'https://example.com/' }
  const all = { dns: 0.002, connect: 0.004, tls: 0.01, firstByte: 0.02 }
  results.record(web, { ok: true, seconds: 0.04, phases: all }, false)
  results.record(web, { ok: true, seconds: 0.05, phases: { ...all, firstByte: 0.03 } }, false)
  results.record(web, { ok: true, seconds: 3, phases: { ...all, connect: 2.5 } }, true) // lagged: not trusted
  results.record(web, { ok: false, reason: 'TLS_ERROR', raw: 'CERT_HAS_EXPIRED', seconds: 0.02, phases: { dns: 0.002, connect: 0.004 } }, false)
  results.record(n2, { ok: true, seconds: 0.002, phases: { connect: 0.001, firstByte: 0.0005 } }, false)
  results.record(n3, { ok: false, reason: 'ECONNREFUSED', raw: 'ECONNREFUSED', seconds: 0.001, phases: {} }, false)
  results.record({ kind: 'dns-lookup', id: 'a.example' }, { ok: true, seconds: 0.003, phases: { dns: 0.003 } }, false)
  results.record({ kind: 'tcp', id: '10.0.0.1:5432' }, { ok: true, seconds: 0.001, phases: { connect: 0.001 } }, false)
  const window = results.drain(10)
  const cell = (probe: string) => window.cells.find(c => c.probe === probe && c.target !== 'n3')!
  t.same(cell('http').phases, {
    dns: [bucketIndex(0.002), 2],
    connect: [bucketIndex(0.004), 2],
    tls: [bucketIndex(0.01), 2],
    firstByte: [bucketIndex(0.02), 1, bucketIndex(0.03), 1]
  }, 'each phase on its own; the lagged success and the failure are not in them')
  t.same(cell('http').latency, [bucketIndex(0.04), 1, bucketIndex(0.05), 1], 'the total stays latency')
  t.same(cell('pod').phases, { connect: [bucketIndex(0.001), 1], firstByte: [bucketIndex(0.0005), 1] }, 'a phase not gone through is absent')
  t.same(cell('tcp').phases, { connect: [bucketIndex(0.001), 1] }, 'an IP literal: no dns')
  t.notOk('phases' in window.cells.find(c => c.target === 'n3')!, 'no field without a trusted success')
  t.notOk('phases' in cell('dns-lookup'), 'dns-lookup is not a phase kind: its latency is the lookup')
  t.equal(valid(window), null)
  // A new window starts without the old phases.
  results.record(web, { ok: true, seconds: 0.04, phases: { connect: 0.004 } }, false)
  t.same(results.drain(20).cells[0]!.phases, { connect: [bucketIndex(0.004), 1] })
})
