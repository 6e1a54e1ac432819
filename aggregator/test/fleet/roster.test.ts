// The roster's record of an agent's current boot: when it first said hello, which node gates
// read a node's results from.

import t from 'tap'
import { Roster } from '../../src/fleet/roster.ts'
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
