// serviceAccount auth through the websocket: TokenReview before the upgrade (401/503 without
// upgrading), the reviewed node bound to the hello (close 4003), and the short cache.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { request } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pino from 'pino'
import t, { type Test } from 'tap'
import { startAggregator } from '../../src/app.ts'
import { loadConfig } from '../../src/config.ts'
import { hello, RawAgent } from '../helpers.ts'
import { AGENT_SA, API_TOKEN, FakeKube, NAMESPACE, node, pod, until } from '../kube-fake.ts'

async function setup (t: Test, env: Record<string, string> = {}) {
  const fake = new FakeKube()
  const url = await fake.listen()
  const dir = mkdtempSync(join(tmpdir(), 'pingfleet-review-'))
  writeFileSync(join(dir, 'token'), API_TOKEN)
  fake.put('Node', node('a', { cniplugin: 'aws' }))
  fake.put('Node', node('b', { cniplugin: 'aws' }))
  fake.put('Pod', pod('agent-a', 'a'))
  fake.put('Pod', pod('agent-b', 'b'))
  const config = loadConfig({
    PINGFLEET_LISTEN: '127.0.0.1:0',
    PINGFLEET_AUTH_MODE: 'serviceAccount',
    PINGFLEET_AGENT_SERVICE_ACCOUNT: AGENT_SA,
    PINGFLEET_KUBE_API_URL: url,
    PINGFLEET_KUBE_TOKEN_FILE: join(dir, 'token'),
    PINGFLEET_NAMESPACE: NAMESPACE,
    ...env
  })
  const agg = await startAggregator(config, pino({ level: 'silent' }))
  const base = agg.address()
  const sockets: RawAgent[] = []
  t.teardown(async () => {
    for (const s of sockets) s.socket.terminate()
    await agg.close()
    await fake.close()
    rmSync(dir, { recursive: true, force: true })
  })
  const reviews = () => fake.requests.filter(r => r.startsWith('POST /apis/authentication.k8s.io/v1/tokenreviews')).length
  const agent = (token: string): RawAgent => {
    const a = new RawAgent(base, token)
    sockets.push(a)
    return a
  }
  return { fake, base, reviews, agent, upgrade: (token: string) => upgrade(base, token) }
}

/** Attempts an upgrade by hand, to see the status and body of a refusal. */
function upgrade (base: string, token: string): Promise<{ status: number, body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(`${base}/api/v1/stream`, {
      headers: { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==', authorization: `Bearer ${token}` }
    })
    req.on('response', res => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', chunk => { body += chunk })
      res.on('end', () => resolve({ status: res.statusCode!, body }))
    })
    req.on('upgrade', res => {
      res.socket.destroy()
      resolve({ status: 101, body: '' })
    })
    req.on('error', reject)
    req.end()
  })
}

t.test('an agent with a valid token for its node is let in; the review is cached', async t => {
  const s = await setup(t)
  s.fake.tokens.set('token-a', { authenticated: true, node: 'a', pod: 'agent-a' })
  const a = s.agent('token-a')
  await a.opened()
  a.send(hello('a'))
  await a.waitFor(m => m.type === 'welcome')
  t.equal(s.reviews(), 1)
  a.socket.close()
  await a.closed

  const again = s.agent('token-a')
  await again.opened()
  again.send(hello('a'))
  await again.waitFor(m => m.type === 'welcome')
  t.equal(s.reviews(), 1, 'the second connection is served from the cache')
  const body = s.fake.requests.join('\n')
  t.notOk(body.includes('token-a'), 'the token travels in the body only')
})

t.test('refusals before the upgrade', async t => {
  const s = await setup(t)
  s.fake.tokens.set('expired', { authenticated: false, error: '[invalid bearer token, service account token has expired]' })
  s.fake.tokens.set('other-sa', { authenticated: true, username: 'system:serviceaccount:default:default', node: 'a' })
  s.fake.tokens.set('api-audience', { authenticated: true, node: 'a', audiences: ['https://kubernetes.default.svc.cluster.local'] })

  const denied = await s.upgrade('expired')
  t.equal(denied.status, 401)
  t.match(JSON.parse(denied.body), { code: 'PINGFLEET_ERR_UNAUTHORIZED', message: /token not authenticated: .*expired/ })

  const wrongAccount = await s.upgrade('other-sa')
  t.equal(wrongAccount.status, 401)
  t.match(JSON.parse(wrongAccount.body).message, /system:serviceaccount:default:default is not the agents' service account/)

  const wrongAudience = await s.upgrade('api-audience')
  t.equal(wrongAudience.status, 401)
  t.match(JSON.parse(wrongAudience.body).message, /not for audience pingfleet/)

  t.equal((await s.upgrade('')).status, 401, 'no token at all')
  const reviews = s.reviews()
  t.equal((await s.upgrade('expired')).status, 401)
  t.equal(s.reviews(), reviews, 'a denial is cached too, briefly')

  const metrics = await (await fetch(`${s.base}/metrics`)).text()
  t.match(metrics, /pingfleet_ingest_rejected_total\{code="unauthorized"\} 5/)
})

t.test('an unreachable API refuses with 503, and nothing is cached', async t => {
  const s = await setup(t)
  s.fake.tokens.set('token-a', { authenticated: true, node: 'a', pod: 'agent-a' })
  s.fake.down = true
  const refused = await s.upgrade('token-a')
  t.equal(refused.status, 503)
  t.equal(JSON.parse(refused.body).code, 'PINGFLEET_ERR_TOKEN_REVIEW_UNAVAILABLE')
  s.fake.down = false
  t.equal((await s.upgrade('token-a')).status, 101, 'let in once the API answers')
})

t.test('open connections are reviewed again: a token that stops passing closes its connection, an API outage does not', async t => {
  const s = await setup(t, { PINGFLEET_TOKEN_REVIEW_PERIOD: '1s' })
  s.fake.tokens.set('token-a', { authenticated: true, node: 'a', pod: 'agent-a' })
  s.fake.tokens.set('token-b', { authenticated: true, node: 'b', pod: 'agent-b' })
  const a = s.agent('token-a')
  const b = s.agent('token-b')
  await Promise.all([a.opened(), b.opened()])
  for (const [agent, name] of [[a, 'a'], [b, 'b']] as const) {
    agent.send(hello(name))
    await agent.waitFor(m => m.type === 'welcome')
  }
  const before = s.reviews()
  s.fake.down = true
  await until('two re-review rounds tried while the API is down', () => s.reviews() >= before + 4, 5000)
  t.equal(a.socket.readyState, a.socket.OPEN, 'an API that cannot be asked closes nothing')
  s.fake.down = false
  // The pod of token-a is deleted: the API server stops authenticating it.
  s.fake.tokens.set('token-a', { authenticated: false, error: 'pod "agent-a" not found' })
  const closed = await a.closed
  t.equal(closed.code, 1008)
  t.equal(closed.reason, 'token no longer valid')
  t.ok(s.reviews() > before, 'the open connection was reviewed afresh, not from the cache')
  t.equal(b.socket.readyState, b.socket.OPEN, 'a token that still passes keeps its connection')
  const metrics = await (await fetch(`${s.base}/metrics`)).text()
  t.match(metrics, /pingfleet_ingest_rejected_total\{code="token_revoked"\} 1/)
})

t.test('a hello for another node than the token\'s is closed with 4003', async t => {
  const s = await setup(t)
  s.fake.tokens.set('token-b', { authenticated: true, node: 'b', pod: 'agent-b' })
  const a = s.agent('token-b')
  await a.opened()
  a.send(hello('a'))
  const closed = await a.closed
  t.equal(closed.code, 4003)
  t.match(closed.reason, /^PINGFLEET_ERR_NODE_MISMATCH: token is for node b, hello says a/)
  t.notOk(a.received.some(m => m.type === 'welcome'))
  const agents = await (await fetch(`${s.base}/api/v1/agents`)).json() as { agents: Array<{ node: string, connected: boolean }> }
  t.notOk(agents.agents.some(x => x.connected), 'it never joined the roster')
})

t.test('without the node-name extra (Kubernetes < 1.30) the pod\'s node comes from discovery', async t => {
  const s = await setup(t)
  await until('pods listed', async () => ((await (await fetch(`${s.base}/api/v1/agents`)).json()) as { agents: unknown[] }).agents.length === 2)
  s.fake.tokens.set('pod-b', { authenticated: true, pod: 'agent-b' })
  s.fake.tokens.set('no-claims', { authenticated: true })
  const liar = s.agent('pod-b')
  await liar.opened()
  liar.send(hello('a'))
  t.equal((await liar.closed).code, 4003)

  const honest = s.agent('pod-b')
  await honest.opened()
  honest.send(hello('b'))
  await honest.waitFor(m => m.type === 'welcome')

  // A token that names neither (a legacy token for the right account) is let in unverified.
  const legacy = s.agent('no-claims')
  await legacy.opened()
  legacy.send(hello('a'))
  await legacy.waitFor(m => m.type === 'welcome')
})

t.test('auth mode and Kubernetes access from the environment', async t => {
  const inCluster = { KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443', PINGFLEET_NAMESPACE: 'pf', PINGFLEET_KUBE_CA_FILE: '' }
  const sa = { PINGFLEET_AGENT_SERVICE_ACCOUNT: AGENT_SA }
  const c = loadConfig({ ...inCluster, ...sa })
  t.equal(c.authMode, 'serviceAccount', 'in a cluster without a token')
  t.equal(c.discovery, true)
  t.equal(c.kube.url, 'https://10.96.0.1:443')
  t.equal(c.namespace, 'pf')
  t.equal(loadConfig({ ...inCluster, PINGFLEET_TOKEN: 'static-token-1' }).authMode, 'static', 'a token means static')
  t.equal(loadConfig({ KUBERNETES_SERVICE_HOST: 'fd00::1', KUBERNETES_SERVICE_PORT: '6443', PINGFLEET_KUBE_CA_FILE: '', ...sa }).kube.url, 'https://[fd00::1]:6443')
  t.throws(() => loadConfig({ ...inCluster, ...sa, PINGFLEET_KUBE_CA_FILE: '/nonexistent/ca.crt' }),
    { message: 'PINGFLEET_KUBE_CA_FILE="/nonexistent/ca.crt" is invalid: expected a readable PEM file with the API server\'s CA (empty: Node\'s own roots)' })
  const outside = loadConfig({ PINGFLEET_TOKEN: 'static-token-1' })
  t.equal(outside.authMode, 'static')
  t.equal(outside.discovery, false, 'no API, no discovery')
  t.equal(loadConfig({ ...inCluster, PINGFLEET_TOKEN: 'static-token-1', PINGFLEET_DISCOVERY: 'off' }).discovery, false)

  t.throws(() => loadConfig({}), { code: 'PINGFLEET_ERR_CONFIG', message: /^PINGFLEET_TOKEN="" is invalid: expected a token of at least 8 characters/ })
  t.throws(() => loadConfig({ ...inCluster }), { message: /^PINGFLEET_AGENT_SERVICE_ACCOUNT="" is invalid: expected system:serviceaccount:<namespace>:<name>/ })
  t.throws(() => loadConfig({ ...inCluster, ...sa, PINGFLEET_AUTH_MODE: 'serviceAccount', PINGFLEET_TOKEN: 'static-token-1' }),
    { message: /^PINGFLEET_TOKEN=<redacted> is invalid: expected no PINGFLEET_TOKEN with PINGFLEET_AUTH_MODE=serviceAccount/ })
  t.throws(() => loadConfig({ ...sa, PINGFLEET_AUTH_MODE: 'serviceAccount' }), { message: /^PINGFLEET_KUBE_API_URL="" is invalid: expected a Kubernetes API URL for TokenReview/ })
  t.throws(() => loadConfig({ PINGFLEET_TOKEN: 'static-token-1', PINGFLEET_DISCOVERY: 'kubernetes' }), { message: /^PINGFLEET_KUBE_API_URL="" is invalid/ })
  t.throws(() => loadConfig({ PINGFLEET_TOKEN: 'short' }), { message: 'PINGFLEET_TOKEN=<redacted> is invalid: expected a token of at least 8 characters' })
  t.throws(() => loadConfig({ PINGFLEET_TOKEN: 'static-token-1', PINGFLEET_AUTH_MODE: 'oidc' }), { message: /^PINGFLEET_AUTH_MODE="oidc" is invalid: expected static or serviceAccount/ })
})
