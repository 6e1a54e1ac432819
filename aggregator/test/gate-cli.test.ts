// `pingfleet gate` as a process: exit 0 pass, 1 fail, 2 insufficient data or a timed-out wait,
// 3 no verdict (unreachable, unknown gate, bad usage); human evidence by default, --json for scripts.

import t from 'tap'
import { cli, cliFleet, closedPort, start } from './gate-cli-fixture.ts'
import { hello, RawAgent, report } from './helpers.ts'

t.test('the CLI', async t => {
  const { url } = await cliFleet(t)

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
})
