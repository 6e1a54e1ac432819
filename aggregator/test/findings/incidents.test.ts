// The incident timeline: every finding that opens and closes is one incident with its span, peak and
// first reasons; the log answers for 24 h within its count cap and says when it is incomplete; and
// incidents quote the fleet events of their nodes and groups from the same minutes.

import t from 'tap'
import { FleetEventLog } from '../../src/fleet/events.ts'
import { Fleet } from '../../src/fleet/fleet.ts'
import { Roster } from '../../src/fleet/roster.ts'
import { CORRELATE_BEFORE_MS, IncidentLog, INCIDENT_RETENTION_MS, MAX_EVENTS_PER_INCIDENT } from '../../src/findings/incidents.ts'
import { FindingTracker } from '../../src/findings/tracker.ts'
import type { Detection } from '../../src/findings/finding.ts'
import { hello } from '../helpers.ts'
import { boundaryDetection, nodeDetection, resolverDetection } from './detections.ts'

const T0 = Date.parse('2026-11-29T10:00:00Z')
const STEP = 5000

/** Runs the tracker over `rounds` (detections per evaluation) from `start`, recording resolved findings. */
function run (tracker: FindingTracker, incidents: IncidentLog, rounds: Detection[][], start: number): number {
  let at = start
  for (const detections of rounds) {
    for (const f of tracker.update(detections, at).resolved) incidents.record(f, at)
    at += STEP
  }
  return at
}


t.test('a finding that opens and closes is one incident: start, end, kind, subject, peak, first reasons', async t => {
  const tracker = new FindingTracker()
  const incidents = new IncidentLog({ events: null })
  const first = nodeDetection('n4', 'cilium', { errorRatio: 0.5, reason: 'ECONNREFUSED', agreeing: 5 })
  const worse = nodeDetection('n4', 'cilium', { errorRatio: 1, reason: 'CONNECT_TIMEOUT', agreeing: 10, score: 1 })
  run(tracker, incidents, [[first], [worse], [first], [], [], []], T0)
  t.equal(incidents.size, 1)
  const [i] = incidents.since(0).incidents
  t.match(i, {
    id: 'node-inbound:node/n4@2026-11-29T10:00:00.000Z',
    kind: 'node-inbound',
    subject: { type: 'node', id: 'node/n4', node: 'n4' },
    start: '2026-11-29T10:00:00.000Z',
    lastSeen: '2026-11-29T10:00:10.000Z',
    end: '2026-11-29T10:00:20.000Z',
    durationSeconds: 20,
    peak: { errorRatio: 1, agreeing: 10, score: 1, at: '2026-11-29T10:00:05.000Z' },
    firstReasons: [{ reason: 'ECONNREFUSED' }],
    nodes: ['n4'],
    groups: ['cilium'],
    events: [],
    timeline: 'node-inbound node/n4 from 10:00:00 to 10:00:20'
  })
})

t.test('answers for 24 h: older incidents are dropped, since filters by end', async t => {
  const tracker = new FindingTracker()
  const incidents = new IncidentLog({ events: null })
  let at = T0
  // One incident an hour for 30 hours.
  for (let h = 0; h < 30; h++) {
    at = run(tracker, incidents, [[boundaryDetection('aws', 'cilium')], [], []], T0 + h * 3_600_000)
  }
  t.equal(incidents.size, 25, 'the incidents that ended within 24 h of the last one')
  const day = incidents.since(at - INCIDENT_RETENTION_MS)
  t.equal(day.incidents.length, 24)
  t.ok(day.complete)
  t.equal(incidents.since(at - 3 * 3_600_000).incidents.length, 3)
})

t.test('bounded by count: past the cap the oldest go, and answers reaching back to them say incomplete', async t => {
  const tracker = new FindingTracker()
  const incidents = new IncidentLog({ events: null, max: 10 })
  let at = T0
  for (let i = 0; i < 15; i++) at = run(tracker, incidents, [[nodeDetection(`n${i}`, 'aws')], [], []], at)
  t.equal(incidents.size, 10)
  t.equal(incidents.dropped, 5)
  const all = incidents.since(0)
  t.equal(all.incidents.length, 10)
  t.equal(all.complete, false, 'incidents after since were dropped')
  t.same(all.incidents.map(i => i.subject.node), ['n5', 'n6', 'n7', 'n8', 'n9', 'n10', 'n11', 'n12', 'n13', 'n14'])
  const recent = incidents.since(Date.parse(all.incidents[2]!.end!))
  t.equal(recent.complete, true, 'nothing after the newest dropped one was lost')
  t.equal(recent.incidents.length, 8)
})

t.test('correlation: the roster events of its nodes and groups from the same minutes, in the timeline', async t => {
  const clock = { t: Date.parse('2026-11-29T09:50:00Z') }
  const roster = new Roster(120_000)
  const fleet = new Fleet({ roster, groupLabel: 'cniplugin' })
  const events = new FleetEventLog({ fleet, now: () => clock.t })
  t.teardown(() => events.close())
  const tracker = new FindingTracker()
  const incidents = new IncidentLog({ events })
  roster.join(hello('node-17', { cniplugin: 'aws' }), clock.t)
  roster.join(hello('node-3', { cniplugin: 'aws' }), clock.t)
  roster.join(hello('node-9', { cniplugin: 'cilium' }), clock.t)
  events.observe()
  // 10:01:50 node-17 is relabelled to cilium; an unrelated node of another group restarts.
  clock.t = Date.parse('2026-11-29T10:01:50Z')
  roster.setKube('node-17', { labels: { cniplugin: 'cilium' }, replaces: ['cniplugin'], cordoned: false, terminatingPods: [] })
  events.observe()
  clock.t = Date.parse('2026-11-29T10:02:00Z')
  roster.join(hello('node-3', { cniplugin: 'aws' }, 'boot-new'), clock.t)
  events.observe()
  // 10:02:15 node-17 inbound failing; it resolves at 10:05:00 after node-17 is cordoned at 10:04:00.
  const d = nodeDetection('node-17', 'cilium')
  let at = Date.parse('2026-11-29T10:02:15Z')
  for (; at < Date.parse('2026-11-29T10:04:00Z'); at += STEP) tracker.update([d], at)
  clock.t = at
  roster.setKube('node-17', { labels: { cniplugin: 'cilium' }, replaces: ['cniplugin'], cordoned: true, terminatingPods: [] })
  events.observe()
  const open = incidents.incidentOf(tracker.active()[0]!, at)
  t.equal(open.end, null, 'an open incident has no end')
  t.match(open.timeline, /still active/)
  for (; ; at += STEP) {
    const { resolved } = tracker.update([], at)
    if (resolved.length > 0) {
      incidents.record(resolved[0]!, at)
      break
    }
  }
  const [incident] = incidents.since(0).incidents
  t.same(incident!.events.map(e => e.text), [
    'node-17 relabelled to cilium (was aws) at 10:01:50',
    'node-17 cordoned (cilium) at 10:04:00'
  ], 'node-17\'s events only: the joins are older than the window, node-3 is another node in another group')
  t.equal(incident!.timeline, 'node-17 relabelled to cilium (was aws) at 10:01:50; node-inbound node/node-17 from 10:02:15 to 10:04:05; node-17 cordoned (cilium) at 10:04:00')

  // A boundary finding aws -> cilium quotes events of both groups: node-17 relabelled into cilium, node-3 (aws) restarted.
  const boundary = tracker.update([boundaryDetection('aws', 'cilium')], Date.parse('2026-11-29T10:02:20Z')).opened[0]!
  const b = incidents.incidentOf(boundary, Date.parse('2026-11-29T10:03:00Z'))
  t.same(b.events.map(e => `${e.node} ${e.type}`), ['node-17 relabelled', 'node-3 restarted'], 'events of either group of the pair')
  // A resolver finding names no node or group: every event of the minutes concerns it.
  const resolver = tracker.update([resolverDetection('10.96.0.10')], Date.parse('2026-11-29T10:06:00Z')).opened[0]!
  t.equal(incidents.incidentOf(resolver, Date.parse('2026-11-29T10:06:00Z')).events.length, 3, 'the relabel, the restart and the cordon')
  t.ok(CORRELATE_BEFORE_MS >= 60_000)
})

t.test('an incident quotes at most MAX_EVENTS_PER_INCIDENT events, nearest its start, and counts the rest', async t => {
  const clock = { t: T0 }
  const roster = new Roster(120_000)
  const fleet = new Fleet({ roster, groupLabel: 'cniplugin' })
  const events = new FleetEventLog({ fleet, now: () => clock.t })
  t.teardown(() => events.close())
  for (let i = 0; i < MAX_EVENTS_PER_INCIDENT + 7; i++) {
    roster.join(hello(`n${i}`, { cniplugin: 'aws' }), clock.t += 1000)
    events.observe()
  }
  const tracker = new FindingTracker()
  const f = tracker.update([boundaryDetection('aws', 'cilium')], clock.t + 1000).opened[0]!
  const incident = new IncidentLog({ events }).incidentOf(f, clock.t + 2000)
  t.equal(incident.events.length, MAX_EVENTS_PER_INCIDENT)
  t.equal(incident.moreEvents, 7)
  t.equal(incident.events.at(-1)!.node, `n${MAX_EVENTS_PER_INCIDENT + 6}`, 'the latest before the start are kept')
})
