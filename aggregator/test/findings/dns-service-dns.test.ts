import t from 'tap'
import { dnsServiceFindings } from '../../src/findings/dns-service.ts'
import type { Detection } from '../../src/findings/finding.ts'
import { external, fail, fleet, healthy, lookup, ok, replace, service, wire } from './dns-service-fixture.ts'

const kinds = (found: Detection[]): string[] => found.map(d => `${d.kind} ${d.subject.id}`)
const K8S = 'kubernetes.default.svc.cluster.local'

t.test('a healthy fleet has no DNS, Service or egress finding', async t => {
  const ctx = fleet({ aws: 3, cilium: 3 })
  t.same(dnsServiceFindings(ctx, healthy(ctx), new Set()), [])
  const big = fleet({ aws: 500, cilium: 500 })
  t.same(dnsServiceFindings(big, healthy(big), new Set()), [], 'and none at 1,000 nodes')
})

t.test('a resolver outage is one dns-resolver finding: not dns-path, not dns-group', async t => {
  const ctx = fleet({ aws: 3, cilium: 3 })
  const input = healthy(ctx)
  const timeout = (): ReturnType<typeof fail> => fail('DNS_TIMEOUT', 'UDP_TIMEOUT')
  input.wire = input.wire.map(c => wire(ctx, c.name, c.type as 'A' | 'AAAA', timeout))
  input.lookups = input.lookups.map(c => lookup(ctx, c.name, () => fail('EAI_AGAIN', 'EAI_AGAIN')))
  const found = dnsServiceFindings(ctx, input, new Set())
  t.same(kinds(found), ['dns-resolver resolver/10.96.0.10'])
  const d = found[0]!
  t.equal(d.lead, 'resolver 10.96.0.10: queries fail on the wire from 6 of 6 nodes')
  t.equal(d.rest, '(DNS_TIMEOUT, raw UDP_TIMEOUT); getaddrinfo fails too on 6 of them')
  t.same(d.evidence.map(e => [e.scope, e.agreeing]), [['A', { count: 6, of: 6 }], ['AAAA', { count: 6, of: 6 }]])
  t.same(d.evidence[0]!.reasons, [{ reason: 'DNS_TIMEOUT', raw: 'UDP_TIMEOUT', count: 144 }])
  t.equal(d.evidence[0]!.cells!.length, 10, 'the worst cells, at most 10')
  t.equal(d.score, 1)
  t.same(d.groups, ['aws', 'cilium'])
})

t.test('a resolver that answers A but fails AAAA is dns-resolver, naming AAAA', async t => {
  const ctx = fleet({ aws: 3, cilium: 3 })
  const input = healthy(ctx)
  input.wire = replace(input.wire, wire(ctx, K8S, 'AAAA', () => fail('SERVFAIL', 'SERVFAIL')))
  const found = dnsServiceFindings(ctx, input, new Set())
  t.same(kinds(found), ['dns-resolver resolver/10.96.0.10'])
  t.equal(found[0]!.lead, 'resolver 10.96.0.10: AAAA queries fail on the wire from 6 of 6 nodes')
  t.equal(found[0]!.rest, '(SERVFAIL); A queries answer')
  const aaaa = found[0]!.evidence.find(e => e.scope === 'AAAA')!
  t.equal(aaaa.errorRatio, 1)
  t.equal(found[0]!.evidence.find(e => e.scope === 'A')!.errors, 0)
})

t.test('a name NXDOMAIN everywhere is dns-name, not dns-resolver and not dns-path', async t => {
  const ctx = fleet({ aws: 3, cilium: 3 })
  const input = healthy(ctx)
  input.wire = replace(input.wire, wire(ctx, 'db.example', 'A', () => fail('NXDOMAIN', 'NXDOMAIN')))
  input.lookups = replace(input.lookups, lookup(ctx, 'db.example.', () => fail('ENOTFOUND', 'EAI_NONAME')))
  const found = dnsServiceFindings(ctx, input, new Set())
  t.same(kinds(found), ['dns-name name/db.example'])
  t.equal(found[0]!.subject.name, 'db.example', 'the name as the wire probes write it')
  t.equal(found[0]!.lead, 'name db.example: NXDOMAIN from 6 of 6 nodes')
  t.equal(found[0]!.rest, '(NXDOMAIN) from every resolver asked (10.96.0.10); getaddrinfo fails too (ENOTFOUND, raw EAI_NONAME)')
  t.same(found[0]!.evidence.map(e => e.probe), ['dns-wire', 'dns-lookup'])
})

t.test('NODATA for the pod\'s own family everywhere is dns-name; a name expected absent that resolves too', async t => {
  const ctx = fleet({ aws: 3, cilium: 3 })
  const input = healthy(ctx)
  input.wire = replace(input.wire, wire(ctx, 'db.example', 'A', () => fail('NODATA', 'NOERROR')))
  t.same(kinds(dnsServiceFindings(ctx, input, new Set())), ['dns-name name/db.example'])
  t.match(dnsServiceFindings(ctx, input, new Set())[0]!.lead, /NODATA from 6 of 6/)
  input.wire = replace(input.wire, wire(ctx, 'db.example', 'A', () => fail('BAD_RESPONSE', 'UNEXPECTED_ANSWER')))
  t.same(kinds(dnsServiceFindings(ctx, input, new Set())), ['dns-name name/db.example'])
})

t.test('a name only getaddrinfo asks, negative everywhere, is dns-name from getaddrinfo alone', async t => {
  const ctx = fleet({ aws: 3, cilium: 3 })
  const input = healthy(ctx)
  input.lookups = [...input.lookups, lookup(ctx, 'gone.example.', () => fail('ENOTFOUND', 'EAI_NONAME'))]
  const found = dnsServiceFindings(ctx, input, new Set())
  t.same(kinds(found), ['dns-name name/gone.example.'])
  t.equal(found[0]!.score, 0.8, 'less sure without the wire')
  t.match(found[0]!.rest, /no dns-wire probe asks this name/)
})

t.test('one resolver denying a name that another answers is that resolver\'s fault', async t => {
  const ctx = fleet({ aws: 3, cilium: 3 })
  const input = healthy(ctx)
  input.wire = [...input.wire, wire(ctx, 'db.example', 'A', () => fail('NXDOMAIN', 'NXDOMAIN'), '10.96.0.11')]
  t.same(kinds(dnsServiceFindings(ctx, input, new Set())), ['dns-resolver resolver/10.96.0.11'])
})

t.test('getaddrinfo failing where the wire answers is dns-path', async t => {
  const ctx = fleet({ aws: 3, cilium: 3 })
  const input = healthy(ctx)
  input.lookups = replace(input.lookups, lookup(ctx, 'kubernetes.default', () => fail('ENOTFOUND', 'EAI_NONAME')))
  const found = dnsServiceFindings(ctx, input, new Set())
  t.same(kinds(found), ['dns-path name/kubernetes.default'])
  t.equal(found[0]!.lead, 'getaddrinfo fails for kubernetes.default from 6 of 6 nodes')
  t.equal(found[0]!.rest, `(ENOTFOUND, raw EAI_NONAME); the resolver answers ${K8S} on the wire`)
  t.same(found[0]!.evidence.map(e => e.scope), ['getaddrinfo', 'wire'])
  t.equal(found[0]!.score, 1)
})

t.test('lookup timeouts where the resolvers answer other names are dns-path, less sure', async t => {
  const ctx = fleet({ aws: 3, cilium: 3 })
  const input = healthy(ctx)
  input.lookups = [...input.lookups, lookup(ctx, 'api.example.', () => fail('LOOKUP_TIMEOUT', 'TIMEOUT'))]
  const found = dnsServiceFindings(ctx, input, new Set())
  t.same(kinds(found), ['dns-path name/api.example.'])
  t.equal(found[0]!.score, 0.8)
  t.match(found[0]!.rest, /the resolvers answer other names on the wire/)
})

t.test('ENOTFOUND only on one group\'s nodes is one dns-group finding (the migration\'s case)', async t => {
  const ctx = fleet({ aws: 12, cilium: 12 })
  const input = healthy(ctx)
  input.lookups = replace(input.lookups, lookup(ctx, 'db.example.', n => n.group === 'cilium' ? fail('ENOTFOUND', 'EAI_NONAME') : ok()))
  const found = dnsServiceFindings(ctx, input, new Set())
  t.same(kinds(found), ['dns-group group/cilium'])
  t.equal(found[0]!.lead, 'cilium (12 nodes): getaddrinfo fails for db.example. from 12 of 12 nodes')
  t.equal(found[0]!.rest, '(ENOTFOUND, raw EAI_NONAME); the resolver answers on the wire; aws resolves it')
  t.equal(found[0]!.nodes.length, 12)
  t.same(found[0]!.groups, ['cilium'])
})

t.test('a resolver unreachable from one group is dns-group for that group, with its lookups, not dns-resolver', async t => {
  const ctx = fleet({ aws: 3, cilium: 3 })
  const input = healthy(ctx)
  const sick = (c: ReturnType<typeof ok>) => (n: { group: string }) => n.group === 'cilium' ? fail('DNS_TIMEOUT', 'UDP_TIMEOUT') : c
  input.wire = input.wire.map(c => wire(ctx, c.name, c.type as 'A' | 'AAAA', sick(ok())))
  input.lookups = input.lookups.map(c => lookup(ctx, c.name, n => n.group === 'cilium' ? fail('EAI_AGAIN', 'EAI_AGAIN') : ok()))
  const found = dnsServiceFindings(ctx, input, new Set())
  t.same(kinds(found), ['dns-group group/cilium'])
  t.equal(found[0]!.lead, 'cilium (3 nodes): resolver 10.96.0.10 fails on the wire from 3 of 3 nodes')
  t.equal(found[0]!.rest, '(DNS_TIMEOUT, raw UDP_TIMEOUT); aws reaches it')
})

t.test('DNS failing on one node is dns-group for that node; explained and degraded nodes add nothing', async t => {
  const ctx = fleet({ aws: 3, cilium: 3 })
  const input = healthy(ctx)
  const one = ctx.nodes[4]!.name
  input.lookups = input.lookups.map(c => lookup(ctx, c.name, n => n.name === one ? fail('EAI_AGAIN', 'EAI_AGAIN') : ok()))
  const found = dnsServiceFindings(ctx, input, new Set())
  t.same(kinds(found), [`dns-group node/${one}`])
  t.equal(found[0]!.lead, `${one} (cilium): getaddrinfo fails for db.example.`)
  t.match(found[0]!.rest, /^\(EAI_AGAIN\); the resolver answers on the wire; 1 more DNS failure here; 2 other cilium nodes resolve it$/)
  t.same(dnsServiceFindings(ctx, input, new Set([one])), [], 'explained by its own network finding')
  const degraded = { ...ctx, nodes: ctx.nodes.map(n => n.name === one ? { ...n, degraded: 'lagged' } : n) }
  t.same(dnsServiceFindings(degraded, input, new Set()), [], 'a degraded agent is no witness')
})

t.test('one node among 1,000 failing DNS is found (dilution); a group of 500 failing is one finding', async t => {
  const ctx = fleet({ aws: 500, cilium: 500 })
  const input = healthy(ctx)
  const one = ctx.nodes[777]!.name
  input.wire = input.wire.map(c => wire(ctx, c.name, c.type as 'A' | 'AAAA', n => n.name === one ? fail('DNS_TIMEOUT', 'UDP_TIMEOUT') : ok()))
  t.same(kinds(dnsServiceFindings(ctx, input, new Set())), [`dns-group node/${one}`])
  input.lookups = replace(input.lookups, lookup(ctx, 'db.example.', n => n.group === 'cilium' ? fail('ENOTFOUND', 'EAI_NONAME') : ok()))
  const found = dnsServiceFindings(ctx, input, new Set())
  t.same(kinds(found), ['dns-group group/cilium'], 'the node folds into its group\'s finding')
  t.equal(found[0]!.evidence.length, 2, 'both failures quoted')
})

t.test('a resolver failing from many nodes spread over every group is dns-resolver', async t => {
  const ctx = fleet({ aws: 10, cilium: 10 })
  const input = healthy(ctx)
  input.wire = replace(input.wire, wire(ctx, K8S, 'A', (_, i) => i % 3 === 0 ? fail('REFUSED', 'REFUSED') : ok()))
  const found = dnsServiceFindings(ctx, input, new Set())
  t.same(kinds(found), ['dns-resolver resolver/10.96.0.10'])
  t.equal(found[0]!.lead, 'resolver 10.96.0.10: A queries fail on the wire from 7 of 20 nodes')
  t.equal(found[0]!.score, 0.35)
})

t.test('too few probes, or a single failure, judge nothing', async t => {
  const ctx = fleet({ aws: 3, cilium: 3 })
  const input = healthy(ctx)
  input.wire = input.wire.map(c => wire(ctx, c.name, c.type as 'A' | 'AAAA', () => fail('DNS_TIMEOUT', 'UDP_TIMEOUT', 2, 2)))
  input.lookups = input.lookups.map(c => lookup(ctx, c.name, () => fail('EAI_AGAIN', 'EAI_AGAIN', 1, 12)))
  t.same(dnsServiceFindings(ctx, input, new Set()), [])
})

t.test('a resolver on another port is named with it', async t => {
  const ctx = fleet({ aws: 3, cilium: 3 })
  const input = healthy(ctx)
  input.wire = [{ ...wire(ctx, K8S, 'A', () => fail('DNS_TIMEOUT', 'UDP_TIMEOUT'), '10.0.0.53:5353'), target: `${K8S}@10.0.0.53:5353/A` }]
  t.same(kinds(dnsServiceFindings(ctx, input, new Set())), ['dns-resolver resolver/10.0.0.53:5353'])
})

t.test('a resolver failing AAAA does not explain ENOTFOUND on one group: both findings stand', async t => {
  const ctx = fleet({ aws: 3, cilium: 3 })
  const input = healthy(ctx)
  input.wire = replace(input.wire, wire(ctx, K8S, 'AAAA', () => fail('SERVFAIL', 'SERVFAIL')))
  input.lookups = replace(input.lookups, lookup(ctx, 'db.example.', n => n.group === 'cilium' ? fail('ENOTFOUND', 'EAI_NONAME') : ok()))
  t.same(kinds(dnsServiceFindings(ctx, input, new Set())), ['dns-group group/cilium', 'dns-resolver resolver/10.96.0.10'])
  input.lookups = [lookup(ctx, 'kubernetes.default', () => fail('EAI_AGAIN', 'EAI_AGAIN'), 6)]
  t.same(kinds(dnsServiceFindings(ctx, input, new Set())), ['dns-resolver resolver/10.96.0.10'], 'it explains the AAAA lookups it fails')
  input.lookups = [lookup(ctx, 'kubernetes.default', () => fail('EAI_AGAIN', 'EAI_AGAIN'), 4)]
  t.same(kinds(dnsServiceFindings(ctx, input, new Set())), ['dns-path name/kubernetes.default', 'dns-resolver resolver/10.96.0.10'], 'not A lookups, which the wire answers')
})

t.test('every name failing getaddrinfo while the wire answers is one dns-path about the resolver (A answered, AAAA never)', async t => {
  const ctx = fleet({ aws: 3, cilium: 3 })
  const input = healthy(ctx)
  input.wire = input.wire.filter(c => c.type === 'A')
  input.lookups = input.lookups.map(c => lookup(ctx, c.name, () => fail('LOOKUP_TIMEOUT', 'TIMEOUT')))
  // External targets by address: their probes ask no name (by name, they would time out too).
  input.external = []
  const found = dnsServiceFindings(ctx, input, new Set())
  t.same(kinds(found), ['dns-path resolver/10.96.0.10'])
  t.equal(found[0]!.lead, 'getaddrinfo fails for every name it asks (db.example., kubernetes.default) from 6 of 6 nodes')
  t.equal(found[0]!.rest, '(LOOKUP_TIMEOUT, raw TIMEOUT); resolver 10.96.0.10 answers on the wire')
  t.same(found[0]!.evidence.map(e => e.scope), ['getaddrinfo db.example.', 'getaddrinfo kubernetes.default'])
  input.lookups = [...input.lookups, lookup(ctx, 'fine.example.')]
  t.same(kinds(dnsServiceFindings(ctx, input, new Set())), ['dns-path name/db.example.', 'dns-path name/kubernetes.default'], 'one name that resolves: each failing name is its own')
})

t.test('the DNS phase of service and http probes reaches the DNS findings; IP targets do not', async t => {
  const ctx = fleet({ aws: 3, cilium: 3 })
  const input = healthy(ctx)
  input.services = [...input.services, { ...service(ctx, n => n.group === 'cilium' ? fail('ENOTFOUND', 'EAI_NONAME') : ok()), target: 'pingfleet-agent:8081' }]
  const found = dnsServiceFindings(ctx, input, new Set())
  t.same(kinds(found), ['dns-group group/cilium'])
  t.equal(found[0]!.lead, 'cilium (3 nodes): getaddrinfo fails for pingfleet-agent from 3 of 3 nodes')
  const api = healthy(ctx)
  api.external = [{ ...external(ctx, 'http', () => fail('EAI_AGAIN', 'EAI_AGAIN')), target: 'https://user:***@api.example/health' }]
  t.same(kinds(dnsServiceFindings(ctx, api, new Set())), ['dns-path name/api.example'])
  const ip = healthy(ctx)
  ip.services = [service(ctx, () => fail('ENOTFOUND', 'EAI_NONAME'))]
  t.same(dnsServiceFindings(ctx, ip, new Set()), [])
})

t.test('a node whose own pod probes mostly fail (loss toward it) is no DNS witness', async t => {
  const ctx = fleet({ aws: 3, cilium: 3 })
  const input = healthy(ctx)
  const lossy = ctx.nodes[3]!.name
  input.wire = input.wire.map(c => wire(ctx, c.name, c.type as 'A' | 'AAAA', n => n.name === lossy ? fail('DNS_TIMEOUT', 'UDP_TIMEOUT', 8) : ok()))
  t.same(kinds(dnsServiceFindings(ctx, input, new Set())), [`dns-group node/${lossy}`], 'with its pod probes fine, its DNS is its own')
  input.podOut = input.podOut.map((p, i) => i === 3 ? { samples: p.samples, errors: Math.round(p.samples * 0.4) } : p)
  t.same(dnsServiceFindings(ctx, input, new Set()), [])
})

t.test('one node failing a quarter of its DNS probes (10% loss toward it) is no finding; failing most of them is', async t => {
  const ctx = fleet({ aws: 3, cilium: 3 })
  const input = healthy(ctx)
  const one = ctx.nodes[2]!.name
  input.wire = input.wire.map(c => wire(ctx, c.name, c.type as 'A' | 'AAAA', n => n.name === one ? fail('DNS_TIMEOUT', 'UDP_TIMEOUT', 2, 8) : ok()))
  t.same(dnsServiceFindings(ctx, input, new Set()), [])
  input.wire = input.wire.map(c => wire(ctx, c.name, c.type as 'A' | 'AAAA', n => n.name === one ? fail('DNS_TIMEOUT', 'UDP_TIMEOUT', 4, 8) : ok()))
  t.same(kinds(dnsServiceFindings(ctx, input, new Set())), [`dns-group node/${one}`])
})
