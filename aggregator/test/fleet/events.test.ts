// The fleet event log over a real roster and fleet model: joins, relabels, cordons, restarts,
// disconnects and departures, each dated, and the log bounded.

import t from 'tap'
import { describeEvent, FleetEventLog } from '../../src/fleet/events.ts'
import { Fleet } from '../../src/fleet/fleet.ts'
import { Roster } from '../../src/fleet/roster.ts'
import { hello } from '../helpers.ts'

function setup (max?: number): { roster: Roster, log: FleetEventLog, clock: { t: number } } {
  const clock = { t: Date.parse('2026-11-29T10:00:00Z') }
  const roster = new Roster(120_000)
  const fleet = new Fleet({ roster, groupLabel: 'cniplugin' })
  const log = new FleetEventLog({ fleet, now: () => clock.t, max })
  return { roster, log, clock }
}

const cordon = { labels: {}, replaces: [], cordoned: true, terminatingPods: [] }

t.test('each change of a node is one event, dated', async t => {
  const { roster, log, clock } = setup()
  roster.join(hello('node-17', { cniplugin: 'aws' }), clock.t)
  log.observe()
  clock.t += 110_000
  roster.setKube('node-17', { labels: { cniplugin: 'cilium' }, replaces: ['cniplugin'], cordoned: true, terminatingPods: [] })
  log.observe()
  clock.t += 10_000
  roster.setKube('node-17', { labels: { cniplugin: 'cilium' }, replaces: ['cniplugin'], cordoned: false, terminatingPods: [] })
  log.observe()
  clock.t += 5000
  roster.disconnect('node-17', clock.t)
  log.observe()
  clock.t += 5000
  roster.join(hello('node-17', { cniplugin: 'cilium' }, 'boot-2'), clock.t)
  log.observe()
  clock.t += 5000
  roster.depart('node-17')
  log.observe()
  const events = log.between(0, clock.t)
  t.same(events.map(e => [new Date(e.at).toISOString().slice(11, 19), e.type, e.group, e.from]), [
    ['10:00:00', 'joined', 'aws', undefined],
    ['10:01:50', 'relabelled', 'cilium', 'aws'],
    ['10:01:50', 'cordoned', 'cilium', undefined],
    ['10:02:00', 'uncordoned', 'cilium', undefined],
    ['10:02:05', 'disconnected', 'cilium', undefined],
    ['10:02:10', 'restarted', 'cilium', undefined],
    ['10:02:15', 'departed', 'cilium', undefined]
  ])
  t.equal(describeEvent(events[1]!), 'node-17 relabelled to cilium (was aws)')
  log.observe()
  t.equal(log.size, 7, 'observing an unchanged fleet adds nothing')
})

t.test('a reconnect with the same boot is a reconnect, not a restart; expiry is a departure', async t => {
  const { roster, log, clock } = setup()
  roster.join(hello('n1', { cniplugin: 'aws' }), clock.t)
  log.observe()
  roster.disconnect('n1', clock.t += 1000)
  log.observe()
  roster.join(hello('n1', { cniplugin: 'aws' }), clock.t += 1000)
  log.observe()
  roster.disconnect('n1', clock.t += 1000)
  log.observe()
  roster.expire(clock.t += 200_000)
  log.observe()
  t.same(log.between(0, clock.t).map(e => e.type), ['joined', 'disconnected', 'reconnected', 'disconnected', 'departed'])
})

t.test('roster changes are observed on their own (coalesced), without observe()', async t => {
  const { roster, log, clock } = setup()
  roster.join(hello('n1', { cniplugin: 'aws' }), clock.t)
  roster.join(hello('n2', { cniplugin: 'aws' }), clock.t)
  await new Promise(resolve => setImmediate(resolve))
  t.same(log.between(0, clock.t).map(e => `${e.node} ${e.type}`), ['n1 joined', 'n2 joined'])
  roster.join(hello('n1', { cniplugin: 'cilium' }), clock.t += 1000)
  await new Promise(resolve => setImmediate(resolve))
  t.same(log.between(clock.t, clock.t).map(e => `${e.node} ${e.type} ${e.group}`), ['n1 relabelled cilium'], 'a hello with new labels is a relabel')
  log.close()
  roster.join(hello('n3', { cniplugin: 'aws' }), clock.t)
  await new Promise(resolve => setImmediate(resolve))
  t.equal(log.size, 3, 'closed: no longer listening')
})

t.test('bounded: the oldest events go first and are counted', async t => {
  const { roster, log, clock } = setup(5)
  for (let i = 0; i < 8; i++) {
    roster.join(hello(`n${i}`, { cniplugin: 'aws' }), clock.t += 1000)
    log.observe()
  }
  t.equal(log.size, 5)
  t.equal(log.dropped, 3)
  t.same(log.between(0, clock.t).map(e => e.node), ['n3', 'n4', 'n5', 'n6', 'n7'])
})

t.test('a cordoned node seen for the first time joins and is cordoned', async t => {
  const { roster, log, clock } = setup()
  roster.setKube('n1', cordon)
  roster.join(hello('n1', { cniplugin: 'aws' }), clock.t)
  log.observe()
  t.same(log.between(0, clock.t).map(e => e.type), ['joined', 'cordoned'])
})
