// The documented migration loop end to end (test/helpers/migration-cluster.ts): a healthy migration
// in batches of two, then a DaemonSet rolling update of every agent under a mesh gate.

import t from 'tap'
import { API_TOKEN, NAMESPACE } from '../../aggregator/test/kube-fake.ts'
import { getJson } from '../../scripts/fleet-processes.ts'
import { Cluster, INTERVAL_MS } from '../helpers/migration-cluster.ts'
import { until } from '../helpers/wait.ts'

// A loop runs real processes, a CLI every second and a kubectl per step: minutes on a busy machine.
t.setTimeout(300_000)

t.test('a healthy migration in batches of two: each batch passes its gate, is uncordoned, and the loop moves on', async t => {
  const c = new Cluster(0, ['m1', 'm2', 'm3', 'm4'])
  await c.start(t)
  const { code, out } = await c.migrate({ BATCH_SIZE: '2' })
  t.equal(code, 0, 'the script finishes')
  t.comment(out)
  t.match(out, /batch 1 .*node\/m1 node\/m2/)
  t.match(out, /batch 2 .*node\/m3 node\/m4/)
  for (const name of c.names) {
    t.equal(c.nodeLabels(name).cniplugin, 'cilium', `${name} is on cilium`)
    t.equal(c.cordoned(name), false, `${name} is uncordoned`)
  }
  t.same([...c.restarts].sort(), c.names, 'every node\'s agent was restarted once')
  const rows = await c.rows()
  t.equal(rows.length, c.names.length, 'the aggregator lists every agent')
  t.ok(rows.length > 0 && rows.every(r => r.group === 'cilium' && r.connected), 'every agent is back, in group cilium')

  await t.test('a DaemonSet rolling update (agents replaced one by one with SIGTERM) does not fail a mesh gate', async t => {
    const started = Date.now()
    for (const name of c.names) {
      const before = c.restarts.length
      // What the DaemonSet controller does: a graceful DELETE of the node's agent pod.
      const pod = [...c.fake.pods.values()].find(p => (p.spec as { nodeName: string }).nodeName === name)!
      const deleted = await fetch(`${c.apiUrl}/api/v1/namespaces/${NAMESPACE}/pods/${pod.metadata.name}`, { method: 'DELETE', headers: { authorization: `Bearer ${API_TOKEN}` } })
      t.equal(deleted.status, 200)
      await deleted.body?.cancel()
      await c.settled()
      t.equal(c.restarts.length, before + 1)
      // maxUnavailable 1: the next pod goes once this one's agent is back and probed.
      await until(`${name} ready again`, async () => (await c.rows()).find(r => r.node === name)?.connected === true ? true : undefined, 30_000)
    }
    // Reports of the last interval arrive, then the gate judges a window that covers the whole update.
    await new Promise(resolve => setTimeout(resolve, 2 * INTERVAL_MS))
    const window = Math.ceil((Date.now() - started) / 1000) + 2
    const gate = await getJson<{ verdict: string, checks: Array<{ id: string, verdict: string, observed: number | null }> }>(`${c.aggregator.url}/api/v1/gates/adhoc?probe=pod&src=*&dst=*&maxErrorRatio=0&minSamples=10&window=${window}s`)
    const cells = (await c.matrix(`${window}s`)).filter(x => x.errors > 0)
    t.same(cells, [], 'no pod probe failed during the rolling update')
    t.equal(gate.verdict, 'pass', `the mesh gate over the ${window}s of the update passes`)
  })
})
