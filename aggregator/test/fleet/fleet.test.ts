// The fleet model: groups from the roster's labels (Kubernetes' over the hello's), census and
// expected counts with and without discovery, node states, and label selectors.

import t from 'tap'
import type { Labels } from '@pingfleet/protocol'
import { BY_NODE, Fleet, groupIn, UNKNOWN_GROUP, type KubeNodeFacts, type KubeSource } from '../../src/fleet/fleet.ts'
import { parseSelector } from '../../src/fleet/label-selector.ts'
import { Roster } from '../../src/fleet/roster.ts'
import { hello } from '../helpers.ts'

const T0 = 1_800_000_000_000

/** n1, n2 in aws, n3 in cilium, n4 without the group label. */
function roster (): Roster {
  const r = new Roster(60_000)
  r.join(hello('n1', { cniplugin: 'aws', zone: 'a' }), T0)
  r.join(hello('n2', { cniplugin: 'aws', zone: 'b' }), T0)
  r.join(hello('n3', { cniplugin: 'cilium', zone: 'a' }), T0)
  r.join(hello('n4', { zone: 'b' }), T0)
  return r
}

/** Discovery as the fleet reads it: null until `listed`. */
function kube (expected: Record<string, Labels>, facts: Record<string, KubeNodeFacts> = {}): KubeSource & { listed: boolean } {
  const source = {
    listed: true,
    expectedNodes: () => source.listed ? new Map(Object.entries(expected)) : null,
    nodeFacts: () => source.listed ? new Map(Object.entries(facts)) : null,
    missing: () => [],
    unexpectedReason: () => null
  }
  return source
}

t.test('the group of a node is its group label, or UNKNOWN_GROUP', async t => {
  const fleet = new Fleet({ roster: roster(), groupLabel: 'cniplugin' })
  t.equal(fleet.groupOf('n1'), 'aws')
  t.equal(fleet.groupOf('n3'), 'cilium')
  t.equal(fleet.groupOf('n4'), UNKNOWN_GROUP, 'no group label')
  t.equal(fleet.groupOf('nobody'), UNKNOWN_GROUP, 'not in the roster')
  t.equal(fleet.groupOfLabels({ cniplugin: 'calico' }), 'calico')
  t.equal(fleet.groupOfAgent(fleet.roster.get('n2')!), 'aws')
})

t.test('grouping: by node, by the group label, or by any other label', async t => {
  const fleet = new Fleet({ roster: roster(), groupLabel: 'cniplugin' })
  t.equal(fleet.grouping(BY_NODE)('n1'), 'n1')
  t.equal(fleet.grouping('cniplugin')('n1'), 'aws')
  const byZone = fleet.grouping('zone')
  t.same(['n1', 'n2', 'n3', 'n4', 'gone'].map(byZone), ['a', 'b', 'a', 'b', UNKNOWN_GROUP])
})

t.test('a relabelled node moves group at once, and the revision changes with it', async t => {
  const r = roster()
  const fleet = new Fleet({ roster: r, groupLabel: 'cniplugin' })
  const before = fleet.revision
  r.setKube('n1', { labels: { cniplugin: 'cilium' }, replaces: ['cniplugin'], cordoned: false, terminatingPods: [] })
  t.equal(fleet.groupOf('n1'), 'cilium')
  t.not(fleet.revision, before)
})

t.test('static mode: the census counts the roster; a terminating agent is known but not a member nor expected', async t => {
  const r = roster()
  const fleet = new Fleet({ roster: r, groupLabel: 'cniplugin' })
  r.accept('n1', 'boot-n1-0001', 1, T0 + 1000)
  r.disconnect('n2', T0 + 2000)
  r.depart('n2')
  const census = fleet.census()
  t.same([...census.keys()].sort(), ['(none)', 'aws', 'cilium'])
  t.same(census.get('aws'), { known: 2, members: 1, connected: 1, newestReportAt: T0 + 1000, expected: 1 })
  t.same(census.get('cilium'), { known: 1, members: 1, connected: 1, newestReportAt: null, expected: 1 })
  t.same(fleet.knownGroups(), ['(none)', 'aws', 'cilium'])
  t.equal(fleet.expected('aws'), 1)
  t.equal(fleet.expected('calico'), 0, 'a group nobody knows')
  t.same([...fleet.expectedAgents()].sort(), [['(none)', 1], ['aws', 1], ['cilium', 1]], 'the gauge, as the gates, leaves the terminating n2 out')
  t.same(fleet.membersOf('aws').map(a => a.node), ['n1'])
  t.same(fleet.missingAgents(), [], 'static mode: no agent is missing')
  t.equal(fleet.unexpectedReason('n2'), null)
})

t.test('in-cluster: once discovery has listed, it says what each group expects, and its groups are known', async t => {
  const source = kube({ n1: { cniplugin: 'aws' }, n2: { cniplugin: 'aws' }, x1: { cniplugin: 'calico' }, x2: { cniplugin: 'calico' }, x3: {} })
  const fleet = new Fleet({ roster: roster(), groupLabel: 'cniplugin', kube: source })
  t.same(fleet.knownGroups(), ['(none)', 'aws', 'calico', 'cilium'])
  t.equal(fleet.expected('aws'), 2)
  t.equal(fleet.expected('calico'), 2, 'no agent of calico ever connected')
  t.equal(fleet.expected('cilium'), 0, 'n3 has an agent but no live agent pod')
  t.equal(fleet.expected(UNKNOWN_GROUP), 1)
  t.same(fleet.census().get('calico'), { known: 0, members: 0, connected: 0, newestReportAt: null, expected: 2 })
  t.same([...fleet.expectedAgents()].sort(), [['(none)', 1], ['aws', 2], ['calico', 2], ['cilium', 0]], 'census().expected per group')
  source.listed = false
  t.same(fleet.knownGroups(), ['(none)', 'aws', 'cilium'], 'before the first list the roster is all there is')
  t.equal(fleet.expected('aws'), 2)
  t.equal(fleet.expected('cilium'), 1)
})

t.test('node states: the roster\'s agents and every node Kubernetes lists, its labels over the hello\'s', async t => {
  const r = roster()
  r.disconnect('n3', T0 + 5000)
  const facts: Record<string, KubeNodeFacts> = {
    n1: { labels: { cniplugin: 'aws', zone: 'a', 'kubernetes.io/hostname': 'n1' }, cordoned: false, podReady: true },
    k9: { labels: { cniplugin: 'calico', 'migration-batch': '7' }, cordoned: true, podReady: false, podReason: 'no live agent pod on the node' }
  }
  const fleet = new Fleet({ roster: r, groupLabel: 'cniplugin', kube: kube({}, facts) })
  const nodes = fleet.nodes()
  t.same([...nodes.keys()].sort(), ['k9', 'n1', 'n2', 'n3', 'n4'])
  t.match(nodes.get('n1'), { group: 'aws', connected: true, state: 'ready', bootId: 'boot-n1-0001', labels: { 'kubernetes.io/hostname': 'n1', zone: 'a' }, kube: facts.n1 })
  t.match(nodes.get('n3'), { group: 'cilium', connected: false, kube: null })
  t.match(nodes.get('k9'), { group: 'calico', connected: false, state: null, lastReportAt: null, bootId: null, bootStartedAt: null, kube: { cordoned: true } })
  t.match(fleet.node('k9'), { group: 'calico' })
  t.equal(fleet.node('nobody'), undefined)
  t.equal(groupIn(nodes, 'k9'), 'calico')
  t.equal(groupIn(nodes, 'nobody'), UNKNOWN_GROUP)
  t.same(fleet.kubeNodes(), new Map(Object.entries(facts)))
  t.equal(new Fleet({ roster: r, groupLabel: 'cniplugin' }).kubeNodes(), null, 'static mode')
})

t.test('labels of a node: groupBy and nodeSelector read the same ones, Kubernetes\' included', async t => {
  // A label only Kubernetes has (the hello does not carry it): both must see it.
  const arch = 'kubernetes.io/arch'
  const facts: Record<string, KubeNodeFacts> = {
    n1: { labels: { cniplugin: 'aws', zone: 'a', [arch]: 'amd64' }, cordoned: false, podReady: true },
    n2: { labels: { cniplugin: 'aws', zone: 'b', [arch]: 'arm64' }, cordoned: false, podReady: true },
    k9: { labels: { cniplugin: 'calico', [arch]: 'amd64' }, cordoned: false, podReady: false, podReason: 'no live agent pod on the node' }
  }
  const source = kube({}, facts)
  const fleet = new Fleet({ roster: roster(), groupLabel: 'cniplugin', kube: source })
  t.same(fleet.labelsOf('n1'), { cniplugin: 'aws', zone: 'a', [arch]: 'amd64' })
  t.same(fleet.labelsOf('n3'), { cniplugin: 'cilium', zone: 'a' }, 'not in the cluster: the hello\'s')
  t.same(fleet.labelsOf('k9'), facts.k9!.labels, 'no agent: Kubernetes\'')
  t.equal(fleet.labelsOf('nobody'), undefined)
  const byArch = fleet.grouping(arch)
  t.same(['n1', 'n2', 'n3', 'k9', 'nobody'].map(byArch), ['amd64', 'arm64', UNKNOWN_GROUP, 'amd64', UNKNOWN_GROUP])
  t.same(fleet.select(parseSelector(`${arch}=amd64`)), ['k9', 'n1'])
  for (const node of ['n1', 'n2', 'n3', 'n4', 'k9']) {
    t.same(fleet.labelsOf(node), fleet.node(node)!.labels, `${node}: one set of labels`)
  }
  source.listed = false
  t.equal(fleet.grouping(arch)('n1'), UNKNOWN_GROUP, 'before discovery has listed: the hello\'s only')
})

t.test('select: the nodes a Kubernetes label selector matches, on any label, sorted', async t => {
  const facts: Record<string, KubeNodeFacts> = { k9: { labels: { cniplugin: 'calico', zone: 'a' }, cordoned: false, podReady: true } }
  const fleet = new Fleet({ roster: roster(), groupLabel: 'cniplugin', kube: kube({}, facts) })
  t.same(fleet.select(parseSelector('zone=a')), ['k9', 'n1', 'n3'])
  t.same(fleet.select(parseSelector('cniplugin in (aws,calico),zone!=b')), ['k9', 'n1'])
  t.same(fleet.select(parseSelector('!cniplugin')), ['n4'])
  t.same(fleet.select(parseSelector('migration-batch=7')), [])
})
