// The documented migration loop end to end (test/helpers/migration-cluster.ts): one-node batches,
// the first of them alone in its group, complete.

import t from 'tap'
import { Cluster } from '../helpers/migration-cluster.ts'

// A loop runs real processes, a CLI every second and a kubectl per step: minutes on a busy machine.
t.setTimeout(300_000)

t.test('one-node batches complete, the first one alone in its group', async t => {
  const c = new Cluster(2, ['o1', 'o2', 'o3'])
  await c.start(t)
  const { code, out } = await c.migrate({ BATCH_SIZE: '1' })
  t.comment(out)
  t.equal(code, 0, 'the script finishes')
  for (const name of c.names) t.match({ label: c.nodeLabels(name).cniplugin, cordoned: c.cordoned(name) }, { label: 'cilium', cordoned: false }, `${name} migrated`)
})
