import t from 'tap'
import { decodeAgentMessage, decodeAggregatorMessage, MAX_BACKENDS_PER_CELL, PROTOCOL_VERSION, type Report } from '../src/index.ts'

const hello = {
  type: 'hello', v: PROTOCOL_VERSION, node: 'n1', pod: 'agent-x', podIp: '127.0.0.2', port: 8081,
  labels: { cniplugin: 'aws' }, version: '0.1.0', bootId: 'abcdef0123'
}
const report: Report = {
  type: 'report', v: PROTOCOL_VERSION, seq: 1, start: 1000, end: 6000,
  cells: [{ probe: 'pod', target: 'n2', count: 3, latency: [300, 1, 301, 1], errors: [{ reason: 'ECONNREFUSED', raw: 'ECONNREFUSED', count: 1 }] }]
}

t.test('valid messages decode', async t => {
  t.same(decodeAgentMessage(JSON.stringify(hello)), hello)
  t.same(decodeAgentMessage(JSON.stringify(report)), report)
  t.same(decodeAggregatorMessage(JSON.stringify({ type: 'ack', v: 1, seq: 3 })), { type: 'ack', v: 1, seq: 3 })
})

const bad: Array<[string, string, RegExp]> = [
  ['not json', '{', /PROTOCOL_JSON/],
  ['no type', '{}', /PROTOCOL_TYPE/],
  ['aggregator type from an agent', JSON.stringify({ type: 'ack', v: 1, seq: 1 }), /PROTOCOL_TYPE/],
  ['wrong version', JSON.stringify({ ...hello, v: 2 }), /PROTOCOL_SCHEMA/],
  ['extra field', JSON.stringify({ ...hello, admin: true }), /PROTOCOL_SCHEMA/],
  ['unknown probe', JSON.stringify({ ...report, cells: [{ ...report.cells[0], probe: 'icmp' }] }), /PROTOCOL_SCHEMA/],
  ['unknown reason', JSON.stringify({ ...report, cells: [{ ...report.cells[0], errors: [{ reason: 'OOPS', raw: 'x', count: 1 }] }] }), /PROTOCOL_SCHEMA/],
  ['seq zero', JSON.stringify({ ...report, seq: 0 }), /PROTOCOL_SCHEMA/],
  ['histogram out of order', JSON.stringify({ ...report, cells: [{ probe: 'pod', target: 'n2', count: 2, latency: [5, 1, 4, 1] }] }), /PROTOCOL_SEMANTIC/],
  ['more samples than count', JSON.stringify({ ...report, cells: [{ probe: 'pod', target: 'n2', count: 1, latency: [5, 2] }] }), /PROTOCOL_SEMANTIC/],
  ['time runs backwards', JSON.stringify({ ...report, start: 7000 }), /PROTOCOL_SEMANTIC/]
]
for (const [what, text, code] of bad) {
  t.test(`rejects ${what}`, async t => {
    t.throws(() => decodeAgentMessage(text), { code })
  })
}

t.test('service cells may name the backends that answered', async t => {
  const service: Report = {
    ...report,
    cells: [{
      probe: 'service', target: '10.96.0.20:8081', count: 4, latency: [300, 3],
      errors: [{ reason: 'CONNECT_TIMEOUT', raw: 'TIMEOUT', count: 1 }],
      backends: [{ node: 'n1', count: 2 }, { node: 'n2', count: 1 }]
    }]
  }
  t.same(decodeAgentMessage(JSON.stringify(service)), service)
  t.same((decodeAgentMessage(JSON.stringify(report)) as Report).cells[0]!.backends, undefined, 'the field is optional')

  const cell = service.cells[0]!
  const variant = (backends: unknown): string => JSON.stringify({ ...service, cells: [{ ...cell, backends }] })
  t.throws(() => decodeAgentMessage(variant([{ node: 'n1', count: 4 }])), { code: /PROTOCOL_SEMANTIC/ }, 'answers plus errors may not exceed count')
  t.throws(() => decodeAgentMessage(variant([{ node: 'n1', count: 0 }])), { code: /PROTOCOL_SCHEMA/ }, 'a backend that never answered is left out')
  t.throws(() => decodeAgentMessage(variant([{ node: '', count: 1 }])), { code: /PROTOCOL_SCHEMA/ })
  t.throws(() => decodeAgentMessage(variant([{ node: 'n1', count: 1, pod: 'x' }])), { code: /PROTOCOL_SCHEMA/ })
  const many = Array.from({ length: MAX_BACKENDS_PER_CELL + 1 }, (_, i) => ({ node: `n${i}`, count: 1 }))
  t.throws(() => decodeAgentMessage(JSON.stringify({ ...service, cells: [{ ...cell, count: 10_000, backends: many }] })), { code: /PROTOCOL_SCHEMA/ }, 'bounded by maxItems')
})

t.test('a report may carry the agent\'s CPU throttling; reports without it stay valid', async t => {
  const cpu = { periods: 600, throttledPeriods: 41, throttledUsec: 3_895_000 }
  const withCpu: Report = { ...report, cpu }
  t.same(decodeAgentMessage(JSON.stringify(withCpu)), withCpu)
  t.same((decodeAgentMessage(JSON.stringify(report)) as Report).cpu, undefined, 'the field is optional')
  t.throws(() => decodeAgentMessage(JSON.stringify({ ...report, cpu: { ...cpu, throttledUsec: -1 } })), { code: /PROTOCOL_SCHEMA/ })
  t.throws(() => decodeAgentMessage(JSON.stringify({ ...report, cpu: { periods: 1, throttledPeriods: 0 } })), { code: /PROTOCOL_SCHEMA/ })
  t.throws(() => decodeAgentMessage(JSON.stringify({ ...report, cpu: { ...cpu, usage: 1 } })), { code: /PROTOCOL_SCHEMA/ })
})
