// The documented migration loop end to end (test/helpers/migration-cluster.ts): a batch with a node
// whose inbound path is broken stops the loop while the batch is still cordoned; a rerun refuses to
// leave it behind, and once the node is fixed, --resume re-judges that batch and finishes the run.

import t from 'tap'
import { BATCH_LABEL, Cluster } from '../helpers/migration-cluster.ts'

// A loop runs real processes, a CLI every second and a kubectl per step: minutes on a busy machine.
t.setTimeout(300_000)

t.test('a batch whose node has a broken inbound path stops the loop with the batch still cordoned', async t => {
  const c = new Cluster(1, ['b1', 'b2', 'b3', 'b4'])
  await c.start(t)
  // b3's next agent advertises an address where nothing listens: every probe toward it is refused.
  c.broken.add('b3')
  const { code, out } = await c.migrate({ BATCH_SIZE: '2' })
  t.comment(out)
  t.not(code, 0, 'the script stops')
  t.match(out, /did not pass/)
  t.equal(c.cordoned('b1'), false, 'the healthy first batch was uncordoned')
  t.equal(c.cordoned('b2'), false)
  t.equal(c.cordoned('b3'), true, 'the broken node is still cordoned')
  t.equal(c.cordoned('b4'), true, 'and so is the rest of its batch')
  t.equal(c.nodeLabels('b3')[BATCH_LABEL], 'r1-2', 'labelled with its batch, for a human to look at')
  const toward = (await c.matrix('3s')).filter(x => x.dst === 'b3')
  t.ok(toward.length === 3 && toward.every(x => (x.errorsByReason.ECONNREFUSED ?? 0) > 0), 'its peers probe the cordoned node and are refused')

  const again = await c.migrate({ BATCH_SIZE: '2', RUN: 'r2' })
  t.equal(again.code, 4, 'a plain rerun refuses to start while a stopped batch is labelled')
  t.match(again.out, /still labelled pingfleet\.io\/migration-batch from a stopped run: node\/b3 node\/b4; .*--resume/)
  t.equal(c.cordoned('b3'), true, 'and leaves it as it was')

  // A human fixes b3: its next agent answers. --resume restarts and re-judges the stopped batch.
  c.broken.delete('b3')
  const resumed = await c.migrate({ BATCH_SIZE: '2', RUN: 'r2' }, '--resume')
  t.comment(resumed.out)
  t.equal(resumed.code, 0, 'the resumed run finishes')
  t.match(resumed.out, /resuming: restarting and re-judging the stopped batch node\/b3 node\/b4/)
  for (const node of ['b1', 'b2', 'b3', 'b4']) {
    t.equal(c.cordoned(node), false, `${node} uncordoned`)
    t.equal(c.nodeLabels(node)[BATCH_LABEL], undefined, `${node} has no batch label left`)
    t.equal(c.nodeLabels(node).cniplugin, 'cilium', `${node} is on cilium`)
  }
})
