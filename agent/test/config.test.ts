import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { defaultLookupTimeoutMs, loadConfig, OPTIONS, parseLabels } from '../src/config.ts'
import { dnsLookupTarget } from '../src/probes/dns-lookup.ts'
import { httpTarget } from '../src/probes/http.ts'
import { serviceTarget } from '../src/probes/service.ts'
import { tcpTarget } from '../src/probes/tcp.ts'

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
    tokenFile: '',
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
    shutdownDrainMs: 2000,
    logLevel: 'info',
    mtuSizes: [8500],
    mtuTimeoutMs: 2000,
    mtuIntervalMs: 30_000,
    udpCount: 5,
    udpIntervalMs: 30000,
    serviceTargets: [],
    serviceTimeoutMs: 5000,
    resolvConfPath: '/etc/resolv.conf',
    clusterDomain: 'cluster.local',
    dnsNames: ['kubernetes.default', 'kubernetes.default.svc.cluster.local.'],
    // glibc's worst case under this machine's resolv.conf (31 s for one server and glibc's defaults);
    // the derivation itself is pinned down with fixtures below.
    dnsLookupTimeoutMs: defaultLookupTimeoutMs('/etc/resolv.conf', {}, [dnsLookupTarget('kubernetes.default'), dnsLookupTarget('kubernetes.default.svc.cluster.local.')]),
    dnsServers: [],
    dnsWireNames: ['kubernetes.default.svc.cluster.local'],
    dnsWireTypes: ['A'],
    dnsWireTransport: 'udp',
    dnsWireTimeoutMs: 3000,
    dnsExpect: [],
    httpTargets: [],
    httpCaFile: '',
    httpTimeoutMs: 10_000,
    tcpTargets: [],
    tcpTimeoutMs: 5000,
    lookupMaxInFlight: 0,
    lookupLagThresholdMs: 25,
    targets: { service: [], dnsLookup: [dnsLookupTarget('kubernetes.default'), dnsLookupTarget('kubernetes.default.svc.cluster.local.')], dnsServers: [], http: [], tcp: [] }
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
  ['a too long shutdown drain', { PINGFLEET_SHUTDOWN_DRAIN: '2m' }, [], /^PINGFLEET_SHUTDOWN_DRAIN="2m" is invalid: expected a duration from 1ms to 1m such as 2s$/],
  ['a fractional buffer', { PINGFLEET_REPORT_BUFFER: '1.5' }, [], /^PINGFLEET_REPORT_BUFFER="1.5" is invalid/],
  ['labels without =', { PINGFLEET_LABELS: 'cniplugin' }, [], /^PINGFLEET_LABELS="cniplugin" is invalid: expected comma-separated key=value/],
  ['a label value too long', { PINGFLEET_LABELS: `a=${'x'.repeat(64)}` }, [], /^PINGFLEET_LABELS="a=x+" is invalid/],
  ['a port out of range', { PINGFLEET_LISTEN: '0.0.0.0:70000' }, [], /^PINGFLEET_LISTEN="0.0.0.0:70000" is invalid: expected host:port/],
  ['a listen without port', { PINGFLEET_LISTEN: '0.0.0.0' }, [], /^PINGFLEET_LISTEN="0.0.0.0" is invalid/],
  ['an unknown log level', { PINGFLEET_LOG_LEVEL: 'verbose' }, [], /^PINGFLEET_LOG_LEVEL="verbose" is invalid: expected one of fatal/],
  ['reconnect bounds reversed', { PINGFLEET_RECONNECT_MIN: '10s', PINGFLEET_RECONNECT_MAX: '1s' }, [], /^PINGFLEET_RECONNECT_MIN="10s" is invalid: expected .*not above PINGFLEET_RECONNECT_MAX/],
  ['a node name too long', { PINGFLEET_NODE_NAME: 'n'.repeat(254) }, [], /^PINGFLEET_NODE_NAME="n+" is invalid/],
  ['an MTU size too large', { PINGFLEET_MTU_SIZES: '1400,70000' }, [], /^PINGFLEET_MTU_SIZES="1400,70000" is invalid: expected comma-separated response sizes in bytes from 64 to 65536/],
  ['too many udp datagrams', { PINGFLEET_UDP_COUNT: '51' }, [], /^PINGFLEET_UDP_COUNT="51" is invalid: expected an integer from 0 to 50/],
  ['a udp train longer than half the probe timeout', { PINGFLEET_UDP_COUNT: '20', PINGFLEET_PROBE_TIMEOUT: '300ms' }, [], /^PINGFLEET_UDP_COUNT="20" is invalid: expected .*shorter than half of PINGFLEET_PROBE_TIMEOUT/],
  ['a udp interval below 100ms', {}, ['--udp-interval', '50ms'], /^--udp-interval="50ms" is invalid: expected a duration from 100ms to 1h/],
  ['an MTU size twice', { PINGFLEET_MTU_SIZES: '1400,1400' }, [], /^PINGFLEET_MTU_SIZES="1400,1400" is invalid/],
  ['a service target without port', { PINGFLEET_SERVICE_TARGETS: '10.96.0.20' }, [], /^PINGFLEET_SERVICE_TARGETS="10.96.0.20" is invalid: expected comma-separated host:port/],
  ['a DNS name with a space', { PINGFLEET_DNS_NAMES: 'kubernetes default' }, [], /^PINGFLEET_DNS_NAMES="kubernetes default" is invalid: expected comma-separated host names/],
  ['a DNS name with a bad family', { PINGFLEET_DNS_NAMES: 'localhost/5' }, [], /^PINGFLEET_DNS_NAMES="localhost\/5" is invalid/],
  ['a DNS server that is a name', { PINGFLEET_DNS_SERVERS: 'dns.local:53' }, [], /^PINGFLEET_DNS_SERVERS="dns.local:53" is invalid: expected comma-separated resolver addresses/],
  ['a wire name with a family', { PINGFLEET_DNS_WIRE_NAMES: 'a.example/4' }, [], /^PINGFLEET_DNS_WIRE_NAMES="a.example\/4" is invalid/],
  ['an unknown wire type', { PINGFLEET_DNS_WIRE_TYPES: 'A,MX' }, [], /^PINGFLEET_DNS_WIRE_TYPES="A,MX" is invalid: expected A, AAAA or A,AAAA$/],
  ['an unknown wire transport', { PINGFLEET_DNS_WIRE_TRANSPORT: 'doh' }, [], /^PINGFLEET_DNS_WIRE_TRANSPORT="doh" is invalid: expected udp/],
  ['a non-http URL', { PINGFLEET_HTTP_TARGETS: 'ftp://example.com/' }, [], /^PINGFLEET_HTTP_TARGETS="ftp:\/\/example.com\/" is invalid: expected comma-separated http/],
  ['a missing CA file', { PINGFLEET_HTTP_CA_FILE: '/nonexistent/ca.pem' }, [], /^PINGFLEET_HTTP_CA_FILE="\/nonexistent\/ca.pem" is invalid: expected a readable PEM file/],
  ['a tcp target without port', { PINGFLEET_TCP_TARGETS: 'example.com' }, [], /^PINGFLEET_TCP_TARGETS="example.com" is invalid: expected comma-separated host:port/],
  ['a negative lookup cap', { PINGFLEET_LOOKUP_MAX_IN_FLIGHT: '-1' }, [], /^PINGFLEET_LOOKUP_MAX_IN_FLIGHT="-1" is invalid/],
  ['a too slow DNS timeout', { PINGFLEET_DNS_LOOKUP_TIMEOUT: '2m' }, [], /^PINGFLEET_DNS_LOOKUP_TIMEOUT="2m" is invalid: expected a duration from 10ms to 1m/],
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

t.test('exactly one of PINGFLEET_TOKEN and PINGFLEET_TOKEN_FILE', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'pingfleet-token-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'token')
  writeFileSync(file, 'projected-token\n')
  const config = loadConfig({ ...required, PINGFLEET_TOKEN: undefined, PINGFLEET_TOKEN_FILE: file })
  t.equal(config.tokenFile, file)
  t.equal(config.token, '', 'the file is read on every connect, not here')
  t.equal(loadConfig({ ...required, PINGFLEET_TOKEN: undefined }, ['--token-file', file]).tokenFile, file, 'flag')
  t.throws(() => loadConfig({ ...required, PINGFLEET_TOKEN_FILE: file }), { code: 'PINGFLEET_ERR_AGENT_CONFIG', message: 'PINGFLEET_TOKEN and PINGFLEET_TOKEN_FILE are both set: expected exactly one of them' })
  t.throws(() => loadConfig({ ...required, PINGFLEET_TOKEN: undefined }), { message: /^PINGFLEET_TOKEN is not set \(nor PINGFLEET_TOKEN_FILE/ })
  t.throws(() => loadConfig({ ...required, PINGFLEET_TOKEN: undefined, PINGFLEET_TOKEN_FILE: join(dir, 'missing') }),
    { message: /^PINGFLEET_TOKEN_FILE=".*missing" is invalid: expected a readable file/ })
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

t.test('probe suite options: lists are trimmed and normalised, empty disables', async t => {
  const config = loadConfig({
    ...required,
    PINGFLEET_MTU_SIZES: ' 1400, 8500 ',
    PINGFLEET_SERVICE_TARGETS: '10.96.0.20:8081, pingfleet-agent.pingfleet:8081',
    PINGFLEET_DNS_NAMES: '',
    PINGFLEET_DNS_SERVERS: '127.0.0.153:5353,[::1]:53,10.96.0.10',
    PINGFLEET_DNS_WIRE_TYPES: 'A,AAAA',
    PINGFLEET_DNS_WIRE_TRANSPORT: 'tcp',
    PINGFLEET_HTTP_TARGETS: 'https://Example.com/healthz',
    PINGFLEET_HTTP_CA_FILE: '/etc/hosts',
    PINGFLEET_TCP_TARGETS: 'localhost:8080,[2001:db8::1]:443',
    PINGFLEET_LOOKUP_MAX_IN_FLIGHT: '3'
  }, ['--dns-wire-names', 'a.example.,b.example', '--mtu-timeout', '3s', '--mtu-interval', '1m'])
  t.match(config, {
    mtuSizes: [1400, 8500],
    mtuTimeoutMs: 3000,
    mtuIntervalMs: 60_000,
    serviceTargets: ['10.96.0.20:8081', 'pingfleet-agent.pingfleet:8081'],
    dnsNames: [],
    dnsServers: ['127.0.0.153:5353', '[::1]:53', '10.96.0.10'],
    dnsWireNames: ['a.example.', 'b.example'],
    dnsWireTypes: ['A', 'AAAA'],
    dnsWireTransport: 'tcp',
    httpTargets: ['https://example.com/healthz'],
    httpCaFile: '/etc/hosts',
    tcpTargets: ['localhost:8080', '[2001:db8::1]:443'],
    lookupMaxInFlight: 3
  })
  t.ok(Object.isFrozen(config.mtuSizes) && Object.isFrozen(config.tcpTargets))
  t.same(config.targets, {
    service: [serviceTarget('10.96.0.20', 8081), serviceTarget('pingfleet-agent.pingfleet', 8081)],
    dnsLookup: [],
    dnsServers: [{ server: '127.0.0.153', port: 5353 }, { server: '::1', port: 53 }, { server: '10.96.0.10', port: 53 }],
    http: [httpTarget('https://example.com/healthz')],
    tcp: [tcpTarget('localhost', 8080), tcpTarget('2001:db8::1', 443)]
  }, 'the lists are also kept parsed: nothing parses them again')
  t.ok(Object.isFrozen(config.targets) && Object.isFrozen(config.targets.tcp))
  t.same(loadConfig({ ...required, PINGFLEET_MTU_SIZES: '' }).mtuSizes, [], 'empty disables mtu probes')
})

t.test('the README configuration table lists every option', async t => {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8')
  for (const o of OPTIONS) t.match(readme, `| \`${o.env}\` | \`--${o.flag}\` |`, `${o.env} is documented`)
})

t.test('credentials in URLs: kept for use, shown redacted in the printable config and in error lines', async t => {
  const { printableConfig } = await import('../src/config.ts')
  const config = loadConfig({ ...required, PINGFLEET_AGGREGATOR_URL: 'https://agg:hunter2@agg.example', PINGFLEET_HTTP_TARGETS: 'http://user:pass@host/health,https://h/x?token=abc' })
  t.same(config.httpTargets, ['http://user:pass@host/health', 'https://h/x?token=abc'], 'the config keeps what is needed to connect')
  const shown = JSON.stringify(printableConfig(config))
  for (const secret of ['hunter2', 'pass@', 'abc', 's3cr3t-token']) t.notOk(shown.includes(secret), `printable config hides ${secret}`)
  t.match(printableConfig(config), { aggregatorUrl: 'https://agg:***@agg.example/', httpTargets: ['http://user:***@host/health', 'https://h/x?token=***'] })

  t.throws(() => loadConfig({ ...required, PINGFLEET_HTTP_TARGETS: 'http://user:pass@host/health,ftp://u:hunter2@h/' }),
    { message: /^PINGFLEET_HTTP_TARGETS="http:\/\/user:\*\*\*@host\/health,ftp:\/\/u:\*\*\*@h\/" is invalid/ })
  t.throws(() => loadConfig({ ...required, PINGFLEET_AGGREGATOR_URL: 'http://a:hunter2@h/?x=1' }), { message: /^PINGFLEET_AGGREGATOR_URL="http:\/\/a:\*\*\*@h\/\?x=1" is invalid/ })
  t.throws(() => loadConfig({ ...required, PINGFLEET_HTTP_TARGETS: 'http://u:one@h/,http://u:two@h/' }),
    { message: /two targets differ only in credentials \(both shown as http:\/\/u:\*\*\*@h\/\)$/ })
})

t.test('cluster domain: the default DNS names follow it, from the variable or from the pod\'s resolv.conf search list', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'pf-domain-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const podConf = join(dir, 'resolv.conf')
  // What the kubelet writes into a pod of namespace pingfleet on a cluster whose domain is corp.example.
  writeFileSync(podConf, 'search pingfleet.svc.corp.example svc.corp.example corp.example\nnameserver 10.96.0.10\noptions ndots:5\n')
  const derived = loadConfig({ ...required, PINGFLEET_RESOLV_CONF: podConf })
  t.equal(derived.clusterDomain, 'corp.example')
  t.same(derived.dnsNames, ['kubernetes.default', 'kubernetes.default.svc.corp.example.'])
  t.same(derived.dnsWireNames, ['kubernetes.default.svc.corp.example'])

  const explicit = loadConfig({ ...required, PINGFLEET_RESOLV_CONF: podConf, PINGFLEET_CLUSTER_DOMAIN: 'k8s.internal' })
  t.equal(explicit.clusterDomain, 'k8s.internal', 'the variable (the chart sets it from clusterDomain) wins over resolv.conf')
  t.same(explicit.dnsNames, ['kubernetes.default', 'kubernetes.default.svc.k8s.internal.'])
  t.same(explicit.dnsWireNames, ['kubernetes.default.svc.k8s.internal'])
  t.equal(loadConfig({ ...required, PINGFLEET_RESOLV_CONF: podConf }, ['--cluster-domain', 'flag.example']).clusterDomain, 'flag.example')

  t.same(loadConfig({ ...required, PINGFLEET_RESOLV_CONF: podConf, PINGFLEET_DNS_WIRE_NAMES: 'a.example' }).dnsWireNames, ['a.example'], 'explicit names are kept as written')
  t.same(loadConfig({ ...required, PINGFLEET_RESOLV_CONF: podConf, LOCALDOMAIN: 'svc.other.example' }).clusterDomain, 'other.example', 'LOCALDOMAIN replaces the search list, as in glibc')

  const hostConf = join(dir, 'host.conf')
  writeFileSync(hostConf, 'search example.com\nnameserver 10.0.0.2\n')
  t.equal(loadConfig({ ...required, PINGFLEET_RESOLV_CONF: hostConf }).clusterDomain, 'cluster.local', 'no svc. entry (dnsPolicy: Default): Kubernetes\' default')
  t.equal(loadConfig({ ...required, PINGFLEET_RESOLV_CONF: join(dir, 'missing') }).clusterDomain, 'cluster.local', 'an unreadable file: the default')

  t.throws(() => loadConfig({ ...required, PINGFLEET_CLUSTER_DOMAIN: 'Not A Domain' }), { message: /^PINGFLEET_CLUSTER_DOMAIN="Not A Domain" is invalid: expected a DNS domain/ })
})

t.test('getaddrinfo timeout: derived from resolv.conf so that no lookup an application would see succeed is cut off', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'pf-gai-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const conf = (name: string, text: string): string => {
    const path = join(dir, name)
    writeFileSync(path, text)
    return path
  }
  const load = (path: string, extra: Record<string, string> = {}) => loadConfig({ ...required, PINGFLEET_RESOLV_CONF: path, ...extra }).dnsLookupTimeoutMs
  const pod = conf('pod', 'search default.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n')
  // The field case: A answered, AAAA never; glibc's defaults make the application wait 3 × 5 s = 15 s.
  t.ok(load(pod) > 15_000, 'longer than the 15 s an application waits when AAAA is lost')
  // 2 queries (search walk, then as is) × 2 attempts × 5 s + 2 single-request re-sends × 5 s, + 1 s.
  t.equal(load(pod), 31_000)
  t.equal(load(pod, { PINGFLEET_DNS_NAMES: 'kubernetes.default.svc.cluster.local.' }), 21_000, 'an absolute name is queried once: 2 × 5 + 2 × 5 + 1')
  t.equal(load(pod, { PINGFLEET_DNS_NAMES: 'kubernetes.default.svc.cluster.local./4' }), 11_000, 'one family: no partial answer to re-send for')
  t.equal(load(conf('single', 'nameserver 10.96.0.10\noptions single-request\n'), { PINGFLEET_DNS_NAMES: 'a.example.' }), 16_000, 'single-request: one re-send')
  t.equal(load(conf('reopen', 'nameserver 10.96.0.10\noptions single-request-reopen\n'), { PINGFLEET_DNS_NAMES: 'a.example.' }), 11_000, 'single-request-reopen: none')
  // Three servers, timeout:2 attempts:3: waits 2, 4/3→1, 8/3→2 per round (res_send.c send_dg).
  t.equal(load(conf('three', 'nameserver 10.0.0.1\nnameserver 10.0.0.2\nnameserver 10.0.0.3\nnameserver 10.0.0.4\noptions timeout:2 attempts:3\n'), { PINGFLEET_DNS_NAMES: 'a.example.' }), (3 * 5 + 2 * 2) * 1000 + 1000)
  t.equal(load(conf('two', 'nameserver 10.0.0.1\nnameserver 10.0.0.2\noptions timeout:1 attempts:1\n'), { PINGFLEET_DNS_NAMES: 'a.example.' }), (1 * 2 + 2 * 1) * 1000 + 1000, 'waits 1 and 2/2=1')
  t.equal(load(conf('env', 'nameserver 10.96.0.10\n'), { PINGFLEET_DNS_NAMES: 'a.example.', RES_OPTIONS: 'timeout:1 attempts:1' }), 4_000, 'RES_OPTIONS overrides the file, as in glibc')
  t.equal(load(conf('slow', 'nameserver 10.0.0.1\nnameserver 10.0.0.2\noptions timeout:30 attempts:5\n')), 60_000, 'capped at the 1 minute the schema allows')
  t.equal(load(join(dir, 'missing')), 31_000, 'an unreadable file: glibc\'s defaults')
  t.equal(load(pod, { PINGFLEET_DNS_LOOKUP_TIMEOUT: '12s' }), 12_000, 'an explicit value wins')
})

t.test('DNS expectations: parsed and checked once at start', async t => {
  const names = { PINGFLEET_DNS_NAMES: 'kubernetes.default', PINGFLEET_DNS_WIRE_NAMES: 'kubernetes.default.svc.cluster.local,absent.example' }
  t.same(loadConfig({ ...required, ...names, PINGFLEET_DNS_EXPECT: 'absent.example/A=nxdomain, Kubernetes.Default.svc.cluster.local./AAAA=answer' }).dnsExpect, [
    { name: 'absent.example', type: 'A', outcome: 'nxdomain' },
    { name: 'kubernetes.default.svc.cluster.local', type: 'AAAA', outcome: 'answer' }
  ])
  t.throws(() => loadConfig({ ...required, ...names, PINGFLEET_DNS_EXPECT: 'absent.example/MX=nxdomain' }), { message: /^PINGFLEET_DNS_EXPECT="absent.example\/MX=nxdomain" is invalid: expected comma-separated name\/TYPE=outcome/ })
  t.throws(() => loadConfig({ ...required, ...names, PINGFLEET_DNS_EXPECT: 'absent.example/A=missing' }), { message: /PINGFLEET_DNS_EXPECT="absent.example\/A=missing" is invalid/ })
  t.throws(() => loadConfig({ ...required, ...names, PINGFLEET_DNS_EXPECT: 'typo.example/A=nxdomain' }), { message: /is invalid: typo.example is not one of PINGFLEET_DNS_NAMES or PINGFLEET_DNS_WIRE_NAMES$/ })
  t.throws(() => loadConfig({ ...required, ...names, PINGFLEET_DNS_EXPECT: 'absent.example/A=nxdomain,absent.example./A=answer' }), { message: /is invalid: absent.example\/A is given twice$/ })
})
