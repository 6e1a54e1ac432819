import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import type { Peer } from '@pingfleet/protocol'
import { loadConfig } from '../src/config.ts'
import { createProbeSuite, loadStaticTargets, rosterTargets, staticTargets, wireServers } from '../src/probe-suite.ts'
import { memoryLogger } from './fake-aggregator.ts'

const peer = (node: string, port: number, state: Peer['state'] = 'ready'): Peer => ({ node, podIp: '127.0.0.1', port, labels: {}, state })
const resolver = { server: '127.0.0.153', port: 5353 }
const base = { PINGFLEET_AGGREGATOR_URL: 'http://127.0.0.1:1', PINGFLEET_TOKEN: 't', PINGFLEET_NODE_NAME: 'a', PINGFLEET_POD_IP: '127.0.0.1' }

t.test('roster targets: pod and one mtu target per size; static targets from the config', async t => {
  t.same(rosterTargets([peer('a', 1), peer('b', 2)], 'a', [1400, 8500]).map(x => `${x.kind} ${x.id}`), ['pod b', 'mtu b/1400', 'mtu b/8500'])
  t.same(rosterTargets([peer('a', 1), peer('b', 2)], 'a', [], true).map(x => `${x.kind} ${x.id}`), ['pod b', 'udp b'], 'one udp target per ready peer')
  const config = loadConfig({
    ...base,
    PINGFLEET_SERVICE_TARGETS: '10.96.0.20:8081,svc.ns:8081',
    PINGFLEET_DNS_NAMES: 'localhost/4',
    PINGFLEET_DNS_WIRE_NAMES: 'a.example,b.example',
    PINGFLEET_DNS_WIRE_TYPES: 'A,AAAA',
    PINGFLEET_HTTP_TARGETS: 'http://127.0.0.1:9/x',
    PINGFLEET_TCP_TARGETS: 'localhost:9'
  })
  t.same(staticTargets(config, [resolver]).map(x => `${x.kind} ${x.id}`), [
    'service 10.96.0.20:8081', 'service svc.ns:8081', 'dns-lookup localhost@getaddrinfo/4',
    'dns-wire a.example@127.0.0.153:5353/A', 'dns-wire a.example@127.0.0.153:5353/AAAA',
    'dns-wire b.example@127.0.0.153:5353/A', 'dns-wire b.example@127.0.0.153:5353/AAAA',
    'http http://127.0.0.1:9/x', 'tcp localhost:9'
  ])
})

t.test('DNS expectations: NODATA is normal for the family the pod does not run; explicit entries win', async t => {
  const expectOf = (env: Record<string, string>) => Object.fromEntries(staticTargets(loadConfig({ ...base, ...env }), [resolver])
    .filter(x => x.kind === 'dns-wire' || x.kind === 'dns-lookup').map(x => [x.id, (x as { expect?: string }).expect ?? 'answer']))
  const names = { PINGFLEET_DNS_NAMES: 'a.example/4,a.example/6,a.example,absent.example', PINGFLEET_DNS_WIRE_NAMES: 'a.example,absent.example', PINGFLEET_DNS_WIRE_TYPES: 'A,AAAA' }
  // The field case: A,AAAA on an IPv4-only cluster.
  t.same(expectOf(names), {
    'a.example@getaddrinfo/4': 'answer', 'a.example@getaddrinfo/6': 'nodata', 'a.example@getaddrinfo': 'answer', 'absent.example@getaddrinfo': 'answer',
    'a.example@127.0.0.153:5353/A': 'answer', 'a.example@127.0.0.153:5353/AAAA': 'nodata',
    'absent.example@127.0.0.153:5353/A': 'answer', 'absent.example@127.0.0.153:5353/AAAA': 'nodata'
  })
  t.match(expectOf({ ...names, PINGFLEET_POD_IP: 'fd00::7' }), { 'a.example@127.0.0.153:5353/A': 'nodata', 'a.example@127.0.0.153:5353/AAAA': 'answer', 'a.example@getaddrinfo/4': 'nodata' }, 'an IPv6 pod: the mirror image')
  t.match(expectOf({ ...names, PINGFLEET_DNS_EXPECT: 'absent.example/A=nxdomain,absent.example/AAAA=nxdomain,A.Example./AAAA=answer' }), {
    'absent.example@getaddrinfo': 'nxdomain', 'absent.example@127.0.0.153:5353/A': 'nxdomain', 'absent.example@127.0.0.153:5353/AAAA': 'nxdomain',
    'a.example@127.0.0.153:5353/AAAA': 'answer', 'a.example@getaddrinfo/6': 'answer', 'a.example@getaddrinfo': 'answer'
  }, 'a dual-stack cluster asks for AAAA answers; an absent name expects NXDOMAIN everywhere')
})

t.test('dns-wire resolvers: the configured ones, else the first three nameservers of the configured resolv.conf', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'pingfleet-resolv-'))
  const path = join(dir, 'resolv.conf')
  writeFileSync(path, 'search svc.cluster.local\nnameserver 10.96.0.10\nnameserver fd00::a\nnameserver fe80::1%eth0\nnameserver 10.96.0.11\nnameserver 10.96.0.12\n')
  t.same(await wireServers(loadConfig({ ...base, PINGFLEET_RESOLV_CONF: path })), ['10.96.0.10', 'fd00::a', 'fe80::1%eth0'].map(server => ({ server, port: 53 })), 'the first three, as glibc uses them')
  t.same(await wireServers(loadConfig({ ...base, PINGFLEET_RESOLV_CONF: path, PINGFLEET_DNS_SERVERS: '127.0.0.153:5353' })), [resolver])
  t.same(await wireServers(loadConfig({ ...base, PINGFLEET_RESOLV_CONF: path, PINGFLEET_DNS_WIRE_NAMES: '' })), [], 'no names, no resolvers needed')
  const { logger, lines } = memoryLogger()
  t.same(await wireServers(loadConfig({ ...base, PINGFLEET_RESOLV_CONF: join(dir, 'missing') }), logger), [])
  t.match(lines, [{ level: 40, msg: /cannot read resolv.conf/ }], 'an unreadable file is a warning, not a crash')
})

t.test('the CA bundle goes with every http target', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'pingfleet-ca-'))
  const ca = join(dir, 'ca.pem')
  writeFileSync(ca, '-----BEGIN CERTIFICATE-----\nfake\n-----END CERTIFICATE-----\n')
  const targets = await loadStaticTargets(loadConfig({ ...base, PINGFLEET_DNS_NAMES: '', PINGFLEET_DNS_WIRE_NAMES: '', PINGFLEET_HTTP_TARGETS: 'https://a.example/,https://b.example/', PINGFLEET_HTTP_CA_FILE: ca }))
  t.same(targets.map(x => (x as { ca?: string }).ca?.includes('fake')), [true, true])
})

t.test('one lookup pool, a probe and a timeout for every kind', async t => {
  const suite = createProbeSuite(loadConfig({ ...base, PINGFLEET_LOOKUP_MAX_IN_FLIGHT: '3', PINGFLEET_DNS_LOOKUP_TIMEOUT: '7s' }))
  t.same(Object.keys(suite.probes).sort(), ['dns-lookup', 'dns-wire', 'http', 'mtu', 'pod', 'service', 'tcp', 'udp'])
  t.same(Object.keys(suite.timeouts).sort(), Object.keys(suite.probes).sort())
  t.equal(suite.timeouts['dns-lookup'], 7000)
  t.equal(suite.pool.maxInFlight, Math.min(3, suite.pool.threadpoolSize - 1))
})
