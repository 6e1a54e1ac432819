// Precision of the network findings: the wrong findings the e2e suite saw (test/e2e/scenarios.ts),
// each rebuilt on a synthetic mesh the size of the suite's (3 aws + 3 cilium nodes, a 10-probe pod
// window, a 60-train udp window, a 2-probe recent sub-window), with the one right answer.

import t from 'tap'
import { explainedNodes } from '../../src/findings/evaluate.ts'
import { networkFindings } from '../../src/findings/network.ts'
import type { Detection } from '../../src/findings/finding.ts'
import { fleet, context, type CellFn, type SynCell, input } from './synthetic.ts'

const brief = (ds: Detection[]): string[] => ds.map(d => `${d.kind} ${d.subject.id}`).sort()
const ok = (samples: number): SynCell => ({ samples })
const fail = (samples: number, errors: number, reason = 'CONNECT_TIMEOUT'): SynCell => ({ samples, errors, reason, raw: reason === 'ECONNREFUSED' ? 'ECONNREFUSED' : 'TIMEOUT' })
/** udp: `trains` trains of 5 datagrams, `dark` of them with no echo at all, `lost` datagrams lost in the others. */
const trains = (n: number, lost: number, dark = 0): SynCell => ({ samples: n, sent: 5 * n, lost: lost + 5 * dark, ...(dark > 0 ? { errors: dark, reason: 'UDP_NO_ECHO', raw: 'UDP_NO_ECHO' } : {}) })
const involves = (node: string) => (s: { name: string }, d: { name: string }): boolean => s.name === node || d.name === node

t.test('loss at an outage\'s onset: trains with no echo are the outage, not loss (node dies, boundary breaks)', async t => {
  const nodes = fleet([['aws', 3], ['cilium', 3]])
  const dead = 'cilium-0002'
  // 4 s into the outage: pod cells toward and from it fail 4 of 10 (not yet half), recent ones all.
  const pod: CellFn = (s, d) => involves(dead)(s, d) ? fail(10, 4) : ok(10)
  // udp over a minute: 4 of 60 trains toward it got no echo; its own trains of the last 4 s never arrived.
  const udp: CellFn = (s, d) => d.name === dead ? trains(60, 0, 4) : s.name === dead ? trains(56, 0) : trains(60, 0)
  t.same(brief(networkFindings(context(nodes), input(nodes, pod, () => null, udp))), [], 'no loss from echo-less trains, even without a recent sub-window')
  const recent = { pod: (s: { name: string }, d: { name: string }) => involves(dead)(s, d) ? fail(2, 2) : ok(2), udp: (s: { name: string }, d: { name: string }) => d.name === dead ? trains(2, 0, 2) : trains(2, 0) }
  t.same(brief(networkFindings(context(nodes), input(nodes, pod, () => null, udp, recent))), [], 'nor with it')
  // A boundary that broke 3 s ago: every new flow aws -> cilium dropped.
  const across = (s: { group: string }, d: { group: string }): boolean => s.group === 'aws' && d.group === 'cilium'
  const found = networkFindings(context(nodes), input(nodes, (s, d) => across(s, d) ? fail(10, 3) : ok(10), () => null, (s, d) => across(s, d) ? trains(60, 0, 3) : trains(60, 0),
    { pod: (s, d) => across(s, d) ? fail(2, 2) : ok(2), udp: (s, d) => across(s, d) ? trains(2, 0, 2) : trains(2, 0) }))
  t.same(brief(found), [], 'no loss groups/aws->cilium before the boundary is found')
  // Partial datagram loss while the recent pod probes toward the node mostly fail: the outage is about to be found, it is no loss.
  const onset = networkFindings(context(nodes), input(nodes, (s, d) => d.name === dead ? fail(10, 4) : ok(10), () => null, (s, d) => d.name === dead ? trains(60, 30) : trains(60, 0),
    { pod: (s, d) => d.name === dead ? fail(2, 2) : ok(2), udp: (s, d) => d.name === dead ? trains(2, 3) : trains(2, 0) }))
  t.same(brief(onset), [], 'recent pod probes toward it nearly all fail: not loss')
})

// 30% random loss toward one aws node, both its directions (answers to its own probes are lost too):
// its pod cells fail a third of their probes, some cross half in a 10-probe window; its udp trains
// lose ~30% of their datagrams, some peers' more than others'.
const LOSSY = 'aws-0001'
const lossyPod: CellFn = (s, d) => !involves(LOSSY)(s, d) ? ok(10) : s.group === 'aws' && d.group === 'aws' ? fail(10, 5) : fail(10, 3)
const lossyUdp: CellFn = (s, d) => !involves(LOSSY)(s, d) ? trains(60, 0) : trains(60, s.group === 'cilium' || d.group === 'cilium' ? 105 : 75)

t.test('partial loss on one node\'s paths: a link whose failing cells one node explains is no boundary', async t => {
  const nodes = fleet([['aws', 3], ['cilium', 3]])
  // 4 of aws -> aws's 6 pairs fail, every one of them through aws-0001; its own sides fail 2 of 5 peers.
  t.same(brief(networkFindings(context(nodes), input(nodes, lossyPod))), [])
  // A real break inside a group of 3 (all 6 pairs) is still a boundary: no one node explains it.
  const inside = networkFindings(context(nodes), input(nodes, (s, d) => s.group === 'aws' && d.group === 'aws' ? fail(10, 10) : ok(10)))
  t.same(brief(inside), ['group-boundary groups/aws->aws'])
})

t.test('partial loss on one node\'s paths: one loss finding about the node, nothing about its links or its peers', async t => {
  const nodes = fleet([['aws', 3], ['cilium', 3]])
  // Recent sub-window: two probes per cell; the lossy cells fail some of them, a few both.
  const recentPod: CellFn = (s, d) => !involves(LOSSY)(s, d) ? ok(2) : s.name === 'aws-0000' || d.name === 'aws-0000' ? fail(2, 2) : fail(2, 1)
  const found = networkFindings(context(nodes), input(nodes, lossyPod, () => null, lossyUdp, { pod: recentPod, udp: (s, d) => involves(LOSSY)(s, d) ? trains(2, 3) : trains(2, 0) }))
  t.same(brief(found), [`loss node/${LOSSY}`])
  t.match(found[0]!.lead, /^aws-0001 \(aws\): 31% of udp datagrams toward it are lost \(465 of 1,500\); 31% of udp datagrams from it are lost/)
  // Its DNS and Service failures are its loss too: the DNS and Service evaluator leaves them alone.
  t.same([...explainedNodes(found)], [LOSSY])
  const linkLoss = networkFindings(context(nodes), input(nodes, () => ok(10), () => null, (s, d) => s.group === 'aws' && d.group === 'cilium' ? trains(60, 60) : trains(60, 0)))
  t.same(brief(linkLoss), ['loss groups/aws->cilium'])
  t.same([...explainedNodes(linkLoss)], [], 'a group link\'s loss explains no node\'s DNS')
  // Without the pod mesh's partial failures too: the node's loss explains its links and its peers' sides.
  t.same(brief(networkFindings(context(nodes), input(nodes, () => ok(10), () => null, lossyUdp))), [`loss node/${LOSSY}`])
})

t.test('a fault that is gone opens no new finding while it drains out of the window', async t => {
  const nodes = fleet([['aws', 3], ['cilium', 3]])
  const victim = 'cilium-0001'
  // Its agent was killed and restarted: peers' probes toward it were refused for 6 of the 10 s; its own
  // probes were not made meanwhile. It is connected again and everything succeeds now.
  const refused: CellFn = (s, d) => d.name === victim ? fail(10, 6, 'ECONNREFUSED') : s.name === victim ? ok(4) : ok(10)
  const healed = { pod: () => ok(2), udp: () => trains(2, 0) }
  t.same(brief(networkFindings(context(nodes), input(nodes, refused, () => null, () => null, healed))), [], 'no node-inbound after the restart')
  // Back for one report: its peers' last probes toward it were refused (the successes since it listens
  // are not reported yet), its own side holds one probe per peer. That is the drain, not a fault.
  const backForOne = { pod: (s: { name: string }, d: { name: string }) => d.name === victim ? fail(2, 2, 'ECONNREFUSED') : s.name === victim ? ok(1) : ok(2) }
  t.same(brief(networkFindings(context(nodes), input(nodes, refused, () => null, () => null, backForOne))), [], 'no node-inbound on its first report')
  // Its inbound port blocked while it reports all along: node-inbound, at once.
  const blocked = { pod: (_s: { name: string }, d: { name: string }) => d.name === victim ? fail(2, 2) : ok(2) }
  t.same(brief(networkFindings(context(nodes), input(nodes, (_s, d) => d.name === victim ? fail(10, 6) : ok(10), () => null, () => null, blocked))), [`node-inbound node/${victim}`])
  // While it was still down the same window was its finding.
  nodes[3 + 1]!.connected = false
  t.same(brief(networkFindings(context(nodes), input(nodes, refused, () => null, () => null, { pod: (s, d) => d.name === victim ? fail(2, 2, 'ECONNREFUSED') : ok(2) }))), [`node-isolated node/${victim}`])
  nodes[3 + 1]!.connected = true
  // A black-holed node back on the network: its buffered red reports fill the window's past, not its present.
  const backfilled: CellFn = (s, d) => involves(victim)(s, d) ? fail(10, 6) : ok(10)
  t.same(brief(networkFindings(context(nodes), input(nodes, backfilled, () => null, () => null, healed))), [], 'no node-* from backfilled reports')
  // Loss read over a minute outlives its fault: once the recent trains lose nothing, it is over.
  const lossy: CellFn = (s, d) => d.name === victim ? trains(60, 30) : trains(60, 0)
  t.same(brief(networkFindings(context(nodes), input(nodes, () => ok(10), () => null, lossy, { pod: () => ok(2), udp: () => trains(5, 0) }))), [], 'no loss once recent trains lose nothing')
  t.same(brief(networkFindings(context(nodes), input(nodes, () => ok(10), () => null, lossy, { pod: () => ok(2), udp: (s, d) => d.name === victim ? trains(5, 3) : trains(5, 0) }))), [`loss node/${victim}`], 'loss that goes on is found')
})

t.test('a two-way partition at its onset is not first a one-way boundary (CI run: aws->cilium, then aws<->cilium)', async t => {
  const nodes = fleet([['aws', 3], ['cilium', 3]])
  const across = (s: { group: string }, d: { group: string }): boolean => s.group !== d.group
  // aws -> cilium has crossed half its window; cilium -> aws not yet (4 of 10), but its recent probes all fail.
  const pod: CellFn = (s, d) => !across(s, d) ? ok(10) : s.group === 'aws' ? fail(10, 6) : fail(10, 4)
  const recent = { pod: (s: { group: string }, d: { group: string }) => across(s, d) ? fail(2, 2) : ok(2) }
  t.same(brief(networkFindings(context(nodes), input(nodes, pod, () => null, () => null, recent))), [], 'the one-way finding waits while the other way already fails')
  // Once the other way crosses too: one finding, both ways.
  const both = networkFindings(context(nodes), input(nodes, (s, d) => across(s, d) ? fail(10, 6) : ok(10), () => null, () => null, recent))
  t.same(brief(both), ['group-boundary groups/aws<->cilium'])
  // A true one-way partition: the other way succeeds recently, so the one-way finding is made at once.
  const oneWay = networkFindings(context(nodes), input(nodes, (s, d) => s.group === 'aws' && d.group === 'cilium' ? fail(10, 6) : ok(10), () => null, () => null,
    { pod: (s, d) => s.group === 'aws' && d.group === 'cilium' ? fail(2, 2) : ok(2) }))
  t.same(brief(oneWay), ['group-boundary groups/aws->cilium'])
})
