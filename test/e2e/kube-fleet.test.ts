// The network-namespace cluster on a real control plane: etcd and kube-apiserver run inside the
// aggregator's namespace (on its loopback), every agent is a Pod whose podIP is its namespace's
// address and authenticates with a real pod-bound ServiceAccount token, and the aggregator discovers
// Nodes and Pods and reviews tokens through the API server, with the chart's RBAC. Then a node is
// relabelled aws → cilium mid-run, as a CNI migration does, and the group views follow.
// Needs root, iproute2, nftables, dnsmasq and the control plane binaries (.ci/install-control-plane.sh):
// skipped with the reason otherwise, a failure under CI=true.

import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { AGGREGATOR, Cluster, missingPrerequisite, sweepStale, type ClusterNode } from './cluster.ts'
import { missingControlPlane, startControlPlane } from '../kube/control-plane.ts'
import { AGENT_SA, applyAgentPod, applyChartAccess, applyNode, createNamespace } from '../kube/fixtures.ts'

const NAMESPACE = 'pingfleet'
const INTERVAL_MS = 1000
/** How long a relabel may take to reach the group views: the watch, then one window of fresh reports. */
const RELABEL_BOUND_MS = 10_000

const missing = missingPrerequisite() ?? missingControlPlane()
const skip = missing === null || process.env.CI === 'true' ? false : `${missing}; CI=true makes this a failure`

interface AgentRow { node: string, group: string, connected: boolean }
interface GroupCell { src: string, dst: string, samples: number, errors: number }

t.test('a namespace cluster on a real control plane: discovery, real tokens, a relabel mid-run', { skip }, async t => {
  if (missing !== null) throw new Error(missing)
  sweepStale()
  const podName = (node: ClusterNode): string => `pingfleet-agent-${node.name}`
  const tokenFile = (node: ClusterNode): string => join(cluster.dir, `token-${node.name}`)
  const cluster: Cluster = new Cluster({
    nodesPerGroup: 2,
    token: 'not-used-with-serviceaccount-tokens',
    agentEnv: {
      PINGFLEET_INTERVAL: `${INTERVAL_MS}ms`,
      PINGFLEET_HEARTBEAT: '1s',
      PINGFLEET_LOG_LEVEL: 'warn',
      PINGFLEET_LAG_THRESHOLD: '200ms',
      PINGFLEET_RECONNECT_MIN: '100ms',
      PINGFLEET_RECONNECT_MAX: '500ms',
      PINGFLEET_PROBE_TIMEOUT: '500ms',
      PINGFLEET_MTU_SIZES: '',
      PINGFLEET_DNS_NAMES: '',
      PINGFLEET_DNS_WIRE_NAMES: ''
    },
    // The projected token of each agent's own Pod, instead of a shared static token.
    agentEnvFor: node => ({ PINGFLEET_TOKEN: '', PINGFLEET_TOKEN_FILE: tokenFile(node) }),
    aggregatorEnv: {},
    resolverOptions: 'timeout:1 attempts:1'
  })
  t.teardown(() => cluster.teardown())
  await cluster.build()

  const plane = await startControlPlane({ netns: cluster.aggNs })
  t.teardown(plane.stop)
  createNamespace(plane, NAMESPACE)
  const aggregatorToken = applyChartAccess(plane, NAMESPACE, cluster.dir)
  for (const node of cluster.nodes) {
    applyNode(plane, node.name, { cniplugin: node.group, 'topology.kubernetes.io/zone': 'z1' })
    applyAgentPod(plane, NAMESPACE, podName(node), node.name, node.ip)
    writeFileSync(tokenFile(node), plane.kubectl(['create', 'token', AGENT_SA, '-n', NAMESPACE, '--audience', 'pingfleet',
      '--bound-object-kind', 'Pod', '--bound-object-name', podName(node), '--duration=1h']).stdout.trim())
  }
  Object.assign(cluster.options.aggregatorEnv, {
    PINGFLEET_TOKEN: '',
    PINGFLEET_INTERVAL: `${INTERVAL_MS}ms`,
    PINGFLEET_HEARTBEAT: '1s',
    PINGFLEET_LOG_LEVEL: 'info',
    PINGFLEET_NAMESPACE: NAMESPACE,
    PINGFLEET_AGENT_SERVICE_ACCOUNT: `system:serviceaccount:${NAMESPACE}:${AGENT_SA}`,
    // In-cluster settings, as the aggregator's pod gets them; the API server is on the namespace's loopback.
    KUBERNETES_SERVICE_HOST: '127.0.0.1',
    KUBERNETES_SERVICE_PORT: new URL(plane.url).port,
    PINGFLEET_KUBE_TOKEN_FILE: aggregatorToken,
    PINGFLEET_KUBE_CA_FILE: plane.caFile
  })
  await cluster.startAggregator()
  for (const node of cluster.nodes) await cluster.startAgent(node)

  const agents = async (): Promise<AgentRow[]> => (await cluster.getJson<{ agents: AgentRow[] }>(AGGREGATOR.ip, AGGREGATOR.port, '/api/v1/agents')).agents
  const groupCells = async (): Promise<GroupCell[]> =>
    (await cluster.getJson<{ cells: GroupCell[] }>(AGGREGATOR.ip, AGGREGATOR.port, '/api/v1/matrix?probe=pod&groupBy=cniplugin&window=2s')).cells
  const metrics = async (): Promise<string> => (await cluster.get(AGGREGATOR.ip, AGGREGATOR.port, '/metrics')).body

  await t.test('every agent is let in with its pod-bound token and discovered with its Node\'s group', async t => {
    const { value: rows } = await cluster.until('four connected agents', async () => {
      const all = await agents()
      return all.length === 4 && all.every(a => a.connected) ? all : undefined
    }, 30_000)
    t.same(rows.map(a => [a.node, a.group]).sort(), cluster.nodes.map(n => [n.name, n.group]).sort())
    const { value: cells } = await cluster.until('all four group cells green', async () => {
      const all = await groupCells()
      return all.length === 4 && all.every(c => c.samples > 0 && c.errors === 0) ? all : undefined
    }, 20_000)
    t.equal(cells.length, 4, 'aws↔cilium both ways and within each group')
    t.match(await metrics(), /pingfleet_agents_expected\{group="aws"\} 2/)
  })

  await t.test('relabelling a node aws → cilium mid-run moves it in every group view', async t => {
    const moved = cluster.nodes.find(n => n.group === 'aws')!
    const started = Date.now()
    plane.kubectl(['label', 'node', moved.name, 'cniplugin=cilium', '--overwrite'])
    await cluster.until(`${moved.name} in cilium`, async () => (await agents()).find(a => a.node === moved.name)?.group === 'cilium' ? true : undefined, RELABEL_BOUND_MS)
    t.comment(`agents API follows after ${Date.now() - started} ms`)
    // One aws node is left, with no aws peer: once the window holds only new reports, aws→aws is gone.
    const { value: cells } = await cluster.until('aws→aws gone from a fresh window', async () => {
      const all = await groupCells()
      return all.some(c => c.src === 'aws' && c.dst === 'aws' && c.samples > 0) ? undefined : all
    }, RELABEL_BOUND_MS)
    t.comment(`group matrix follows after ${Date.now() - started} ms (bound ${RELABEL_BOUND_MS} ms)`)
    t.ok(cells.length > 0 && cells.every(c => c.errors === 0), `no errors from the relabel itself (${cells.length} cells)`)
    t.ok(cells.find(c => c.src === 'cilium' && c.dst === 'cilium')!.samples > 0)
    const text = await metrics()
    t.match(text, /pingfleet_agents_expected\{group="cilium"\} 3/)
    t.match(text, /pingfleet_agents_expected\{group="aws"\} 1/)
  })
})
