// docs/examples/migrate-nodes.sh run against real agents, gates and CLI, with kubectl faked: a baseline
// gate, then each batch judged on its own nodes before it is uncordoned; resume after a stopped batch.

import t from 'tap'
import { spawn } from 'node:child_process'
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { bucketIndex } from '@pingfleet/protocol'
import { CLI, cliFleet, MIGRATE } from './gate-cli-fixture.ts'
import { hello, RawAgent, report } from './helpers.ts'

t.test('the example migration loop: a baseline gate, then each batch judged on its own nodes before it is uncordoned', async t => {
  const { url, agent } = await cliFleet(t)
  // kubectl is faked (it only logs and lists three nodes); the agents, the gates and the CLI are
  // real. In static mode labels come from hello, so the agents of a, b and c already carry the
  // batch labels the loop would set: batch2 for batches of two, batch1 for batches of one.
  const batchLabels: Record<string, Record<string, string>> = {
    a: { cniplugin: 'cilium', batch2: 'test-1', batch1: 'test-1' },
    b: { cniplugin: 'cilium', batch2: 'test-1', batch1: 'test-2' },
    c: { cniplugin: 'cilium', batch2: 'test-2', batch1: 'test-3' }
  }
  // A fresh report from the aws agent, so the baseline gate (maxStaleness 1m) is not stale on a slow run.
  agent.send(report(3, Date.now(), []))
  await agent.waitFor(m => m.type === 'ack' && m.seq === 3)
  const batchAgents = Object.entries(batchLabels).map(([node, labels]) => ({ node, agent: new RawAgent(url), labels }))
  t.teardown(() => { for (const b of batchAgents) b.agent.socket.close() })
  await Promise.all(batchAgents.map(b => b.agent.opened()))
  for (const b of batchAgents) {
    b.agent.send(hello(b.node, b.labels))
    await b.agent.waitFor(m => m.type === 'welcome')
  }
  // Node gates read a node from the first store slot (1 s here) that starts after its agent's hello.
  await new Promise(resolve => setTimeout(resolve, 1010 - Date.now() % 1000))
  for (const b of batchAgents) {
    b.agent.send(report(1, Date.now(), ['a', 'b', 'c'].filter(n => n !== b.node).map(target => ({ probe: 'pod' as const, target, count: 4, latency: [bucketIndex(0.002), 4] }))))
    await b.agent.waitFor(m => m.type === 'ack' && m.seq === 1)
  }
  const bin = mkdtempSync(join(tmpdir(), 'pingfleet-migrate-'))
  const log = join(bin, 'kubectl.log')
  // `get nodes -l cniplugin!=cilium` lists the nodes to move (todo); `get nodes -l <batch label>`
  // the nodes a stopped run left labelled (pending, none unless a case writes some).
  const todo = join(bin, 'todo')
  const pending = join(bin, 'pending')
  writeFileSync(todo, 'node/a\nnode/b\nnode/c\n')
  writeFileSync(pending, '')
  writeFileSync(join(bin, 'kubectl'), `#!/usr/bin/env bash\necho "$*" >> ${JSON.stringify(log)}\nif [[ $1 == get ]]; then if [[ $4 == *'!='* ]]; then cat ${JSON.stringify(todo)}; else cat ${JSON.stringify(pending)}; fi; fi\n`)
  writeFileSync(join(bin, 'pingfleet'), `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(CLI)} "$@"\n`)
  chmodSync(join(bin, 'kubectl'), 0o755)
  chmodSync(join(bin, 'pingfleet'), 0o755)
  const migrate = (env: Record<string, string>, ...args: string[]): Promise<number | null> => new Promise((resolve, reject) => {
    writeFileSync(log, '')
    const child = spawn('bash', [MIGRATE, ...args], {
      stdio: process.env.DEBUG_MIGRATE ? 'inherit' : 'ignore',
      env: { ...process.env, PATH: `${bin}:${process.env.PATH}`, AGGREGATOR: url, BASELINE_GATE: 'aws-up', GATE: 'batch', RUN: 'test', BATCH_LABEL: 'batch2', BATCH_SIZE: '2', GATE_WAIT: '300ms', GATE_INTERVAL: '100ms', ...env }
    })
    child.once('error', reject)
    child.once('close', resolve)
  })
  const moved = (node: string, batch: string): string[] => [
    `cordon node/${node}`, `drain node/${node} --ignore-daemonsets --delete-emptydir-data --timeout=10m`, `label --overwrite node/${node} cniplugin=cilium ${batch}`,
    `delete pods --all-namespaces --field-selector spec.nodeName=${node} --wait=false`
  ]
  const done = (node: string): string[] => [`uncordon node/${node}`, `label node/${node} ${label}-`]
  let label = 'batch2'
  const lines = (): string[] => readFileSync(log, 'utf8').trim().split('\n')
  t.equal(await migrate({}), 0)
  t.same(lines(), [
    'get nodes -l batch2 -o name', 'get nodes -l cniplugin!=cilium -o name',
    ...moved('a', 'batch2=test-1'), ...moved('b', 'batch2=test-1'), ...done('a'), ...done('b'),
    ...moved('c', 'batch2=test-2'), ...done('c')
  ])
  label = 'batch1'
  t.equal(await migrate({ BATCH_SIZE: '1', BATCH_LABEL: 'batch1' }), 0, 'one-node batches complete')
  t.same(lines(), [
    'get nodes -l batch1 -o name', 'get nodes -l cniplugin!=cilium -o name',
    ...moved('a', 'batch1=test-1'), ...done('a'), ...moved('b', 'batch1=test-2'), ...done('b'), ...moved('c', 'batch1=test-3'), ...done('c')
  ])
  t.equal(await migrate({ GATE: 'aws-to-cilium' }), 1, 'a batch gate that fails stops the loop')
  t.same(lines(), ['get nodes -l batch2 -o name', 'get nodes -l cniplugin!=cilium -o name', ...moved('a', 'batch2=test-1'), ...moved('b', 'batch2=test-1')], 'the failed batch stays cordoned')

  // The stopped batch a and b is still labelled batch2: a plain rerun must not leave it behind.
  label = 'batch2'
  writeFileSync(pending, 'node/a\nnode/b\n')
  t.equal(await migrate({}), 4, 'a rerun that finds a stopped batch refuses to start without --resume')
  t.same(lines(), ['get nodes -l batch2 -o name'], 'and touches nothing')
  t.equal(await migrate({}, '--bogus'), 4, 'an unknown argument is bad usage')
  const restarted = (node: string): string[] => [`cordon node/${node}`, `delete pods --all-namespaces --field-selector spec.nodeName=${node} --wait=false`]
  t.equal(await migrate({ GATE: 'aws-to-cilium' }, '--resume'), 1, '--resume re-judges the stopped batch; still failing, it stops again')
  t.same(lines(), ['get nodes -l batch2 -o name', ...restarted('a'), ...restarted('b')], 'the batch stays cordoned and labelled, and no other node is touched')
  writeFileSync(todo, 'node/c\n')
  t.equal(await migrate({ START_BATCH: '2' }, '--resume'), 0, '--resume: the stopped batch passes now, so it is released and the run goes on')
  t.same(lines(), [
    'get nodes -l batch2 -o name', ...restarted('a'), ...restarted('b'), ...done('a'), ...done('b'),
    'get nodes -l cniplugin!=cilium -o name', ...moved('c', 'batch2=test-2'), ...done('c')
  ])
  writeFileSync(pending, '')
  t.equal(await migrate({ START_BATCH: '2' }, '--resume'), 0, 'with nothing pending, --resume is a normal run')
  t.same(lines(), ['get nodes -l batch2 -o name', 'get nodes -l cniplugin!=cilium -o name', ...moved('c', 'batch2=test-2'), ...done('c')])
  writeFileSync(todo, 'node/a\nnode/b\nnode/c\n')

  t.equal(await migrate({ BASELINE_GATE: 'dns-backends' }), 2, 'a fleet that is not healthy before the first batch stops everything')
  t.same(lines(), ['get nodes -l batch2 -o name'], 'no node was touched')
  // A kubectl that fails (no access, no cluster) must stop the loop, not read as "0 nodes, all passed".
  const broken = mkdtempSync(join(tmpdir(), 'pingfleet-migrate-broken-'))
  writeFileSync(join(broken, 'kubectl'), '#!/bin/sh\necho "error: You must be logged in to the server" >&2\nexit 1\n')
  chmodSync(join(broken, 'kubectl'), 0o755)
  t.not(await migrate({ PATH: `${broken}:${bin}:${process.env.PATH}` }), 0, 'a failing kubectl stops the loop with an error')
})
