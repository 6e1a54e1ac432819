// The network-namespace suite's DNS, Service and egress faults (test/e2e/scenarios.ts), as synthetic
// inputs shaped like its configuration: each must give exactly the finding that suite expects.

import t from 'tap'
import { dnsServiceFindings } from '../../src/findings/dns-service.ts'
import type { DnsServiceInput } from '../../src/findings/dns-service-input.ts'
import type { Detection } from '../../src/findings/finding.ts'
import type { FindingNode, FindingsContext } from '../../src/findings/input.ts'
import { fail, fleet, lookup, ok, service, wire } from './dns-service-fixture.ts'

const kinds = (found: Detection[]): string[] => found.map(d => `${d.kind} ${d.subject.id}`)
const RESOLVER = '198.18.3.53'
const SERVICE_FQDN = 'pingfleet-agent.default.svc.cluster.local'
const DNS_FQDN = 'kube-dns.kube-system.svc.cluster.local'
const VIP = '198.18.4.100:8081'
const HTTP = 'http://198.19.0.80/healthz'
const TCP = '198.19.0.80:80'

type Fill = (n: FindingNode, i: number) => ReturnType<typeof ok>
interface Faults { lookup?: (name: string) => Fill | undefined, wire?: (name: string) => Fill | undefined, service?: (target: string) => Fill | undefined, external?: Fill }

/** PINGFLEET_DNS_NAMES, _DNS_WIRE_NAMES (A), _DNS_SERVERS, _SERVICE_TARGETS, _HTTP_TARGETS, _TCP_TARGETS as the suite sets them. */
function suite (ctx: FindingsContext, faults: Faults = {}): DnsServiceInput {
  const pods = ctx.nodes.map(() => ({ samples: 50, errors: 0 }))
  return {
    lookups: ['pingfleet-agent', 'kube-dns.kube-system', `${SERVICE_FQDN}.`].map(name => lookup(ctx, name, faults.lookup?.(name))),
    wire: [SERVICE_FQDN, DNS_FQDN].map(name => wire(ctx, name, 'A', faults.wire?.(name), RESOLVER)),
    services: [VIP, 'pingfleet-agent:8081'].map(target => ({ ...service(ctx, faults.service?.(target)), target })),
    external: [
      { target: HTTP, probe: 'http', cells: ctx.nodes.map((n, i) => (faults.external ?? (() => ok()))(n, i)) },
      { target: TCP, probe: 'tcp', cells: ctx.nodes.map((n, i) => (faults.external ?? (() => ok()))(n, i)) }
    ],
    podOut: pods,
    podIn: pods
  }
}

const ctx = fleet({ aws: 3, cilium: 3 })

t.test('healthy: nothing', async t => {
  t.same(dnsServiceFindings(ctx, suite(ctx), new Set()), [])
})

t.test(`${SERVICE_FQDN} removed (NXDOMAIN): one dns-name`, async t => {
  const nx: Fill = () => fail('ENOTFOUND', 'EAI_NONAME')
  const found = dnsServiceFindings(ctx, suite(ctx, {
    lookup: name => name.startsWith('pingfleet-agent') ? nx : undefined,
    wire: name => name === SERVICE_FQDN ? () => fail('NXDOMAIN', 'NXDOMAIN') : undefined,
    service: target => target.startsWith('pingfleet-agent') ? nx : undefined
  }), new Set())
  t.same(kinds(found), [`dns-name name/${SERVICE_FQDN}`])
  t.match(found[0]!.subject, { type: 'dns-name', name: SERVICE_FQDN })
})

t.test('the resolver answers A but never AAAA: one dns-path about the resolver', async t => {
  const slow: Fill = () => fail('LOOKUP_TIMEOUT', 'TIMEOUT')
  const found = dnsServiceFindings(ctx, suite(ctx, { lookup: () => slow, service: target => target.startsWith('pingfleet-agent') ? slow : undefined }), new Set())
  t.same(kinds(found), [`dns-path resolver/${RESOLVER}`])
  t.match(found[0]!.subject, { type: 'resolver', resolver: RESOLVER })
})

t.test('DNS unreachable from cilium: one dns-group for cilium', async t => {
  const cilium = (f: Fill): Fill => (n, i) => n.group === 'cilium' ? f(n, i) : ok()
  const found = dnsServiceFindings(ctx, suite(ctx, {
    lookup: () => cilium(() => fail('EAI_AGAIN', 'EAI_AGAIN')),
    wire: () => cilium(() => fail('DNS_TIMEOUT', 'UDP_TIMEOUT')),
    service: target => target.startsWith('pingfleet-agent') ? cilium(() => fail('LOOKUP_TIMEOUT', 'TIMEOUT')) : undefined
  }), new Set())
  t.same(kinds(found), ['dns-group group/cilium'])
  t.same(found[0]!.groups, ['cilium'])
})

t.test('the Service DNAT sends one backend\'s share to a wrong port: one service-path', async t => {
  const found = dnsServiceFindings(ctx, suite(ctx, { service: () => (_, i) => fail('ECONNREFUSED', 'ECONNREFUSED', i % 2 === 0 ? 2 : 3) }), new Set())
  t.same(kinds(found), [`service-path service/${VIP},pingfleet-agent:8081`])
})

t.test('egress blocked for cilium: one egress for cilium', async t => {
  const found = dnsServiceFindings(ctx, suite(ctx, { external: n => n.group === 'cilium' ? fail('CONNECT_TIMEOUT', 'TIMEOUT') : ok() }), new Set())
  t.same(kinds(found), ['egress group/cilium'])
  t.match(found[0]!.subject, { type: 'group', group: 'cilium' })
})

// The window's recent part (NodeCell.recent): a fault draining out of the window must not make a
// narrower finding, nor one spreading at onset a finding about part of the fleet.
type Cell = ReturnType<typeof ok>
/** `cell` whose recent part (3 probes) has `errors` failures like its own. */
const recent = (cell: Cell, errors: number): Cell => ({ ...cell, recent: { samples: 3, errors, reasons: errors === 0 ? [] : [{ ...cell.reasons[0]!, count: errors }] } })
const okNow: Fill = () => recent(ok(10), 0)
const timeout = (errors: number, now: number): Cell => recent(fail('LOOKUP_TIMEOUT', 'TIMEOUT', errors, 10), now)
const egressTimeout = (errors: number, now: number): Cell => recent(fail('CONNECT_TIMEOUT', 'TIMEOUT', errors, 10), now)
/** The suite's input with every cell's recent part clean unless a fault's fill says otherwise. */
function suiteNow (ctx: FindingsContext, faults: Faults = {}): DnsServiceInput {
  return suite(ctx, {
    lookup: name => faults.lookup?.(name) ?? okNow,
    wire: name => faults.wire?.(name) ?? okNow,
    service: target => faults.service?.(target) ?? okNow,
    external: faults.external ?? okNow
  })
}

t.test('drain: every name failing getaddrinfo, gone from the recent part while the window still fails some names at some nodes: nothing', async t => {
  // Seconds after the A-but-no-AAAA resolver is fixed: pingfleet-agent's cells still fail at every
  // node over the window, kube-dns.kube-system's only at aws; none fails in the recent part.
  const drained: Fill = () => timeout(4, 0)
  const found = dnsServiceFindings(ctx, suiteNow(ctx, {
    lookup: name => name === 'pingfleet-agent' ? drained : name === 'kube-dns.kube-system' ? n => n.group === 'aws' ? timeout(4, 0) : timeout(2, 0) : undefined,
    service: target => target.startsWith('pingfleet-agent') ? drained : undefined
  }), new Set())
  t.same(kinds(found), [], 'not dns-path per name, not dns-group group/aws')
  // The same window with the fault still failing in the recent part: those narrower findings are real.
  const still = dnsServiceFindings(ctx, suiteNow(ctx, {
    lookup: name => name === 'pingfleet-agent' ? () => timeout(4, 3) : name === 'kube-dns.kube-system' ? n => n.group === 'aws' ? timeout(4, 3) : timeout(2, 0) : undefined,
    service: target => target.startsWith('pingfleet-agent') ? () => timeout(4, 3) : undefined
  }), new Set())
  t.same(kinds(still), ['dns-group group/aws', 'dns-path name/pingfleet-agent'])
})

t.test('drain: egress blocked for cilium, gone from the recent part while one target still fails from 2 of 3 nodes over the window: nothing', async t => {
  const input = suiteNow(ctx)
  const cilium = ctx.nodes.flatMap((n, i) => n.group === 'cilium' ? [i] : [])
  // http: 2 of 3 cilium nodes still fail it over the window; tcp: 1 of 3.
  input.external[0]!.cells = input.external[0]!.cells.map((c, i) => cilium.indexOf(i) >= 0 && cilium.indexOf(i) < 2 ? egressTimeout(3, 0) : c)
  input.external[1]!.cells = input.external[1]!.cells.map((c, i) => cilium.indexOf(i) === 0 ? egressTimeout(3, 0) : c)
  t.same(kinds(dnsServiceFindings(ctx, input, new Set())), [], 'not egress target/… from 2 of 3 nodes')
  input.external[0]!.cells = input.external[0]!.cells.map((c, i) => cilium.indexOf(i) >= 0 && cilium.indexOf(i) < 2 ? egressTimeout(3, 2) : c)
  t.same(kinds(dnsServiceFindings(ctx, input, new Set())), [`egress target/${HTTP}`], 'still failing in the recent part: the target finding is real')
})

t.test('onset: a resolver answering A but never AAAA, crossed the window\'s threshold at 2 cilium nodes and 1 aws node, failing now at all: no dns-group yet, then dns-path', async t => {
  const crossed = new Set([ctx.nodes.findIndex(n => n.group === 'cilium'), ctx.nodes.findIndex(n => n.group === 'cilium') + 1, 0])
  const onset: Fill = (_, i) => crossed.has(i) ? timeout(3, 3) : timeout(1, 2)
  const found = dnsServiceFindings(ctx, suiteNow(ctx, { lookup: () => onset, service: target => target.startsWith('pingfleet-agent') ? onset : undefined }), new Set())
  t.same(kinds(found), [], 'not dns-group group/cilium: the failure is still reaching aws')
  const all: Fill = () => timeout(4, 3)
  const later = dnsServiceFindings(ctx, suiteNow(ctx, { lookup: () => all, service: target => target.startsWith('pingfleet-agent') ? all : undefined }), new Set())
  t.same(kinds(later), [`dns-path resolver/${RESOLVER}`])
})

t.test('onset: one name crossed the window\'s threshold everywhere while the others fail now at every node: no per-name dns-path yet, then the resolver\'s (a CI run)', async t => {
  // pingfleet-agent (and the Service by that name) crossed; the other names fail in the recent part only so far.
  const crossed: Fill = () => timeout(4, 3)
  const coming: Fill = () => timeout(1, 3)
  const found = dnsServiceFindings(ctx, suiteNow(ctx, {
    lookup: name => name === 'pingfleet-agent' ? crossed : coming,
    service: target => target.startsWith('pingfleet-agent') ? crossed : undefined
  }), new Set())
  t.same(kinds(found), [], 'not dns-path name/pingfleet-agent: the failure is reaching every name')
  // A name failing alone, the others clean now: that name's own dns-path, at once.
  const alone = dnsServiceFindings(ctx, suiteNow(ctx, {
    lookup: name => name === 'pingfleet-agent' ? crossed : undefined,
    service: target => target.startsWith('pingfleet-agent') ? crossed : undefined
  }), new Set())
  t.same(kinds(alone), ['dns-path name/pingfleet-agent'])
})

t.test('DNS unreachable from cilium with aws clean now too: dns-group for cilium at once', async t => {
  const ciliumOnly = (f: () => Cell): Fill => n => n.group === 'cilium' ? f() : okNow(n, 0)
  const found = dnsServiceFindings(ctx, suiteNow(ctx, {
    lookup: () => ciliumOnly(() => recent(fail('EAI_AGAIN', 'EAI_AGAIN', 4, 10), 3)),
    wire: () => ciliumOnly(() => recent(fail('DNS_TIMEOUT', 'UDP_TIMEOUT', 4, 10), 3))
  }), new Set())
  t.same(kinds(found), ['dns-group group/cilium'])
  t.same(found[0]!.evidence[0]!.figures, { recentSamples: 18, recentErrors: 18 }, 'the failing cells (two wire names at 3 nodes) over the recent part')
})

t.test('onset: egress blocked for cilium, one target crossed at every cilium node, the other failing now: no target finding yet, then the group', async t => {
  const input = suiteNow(ctx)
  input.external[0]!.cells = input.external[0]!.cells.map((c, i) => ctx.nodes[i]!.group === 'cilium' ? egressTimeout(3, 3) : c)
  input.external[1]!.cells = input.external[1]!.cells.map((c, i) => ctx.nodes[i]!.group === 'cilium' ? egressTimeout(1, 2) : c)
  t.same(kinds(dnsServiceFindings(ctx, input, new Set())), [], `not egress target/${HTTP}: the group's egress failure is still spreading`)
  input.external[1]!.cells = input.external[1]!.cells.map((c, i) => ctx.nodes[i]!.group === 'cilium' ? egressTimeout(3, 3) : c)
  t.same(kinds(dnsServiceFindings(ctx, input, new Set())), ['egress group/cilium'])
})

t.test('a fault draining out of the window while another begins at the same cells: only the new one is confirmed', async t => {
  // The NXDOMAIN row's fault is gone from the recent part; then DNS becomes unreachable from cilium,
  // whose lookups of the same name now fail for another reason (EAI_AGAIN).
  const nxGone: Fill = () => recent(fail('NXDOMAIN', 'NXDOMAIN', 4, 10), 0)
  const lookupNow: Fill = n => n.group === 'cilium'
    ? { samples: 10, errors: 7, reasons: [{ reason: 'ENOTFOUND', raw: 'EAI_NONAME', count: 4 }, { reason: 'EAI_AGAIN', raw: 'EAI_AGAIN', count: 3 }], recent: { samples: 3, errors: 3, reasons: [{ reason: 'EAI_AGAIN', raw: 'EAI_AGAIN', count: 3 }] } }
    : recent(fail('ENOTFOUND', 'EAI_NONAME', 4, 10), 0)
  const found = dnsServiceFindings(ctx, suiteNow(ctx, {
    wire: name => name === SERVICE_FQDN ? nxGone : undefined,
    lookup: name => name.startsWith('pingfleet-agent') ? lookupNow : undefined,
    service: target => target.startsWith('pingfleet-agent') ? lookupNow : undefined
  }), new Set())
  t.notOk(kinds(found).includes(`dns-name name/${SERVICE_FQDN}`), `no dns-name: its NXDOMAIN is gone (found: ${kinds(found).join(', ') || 'none'})`)
})

t.test('a fault draining out of the window while another with the same reason begins at some of its nodes: only the new one\'s scope', async t => {
  // The AAAA row's LOOKUP_TIMEOUTs are gone from the recent part everywhere; DNS then becomes
  // unreachable from cilium, whose short-name lookups time out too (LOOKUP_TIMEOUT, walking the search list).
  const cilium = (now: Fill, old: Fill): Fill => (n, i) => n.group === 'cilium' ? now(n, i) : old(n, i)
  const gone: Fill = () => timeout(4, 0)
  const found = dnsServiceFindings(ctx, suiteNow(ctx, {
    lookup: () => cilium(() => timeout(6, 3), gone),
    // Its wire probes fail now, not yet over the window: the resolver explains nothing yet.
    wire: () => cilium(() => recent(fail('DNS_TIMEOUT', 'UDP_TIMEOUT', 2, 10), 2), okNow),
    service: target => target.startsWith('pingfleet-agent') ? cilium(() => timeout(6, 3), gone) : undefined
  }), new Set())
  t.same(kinds(found), ['dns-group group/cilium'], 'not dns-path name/pingfleet-agent from 5 of 6 nodes')
})
