import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { FakeAggregator } from './fake-aggregator.ts'

const main = fileURLToPath(new URL('../src/main.ts', import.meta.url))

function run (env: Record<string, string>, args: string[] = []) {
  // Nothing may leave loopback: the DNS defaults would query the machine's resolver.
  const quiet = { PINGFLEET_DNS_NAMES: '', PINGFLEET_DNS_WIRE_NAMES: '' }
  const child = spawn(process.execPath, [main, ...args], { env: { ...process.env, ...quiet, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', chunk => { stdout += chunk })
  child.stderr.on('data', chunk => { stderr += chunk })
  const exited = new Promise<number | null>(resolve => child.on('exit', code => resolve(code)))
  return { child, exited, out: () => stdout, err: () => stderr }
}

t.test('invalid config: one line naming variable, value and expectation; non-zero exit', async t => {
  const p = run({ PINGFLEET_AGGREGATOR_URL: 'http://127.0.0.1:1', PINGFLEET_TOKEN: 'x', PINGFLEET_NODE_NAME: 'n', PINGFLEET_POD_IP: '127.0.0.1', PINGFLEET_INTERVAL: 'often' })
  t.equal(await p.exited, 78)
  t.equal(p.err(), 'PINGFLEET_ERR_AGENT_CONFIG: PINGFLEET_INTERVAL="often" is invalid: expected a duration from 100ms to 1h such as 5s\n')
  t.equal(p.out(), '')
})

t.test('runs, reports, and on SIGTERM flushes a last acked report and exits 0', async t => {
  const agg = await new FakeAggregator({ intervalMs: 100 }).listen()
  t.teardown(() => agg.close())
  const p = run({
    PINGFLEET_AGGREGATOR_URL: agg.url,
    PINGFLEET_TOKEN: 'secret',
    PINGFLEET_NODE_NAME: 'node-main',
    PINGFLEET_POD_IP: '127.0.0.1',
    UV_THREADPOOL_SIZE: ''
  }, ['--listen', '127.0.0.1:0'])
  // A failed assertion must not leave the agent running.
  t.teardown(() => { if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL') })
  // A cold start of a separate process takes a while on a loaded machine.
  await agg.until(() => agg.reports.length >= 2, 'two reports', 20_000)
  p.child.kill('SIGTERM')
  t.equal(await p.exited, 0)
  const lines = p.out().trim().split('\n').map(line => JSON.parse(line) as Record<string, unknown>)
  t.ok(lines.every(l => l.component === 'agent' && l.node === 'node-main'), 'pino JSON, one event per line')
  t.notOk(p.out().includes('secret'), 'the token is never logged')
  const stopped = lines.find(l => l.msg === 'agent stopped')
  t.match(stopped, { acked: true })
  t.equal(agg.reports.at(-1)!.seq, stopped!.seq, 'the final report reached the aggregator')
  t.match(lines.find(l => l.msg === 'configuration'), { threadpool: 16 })
})

t.test('a port already in use stops the agent with a fatal log line', async t => {
  const agg = await new FakeAggregator().listen()
  t.teardown(() => agg.close())
  const port = new URL(agg.url).port
  const p = run({ PINGFLEET_AGGREGATOR_URL: agg.url, PINGFLEET_TOKEN: 'secret', PINGFLEET_NODE_NAME: 'n', PINGFLEET_POD_IP: '127.0.0.1' }, ['--listen', `127.0.0.1:${port}`])
  t.equal(await p.exited, 1)
  t.match(p.out(), /"level":60.*"code":"EADDRINUSE".*agent failed to start/)
})

t.test('credentials in a target URL: sent as Basic auth, never shown in a log line, a column or an error line', async t => {
  const { createServer } = await import('node:http')
  const secret = 's3cr3t-pa55'
  const expected = `Basic ${Buffer.from(`probe:${secret}`).toString('base64')}`
  let authorized = 0
  const server = createServer((req, res) => {
    if (req.headers.authorization === expected) authorized++
    res.writeHead(req.headers.authorization === expected ? 200 : 401).end()
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise(resolve => server.close(resolve)))
  const port = (server.address() as { port: number }).port
  const url = `http://probe:${secret}@127.0.0.1:${port}/health?api_key=${secret}&page=1`
  const shown = `http://probe:***@127.0.0.1:${port}/health?api_key=***&page=1`

  const agg = await new FakeAggregator({ intervalMs: 100 }).listen()
  t.teardown(() => agg.close())
  const p = run({
    PINGFLEET_AGGREGATOR_URL: agg.url,
    PINGFLEET_TOKEN: 'secret',
    PINGFLEET_NODE_NAME: 'node-main',
    PINGFLEET_POD_IP: '127.0.0.1',
    PINGFLEET_HTTP_TARGETS: url,
    PINGFLEET_INTERVAL: '100ms'
  }, ['--listen', '127.0.0.1:0'])
  t.teardown(() => { if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL') })
  const cell = () => agg.reports.flatMap(r => r.cells).find(c => c.probe === 'http' && c.count > 0)
  await agg.until(() => cell() !== undefined, 'an http cell', 20_000)
  p.child.kill('SIGTERM')
  t.equal(await p.exited, 0)
  t.ok(authorized > 0, 'the userinfo went out as Basic credentials')
  t.equal(cell()!.target, shown, 'the column (and so every /metrics series and API answer) is the redacted URL')
  t.same(cell()!.errors ?? [], [], 'the server accepted the credentials')
  t.notOk(JSON.stringify(agg.reports).includes(secret), 'no report carries the secret')
  t.notOk(p.out().includes(secret), 'no log line carries the secret')
  t.ok(p.out().includes(shown), 'the logs show the redacted URL')

  // The config error line: an invalid list still shows every URL redacted.
  const bad = run({ PINGFLEET_AGGREGATOR_URL: agg.url, PINGFLEET_TOKEN: 'x', PINGFLEET_NODE_NAME: 'n', PINGFLEET_POD_IP: '127.0.0.1', PINGFLEET_HTTP_TARGETS: `${url},probe:${secret}@host/health` })
  t.equal(await bad.exited, 78)
  t.match(bad.err(), /^PINGFLEET_ERR_AGENT_CONFIG: PINGFLEET_HTTP_TARGETS=".*probe:\*\*\*@127\.0\.0\.1.*,probe:\*\*\*@host\/health" is invalid/)
  t.notOk(bad.err().includes(secret), 'the error line does not carry the secret')
})

t.test('field report 1: an agent probing a peer that streams an endless answer keeps its memory (pod and mtu probes)', { timeout: 240_000 }, async t => {
  const { readFileSync } = await import('node:fs')
  const { startEndlessPeer } = await import('../../test/helpers/slow-peer.ts')
  const peer = await startEndlessPeer('HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\r\n')
  t.teardown(peer.close)
  const agg = await new FakeAggregator({
    intervalMs: 100,
    peers: [{ node: 'recycled-ip', podIp: '127.0.0.1', port: peer.port, labels: {}, state: 'ready' }]
  }).listen()
  t.teardown(() => agg.close())
  const p = run({
    PINGFLEET_AGGREGATOR_URL: agg.url,
    PINGFLEET_TOKEN: 'secret',
    PINGFLEET_NODE_NAME: 'node-main',
    PINGFLEET_POD_IP: '127.0.0.1',
    PINGFLEET_MTU_INTERVAL: '100ms',
    PINGFLEET_LOG_LEVEL: 'warn',
    NODE_OPTIONS: '--max-semi-space-size=2' // as the chart runs it
  }, ['--listen', '127.0.0.1:0'])
  t.teardown(() => { if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL') })
  const cells = (probe: string) => agg.reports.flatMap(r => r.cells).filter(c => c.probe === probe)
  const done = (probe: string) => cells(probe).reduce((n, c) => n + c.count, 0)
  const cutOff = (probe: string) => cells(probe).flatMap(c => c.errors ?? [])
    .filter(e => e.reason === 'BAD_RESPONSE' && e.raw === 'BODY_TOO_LARGE').reduce((n, e) => n + e.count, 0)
  // Each probe used to read for its whole 2 s timeout at loopback speed: gigabytes held per probe.
  await agg.until(() => done('pod') >= 20 && done('mtu') >= 20, '20 pod and 20 mtu probes', 180_000)
  const rssKiB = Number(/^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${p.child.pid}/status`, 'utf8'))![1])
  p.child.kill('SIGTERM')
  t.equal(await p.exited, 0)
  t.ok(rssKiB < 192 * 1024, `agent RSS ${Math.round(rssKiB / 1024)} MiB after ${done('pod')} pod and ${done('mtu')} mtu probes against the endless peer, under the chart's 192Mi limit`)
  t.equal(cutOff('pod'), done('pod'), 'every pod probe failed as BAD_RESPONSE / BODY_TOO_LARGE')
  t.equal(cutOff('mtu'), done('mtu'), 'every mtu probe failed as BAD_RESPONSE / BODY_TOO_LARGE')
})
