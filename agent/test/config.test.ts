import t from 'tap'
import { loadConfig, OPTIONS, parseLabels } from '../src/config.ts'

const required = {
  PINGFLEET_AGGREGATOR_URL: 'http://127.0.0.1:8080',
  PINGFLEET_TOKEN: 's3cr3t-token',
  PINGFLEET_NODE_NAME: 'node-a',
  PINGFLEET_POD_IP: '10.0.0.7'
}

t.test('defaults from the minimal environment', async t => {
  const config = loadConfig(required)
  t.same(config, {
    aggregatorUrl: 'http://127.0.0.1:8080',
    token: 's3cr3t-token',
    nodeName: 'node-a',
    podName: 'node-a',
    podIp: '10.0.0.7',
    labels: {},
    listenHost: '0.0.0.0',
    listenPort: 8081,
    intervalMs: 5000,
    probeTimeoutMs: 2000,
    concurrency: 64,
    reportBuffer: 720,
    lagThresholdMs: 50,
    heartbeatMs: 10_000,
    reconnectMinMs: 500,
    reconnectMaxMs: 30_000,
    shutdownTimeoutMs: 3000,
    logLevel: 'info'
  })
  t.ok(Object.isFrozen(config))
  t.ok(Object.isFrozen(config.labels))
  t.throws(() => { (config as { intervalMs: number }).intervalMs = 1 })
})

t.test('every option is read from env, and flags win over env', async t => {
  const config = loadConfig({
    ...required,
    PINGFLEET_AGGREGATOR_URL: 'https://agg.example/base/',
    PINGFLEET_POD_NAME: 'agent-xyz',
    PINGFLEET_LABELS: 'cniplugin=aws, topology.kubernetes.io/zone=a',
    PINGFLEET_LISTEN: '[::]:9000',
    PINGFLEET_INTERVAL: '10s',
    PINGFLEET_LOG_LEVEL: 'debug'
  }, ['--interval', '2s', '--listen=127.0.0.1:0', '--pod-ip', 'fd00::7', '--concurrency', '8'])
  t.match(config, {
    aggregatorUrl: 'https://agg.example/base',
    podName: 'agent-xyz',
    podIp: 'fd00::7',
    labels: { cniplugin: 'aws', 'topology.kubernetes.io/zone': 'a' },
    listenHost: '127.0.0.1',
    listenPort: 0,
    intervalMs: 2000,
    concurrency: 8,
    logLevel: 'debug'
  })
  t.same(loadConfig({ ...required, PINGFLEET_LISTEN: '[::]:9000' }).listenHost, '::')
})

const bad: Array<[string, Record<string, string>, string[], RegExp]> = [
  ['a missing aggregator URL', { PINGFLEET_AGGREGATOR_URL: '' }, [], /^PINGFLEET_AGGREGATOR_URL is not set \(nor --aggregator-url\): expected an http/],
  ['a websocket URL', { PINGFLEET_AGGREGATOR_URL: 'ws://x:1' }, [], /^PINGFLEET_AGGREGATOR_URL="ws:\/\/x:1" is invalid: expected an http/],
  ['a URL with a query', { PINGFLEET_AGGREGATOR_URL: 'http://x/?a=1' }, [], /PINGFLEET_AGGREGATOR_URL="http:\/\/x\/\?a=1" is invalid/],
  ['not a URL', { PINGFLEET_AGGREGATOR_URL: 'agg:8080' }, [], /PINGFLEET_AGGREGATOR_URL="agg:8080" is invalid/],
  ['a bad pod IP', { PINGFLEET_POD_IP: '10.0.0' }, [], /^PINGFLEET_POD_IP="10.0.0" is invalid: expected the IPv4 or IPv6 address/],
  ['a bad interval', { PINGFLEET_INTERVAL: '5' }, [], /^PINGFLEET_INTERVAL="5" is invalid: expected a duration from 100ms to 1h such as 5s$/],
  ['a too short interval', { PINGFLEET_INTERVAL: '10ms' }, [], /^PINGFLEET_INTERVAL="10ms" is invalid/],
  ['a bad flag value', {}, ['--probe-timeout', '2 minutes'], /^--probe-timeout="2 minutes" is invalid: expected a duration/],
  ['zero concurrency', { PINGFLEET_CONCURRENCY: '0' }, [], /^PINGFLEET_CONCURRENCY="0" is invalid: expected an integer from 1 to 10000$/],
  ['a fractional buffer', { PINGFLEET_REPORT_BUFFER: '1.5' }, [], /^PINGFLEET_REPORT_BUFFER="1.5" is invalid/],
  ['labels without =', { PINGFLEET_LABELS: 'cniplugin' }, [], /^PINGFLEET_LABELS="cniplugin" is invalid: expected comma-separated key=value/],
  ['a label value too long', { PINGFLEET_LABELS: `a=${'x'.repeat(64)}` }, [], /^PINGFLEET_LABELS="a=x+" is invalid/],
  ['a port out of range', { PINGFLEET_LISTEN: '0.0.0.0:70000' }, [], /^PINGFLEET_LISTEN="0.0.0.0:70000" is invalid: expected host:port/],
  ['a listen without port', { PINGFLEET_LISTEN: '0.0.0.0' }, [], /^PINGFLEET_LISTEN="0.0.0.0" is invalid/],
  ['an unknown log level', { PINGFLEET_LOG_LEVEL: 'verbose' }, [], /^PINGFLEET_LOG_LEVEL="verbose" is invalid: expected one of fatal/],
  ['reconnect bounds reversed', { PINGFLEET_RECONNECT_MIN: '10s', PINGFLEET_RECONNECT_MAX: '1s' }, [], /^PINGFLEET_RECONNECT_MIN="10s" is invalid: expected .*not above PINGFLEET_RECONNECT_MAX/],
  ['a node name too long', { PINGFLEET_NODE_NAME: 'n'.repeat(254) }, [], /^PINGFLEET_NODE_NAME="n+" is invalid/],
  ['an unknown flag', {}, ['--intervall', '5s'], /^invalid command line: Unknown option '--intervall'/],
  ['a positional argument', {}, ['extra'], /^invalid command line/]
]
for (const [what, env, argv, message] of bad) {
  t.test(`rejects ${what}`, async t => {
    t.throws(() => loadConfig({ ...required, ...env }, argv), { code: 'PINGFLEET_ERR_AGENT_CONFIG', message })
  })
}

t.test('a bad token is named but never echoed', async t => {
  const err = t.throws(() => loadConfig({ ...required, PINGFLEET_TOKEN: 'x'.repeat(5000) })) as Error
  t.equal(err.message, 'PINGFLEET_TOKEN=<redacted> is invalid: expected the bearer token the aggregator accepts (non-empty)')
  t.throws(() => loadConfig({ ...required, PINGFLEET_TOKEN: undefined }), { message: /^PINGFLEET_TOKEN is not set/ })
})

t.test('labels parsing', async t => {
  t.same(parseLabels(''), {})
  t.same(parseLabels('a=,b=c=d'), { a: '', b: 'c=d' })
  t.equal(parseLabels('=x'), undefined)
  t.equal(parseLabels('a=1,a=2'), undefined, 'a key given twice is ambiguous')
})

t.test('every option has a distinct env name and flag', async t => {
  t.equal(new Set(OPTIONS.map(o => o.env)).size, OPTIONS.length)
  t.equal(new Set(OPTIONS.map(o => o.flag)).size, OPTIONS.length)
})
