// `pingfleet diagnose` as a process against an aggregator started in-process with a synthetic
// findings evaluation: exit 0 nothing active, 1 something active, 2 not evaluated yet, 3 no answer;
// plain language worst first by default, the answer as it is with --json.

import t from 'tap'
import { cli, closedPort } from './gate-cli-fixture.ts'
import { hello, RawAgent } from './helpers.ts'
import { syntheticFleet } from './findings/fixture.ts'
import { boundaryDetection, nodeDetection } from './findings/detections.ts'

t.test('pingfleet diagnose', async t => {
  const fleet = await syntheticFleet()
  t.teardown(() => fleet.agg.close())
  const { url } = fleet
  // One agent connected throughout: findings judge by connected agents, and with none there is nothing to judge by.
  const witness = new RawAgent(url)
  t.teardown(() => witness.socket.close())
  await witness.opened()
  witness.send(hello('node-01', { cniplugin: 'aws' }))
  await witness.waitFor(m => m.type === 'peers')

  await t.test('nothing active exits 0', async t => {
    await fleet.evaluations(1)
    const run = await cli('diagnose', '--url', url)
    t.equal(run.code, 0, run.stderr)
    t.match(run.stdout, /^no active findings at \d{4}-\d\d-\d\dT\S+Z\n$/)
  })

  await t.test('active findings exit 1, worst first: the summary, then evidence, score and fleet events', async t => {
    const agent = new RawAgent(url)
    t.teardown(() => agent.socket.close())
    await agent.opened()
    agent.send(hello('node-17', { cniplugin: 'cilium' }))
    await agent.waitFor(m => m.type === 'peers')
    fleet.detect([boundaryDetection('aws', 'cilium', 0.6), nodeDetection('node-17', 'cilium', { score: 0.9 })])
    await fleet.evaluations(2)
    const run = await cli('diagnose', '--url', url + '/')
    t.equal(run.code, 1, run.stderr)
    const lines = run.stdout.split('\n')
    t.match(lines[0], /^2 active findings at \S+, worst first:$/)
    t.equal(lines[1], '')
    t.match(lines[2], /^node-inbound: node-17 \(cilium\): inbound pod probes fail from 9 of 10 peers since \d\d:\d\d:\d\d \(CONNECT_TIMEOUT\); its own outbound probes succeed$/)
    t.equal(lines[3], '    pod inbound: 90 of 100 failed (90%), 9 of 10 agree; CONNECT_TIMEOUT (ETIMEDOUT) x90')
    t.equal(lines[4], '    score 0.9: 9 of 10 peers agree')
    t.match(lines[5], /^ {4}fleet: node-17 joined \(cilium\) at \d\d:\d\d:\d\d$/)
    t.equal(lines[6], '')
    t.match(lines[7], /^group-boundary: aws -> cilium: pod probes fail across the boundary since \d\d:\d\d:\d\d$/)
  })

  await t.test('--json prints the /api/v1/findings answer as it is', async t => {
    const run = await cli('diagnose', '--url', url, '--json')
    t.equal(run.code, 1)
    const answer = JSON.parse(run.stdout) as { active: number, findings: Array<{ id: string }> }
    t.equal(answer.active, 2)
    t.same(answer.findings.map(f => f.id), ['node-inbound:node/node-17', 'group-boundary:groups/aws->cilium'])
    const direct = await (await fetch(`${url}/api/v1/findings`)).json() as { findings: unknown[] }
    t.same(Object.keys(JSON.parse(run.stdout)).sort(), Object.keys(direct).sort())
  })

  await t.test('resolved findings: exit 0 again, and the plain output says how many resolved', async t => {
    fleet.detect([])
    await fleet.evaluations(3)
    const run = await cli('diagnose', '--url', url)
    t.equal(run.code, 0, run.stderr)
    t.match(run.stdout, /^no active findings at \S+; 2 resolved recently\n$/)
    const json = await cli('diagnose', '--url', url, '--json')
    t.equal(json.code, 0)
    t.equal((JSON.parse(json.stdout) as { active: number }).active, 0)
  })

  await t.test('an unreachable aggregator, a wrong URL and bad usage exit 3', async t => {
    const port = await closedPort()
    const down = await cli('diagnose', '--url', `http://127.0.0.1:${port}`)
    t.equal(down.code, 3)
    t.match(down.stderr, /aggregator unreachable at http:\/\/127\.0\.0\.1:\d+\/api\/v1\/findings: ECONNREFUSED/)
    const wrong = await cli('diagnose', '--url', `${url}/nope`)
    t.equal(wrong.code, 3)
    t.match(wrong.stderr, /answered 404 .*PINGFLEET_ERR_NOT_FOUND/)
    for (const args of [['diagnose'], ['diagnose', '--url', 'ftp://x'], ['diagnose', '--url', url, 'extra'], ['diagnose', '--url', url, '--timeout', 'soon'], ['diagnose', '--url', url, '--nope']]) {
      const run = await cli(...args)
      t.equal(run.code, 3, `${JSON.stringify(args)} exits 3`)
      t.match(run.stderr, /^pingfleet: /)
    }
  })
})

t.test('an aggregator with no agent connected has nothing to judge by: exits 2, never 0 (review finding: it failed open)', async t => {
  const fleet = await syntheticFleet()
  t.teardown(() => fleet.agg.close())
  await fleet.evaluations(2)
  const run = await cli('diagnose', '--url', fleet.url)
  t.equal(run.code, 2, run.stderr)
  t.match(run.stdout, /^findings not evaluated yet/)
})

t.test('an aggregator whose findings have not been evaluated exits 2', async t => {
  const fleet = await syntheticFleet(undefined, () => { throw new Error('not yet') })
  t.teardown(() => fleet.agg.close())
  const run = await cli('diagnose', '--url', fleet.url)
  t.equal(run.code, 2, run.stderr)
  t.match(run.stdout, /^findings not evaluated yet/)
  const json = await cli('diagnose', '--url', fleet.url, '--json')
  t.equal(json.code, 2)
  t.equal((JSON.parse(json.stdout) as { evaluatedAt: null }).evaluatedAt, null)
})
