import t from 'tap'
import { decodeAgentMessage, decodeAggregatorMessage, PROTOCOL_VERSION, type Report } from '../src/index.ts'

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
