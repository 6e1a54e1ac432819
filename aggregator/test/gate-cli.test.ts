// `pingfleet gate` as a process: exit 0 pass, 1 fail, 2 insufficient data or a timed-out wait,
// 3 no verdict (unreachable, unknown gate, bad usage); human evidence by default, --json for scripts.

import t from 'tap'
import { spawn } from 'node:child_process'
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { bucketIndex } from '@pingfleet/protocol'
import { aggregator, hello, RawAgent, report } from './helpers.ts'

const CLI = fileURLToPath(new URL('../src/cli.ts', import.meta.url))
const MIGRATE = fileURLToPath(new URL('../../docs/examples/migrate-nodes.sh', import.meta.url))
const dir = mkdtempSync(join(tmpdir(), 'pingfleet-cli-'))
const gatesFile = join(dir, 'gates.yaml')
writeFileSync(gatesFile, `
gates:
  - name: aws-up
    maxStaleness: 1m
    coverage: [{ group: aws, minRatio: 1 }]
  - name: aws-to-cilium
    minSamples: 1
    window: 5m
    maxStaleness: 5m
    rules: [{ probe: pod, src: aws, dst: cilium, maxErrorRatio: 0 }]
  - name: dns-backends
    services: [{ service: kube-dns, minBackendRatio: 1 }]
  - name: late
    coverage: [{ group: late, minRatio: 1 }]
  - name: batch
    window: 5m
    minSamples: 1
    maxStaleness: 5m
    nodeSelector: batch2
    nodeRules: [{ probe: pod, maxNodeErrorRatio: 0 }]
`)

interface Run { code: number | null, stdout: string, stderr: string }

/** Starts the CLI; `output()` shows what it printed so far, `done` resolves when it exits. */
function start (...args: string[]): { output: () => string, done: Promise<Run> } {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
  const done = new Promise<Run>((resolve, reject) => {
    child.once('error', reject)
    child.once('close', code => resolve({ code, stdout, stderr }))
  })
  return { output: () => stdout, done }
}

const cli = (...args: string[]): Promise<Run> => start(...args).done

/** A loopback port nothing listens on. */
async function closedPort (): Promise<number> {
  const server = createServer()
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as { port: number }).port
  await new Promise(resolve => server.close(resolve))
  return port
}

t.test('the CLI', async t => {
  const agg = await aggregator({ PINGFLEET_GATES_FILE: gatesFile })
  t.teardown(() => agg.close())
  const url = agg.address()
  const agent = new RawAgent(url)
  t.teardown(() => agent.socket.close())
  await agent.opened()
  agent.send(hello('n1', { cniplugin: 'aws' }))
  await agent.waitFor(m => m.type === 'peers')
  agent.send(report(1, Date.now(), [{ probe: 'pod', target: 'n3', count: 4, latency: [bucketIndex(0.002), 3], errors: [{ reason: 'ECONNREFUSED', raw: 'ECONNREFUSED', count: 1 }] }]))
  await agent.waitFor(m => m.type === 'ack' && m.seq === 1)
  // n3 is not in the roster, so its results land in the "(none)" group: register it as cilium.
  const cilium = new RawAgent(url)
  t.teardown(() => cilium.socket.close())
  await cilium.opened()
  cilium.send(hello('n3', { cniplugin: 'cilium' }))
  await cilium.waitFor(m => m.type === 'welcome')
  agent.send(report(2, Date.now(), [{ probe: 'pod', target: 'n3', count: 4, latency: [bucketIndex(0.002), 3], errors: [{ reason: 'ECONNREFUSED', raw: 'ECONNREFUSED', count: 1 }] }]))
  cilium.send(report(1, Date.now(), []))
  await agent.waitFor(m => m.type === 'ack' && m.seq === 2)
  await cilium.waitFor(m => m.type === 'ack' && m.seq === 1)

  await t.test('pass exits 0 with human-readable evidence', async t => {
    const run = await cli('gate', 'aws-up', '--url', url)
    t.equal(run.code, 0, run.stderr)
    t.match(run.stdout, /^gate aws-up: PASS at \S+ \(2 pass, 0 fail, 0 insufficient\)\n/)
    t.match(run.stdout, /ok {3}coverage aws: 1 \(limit 1\) \[samples 1\] - 1 of 1 agents of group aws connected/)
  })

  await t.test('fail exits 1, failing checks first', async t => {
    const run = await cli('gate', 'aws-to-cilium', '--url', url + '/')
    t.equal(run.code, 1, run.stderr)
    const lines = run.stdout.split('\n')
    t.match(lines[0], /^gate aws-to-cilium: FAIL/)
    t.match(lines[1], /^ {2}FAIL pod aws->cilium maxErrorRatio: 0\.25 \(limit 0\) \[samples 4, window 5m\]/)
  })

  await t.test('insufficient data exits 2', async t => {
    const run = await cli('gate', 'dns-backends', '--url', url)
    t.equal(run.code, 2, run.stderr)
    t.match(run.stdout, /INSUFFICIENT_DATA/)
    t.match(run.stdout, /service kube-dns: - \[samples 0, window 5m\] - no service probe results for kube-dns in the last 5m/)
  })

  await t.test('--json prints the aggregator\'s answer for scripts', async t => {
    const run = await cli('gate', 'aws-to-cilium', '--url', url, '--json')
    t.equal(run.code, 1)
    t.match(JSON.parse(run.stdout), { name: 'aws-to-cilium', verdict: 'fail', checks: Array })
  })

  await t.test('an unreachable aggregator, an unknown gate and bad usage exit 3', async t => {
    const port = await closedPort()
    const down = await cli('gate', 'aws-up', '--url', `http://127.0.0.1:${port}`)
    t.equal(down.code, 3)
    t.match(down.stderr, /aggregator unreachable at http:\/\/127\.0\.0\.1:\d+\/api\/v1\/gates\/aws-up: ECONNREFUSED/)
    const unknown = await cli('gate', 'nope', '--url', url, '--wait', '1m')
    t.equal(unknown.code, 3, 'an unknown gate does not wait')
    t.match(unknown.stderr, /answered 404 .*PINGFLEET_ERR_NOT_FOUND/)
    for (const args of [['gate'], ['gate', 'x'], ['gate', 'x', '--url', 'ftp://x'], ['gate', 'x', '--url', url, '--wait', 'soon'], ['gate', 'x', '--nope'], ['frobnicate'], []]) {
      const run = await cli(...args)
      t.equal(run.code, 3, `${JSON.stringify(args)} exits 3`)
    }
  })

  await t.test('--nodes and --selector judge other nodes; the evidence names them', async t => {
    const run = await cli('gate', 'aws-to-cilium', '--url', url, '--nodes', 'n3,n1')
    t.equal(run.code, 1, run.stderr)
    t.match(run.stdout, /^ {2}nodes \(2\): n1, n3$/m)
    t.match(run.stdout, /^ {2}ok {3}coverage nodes: 1 \(limit 1\) \[samples 2\]/m)
    const none = await cli('gate', 'aws-up', '--url', url, '--selector', 'cniplugin=nope')
    t.equal(none.code, 2, 'a selector matching nothing is insufficient')
    t.match(none.stdout, /\?\? {3}scope nodes: 0 \(limit 1\) - nodeSelector "cniplugin=nope" selects no node/)
    const missing = await cli('gate', 'aws-up', '--url', url, '--nodes', 'gone')
    t.match(missing.stdout, /^ {9}\?\? {3}gone: no agent has connected from it$/m, 'the uncovered node is quoted under its check')
    const bad = await cli('gate', 'aws-up', '--url', url, '--selector', 'a in b', '--wait', '1m')
    t.equal(bad.code, 3, 'a bad selector does not wait')
    t.match(bad.stderr, /answered 400 .*PINGFLEET_ERR_BAD_QUERY: nodeSelector="a in b" \(gate "aws-up"\): expected a Kubernetes label selector/)
    for (const args of [['--nodes', 'Bad_Name'], ['--nodes', 'a,,b'], ['--selector', ' ']]) {
      const r = await cli('gate', 'aws-up', '--url', url, ...args)
      t.equal(r.code, 3, `${args.join(' ')} exits 3`)
      t.match(r.stderr, /Run pingfleet --help for usage/)
    }
  })

  await t.test('--help', async t => {
    const run = await cli('gate', '--help')
    t.equal(run.code, 0)
    t.match(run.stdout, /Usage: pingfleet gate <name> --url <aggregator> \[--nodes <a,b> \| --selector <labels>\]/)
    t.match(run.stdout, /2 {2}insufficient data/)
  })

  await t.test('--wait gives up with the last verdict\'s code', async t => {
    const run = await cli('gate', 'dns-backends', '--url', url, '--wait', '600ms', '--interval', '200ms', '--json')
    t.equal(run.code, 2)
    t.equal(run.stdout.trim().split('\n').length, 1, 'with --json only the last answer is printed')
    const failing = await cli('gate', 'aws-to-cilium', '--url', url, '--wait', '2s', '--interval', '100ms')
    t.equal(failing.code, 1)
    const lines = failing.stdout.trim().split('\n')
    t.match(lines[0], /^gate aws-to-cilium: FAIL/, 'full evidence first')
    const headers = lines.filter(l => l.startsWith('gate '))
    t.ok(headers.length >= 2, 'more than one attempt')
    t.ok(headers.slice(1, -1).every(l => /^gate aws-to-cilium: still FAIL at \S+ \(\d+ pass, 1 fail, 0 insufficient\)$/.test(l)), 'then one line per unchanged attempt', { headers })
    t.match(headers.at(-1), /^gate aws-to-cilium: FAIL/, 'and full evidence at the end')
    t.match(lines.at(-1), /^ {2}ok {3}staleness aws/)
  })

  await t.test('--wait keeps polling until the gate passes', async t => {
    const waiting = start('gate', 'late', '--url', url, '--wait', '30s', '--interval', '100ms')
    // Let it see the missing group first.
    while (!waiting.output().includes('gate late: INSUFFICIENT_DATA')) await new Promise(resolve => setTimeout(resolve, 50))
    const late = new RawAgent(url)
    t.teardown(() => late.socket.close())
    await late.opened()
    late.send(hello('n9', { cniplugin: 'late' }))
    await late.waitFor(m => m.type === 'welcome')
    late.send(report(1, Date.now(), []))
    const run = await waiting.done
    t.equal(run.code, 0, run.stderr)
    t.match(run.stdout, /gate late: INSUFFICIENT_DATA[\s\S]*gate late: PASS/, 'progress, then the pass')
  })

  await t.test('the example migration loop: a baseline gate, then each batch judged on its own nodes before it is uncordoned', async t => {
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
})
