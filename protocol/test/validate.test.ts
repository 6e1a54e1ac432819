import t from 'tap'
import { Ajv } from 'ajv'
import {
  decodeAgentMessage, decodeAggregatorMessage, downgradeReport, MAX_BACKENDS_PER_CELL, needsDowngrade, parseFeatures,
  PROBE_KIND_NAMES, PROTOCOL_VERSION, REPORT_FEATURE_NAMES, reportSchema, type Report
} from '../src/index.ts'

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

t.test('loss fields: slowConnects on connecting kinds, datagrams on udp cells; optional and checked', async t => {
  const cells: Report['cells'] = [
    { probe: 'pod', target: 'n2', count: 3, latency: [300, 3], slowConnects: 1 },
    { probe: 'udp', target: 'n2', count: 2, latency: [300, 1], errors: [{ reason: 'UDP_NO_ECHO', raw: 'NO_ECHO', count: 1 }], sent: 10, lost: 6, jitterUs: 120, jitterPairs: 3 }
  ]
  const withLoss: Report = { ...report, cells }
  t.same(decodeAgentMessage(JSON.stringify(withLoss)), withLoss)
  const variant = (i: number, patch: object): string => JSON.stringify({ ...withLoss, cells: cells.map((c, j) => j === i ? { ...c, ...patch } : c) })
  t.throws(() => decodeAgentMessage(variant(0, { slowConnects: 4 })), { code: /PROTOCOL_SEMANTIC/ }, 'no more slow handshakes than probes')
  t.throws(() => decodeAgentMessage(variant(1, { lost: 11 })), { code: /PROTOCOL_SEMANTIC/ }, 'no more lost than sent')
  t.throws(() => decodeAgentMessage(variant(1, { jitterPairs: 11 })), { code: /PROTOCOL_SEMANTIC/ })
  t.throws(() => decodeAgentMessage(variant(1, { sent: -1 })), { code: /PROTOCOL_SCHEMA/ })
  t.throws(() => decodeAgentMessage(variant(1, { jitterUs: 1.5 })), { code: /PROTOCOL_SCHEMA/ })
})

t.test('phases: sent only to an aggregator that announced them, and consistent with latency', async t => {
  const phased: Report = {
    ...report,
    cells: [
      { probe: 'http', target: 'https://example.com/', count: 2, latency: [300, 2], slowConnects: 1, phases: { dns: [200, 2], connect: [250, 2], tls: [260, 2], firstByte: [270, 1, 280, 1] } },
      { probe: 'pod', target: 'n2', count: 1, latency: [300, 1], phases: { connect: [250, 1], firstByte: [270, 1] } },
      { probe: 'dns-wire', target: 'x@10.0.0.10:53/A', count: 1, latency: [300, 1] }
    ]
  }
  t.same(decodeAgentMessage(JSON.stringify(phased)), phased, 'an aggregator accepts a report with phases')
  t.same(decodeAgentMessage(JSON.stringify(report)), report, 'and one without')
  const before = new Set(['slow-connects', 'udp'])
  t.equal(needsDowngrade(phased, before), true, 'an aggregator from before phases needs a downgrade')
  t.equal(needsDowngrade(phased, new Set([...before, 'phases'])), false)
  t.equal(needsDowngrade(report, before), false, 'a report without phases goes as it is')
  const old = downgradeReport(phased, before)
  t.same(old.cells, [
    { probe: 'http', target: 'https://example.com/', count: 2, latency: [300, 2], slowConnects: 1 },
    { probe: 'pod', target: 'n2', count: 1, latency: [300, 1] },
    phased.cells[2]
  ], 'phases removed, slowConnects (accepted) kept')
  t.ok(old.cells.every(c => !('phases' in c)), 'no cell carries phases')
  t.ok(phased.cells[0]!.phases !== undefined, 'the original is left alone')
  t.same(downgradeReport(phased, new Set()).cells[0], { probe: 'http', target: 'https://example.com/', count: 2, latency: [300, 2] }, 'both removed together')
  t.same(downgradeReport(phased, new Set(['phases'])).cells[1], phased.cells[1], 'kept where announced')
  // What an aggregator from before phases accepted: the schema without `phases` (additionalProperties: false).
  const items = reportSchema.properties.cells.items
  const noPhases = new Ajv({ strict: true }).compile({
    ...reportSchema, $id: 'before-phases',
    properties: { ...reportSchema.properties, cells: { ...reportSchema.properties.cells, items: { ...items, properties: Object.fromEntries(Object.entries(items.properties).filter(([k]) => k !== 'phases')) } } }
  })
  t.equal(noPhases(phased), false, 'an older aggregator rejects phases')
  t.equal(noPhases(old), true, 'and accepts the downgraded report')

  const variant = (patch: object): string => JSON.stringify({ ...phased, cells: [{ ...phased.cells[1]!, ...patch }] })
  t.throws(() => decodeAgentMessage(variant({ phases: { connect: [250, 2] } })), { code: /PROTOCOL_SEMANTIC/ }, 'no phase with more samples than latency')
  t.throws(() => decodeAgentMessage(variant({ phases: { connect: [251, 1, 250, 1] } })), { code: /PROTOCOL_SEMANTIC/ }, 'phase histograms are sparse histograms')
  t.throws(() => decodeAgentMessage(variant({ phases: { handshake: [250, 1] } })), { code: /PROTOCOL_SCHEMA/ }, 'only the named phases')
  t.throws(() => decodeAgentMessage(JSON.stringify({ ...report, cells: [{ probe: 'dns-lookup', target: 'a.b', count: 1, latency: [300, 1], phases: { dns: [300, 1] } }] })), { code: /PROTOCOL_SEMANTIC/ }, 'only kinds in PHASE_PROBE_KINDS')
})

t.test('features: an agent leaves out what its aggregator does not accept', async t => {
  t.same([...parseFeatures(undefined)], [], 'an older aggregator names none')
  t.same([...parseFeatures('udp, slow-connects,teleport')].sort(), ['slow-connects', 'udp'], 'unknown names are ignored')
  t.same([...parseFeatures(['udp', 'slow-connects'])].sort(), ['slow-connects', 'udp'])
  const full: Report = {
    ...report,
    cells: [
      { probe: 'pod', target: 'n2', count: 3, latency: [300, 3], slowConnects: 1 },
      { probe: 'udp', target: 'n2', count: 1, latency: [300, 1], sent: 5, lost: 0, jitterUs: 3, jitterPairs: 4 },
      { probe: 'dns-wire', target: 'x@10.0.0.10:53/A', count: 1, latency: [300, 1] }
    ]
  }
  const all = new Set(REPORT_FEATURE_NAMES)
  t.equal(needsDowngrade(full, all), false)
  t.equal(needsDowngrade(full, new Set()), true)
  t.equal(needsDowngrade(report, new Set()), false, 'a report without optional content goes as it is')
  const old = downgradeReport(full, new Set())
  t.same(old.cells, [{ probe: 'pod', target: 'n2', count: 3, latency: [300, 3] }, full.cells[2]])
  t.equal(full.cells[0]!.slowConnects, 1, 'the original is left alone')
  t.same(downgradeReport(full, new Set(['udp'])).cells.map(c => c.probe), ['pod', 'udp', 'dns-wire'])
  // What a v1 aggregator from before the features accepted: the schema without the new fields and kind.
  const strictCell = { ...reportSchema.properties.cells.items, properties: Object.fromEntries(Object.entries(reportSchema.properties.cells.items.properties).filter(([k]) => !['slowConnects', 'sent', 'lost', 'jitterUs', 'jitterPairs'].includes(k))) }
  const legacy = new Ajv({ strict: true }).compile({ ...reportSchema, $id: 'legacy', properties: { ...reportSchema.properties, cells: { ...reportSchema.properties.cells, items: { ...strictCell, properties: { ...strictCell.properties, probe: { enum: PROBE_KIND_NAMES.filter(k => k !== 'udp') } } } } } })
  t.equal(legacy(full), false, 'an older aggregator rejects the full report')
  t.equal(legacy(old), true, 'and accepts the downgraded one')
})
