// The e2e findings scorer on hand-made findings: what counts as the right finding, what as another one,
// and the precision and recall it prints. (No cluster: runs anywhere.)

import t from 'tap'
import { describe, matches, score, type FindingExpectation, type ReportedFinding } from './findings-watch.ts'

const finding = (kind: string, subject: ReportedFinding['subject'], groups: string[] = []): ReportedFinding =>
  ({ id: `${kind}:${subject.id}`, kind, subject, state: 'active', summary: '', firstSeen: '2026-01-01T00:00:00.000Z', nodes: [], groups })

const inbound = finding('node-inbound', { type: 'node', id: 'node/aws-1', node: 'aws-1' })
const oneWay = finding('group-boundary', { type: 'group-pair', id: 'groups/aws->cilium', src: 'aws', dst: 'cilium' }, ['aws', 'cilium'])
const bothWays = finding('group-boundary', { type: 'group-pair', id: 'groups/cilium<->aws', src: 'cilium', dst: 'aws', bothWays: true }, ['cilium', 'aws'])

t.test('matches: kind and the named subject fields', async t => {
  t.ok(matches({ kind: 'node-inbound', subject: { type: 'node', node: 'aws-1' } }, inbound))
  t.notOk(matches({ kind: 'node-isolated', subject: { type: 'node', node: 'aws-1' } }, inbound), 'another kind')
  t.notOk(matches({ kind: 'node-inbound', subject: { type: 'node', node: 'aws-2' } }, inbound), 'another node')
  t.notOk(matches({ kind: 'node-inbound', subject: { type: 'group', node: 'aws-1' } }, inbound), 'another subject type')
})

t.test('matches: false also matches a field left out; groups compare as sets', async t => {
  const one: FindingExpectation = { kind: 'group-boundary', subject: { type: 'group-pair', src: 'aws', dst: 'cilium', bothWays: false } }
  t.ok(matches(one, oneWay), 'a one-way finding need not say bothWays: false')
  t.notOk(matches({ ...one, subject: { ...one.subject, src: 'cilium', dst: 'aws' } }, oneWay), 'the other direction')
  const both: FindingExpectation = { kind: 'group-boundary', subject: { type: 'group-pair', bothWays: true }, groups: ['aws', 'cilium'] }
  t.ok(matches(both, bothWays), 'either group first')
  t.notOk(matches(both, oneWay), 'one way is not both')
  t.notOk(matches({ ...both, groups: ['aws'] }, bothWays), 'groups must be the same set')
})

t.test('score: one finding per expectation; the rest are other findings', async t => {
  const e: FindingExpectation = { kind: 'node-inbound', subject: { type: 'node', node: 'aws-1' } }
  t.match(score([e], [inbound]), { missing: [], extra: [], precision: 1, recall: 1 })
  const s = score([e], [inbound, oneWay])
  t.same([s.precision, s.recall, s.extra.map(f => f.id)], [0.5, 1, ['group-boundary:groups/aws->cilium']], 'an extra finding halves precision')
  const twice = score([e], [inbound, { ...inbound, id: 'node-inbound:node/aws-1#2' }])
  t.equal(twice.extra.length, 1, 'a second finding for the same expectation is another finding')
  const none = score([e], [])
  t.same([none.precision, none.recall, none.missing.map(describe)], [null, 0, ['node-inbound node(node=aws-1)']], 'nothing reported: recall 0, precision undefined')
  t.same(score([], []), { matched: [], missing: [], extra: [], precision: null, recall: null }, 'a healthy round with nothing reported')
  t.equal(score([], [inbound]).precision, 0, 'a healthy round with a finding: precision 0')
})
