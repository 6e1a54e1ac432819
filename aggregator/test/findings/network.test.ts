import t from 'tap'
import { networkFindings } from '../../src/findings/network.ts'
import type { Detection } from '../../src/findings/finding.ts'
import { context, dead, fleet, healthy, input, type CellFn } from './synthetic.ts'

const brief = (ds: Detection[]): string[] => ds.map(d => `${d.kind} ${d.subject.id}`).sort()

t.test('a healthy mesh, with mtu and udp, gives zero findings', async t => {
  const nodes = fleet([['aws', 20], ['cilium', 20]])
  const found = networkFindings(context(nodes), input(nodes, healthy, () => ({ samples: 2, size: 8500 }), () => ({ samples: 2, sent: 10, lost: 0 })))
  t.same(found, [])
})

t.test('a few flaky cells are no fault', async t => {
  const nodes = fleet([['aws', 20], ['cilium', 20]])
  const flaky = new Set(['aws-0001>cilium-0002', 'aws-0003>aws-0004', 'cilium-0005>aws-0006'])
  t.same(networkFindings(context(nodes), input(nodes, (s, d) => flaky.has(`${s.name}>${d.name}`) ? dead : healthy(s, d))), [])
})

t.test('node-inbound: peers fail toward one node while its outbound succeeds; one finding, worded as the issue shows', async t => {
  const nodes = fleet([['aws', 20], ['cilium', 21]])
  const target = 'cilium-0017'
  const spared = new Set(['aws-0000', 'aws-0001', 'aws-0002'])
  const found = networkFindings(context(nodes), input(nodes, (s, d) => d.name === target && !spared.has(s.name) ? dead : healthy(s, d)))
  t.same(brief(found), [`node-inbound node/${target}`])
  const f = found[0]!
  t.equal(f.lead, `${target} (cilium): inbound pod probes fail from 37 of 40 peers`)
  t.equal(f.rest, '(CONNECT_TIMEOUT); its own outbound probes succeed')
  t.same(f.nodes, [target])
  t.same(f.evidence[0]!.agreeing, { count: 37, of: 40 })
  t.same(f.evidence[0]!.reasons, [{ reason: 'CONNECT_TIMEOUT', raw: 'UND_ERR_CONNECT_TIMEOUT', count: 37 * 6 }])
  t.equal(f.evidence[0]!.cells!.length, 10)
  t.equal(f.evidence[0]!.cells![0]!.target, target)
  t.ok(f.score > 0.9 && f.score <= 1)
})

t.test('node-outbound: one node fails toward most peers while the others reach it', async t => {
  const nodes = fleet([['aws', 20], ['cilium', 20]])
  const found = networkFindings(context(nodes), input(nodes, (s, d) => s.name === 'aws-0005' ? { ...dead, reason: 'EHOSTUNREACH', raw: 'EHOSTUNREACH' } : healthy(s, d)))
  t.same(brief(found), ['node-outbound node/aws-0005'])
  t.equal(found[0]!.lead, 'aws-0005 (aws): its outbound pod probes fail toward 39 of 39 peers')
  t.match(found[0]!.rest, /^\(EHOSTUNREACH\); peers' probes toward it succeed$/)
})

t.test('node-isolated: both directions fail (one finding, not inbound plus outbound, no boundary)', async t => {
  const nodes = fleet([['aws', 20], ['cilium', 20]])
  const found = networkFindings(context(nodes), input(nodes, (s, d) => s.name === 'cilium-0003' || d.name === 'cilium-0003' ? dead : healthy(s, d)))
  t.same(brief(found), ['node-isolated node/cilium-0003'])
  t.match(found[0]!.lead, /fail both ways, from 39 of 39 peers and toward 39 of 39/)
})

t.test('node-isolated: an agent cut off while its pod is ready, with or without peers failing toward it', async t => {
  const nodes = fleet([['aws', 10], ['cilium', 10]])
  nodes[3]!.connected = false
  const quiet = networkFindings(context(nodes), input(nodes, (s, d) => s.name === nodes[3]!.name ? null : healthy(s, d)))
  t.same(brief(quiet), [`node-isolated node/${nodes[3]!.name}`])
  t.match(quiet[0]!.lead, /its agent is disconnected while Kubernetes says its pod is ready/)
  nodes[3]!.podReady = null
  t.same(networkFindings(context(nodes), input(nodes, (s, d) => s.name === nodes[3]!.name ? null : healthy(s, d))), [], 'no Kubernetes, no failures: nothing to say')
  const unreachable = networkFindings(context(nodes), input(nodes, (s, d) => s.name === nodes[3]!.name ? null : d.name === nodes[3]!.name ? dead : healthy(s, d)))
  t.same(brief(unreachable), [`node-isolated node/${nodes[3]!.name}`], 'peers fail toward it and its agent is gone')
  t.match(unreachable[0]!.rest, /its agent is disconnected/)
})

t.test('group-boundary one way: one finding, no node finding for each node of either group', async t => {
  const nodes = fleet([['aws', 20], ['cilium', 20]])
  const found = networkFindings(context(nodes), input(nodes, (s, d) => s.group === 'aws' && d.group === 'cilium' ? dead : healthy(s, d)))
  t.same(brief(found), ['group-boundary groups/aws->cilium'])
  t.match(found[0]!.subject, { src: 'aws', dst: 'cilium', bothWays: false })
  t.equal(found[0]!.lead, 'aws -> cilium: pod probes fail on 400 of 400 node pairs, from 20 aws nodes')
  t.equal(found[0]!.rest, '(CONNECT_TIMEOUT); no single node explains it')
  t.same(found[0]!.groups, ['aws', 'cilium'])
})

t.test('group-boundary both ways, a small group among a large one: one finding, not one per node of the small group', async t => {
  const nodes = fleet([['aws', 90], ['cilium', 10]])
  const found = networkFindings(context(nodes), input(nodes, (s, d) => s.group !== d.group ? dead : healthy(s, d)))
  t.same(brief(found), ['group-boundary groups/aws<->cilium'])
  t.match(found[0]!.subject, { src: 'aws', dst: 'cilium', bothWays: true })
  t.equal(found[0]!.evidence.length, 2)
})

t.test('a broken boundary and a dead node at once: both, each once', async t => {
  const nodes = fleet([['aws', 30], ['cilium', 30]])
  const found = networkFindings(context(nodes), input(nodes, (s, d) =>
    s.name === 'aws-0007' || d.name === 'aws-0007' || (s.group === 'cilium' && d.group === 'aws') ? dead : healthy(s, d)))
  t.same(brief(found), ['group-boundary groups/cilium->aws', 'node-isolated node/aws-0007'])
})

for (const [size, other] of [[200, 200], [1000, 20]] as const) {
  t.test(`dilution: one dead node among ${size} in its group is found, and nothing else`, async t => {
    const nodes = fleet([['cilium', size], ['aws', other]])
    const victim = `cilium-${String(size - 7).padStart(4, '0')}`
    const pod: CellFn = (s, d) => s.name === victim || d.name === victim ? dead : healthy(s, d)
    const data = input(nodes, pod)
    const link = data.links.pod.find(l => l.src === 'aws' && l.dst === 'cilium')!
    t.ok(link.errors / link.samples <= 1 / size + 1e-9, `the aws -> cilium ratio moves by only ${(100 * link.errors / link.samples).toFixed(2)}%`)
    const found = networkFindings(context(nodes), data)
    t.same(brief(found), [`node-isolated node/${victim}`])
    // Inbound dead only (its agent still reaches everyone): node-inbound.
    const inboundOnly = networkFindings(context(nodes), input(nodes, (s, d) => d.name === victim ? dead : healthy(s, d)))
    t.same(brief(inboundOnly), [`node-inbound node/${victim}`])
    t.match(inboundOnly[0]!.lead, new RegExp(`fail from ${size + other - 1} of ${size + other - 1} peers`))
  })
}

t.test('mtu: large probes fail where pod probes succeed, per node and per group link', async t => {
  const nodes = fleet([['aws', 20], ['cilium', 20]])
  const big = (errors: number) => ({ samples: 2, errors, size: 8500, reason: 'MTU_BLACKHOLE', raw: 'BODY_TIMEOUT' })
  const node = networkFindings(context(nodes), input(nodes, healthy, (s, d) => big(d.name === 'cilium-0004' ? 2 : 0)))
  t.same(brief(node), ['mtu node/cilium-0004'])
  t.equal(node[0]!.lead, 'cilium-0004 (cilium): large mtu probes (8500 bytes) toward it fail from 39 of 39 peers')
  t.equal(node[0]!.rest, '(MTU_BLACKHOLE); small pod probes on the same paths succeed')
  // Two failing sizes per peer: still peers counted once each, both sizes named.
  const twoSizes = input(nodes, healthy, (s, d) => big(d.name === 'cilium-0004' ? 2 : 0))
  twoSizes.mtu.failed.push(...twoSizes.mtu.failed.map(c => ({ ...c, size: 4000 })))
  const both = networkFindings(context(nodes), twoSizes)
  t.equal(both[0]!.lead, 'cilium-0004 (cilium): large mtu probes (4000, 8500 bytes) toward it fail from 39 of 39 peers')
  t.same(both[0]!.evidence[0]!.agreeing, { count: 39, of: 39 })
  const link = networkFindings(context(nodes), input(nodes, healthy, (s, d) => big(s.group === 'aws' && d.group === 'cilium' ? 2 : 0)))
  t.same(brief(link), ['mtu groups/aws->cilium'])
  // A dead node fails its large probes too: that is its node finding, not an mtu one.
  const explained = networkFindings(context(nodes), input(nodes, (s, d) => d.name === 'cilium-0004' ? dead : healthy(s, d), (s, d) => big(d.name === 'cilium-0004' ? 2 : 0)))
  t.same(brief(explained), ['node-inbound node/cilium-0004'])
})

t.test('loss: udp datagrams lost toward one node, or across a boundary, while probes succeed', async t => {
  const nodes = fleet([['aws', 20], ['cilium', 20]])
  const udp = (lossy: (s: { name: string, group: string }, d: { name: string, group: string }) => boolean): CellFn => (s, d) => ({ samples: 2, sent: 10, lost: lossy(s, d) ? 2 : 0 })
  const node = networkFindings(context(nodes), input(nodes, healthy, () => null, udp((s, d) => d.name === 'aws-0009')))
  t.same(brief(node), ['loss node/aws-0009'])
  t.match(node[0]!.lead, /^aws-0009 \(aws\): 20% of udp datagrams toward it are lost \(78 of 390\)$/)
  t.equal(node[0]!.evidence[0]!.figures!['lossRatio'], 0.2)
  const link = networkFindings(context(nodes), input(nodes, healthy, () => null, udp((s, d) => s.group === 'aws' && d.group === 'cilium')))
  t.same(brief(link), ['loss groups/aws->cilium'], 'one link finding, not one per cilium node')
  const everywhere = networkFindings(context(nodes), input(nodes, healthy, () => null, udp(() => true)))
  t.ok(everywhere.every(d => d.subject.type === 'group-pair'), 'fleet-wide loss is no node finding')
})

t.test('loss: SYN retransmits on pod connects from one node', async t => {
  const nodes = fleet([['aws', 20], ['cilium', 20]])
  const found = networkFindings(context(nodes), input(nodes, (s) => ({ samples: 6, slowConnects: s.name === 'cilium-0001' ? 1 : 0 })))
  t.same(brief(found), ['loss node/cilium-0001'])
  t.match(found[0]!.lead, /pod connects from it needed a SYN retransmit/)
  t.ok((found[0]!.evidence[0]!.figures!['slowConnectRatio'] as number) > 0.15)
})

t.test('agent-degraded: its own failing samples make no node-outbound and no boundary', async t => {
  const nodes = fleet([['aws', 20], ['cilium', 20]])
  nodes[5]!.degraded = '80% of its samples were lagged (event loop stalled)'
  const found = networkFindings(context(nodes), input(nodes, (s, d) => s.name === nodes[5]!.name || d.name === nodes[5]!.name ? { ...dead, reason: 'RESPONSE_TIMEOUT' } : healthy(s, d)))
  t.same(brief(found), [`agent-degraded node/${nodes[5]!.name}`])
  t.equal(found[0]!.lead, `${nodes[5]!.name} (aws): agent degraded: 80% of its samples were lagged (event loop stalled)`)
  t.match(found[0]!.rest, /not a network fault/)
})

t.test('several degraded agents whose probes all fail do not add up to a boundary', async t => {
  const nodes = fleet([['aws', 10], ['cilium', 10]])
  for (const n of nodes.slice(0, 10)) n.degraded = 'overloaded'
  const found = networkFindings(context(nodes), input(nodes, (s, d) => s.degraded !== null ? dead : healthy(s, d)))
  t.same(brief(found).filter(k => !k.startsWith('agent-degraded')), [])
})
