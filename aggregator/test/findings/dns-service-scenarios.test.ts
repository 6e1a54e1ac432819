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
