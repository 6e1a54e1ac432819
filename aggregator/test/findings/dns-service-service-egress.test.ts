import t from 'tap'
import { dnsServiceFindings } from '../../src/findings/dns-service.ts'
import { significant } from '../../src/findings/service-path.ts'
import type { Detection } from '../../src/findings/finding.ts'
import { external, fail, fleet, healthy, HTTP, ok, replace, service, SERVICE, TCP } from './dns-service-fixture.ts'

const kinds = (found: Detection[]): string[] => found.map(d => `${d.kind} ${d.subject.id}`)

t.test('Service probes failing from one group whose pod probes succeed are service-path', async t => {
  const ctx = fleet({ aws: 3, cilium: 3 })
  const input = healthy(ctx)
  input.services = [service(ctx, n => n.group === 'cilium' ? fail('CONNECT_TIMEOUT', 'TIMEOUT') : ok())]
  const found = dnsServiceFindings(ctx, input, new Set())
  t.same(kinds(found), [`service-path service/${SERVICE}`])
  t.equal(found[0]!.lead, `service ${SERVICE}: probes through the Service fail from cilium (3 of 3 nodes)`)
  t.equal(found[0]!.rest, '(CONNECT_TIMEOUT, raw TIMEOUT); their pod probes succeed; aws reaches it')
  t.same(found[0]!.groups, ['cilium'])
  t.equal(found[0]!.evidence[0]!.figures!.podErrors, 0)
})

t.test('Service and pod probes failing alike (a broken boundary) is no service-path finding', async t => {
  const ctx = fleet({ aws: 3, cilium: 3 })
  const input = healthy(ctx)
  input.services = [service(ctx, n => n.group === 'aws' ? fail('CONNECT_TIMEOUT', 'TIMEOUT', 6) : ok())]
  input.podOut = ctx.nodes.map(n => n.group === 'aws' ? { samples: 60, errors: 30 } : { samples: 60, errors: 0 })
  t.same(dnsServiceFindings(ctx, input, new Set()), [])
})

t.test('one wrong backend behind the Service (a sixth of probes fail everywhere) is service-path from every group', async t => {
  const ctx = fleet({ aws: 3, cilium: 3 })
  const input = healthy(ctx)
  input.services = [service(ctx, () => fail('BAD_RESPONSE', 'NOT_A_PING_ANSWER', 2))]
  const found = dnsServiceFindings(ctx, input, new Set())
  t.same(kinds(found), [`service-path service/${SERVICE}`])
  t.equal(found[0]!.lead, `service ${SERVICE}: probes through the Service fail from every group (6 of 6 nodes)`)
  // The same Service by name too: one finding, both targets quoted.
  input.services = [...input.services, { ...service(ctx, () => fail('BAD_RESPONSE', 'NOT_A_PING_ANSWER', 2)), target: 'pingfleet-agent:8081' }]
  const both = dnsServiceFindings(ctx, input, new Set())
  t.same(kinds(both), [`service-path service/${SERVICE},pingfleet-agent:8081`])
  t.equal(both[0]!.lead, `service ${SERVICE} and pingfleet-agent:8081: probes through the Service fail from every group (6 of 6 nodes)`)
  t.same(both[0]!.evidence.map(e => e.scope), [`through ${SERVICE}`, 'through pingfleet-agent:8081'])
})

t.test('a backend that never answers through the Service while pod probes reach it is service-path', async t => {
  const ctx = fleet({ aws: 3, cilium: 3 })
  const input = healthy(ctx)
  const gone = ctx.nodes[1]!.name
  input.services = [service(ctx, () => ok(), () => ctx.nodes.map(n => n.name).filter(n => n !== gone))]
  const found = dnsServiceFindings(ctx, input, new Set())
  t.same(kinds(found), [`service-path service/${SERVICE}`])
  t.equal(found[0]!.lead, `service ${SERVICE}: backend ${gone} never answers through it`)
  t.equal(found[0]!.rest, '(72 answers from 6 nodes); pod probes reach them directly')
  t.same(found[0]!.nodes, [gone])
  const few = healthy(ctx)
  few.services = [service(ctx, () => ok(8), () => ctx.nodes.map(n => n.name).filter(n => n !== gone))]
  t.same(dnsServiceFindings(ctx, few, new Set()), [], '48 answers for 6 candidates: a miss could be chance')
  const unready = { ...ctx, nodes: ctx.nodes.map(n => n.name === gone ? { ...n, podReady: false } : n) }
  t.same(dnsServiceFindings(unready, input, new Set()), [], 'an agent Kubernetes says is not ready is no candidate backend')
  input.podIn = input.podIn.map((p, i) => i === 1 ? { samples: p.samples, errors: p.samples } : p)
  t.same(dnsServiceFindings(ctx, input, new Set()), [], 'nor one pod probes cannot reach either')
})

t.test('two Service targets missing different backends: each is named for its own target (review finding)', async t => {
  const ctx = fleet({ aws: 3, cilium: 3 })
  const input = healthy(ctx)
  const [a, b] = [ctx.nodes[1]!.name, ctx.nodes[4]!.name]
  input.services = [
    service(ctx, () => ok(), () => ctx.nodes.map(n => n.name).filter(n => n !== a)),
    { ...service(ctx, () => ok(), () => ctx.nodes.map(n => n.name).filter(n => n !== b)), target: 'pingfleet-agent:8081' }
  ]
  const found = dnsServiceFindings(ctx, input, new Set())
  t.same(kinds(found), [`service-path service/${SERVICE},pingfleet-agent:8081`])
  t.equal(found[0]!.lead, `service ${SERVICE}: backend ${a} never answers through it; service pingfleet-agent:8081: backend ${b} never answers through it`)
  t.same(found[0]!.nodes, [a, b].sort())
})

t.test('backends one group never gets through the Service are named for that group', async t => {
  const ctx = fleet({ aws: 3, cilium: 3 })
  const input = healthy(ctx)
  const ciliumOnly = ctx.nodes.filter(n => n.group === 'cilium').map(n => n.name)
  // 90 answers per group: more than 6·ln(6/0.001) = 53, so a miss by chance is unlikely.
  input.services = [service(ctx, () => ok(30), n => n.group === 'cilium' ? ciliumOnly : ctx.nodes.map(x => x.name))]
  const found = dnsServiceFindings(ctx, input, new Set())
  t.same(kinds(found), [`service-path service/${SERVICE}`])
  t.equal(found[0]!.lead, `service ${SERVICE}: backends aws-0001, aws-0002, aws-0003 never answer through it to cilium`)
})

t.test('one node failing through the Service while its group works is service-path naming it', async t => {
  const ctx = fleet({ aws: 3, cilium: 3 })
  const input = healthy(ctx)
  const one = ctx.nodes[5]!.name
  input.services = [service(ctx, n => n.name === one ? fail('ECONNREFUSED', 'ECONNREFUSED') : ok())]
  const found = dnsServiceFindings(ctx, input, new Set())
  t.same(kinds(found), [`service-path service/${SERVICE}`])
  t.equal(found[0]!.lead, `service ${SERVICE}: probes through the Service fail from ${one} (cilium)`)
  t.same(dnsServiceFindings(ctx, input, new Set([one])), [], 'unless its own network explains it')
})

t.test('a Service name that does not resolve is DNS\'s finding, not service-path', async t => {
  const ctx = fleet({ aws: 3, cilium: 3 })
  const input = healthy(ctx)
  input.services = [{ ...service(ctx, () => fail('ENOTFOUND', 'EAI_NONAME')), target: 'pingfleet-agent:8081' }]
  t.same(kinds(dnsServiceFindings(ctx, input, new Set())), ['dns-name name/pingfleet-agent'])
})

t.test('an external target failing from one group whose in-cluster traffic works is egress for that target', async t => {
  const ctx = fleet({ aws: 3, cilium: 3 })
  const input = healthy(ctx)
  input.external = replace(input.external, external(ctx, 'http', n => n.group === 'cilium' ? fail('CONNECT_TIMEOUT', 'TIMEOUT') : ok()))
  const found = dnsServiceFindings(ctx, input, new Set())
  t.same(kinds(found), [`egress target/${HTTP}`])
  t.equal(found[0]!.lead, `http ${HTTP}: fails from cilium (3 of 3 nodes)`)
  t.equal(found[0]!.rest, '(CONNECT_TIMEOUT, raw TIMEOUT); in-cluster traffic works there; aws reaches it')
})

t.test('every external target failing from a group is one egress finding about the group', async t => {
  const ctx = fleet({ aws: 3, cilium: 3 })
  const input = healthy(ctx)
  const blocked = (n: { group: string }): ReturnType<typeof ok> => n.group === 'cilium' ? fail('CONNECT_TIMEOUT', 'TIMEOUT') : ok()
  input.external = [external(ctx, 'http', blocked), external(ctx, 'tcp', blocked)]
  const found = dnsServiceFindings(ctx, input, new Set())
  t.same(kinds(found), ['egress group/cilium'])
  t.equal(found[0]!.lead, 'cilium (3 nodes): every external target fails (2 of 2) from 3 of 3 nodes')
  t.equal(found[0]!.rest, '(CONNECT_TIMEOUT, raw TIMEOUT); in-cluster traffic works there; aws reaches them')
  t.same(found[0]!.evidence.map(e => e.scope), [TCP, HTTP])
})

t.test('a target down from everywhere is egress naming every group; one node alone is named', async t => {
  const ctx = fleet({ aws: 3, cilium: 3 })
  const input = healthy(ctx)
  input.external = replace(input.external, external(ctx, 'tcp', () => fail('ECONNREFUSED', 'ECONNREFUSED')))
  const found = dnsServiceFindings(ctx, input, new Set())
  t.same(kinds(found), [`egress target/${TCP}`])
  t.equal(found[0]!.lead, `tcp ${TCP}: fails from every group (6 of 6 nodes)`)
  const one = ctx.nodes[0]!.name
  input.external = replace(input.external, external(ctx, 'tcp', n => n.name === one ? fail('EHOSTUNREACH', 'EHOSTUNREACH') : ok()))
  t.equal(dnsServiceFindings(ctx, input, new Set())[0]!.lead, `tcp ${TCP}: fails from ${one} (aws)`)
})

t.test('no egress finding where in-cluster traffic fails too, or the failure is the name lookup', async t => {
  const ctx = fleet({ aws: 3, cilium: 3 })
  const input = healthy(ctx)
  input.external = replace(input.external, external(ctx, 'http', n => n.group === 'cilium' ? fail('CONNECT_TIMEOUT', 'TIMEOUT') : ok()))
  input.podOut = ctx.nodes.map(n => n.group === 'cilium' ? { samples: 60, errors: 60 } : { samples: 60, errors: 0 })
  t.same(dnsServiceFindings(ctx, input, new Set()), [])
  const named = healthy(ctx)
  named.external = replace(named.external, external(ctx, 'http', () => fail('EAI_AGAIN', 'EAI_AGAIN')))
  t.same(kinds(dnsServiceFindings(ctx, named, new Set())), ['dns-path name/example.com'], 'the lookup is DNS\'s finding')
})

t.test('a Service error ratio above the pod ratio by chance alone is no service-path (z-test)', async t => {
  t.notOk(significant(5, 25, 12, 125), '20% against 10% over 25 probes: z about 1.5')
  t.ok(significant(5, 30, 0, 150), 'a sixth against none: z about 5')
  t.notOk(significant(0, 10, 0, 10), 'nothing failed')
  const ctx = fleet({ aws: 3, cilium: 3 })
  const input = healthy(ctx)
  // Short window, a lossy path both kinds cross: pod probes fail 10%, one group's Service probes 20%.
  input.services = [service(ctx, n => n.group === 'cilium' ? fail('CONNECT_TIMEOUT', 'TIMEOUT', 2, 10) : fail('CONNECT_TIMEOUT', 'TIMEOUT', 1, 10))]
  input.podOut = ctx.nodes.map(() => ({ samples: 40, errors: 4 }))
  t.same(dnsServiceFindings(ctx, input, new Set()), [])
})

t.test('Service probes failing about as often as agents are down are those nodes\' finding, not service-path', async t => {
  const ctx = fleet({ aws: 3, cilium: 3 })
  const input = healthy(ctx)
  const gone = ctx.nodes[2]!.name
  // Its agent was killed; peers stopped probing it, but the Service still sends it a sixth of the probes.
  const killed = { ...ctx, nodes: ctx.nodes.map(n => n.name === gone ? { ...n, connected: false } : n) }
  input.services = [service(ctx, () => fail('ECONNREFUSED', 'ECONNREFUSED', 2))]
  t.same(dnsServiceFindings(killed, input, new Set()), [])
  t.same(kinds(dnsServiceFindings(ctx, input, new Set())), [`service-path service/${SERVICE}`], 'with every agent up, the same failures are the Service\'s')
})

t.test('one node failing a quarter of its external probes is no egress finding; failing most of them is', async t => {
  const ctx = fleet({ aws: 3, cilium: 3 })
  const input = healthy(ctx)
  const one = ctx.nodes[4]!.name
  input.external = replace(input.external, external(ctx, 'tcp', n => n.name === one ? fail('CONNECT_TIMEOUT', 'TIMEOUT', 2, 8) : ok()))
  t.same(dnsServiceFindings(ctx, input, new Set()), [])
  input.external = replace(input.external, external(ctx, 'tcp', n => n.name === one ? fail('CONNECT_TIMEOUT', 'TIMEOUT', 5, 8) : ok()))
  t.same(kinds(dnsServiceFindings(ctx, input, new Set())), [`egress target/${TCP}`])
})
