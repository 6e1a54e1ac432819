// The roster's record of an agent's current boot (when it first said hello, which node gates
// read a node's results from), and its expiry, which totals and agent health follow.

import t from 'tap'
import { AgentHealth } from '../../src/fleet/agent-health.ts'
import { REMEMBERED_BOOTS, Roster } from '../../src/fleet/roster.ts'
import { Totals } from '../../src/store/totals.ts'
import { hello } from '../helpers.ts'

t.test('bootStartedAt: a new bootId resets it, a reconnect with the same bootId and a disconnect keep it', async t => {
  const roster = new Roster(60_000)
  roster.join(hello('n1', {}, 'boot-a'), 1000)
  t.match(roster.get('n1'), { bootId: 'boot-a', bootStartedAt: 1000, connectedAt: 1000 })
  roster.disconnect('n1', 5000)
  t.equal(roster.get('n1')!.bootStartedAt, 1000, 'a disconnect leaves the boot start')
  roster.join(hello('n1', {}, 'boot-a'), 7000)
  t.match(roster.get('n1'), { bootStartedAt: 1000, connectedAt: 7000 }, 'the same boot reconnecting keeps its start')
  roster.join(hello('n1', {}, 'boot-b'), 9000)
  t.match(roster.get('n1'), { bootId: 'boot-b', bootStartedAt: 9000, connectedAt: 9000 }, 'a new boot starts anew')
  roster.join(hello('n1', {}, 'boot-b'), 9500)
  t.equal(roster.get('n1')!.bootStartedAt, 9000)
})

t.test('expire: each agent past the TTL is announced, and totals and agent health forget it', async t => {
  const roster = new Roster(60_000)
  const totals = new Totals(roster)
  const health = new AgentHealth({ roster, now: () => 1000 })
  roster.join(hello('n1'), 1000)
  roster.join(hello('n2'), 1000)
  for (const node of ['n1', 'n2']) {
    totals.node(node, 'out', 'pod', 1, 0)
    health.observe(node, 1000, { count: 1, lagged: 0, overloaded: 0 })
  }
  const events: string[] = []
  roster.on('expire', node => events.push(`expire ${node}`))
  roster.on('change', () => events.push('change'))
  roster.disconnect('n1', 2000)
  roster.expire(61_000)
  t.same(events, [], 'within the TTL')
  roster.expire(62_001)
  t.same(events, ['expire n1', 'change'], 'expiry first, then one change')
  t.equal(roster.get('n1'), undefined)
  t.same([...totals.nodes.keys()], ['n2'])
  t.same([...health.nodes()], ['n2'])
  roster.expire(200_000)
  t.same(events, ['expire n1', 'change'], 'a connected agent never expires; nothing removed, nothing emitted')
})

t.test('an agent back with the same boot after its entry expired is still deduplicated, and what it dropped is missed', async t => {
  const roster = new Roster(60_000)
  roster.join(hello('n1', {}, 'boot-a'), 1000)
  for (const seq of [1, 2, 3]) t.ok(roster.accept('n1', 'boot-a', seq, 1000))
  roster.disconnect('n1', 2000)
  roster.expire(70_000)
  t.equal(roster.get('n1'), undefined, 'forgotten as an agent')
  // A 15-minute outage: the agent kept seqs 200..230 and dropped 4..199 from its full buffer.
  roster.join(hello('n1', {}, 'boot-a'), 900_000)
  t.notOk(roster.accept('n1', 'boot-a', 3, 900_000), 'a seq applied before the expiry is a duplicate')
  t.ok(roster.accept('n1', 'boot-a', 200, 900_000))
  t.match(roster.get('n1'), { missed: 196, accepted: 1, duplicates: 1 })
  // A new boot owes nothing to the old one.
  roster.disconnect('n1', 900_001)
  roster.expire(1_000_000)
  roster.join(hello('n1', {}, 'boot-b'), 1_000_001)
  t.ok(roster.accept('n1', 'boot-b', 1, 1_000_001))
  t.match(roster.get('n1'), { missed: 0, accepted: 1 })
})

t.test('remembered boots are bounded: the oldest is forgotten first', async t => {
  const roster = new Roster(1)
  for (let i = 0; i <= REMEMBERED_BOOTS; i++) {
    roster.join(hello(`n${i}`, {}, `boot-${i}`), 0)
    roster.accept(`n${i}`, `boot-${i}`, 5, 0)
    roster.disconnect(`n${i}`, 0)
  }
  roster.expire(10)
  roster.join(hello('n0', {}, 'boot-0'), 20)
  t.ok(roster.accept('n0', 'boot-0', 5, 20), 'the oldest was forgotten: seq 5 is new to it')
  roster.join(hello('n1', {}, 'boot-1'), 20)
  t.notOk(roster.accept('n1', 'boot-1', 5, 20), 'the next one is still remembered')
})
