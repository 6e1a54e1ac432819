// Agent authentication with real projected ServiceAccount tokens: kube-apiserver mints pod-bound
// tokens (`kubectl create token --bound-object-kind Pod`), the aggregator reviews them with a
// TokenReview under the chart's RBAC, checks the node claim against the hello, re-reviews open
// connections, and fails closed (503) while the API server is down.

import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pino from 'pino'
import t from 'tap'
import { startAggregator } from '../../aggregator/src/app.ts'
import { loadConfig } from '../../aggregator/src/config.ts'
import { hello, RawAgent } from '../../aggregator/test/helpers.ts'
import { CLOSE_NODE_MISMATCH } from '../../aggregator/src/http/stream.ts'
import { needsControlPlane, startControlPlane, type ControlPlane } from './control-plane.ts'
import { AGENT_SA, applyAgentPod, applyChartAccess, applyNode, createNamespace } from './fixtures.ts'

const NAMESPACE = 'pingfleet'
const REVIEW_PERIOD_MS = 1000
/** kube-apiserver keeps accepting a token about 10–15 s after its pod is gone; then our period. */
const REVOKE_BOUND_MS = 30_000

function agentToken (plane: ControlPlane, pod: string, audience = 'pingfleet'): string {
  return plane.kubectl(['create', 'token', AGENT_SA, '-n', NAMESPACE, '--audience', audience, '--bound-object-kind', 'Pod', '--bound-object-name', pod, '--duration=1h']).stdout.trim()
}

/** The HTTP status of a refused upgrade, or 101 when the websocket opened. */
async function upgradeStatus (base: string, token: string): Promise<number> {
  const agent = new RawAgent(base, token)
  return new Promise<number>(resolve => {
    agent.socket.on('unexpected-response', (_req, res) => { resolve(res.statusCode ?? 0); agent.socket.terminate() })
    agent.socket.on('open', () => { resolve(101); agent.socket.terminate() })
    agent.socket.on('error', () => resolve(0))
  })
}

async function until (what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<number> {
  const start = Date.now()
  while (!(await check().catch(() => false))) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting until ${what}`)
    await new Promise(resolve => setTimeout(resolve, 250))
  }
  return Date.now() - start
}

t.test('TokenReview with real pod-bound tokens', needsControlPlane(), async t => {
  const plane = await startControlPlane()
  t.teardown(plane.stop)
  const dir = mkdtempSync(join(tmpdir(), 'pingfleet-kube-tokens-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  createNamespace(plane, NAMESPACE)
  const tokenFile = applyChartAccess(plane, NAMESPACE, dir)
  applyNode(plane, 'node-a', { cniplugin: 'aws' })
  applyNode(plane, 'node-b', { cniplugin: 'cilium' })
  applyAgentPod(plane, NAMESPACE, 'agent-node-a', 'node-a', '127.0.4.1')
  applyAgentPod(plane, NAMESPACE, 'agent-node-b', 'node-b', '127.0.4.2')

  const config = loadConfig({
    PINGFLEET_LISTEN: '127.0.0.1:0',
    PINGFLEET_INTERVAL: '1s',
    PINGFLEET_NAMESPACE: NAMESPACE,
    PINGFLEET_AGENT_SERVICE_ACCOUNT: `system:serviceaccount:${NAMESPACE}:${AGENT_SA}`,
    PINGFLEET_TOKEN_REVIEW_PERIOD: `${REVIEW_PERIOD_MS}ms`,
    KUBERNETES_SERVICE_HOST: '127.0.0.1',
    KUBERNETES_SERVICE_PORT: new URL(plane.url).port,
    PINGFLEET_KUBE_TOKEN_FILE: tokenFile,
    PINGFLEET_KUBE_CA_FILE: plane.caFile
  })
  t.equal(config.authMode, 'serviceAccount', 'in-cluster without a static token means serviceAccount mode')
  const agg = await startAggregator(config, pino({ level: 'silent' }))
  const base = agg.address()
  const open: RawAgent[] = []
  t.teardown(async () => {
    for (const a of open) a.socket.terminate()
    await agg.close()
  })
  const connect = async (token: string, node: string): Promise<RawAgent> => {
    const agent = new RawAgent(base, token)
    open.push(agent)
    await agent.opened()
    agent.send(hello(node))
    return agent
  }

  const tokenA = agentToken(plane, 'agent-node-a')
  const tokenB = agentToken(plane, 'agent-node-b')

  await t.test('a pod-bound token with audience pingfleet is accepted for its own node', async t => {
    const a = await connect(tokenA, 'node-a')
    await a.waitFor(m => m.type === 'welcome')
    t.pass('welcomed')
  })

  await t.test('a token bound to another node\'s pod is refused', async t => {
    const b = await connect(tokenB, 'node-a')
    const closed = await b.closed
    t.equal(closed.code, CLOSE_NODE_MISMATCH)
    t.match(closed.reason, 'token is for node node-b')
  })

  await t.test('a token for another audience is refused before the upgrade', async t => {
    t.equal(await upgradeStatus(base, agentToken(plane, 'agent-node-a', 'not-pingfleet')), 401)
    t.equal(await upgradeStatus(base, 'not.a.token'), 401)
  })

  await t.test('after the pod is deleted, new connections are refused and the open one is closed', async t => {
    const a = open[0]!
    let closedAt = -1
    void a.closed.then(c => { closedAt = c.code })
    plane.kubectl(['delete', 'pod', 'agent-node-a', '-n', NAMESPACE, '--grace-period=0', '--force'])
    const refusedMs = await until('token of the deleted pod refused', async () => await upgradeStatus(base, tokenA) === 401, REVOKE_BOUND_MS)
    t.comment(`new connections refused ${refusedMs} ms after the deletion`)
    const closedMs = await until('open connection closed', async () => closedAt !== -1, REVIEW_PERIOD_MS * 3)
    t.equal(closedAt, 1008, 'closed with 1008 (policy violation)')
    t.comment(`open connection closed ${refusedMs + closedMs} ms after the deletion (re-review every ${REVIEW_PERIOD_MS} ms)`)
  })

  await t.test('with the API server down, new connections fail closed and open ones stay', async t => {
    const b = await connect(tokenB, 'node-b')
    await b.waitFor(m => m.type === 'welcome')
    let closed = false
    void b.closed.then(() => { closed = true })
    const fresh = agentToken(plane, 'agent-node-b')
    await plane.restartApiServer(async () => {
      t.equal(await upgradeStatus(base, fresh), 503, 'a token that cannot be reviewed is refused with 503')
      await new Promise(resolve => setTimeout(resolve, REVIEW_PERIOD_MS * 2))
      t.notOk(closed, 'an open connection is not closed because the API cannot be asked')
    })
    t.equal(await upgradeStatus(base, fresh), 101, 'accepted once the API server is back')
  })
})
