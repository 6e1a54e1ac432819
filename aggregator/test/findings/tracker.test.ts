// The tracker over synthetic detections: open, refresh (peak kept), hold against one noisy interval,
// resolve, forget after a while, reopen as a new finding, and stay bounded.

import t from 'tap'
import { CONFIRM_EVALUATIONS, FindingTracker, HOLD_EVALUATIONS, summaryOf } from '../../src/findings/tracker.ts'
import { boundaryDetection, nodeDetection } from './detections.ts'

const T0 = Date.parse('2026-11-29T10:02:15.000Z')
const STEP = 5000
const at = (i: number): number => T0 + i * STEP

t.test('a new detection opens an active finding with firstSeen and the summary', async t => {
  const tracker = new FindingTracker()
  const { opened, resolved } = tracker.update([nodeDetection('node-17', 'cilium')], T0)
  t.equal(opened.length, 1)
  t.same(resolved, [])
  const f = tracker.active()[0]!
  t.equal(f.id, 'node-inbound:node/node-17')
  t.equal(f.state, 'active')
  t.equal(f.firstSeen, '2026-11-29T10:02:15.000Z')
  t.equal(f.lastSeen, f.firstSeen)
  t.equal(f.summary, 'node-17 (cilium): inbound pod probes fail from 9 of 10 peers since 10:02:15 (CONNECT_TIMEOUT); its own outbound probes succeed')
  t.same(f.firstReasons, [{ reason: 'CONNECT_TIMEOUT', raw: 'ETIMEDOUT', count: 90 }])
  t.same(f.peak, { errorRatio: 0.9, agreeing: 9, score: 0.9, at: f.firstSeen })
})

t.test('an empty rest makes no trailing space', async t => {
  t.equal(summaryOf(boundaryDetection('aws', 'cilium'), T0), 'aws -> cilium: pod probes fail across the boundary since 10:02:15')
})

t.test('seen again: lastSeen and evidence refresh, firstSeen and the peak stay', async t => {
  const tracker = new FindingTracker()
  tracker.update([nodeDetection('n1', 'aws', { errorRatio: 0.9, score: 0.9, agreeing: 9 })], at(0))
  tracker.update([nodeDetection('n1', 'aws', { errorRatio: 0.4, score: 0.5, agreeing: 4, reason: 'ECONNREFUSED' })], at(1))
  const f = tracker.active()[0]!
  t.equal(f.firstSeen, new Date(at(0)).toISOString())
  t.equal(f.lastSeen, new Date(at(1)).toISOString())
  t.equal(f.score, 0.5, 'the score is the latest')
  t.equal(f.evidence[0]!.errorRatio, 0.4, 'the evidence is the latest')
  t.match(f.summary, /since 10:02:15 \(ECONNREFUSED\)/, 'the summary is the latest text, still since the first time')
  t.same(f.peak, { errorRatio: 0.9, agreeing: 9, score: 0.9, at: new Date(at(0)).toISOString() }, 'the peak is kept')
  t.equal(f.firstReasons[0]!.reason, 'CONNECT_TIMEOUT', 'the first reasons are kept')
  tracker.update([nodeDetection('n1', 'aws', { errorRatio: 1, score: 0.95, agreeing: 10 })], at(2))
  t.same(tracker.active()[0]!.peak, { errorRatio: 1, agreeing: 10, score: 0.95, at: new Date(at(2)).toISOString() }, 'a higher impact raises the peak')
})

t.test(`one noisy interval does not resolve (hold ${HOLD_EVALUATIONS}); ${HOLD_EVALUATIONS} missed evaluations do`, async t => {
  const tracker = new FindingTracker()
  const d = nodeDetection('n1', 'aws')
  tracker.update([d], at(0))
  t.same(tracker.update([], at(1)), { opened: [], resolved: [] }, 'missed once: still active')
  t.equal(tracker.active().length, 1)
  const back = tracker.update([d], at(2))
  t.same(back.opened, [], 'seen again after one miss: the same finding, not a new one')
  t.equal(tracker.active()[0]!.firstSeen, new Date(at(0)).toISOString())
  tracker.update([], at(3))
  const { resolved } = tracker.update([], at(4))
  t.equal(resolved.length, 1, 'missed twice in a row: resolved')
  t.equal(resolved[0]!.state, 'resolved')
  t.equal(resolved[0]!.resolvedAt, new Date(at(4)).toISOString())
  t.equal(resolved[0]!.lastSeen, new Date(at(2)).toISOString())
  t.same(tracker.active(), [])
  t.equal(tracker.all()[0]!.state, 'resolved', 'recently resolved findings are still listed')
})

t.test('a flapping detection (every other evaluation) stays one finding', async t => {
  const tracker = new FindingTracker()
  let opened = 0
  let resolved = 0
  for (let i = 0; i < 20; i++) {
    const u = tracker.update(i % 2 === 0 ? [nodeDetection('n1', 'aws')] : [], at(i))
    opened += u.opened.length
    resolved += u.resolved.length
  }
  t.equal(opened, 1)
  t.equal(resolved, 0)
})

t.test('resolved findings are forgotten after keepResolvedMs; one detected again reopens as new', async t => {
  const tracker = new FindingTracker({ keepResolvedMs: 60_000 })
  tracker.update([nodeDetection('n1', 'aws'), nodeDetection('n2', 'aws')], at(0))
  tracker.update([], at(1))
  tracker.update([], at(2)) // both resolved at at(2)
  t.equal(tracker.all().length, 2)
  const again = tracker.update([nodeDetection('n1', 'aws')], at(3))
  t.equal(again.opened.length, 1, 'a resolved finding detected again opens anew')
  t.equal(again.opened[0]!.firstSeen, new Date(at(3)).toISOString())
  t.same(tracker.all().map(f => `${f.id} ${f.state}`), ['node-inbound:node/n1 active', 'node-inbound:node/n2 resolved'], 'one entry per id')
  tracker.update([nodeDetection('n1', 'aws')], at(2) + 60_001)
  t.same(tracker.all().map(f => f.id), ['node-inbound:node/n1'], 'n2 forgotten past keepResolvedMs')
})

t.test('two detections with one id in one evaluation: the higher score wins', async t => {
  const tracker = new FindingTracker()
  tracker.update([nodeDetection('n1', 'aws', { score: 0.3 }), nodeDetection('n1', 'aws', { score: 0.8 })], T0)
  t.equal(tracker.size, 1)
  t.equal(tracker.active()[0]!.score, 0.8)
})

t.test('bounded: past max, resolved findings give way, then the lowest-scored new ones are not tracked', async t => {
  const tracker = new FindingTracker({ max: 3 })
  tracker.update([nodeDetection('a', 'g'), nodeDetection('b', 'g')], at(0))
  tracker.update([nodeDetection('b', 'g')], at(1))
  tracker.update([nodeDetection('b', 'g')], at(2)) // a resolved
  const u = tracker.update([nodeDetection('b', 'g'), nodeDetection('c', 'g', { score: 0.5 }), nodeDetection('d', 'g', { score: 0.9 }), nodeDetection('e', 'g', { score: 0.1 })], at(3))
  t.same(u.opened.map(f => f.subject.node), ['d', 'c'], 'worst first; a (resolved) gave way to c')
  t.equal(tracker.size, 3)
  t.equal(tracker.untracked, 1, 'e, the lowest score, is counted, not tracked')
  t.same(tracker.active().map(f => f.subject.node), ['b', 'd', 'c'], 'active worst first: by score, then the older (b and d both 0.9)')
})

t.test(`with confirm ${CONFIRM_EVALUATIONS}, a detection made in one evaluation only never opens`, async t => {
  const tracker = new FindingTracker({ confirm: CONFIRM_EVALUATIONS })
  let opened = 0
  // A fault spreading at onset, or draining out of the window, makes a narrower detection once.
  opened += tracker.update([nodeDetection('n1', 'aws')], at(0)).opened.length
  opened += tracker.update([], at(1)).opened.length
  opened += tracker.update([nodeDetection('n1', 'aws')], at(2)).opened.length
  opened += tracker.update([nodeDetection('n2', 'aws')], at(3)).opened.length
  t.equal(opened, 0, 'no finding from detections never made twice in a row')
  t.same(tracker.all(), [])
})

t.test(`with confirm ${CONFIRM_EVALUATIONS}, a detection made in ${CONFIRM_EVALUATIONS} evaluations in a row opens, since the first`, async t => {
  const tracker = new FindingTracker({ confirm: CONFIRM_EVALUATIONS })
  t.same(tracker.update([nodeDetection('n1', 'aws')], at(0)).opened, [], 'not yet')
  const { opened } = tracker.update([nodeDetection('n1', 'aws', { score: 0.5 })], at(1))
  t.equal(opened.length, 1)
  t.equal(opened[0]!.firstSeen, new Date(at(0)).toISOString(), 'firstSeen: when it was first detected')
  t.equal(opened[0]!.lastSeen, new Date(at(1)).toISOString())
  t.equal(opened[0]!.score, 0.5, 'the latest detection')
  t.match(opened[0]!.summary, /since 10:02:15 /)
  // Resolving and flapping are as before: one miss holds, two resolve.
  tracker.update([], at(2))
  t.equal(tracker.active().length, 1, 'held over one miss')
  tracker.update([], at(3))
  t.same(tracker.active(), [], 'resolved after two')
  t.same(tracker.update([nodeDetection('n1', 'aws')], at(4)).opened, [], 'back once: not reopened yet')
  t.equal(tracker.update([nodeDetection('n1', 'aws')], at(5)).opened.length, 1, 'back twice: a new finding')
})

t.test(`with confirm ${CONFIRM_EVALUATIONS}, what is left of a fault as it drains (fewer nodes, while its finding goes missing) never opens; a new fault there opens once it is resolved`, async t => {
  const tracker = new FindingTracker({ confirm: CONFIRM_EVALUATIONS })
  const wide = boundaryDetection('aws', 'cilium')
  wide.nodes = ['a1', 'a2', 'c1', 'c2']
  const tail = nodeDetection('c1', 'cilium')
  tracker.update([wide], at(0))
  tracker.update([wide], at(1))
  t.equal(tracker.active().length, 1, 'the fault\'s finding')
  // The fault is gone; its last failures, at one node, make a narrower detection for two evaluations.
  const u1 = tracker.update([tail], at(2))
  const u2 = tracker.update([tail], at(3))
  t.same([...u1.opened, ...u2.opened], [], 'the tail does not open')
  t.equal(u2.resolved.length, 1, 'the fault\'s finding resolves')
  t.same(tracker.active(), [])
  // Still detected after that: a fault of its own, which opens after its own 2 evaluations.
  t.same(tracker.update([tail], at(4)).opened, [])
  t.equal(tracker.update([tail], at(5)).opened.length, 1, 'a lasting narrower fault opens once the wide one is resolved')
})

t.test('with a tail of one findings window, what is left of a fault just after it resolved does not open either; later it does', async t => {
  // A tail of ten evaluations (at() steps), like a findings window of ten intervals.
  const tracker = new FindingTracker({ confirm: CONFIRM_EVALUATIONS, tailMs: at(10) - at(0) })
  const wide = boundaryDetection('aws', 'cilium')
  wide.nodes = ['a1', 'a2', 'c1', 'c2']
  const tail = nodeDetection('c1', 'cilium')
  tracker.update([wide], at(0))
  tracker.update([wide], at(1))
  tracker.update([], at(2))
  t.equal(tracker.update([], at(3)).resolved.length, 1, 'the fault\'s finding resolves')
  // Lookups begun during the fault still fail after it (a CI run: dns-group cilium 4.6 s after removal).
  for (const k of [4, 5, 6]) t.same(tracker.update([tail], at(k)).opened, [], `no tail finding at ${k} s`)
  // Past the tail, a detection that lasts is a fault of its own.
  t.same(tracker.update([tail], at(14)).opened, [])
  t.equal(tracker.update([tail], at(15)).opened.length, 1, 'a lasting fault opens once the tail is over')
})
