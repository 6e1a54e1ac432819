// The gates API over a real socket: verdicts in 200 bodies, the 200/412 status form (GET and a
// bounded, ignored POST), 404 for unknown gates, history, metrics, and every answer checked
// against the schema the served OpenAPI document gives for it.

import t from 'tap'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Ajv } from 'ajv'
import { Validator } from '@seriousme/openapi-schema-validator'
import { bucketIndex, type Cell } from '@pingfleet/protocol'
import { aggregator, hello, RawAgent, report } from '../helpers.ts'

const dir = mkdtempSync(join(tmpdir(), 'pingfleet-gate-routes-'))
const gatesFile = join(dir, 'gates.yaml')
writeFileSync(gatesFile, `
gates:
  - name: aws-to-cilium
    description: pod traffic from aws nodes into cilium nodes
    window: 1m
    minSamples: 5
    maxStaleness: 1m
    rules:
      - { probe: pod, src: aws, dst: cilium, maxErrorRatio: 0.1, maxP99: 1s }
  - name: services
    services: [{ service: kube-dns, minBackendRatio: 1 }]
`)

/** The parts of gate answers the assertions below read. */
interface Answer {
  verdict?: string
  /** Error answers. */
  message?: string
  gates?: unknown[]
  checks: Array<{ id: string }>
  transitions: Array<{ from: string | null, verdict: string, result: { verdict: string } }>
}

interface Doc { paths: Record<string, Record<string, { responses: Record<string, { content?: Record<string, { schema: object }> }> }>> }

const ajv = new Ajv({ strict: false, formats: { 'date-time': /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/ } })

function cells (count: number, failed: number): Cell[] {
  return [{
    probe: 'pod', target: 'n3', count, latency: count > failed ? [bucketIndex(0.002), count - failed] : [],
    ...(failed > 0 ? { errors: [{ reason: 'ECONNREFUSED' as const, raw: 'ECONNREFUSED', count: failed }] } : {})
  }]
}

t.test('the gates API', async t => {
  const agg = await aggregator({ PINGFLEET_GATES_FILE: gatesFile })
  t.teardown(() => agg.close())
  const base = agg.address()
  const doc = await (await fetch(`${base}/api/v1/openapi.json`)).json() as Doc

  /** Fetches over the socket and checks the body against the OpenAPI response schema of that route. */
  async function call (method: string, path: string, route: string, init: RequestInit = {}): Promise<{ status: number, body: Answer }> {
    const response = await fetch(base + path, { method, ...init })
    const body = await response.json() as Answer
    const schema = doc.paths[route]?.[method.toLowerCase()]?.responses[String(response.status)]?.content?.['application/json']?.schema
    t.ok(schema, `${method} ${route} documents a ${response.status} answer`)
    if (schema !== undefined) t.ok(ajv.validate(schema, body), `${method} ${path} ${response.status} matches its schema`, { errors: ajv.errors })
    return { status: response.status, body }
  }

  await t.test('the OpenAPI document is valid and lists the gate routes', async t => {
    const result = await new Validator().validate(doc as never)
    t.ok(result.valid, 'valid OpenAPI', { errors: result.errors })
    for (const p of ['/api/v1/gates', '/api/v1/gates/{name}', '/api/v1/gates/{name}/status', '/api/v1/gates/{name}/history', '/api/v1/gates/adhoc', '/api/v1/gates/adhoc/status']) {
      t.ok(doc.paths[p], `documents ${p}`)
    }
    t.ok(doc.paths['/api/v1/gates/{name}/status']!.post, 'status accepts POST')
  })

  await t.test('without data: 200 with insufficient_data, and the status form says 412', async t => {
    const list = await call('GET', '/api/v1/gates', '/api/v1/gates')
    t.match(list.body.gates, [{ name: 'aws-to-cilium', definition: { window: '1m', minSamples: 5 } }, { name: 'services' }])
    const gate = await call('GET', '/api/v1/gates/aws-to-cilium', '/api/v1/gates/{name}')
    t.equal(gate.status, 200)
    t.match(gate.body, { name: 'aws-to-cilium', verdict: 'insufficient_data', window: '1m', maxStaleness: '1m' })
    const status = await call('GET', '/api/v1/gates/aws-to-cilium/status', '/api/v1/gates/{name}/status')
    t.equal(status.status, 412)
    t.equal(status.body.verdict, 'insufficient_data')
    const services = await call('GET', '/api/v1/gates/services/status', '/api/v1/gates/{name}/status')
    t.match(services, { status: 412, body: { verdict: 'insufficient_data', checks: [{ id: 'service kube-dns', criterion: 'minServiceBackendRatio', observed: null }] } })
  })

  await t.test('an unknown gate is 404 with a code; a malformed name is 400', async t => {
    t.match(await call('GET', '/api/v1/gates/nope', '/api/v1/gates/{name}'), { status: 404, body: { code: 'PINGFLEET_ERR_NOT_FOUND' } })
    t.match(await call('GET', '/api/v1/gates/nope/status', '/api/v1/gates/{name}/status'), { status: 404, body: { code: 'PINGFLEET_ERR_NOT_FOUND' } })
    t.match(await call('GET', '/api/v1/gates/nope/history', '/api/v1/gates/{name}/history'), { status: 404, body: { code: 'PINGFLEET_ERR_NOT_FOUND' } })
    t.match(await call('GET', '/api/v1/gates/No_Such', '/api/v1/gates/{name}'), { status: 400, body: { code: 'PINGFLEET_ERR_BAD_QUERY' } })
  })

  const aws = new RawAgent(base)
  const cilium = new RawAgent(base)
  t.teardown(() => { aws.socket.close(); cilium.socket.close() })
  await Promise.all([aws.opened(), cilium.opened()])
  aws.send(hello('n1', { cniplugin: 'aws' }))
  cilium.send(hello('n3', { cniplugin: 'cilium' }))
  await Promise.all([aws.waitFor(m => m.type === 'peers'), cilium.waitFor(m => m.type === 'peers')])
  // Node gates read a node from the first store slot (1 s here) that starts after its agent's hello.
  await new Promise(resolve => setTimeout(resolve, 1010 - Date.now() % 1000))
  let seq = 0
  const send = async (count: number, failed: number): Promise<void> => {
    // Every agent reports each interval, with or without results; the cilium agent has none here.
    aws.send(report(++seq, Date.now(), cells(count, failed)))
    cilium.send(report(seq, Date.now(), []))
    await Promise.all([aws.waitFor(m => m.type === 'ack' && m.seq === seq), cilium.waitFor(m => m.type === 'ack' && m.seq === seq)])
  }

  await t.test('healthy traffic passes: 200 on both forms, and a POSTed webhook body is ignored', async t => {
    await send(20, 0)
    const gate = await call('GET', '/api/v1/gates/aws-to-cilium', '/api/v1/gates/{name}')
    // minSamples, maxErrorRatio, maxP99, probedMembers (n3 is probed by aws) and staleness aws.
    t.match(gate.body, { verdict: 'pass', summary: { pass: 5, fail: 0, insufficient_data: 0 }, skipped: [] })
    t.match(gate.body.checks.find((c: { id: string }) => c.id === 'pod aws->cilium probedMembers'), { verdict: 'pass', observed: 1 })
    t.match(gate.body.checks.find((c: { id: string }) => c.id === 'pod aws->cilium maxErrorRatio'), { observed: 0, threshold: 0.1, samples: 20, window: '1m' })
    const posted = await call('POST', '/api/v1/gates/aws-to-cilium/status', '/api/v1/gates/{name}/status', {
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'podinfo', namespace: 'test', phase: 'Progressing', metadata: {} })
    })
    t.equal(posted.status, 200)
    const empty = await call('POST', '/api/v1/gates/aws-to-cilium/status', '/api/v1/gates/{name}/status')
    t.equal(empty.status, 200, 'an empty POST is fine too')
  })

  await t.test('a webhook body over the limit is refused with 413, not a 5xx', async t => {
    const big = await call('POST', '/api/v1/gates/aws-to-cilium/status', '/api/v1/gates/{name}/status', {
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ pad: 'x'.repeat(100_000) })
    })
    t.match(big, { status: 413, body: { code: 'PINGFLEET_ERR_BODY_TOO_LARGE' } })
  })

  await t.test('errors above the maximum fail the gate: 200 with fail, status 412', async t => {
    await send(20, 20)
    const gate = await call('GET', '/api/v1/gates/aws-to-cilium', '/api/v1/gates/{name}')
    t.equal(gate.body.verdict, 'fail')
    t.match(gate.body.checks.find((c: { id: string }) => c.id === 'pod aws->cilium maxErrorRatio'), { verdict: 'fail', observed: 0.5, samples: 40 })
    const status = await call('POST', '/api/v1/gates/aws-to-cilium/status', '/api/v1/gates/{name}/status', { body: 'ignored text', headers: { 'content-type': 'text/plain' } })
    t.equal(status.status, 412)
  })

  await t.test('history holds each transition with its evidence', async t => {
    const history = await call('GET', '/api/v1/gates/aws-to-cilium/history', '/api/v1/gates/{name}/history')
    t.same(history.body.transitions.map((x: { from: string | null, verdict: string }) => [x.from, x.verdict]), [
      [null, 'insufficient_data'], ['insufficient_data', 'pass'], ['pass', 'fail']
    ])
    t.equal(history.body.transitions[2]?.result.verdict, 'fail')
  })

  await t.test('metrics: pass gauge, one-hot verdict, check values and thresholds', async t => {
    const text = await (await fetch(`${base}/metrics`)).text()
    t.match(text, /pingfleet_gate_pass\{gate="aws-to-cilium"\} 0/)
    t.match(text, /pingfleet_gate_verdict\{gate="aws-to-cilium",verdict="fail"\} 1/)
    t.match(text, /pingfleet_gate_verdict\{gate="aws-to-cilium",verdict="pass"\} 0/)
    t.match(text, /pingfleet_gate_verdict\{gate="services",verdict="insufficient_data"\} 1/)
    t.match(text, /pingfleet_gate_check_value\{gate="aws-to-cilium",check="pod aws->cilium maxErrorRatio"\} 0\.5/)
    t.match(text, /pingfleet_gate_check_threshold\{gate="aws-to-cilium",check="pod aws->cilium maxErrorRatio"\} 0\.1/)
    t.notMatch(text, /gate="adhoc"/, 'ad-hoc gates are not exported')
  })

  await t.test('ad-hoc gates from query parameters', async t => {
    const q = 'probe=pod&src=aws&dst=cilium&window=1m&minSamples=5'
    const fail = await call('GET', `/api/v1/gates/adhoc?${q}&maxErrorRatio=0.01`, '/api/v1/gates/adhoc')
    t.match(fail, { status: 200, body: { name: 'adhoc', verdict: 'fail' } })
    const pass = await call('GET', `/api/v1/gates/adhoc/status?${q}&maxErrorRatio=0.6&maxP99=1s&minCoverage=1`, '/api/v1/gates/adhoc/status')
    t.match(pass, { status: 200, body: { verdict: 'pass' } })
    t.ok(pass.body.checks.some((c: { id: string }) => c.id === 'coverage cilium'), 'minCoverage covers both named groups')
    const posted = await call('POST', `/api/v1/gates/adhoc/status?${q}&maxErrorRatio=0.01`, '/api/v1/gates/adhoc/status', { headers: { 'content-type': 'application/json' }, body: '{}' })
    t.equal(posted.status, 412)
    const tooFew = await call('GET', '/api/v1/gates/adhoc?probe=pod&src=aws&dst=cilium&window=1m&minSamples=1000&maxErrorRatio=0.5', '/api/v1/gates/adhoc')
    t.equal(tooFew.body.verdict, 'insufficient_data')
    for (const bad of ['probe=pod&src=aws', 'probe=icmp&src=a&dst=b', 'probe=pod&src=a&dst=b&window=1h', 'probe=pod&src=a&dst=b&maxErrorRatio=2',
      'probe=pod&src=a&dst=b&maxErrorRatioByReason=NOPE:0.1', 'probe=pod&src=a&dst=b&bogus=1']) {
      t.match(await call('GET', `/api/v1/gates/adhoc?${bad}`, '/api/v1/gates/adhoc'), { status: 400, body: { code: 'PINGFLEET_ERR_BAD_QUERY' } }, bad)
    }
  })

  await t.test('an ad-hoc rule with no bound is refused: it would pass whatever its probes found', async t => {
    const cases: Array<[string, RegExp]> = [
      ['probe=pod&src=aws&dst=cilium', /^gate "adhoc" rule pod aws->cilium: expected a rule with at least one bound \(maxErrorRatio, maxP50, maxP99 or maxErrorRatioByReason\)/],
      ['probe=pod&src=aws&dst=cilium&minSamples=100', /^gate "adhoc" rule pod aws->cilium: expected a rule with at least one bound/],
      ['probe=pod&nodes=n3&minPeers=2', /^gate "adhoc" node rule pod: expected a node rule with at least one bound \(maxNodeErrorRatio, maxNodeP99 or maxNodeExcessErrorRatio\)/],
      ['probe=pod&src=aws&dst=cilium&maxErrorRatio=0.5&nodes=n3', /^gate "adhoc" node rule pod: expected a node rule with at least one bound/]
    ]
    for (const [query, message] of cases) {
      t.match(await call('GET', `/api/v1/gates/adhoc?${query}`, '/api/v1/gates/adhoc'), { status: 400, body: { code: 'PINGFLEET_ERR_BAD_QUERY', message } }, query)
      t.match(await call('GET', `/api/v1/gates/adhoc/status?${query}`, '/api/v1/gates/adhoc/status'), { status: 400, body: { code: 'PINGFLEET_ERR_BAD_QUERY', message } }, `${query} (status)`)
    }
    const coverage = await call('GET', '/api/v1/gates/adhoc?probe=pod&src=aws&dst=cilium&minCoverage=1', '/api/v1/gates/adhoc')
    t.same(coverage.body.checks.map((c: { id: string }) => c.id).filter((id: string) => !id.startsWith('staleness')), ['coverage aws', 'coverage cilium'], 'minCoverage alone judges the groups\' coverage, and no unbounded pair')
  })

  await t.test('a bad parameter is one line naming it, its value, the gate and what was expected (no JSON-schema text)', async t => {
    const cases: Array<[string, string, string]> = [
      ['/api/v1/gates/adhoc?probe=pod&src=a&dst=b&maxErrorRatio=2', '/api/v1/gates/adhoc', 'maxErrorRatio=2 (gate "adhoc"): expected a ratio from 0 to 1'],
      ['/api/v1/gates/adhoc?probe=pod&src=a&dst=b&maxErrorRatio=lots', '/api/v1/gates/adhoc', 'maxErrorRatio="lots" (gate "adhoc"): expected a number'],
      ['/api/v1/gates/adhoc?probe=icmp&src=a&dst=b&maxErrorRatio=0.1', '/api/v1/gates/adhoc', 'probe="icmp" (gate "adhoc"): expected one of "pod", "mtu", "service", "dns-lookup", "dns-wire", "http", "tcp", "udp"'],
      ['/api/v1/gates/adhoc?src=a&dst=b&maxErrorRatio=0.1', '/api/v1/gates/adhoc', 'probe is missing (gate "adhoc"): expected one of "pod", "mtu", "service", "dns-lookup", "dns-wire", "http", "tcp", "udp"'],
      ['/api/v1/gates/adhoc?probe=pod&src=a&dst=b&maxErrorRatio=0.1&window=5%20minutes', '/api/v1/gates/adhoc', 'window="5 minutes" (gate "adhoc"): expected a duration such as 500ms, 30s, 5m or 1h'],
      ['/api/v1/gates/adhoc?probe=pod&src=a&dst=b&maxErrorRatio=0.1&window=1h', '/api/v1/gates/adhoc', 'window="1h" (gate "adhoc"): expected a window of at most 15m (PINGFLEET_MAX_WINDOW)'],
      ['/api/v1/gates/adhoc?probe=pod&src=a&dst=b&maxErrorRatio=0.1&minSamples=0', '/api/v1/gates/adhoc', 'minSamples=0 (gate "adhoc"): expected an integer >= 1'],
      ['/api/v1/gates/adhoc?probe=pod&src=&dst=b&maxErrorRatio=0.1', '/api/v1/gates/adhoc', 'src="" (gate "adhoc"): expected a non-empty string'],
      ['/api/v1/gates/adhoc?probe=pod&nodes=N_3&maxNodeErrorRatio=0.1', '/api/v1/gates/adhoc', 'nodes="N_3" (gate "adhoc"): expected node names (lower-case DNS subdomains), comma separated'],
      ['/api/v1/gates/adhoc/status?probe=pod&src=a&dst=b&maxErrorRatioByReason=NOPE', '/api/v1/gates/adhoc/status', 'maxErrorRatioByReason="NOPE" (gate "adhoc"): expected REASON:ratio pairs, comma separated, such as ENOTFOUND:0.001,EAI_AGAIN:0.01'],
      ['/api/v1/gates/adhoc/status?probe=dns-lookup&src=a&dst=b&maxErrorRatioByReason=NOPE:0.1', '/api/v1/gates/adhoc/status', 'maxErrorRatioByReason="NOPE:0.1" (gate "adhoc"): expected a reason code from docs/reasons.md'],
      ['/api/v1/gates/adhoc?probe=pod&nodes=n3&maxNodeP99=soon', '/api/v1/gates/adhoc', 'maxNodeP99="soon" (gate "adhoc"): expected a duration such as 500ms, 30s, 5m or 1h'],
      ['/api/v1/gates/Cilium', '/api/v1/gates/{name}', 'name="Cilium" (the gate name): expected a lower-case DNS label such as cilium-batch-1'],
      ['/api/v1/gates/aws-to-cilium?nodes=N_1', '/api/v1/gates/{name}', 'nodes="N_1" (gate "aws-to-cilium"): expected node names (lower-case DNS subdomains), comma separated']
    ]
    for (const [url, route, message] of cases) {
      const answer = await call('GET', url, route)
      t.match(answer, { status: 400, body: { code: 'PINGFLEET_ERR_BAD_QUERY' } }, url)
      t.ok(String(answer.body.message).startsWith(message), `${url}: ${String(answer.body.message)}`)
      t.notMatch(answer.body.message ?? '', /\bmust\b|querystring\/|params\//, `${url}: no JSON-schema wording`)
    }
  })

  await t.test('view=foo names the views there are', async t => {
    for (const [url, route] of [['/api/v1/gates/aws-to-cilium/status?view=foo', '/api/v1/gates/{name}/status'], ['/api/v1/gates/adhoc/status?probe=pod&src=a&dst=b&maxErrorRatio=0.1&view=foo', '/api/v1/gates/adhoc/status']] as const) {
      t.match(await call('GET', url, route), { status: 400, body: { code: 'PINGFLEET_ERR_BAD_QUERY', message: /^view="foo" \(gate "(aws-to-cilium|adhoc)"\): expected one of "full", "brief"$/ } }, url)
    }
  })

  await t.test('node-scoped ad-hoc gates judge each selected node and name it', async t => {
    // n3 (cilium) has 40 inbound probes from n1 in the window, 20 of them failed; it probes nobody.
    const q = 'probe=pod&window=1m&minSamples=5'
    const failing = await call('GET', `/api/v1/gates/adhoc?${q}&nodes=n3&maxNodeErrorRatio=0.01`, '/api/v1/gates/adhoc')
    t.match(failing, { status: 200, body: { verdict: 'fail', nodes: ['n3'] } })
    const inbound = (failing.body.checks as Array<Record<string, unknown>>).find(c => c.id === 'pod nodes<-* maxNodeErrorRatio')
    t.match(inbound, { verdict: 'fail', direction: 'inbound', peers: '*', threshold: 0.01, worst: [{ node: 'n3', verdict: 'fail', observed: 0.5, samples: 40, peers: 1 }] })
    t.match(inbound?.detail, /n3 0\.5 \(20 of 40 failed: ECONNREFUSED 20; 1 peer\)/)
    t.match((failing.body.checks as Array<Record<string, unknown>>).find(c => c.id === 'pod nodes->* minSamples'), { verdict: 'insufficient_data', worst: [{ node: 'n3', samples: 0 }] })
    const bySelector = await call('GET', `/api/v1/gates/adhoc?${q}&nodeSelector=${encodeURIComponent('cniplugin in (cilium)')}&maxNodeErrorRatio=0.5`, '/api/v1/gates/adhoc')
    t.match(bySelector.body, { verdict: 'insufficient_data', nodes: ['n3'] }, 'inbound passes, outbound has no samples')
    const nothing = await call('GET', `/api/v1/gates/adhoc/status?${q}&nodeSelector=cniplugin%3Dnope&maxNodeErrorRatio=0.5`, '/api/v1/gates/adhoc/status')
    t.match(nothing, { status: 412, body: { verdict: 'insufficient_data', nodes: [], checks: [{ id: 'scope nodes', verdict: 'insufficient_data', observed: 0 }] } }, 'a selector matching nothing is never a pass')
    const both = await call('GET', `/api/v1/gates/adhoc?${q}&src=aws&dst=cilium&maxErrorRatio=0.5&nodes=n1&maxNodeErrorRatio=0.5`, '/api/v1/gates/adhoc')
    t.ok(both.body.checks.some((c: { id: string }) => c.id === 'pod aws->cilium maxErrorRatio') && both.body.checks.some((c: { id: string }) => c.id === 'pod nodes->* maxNodeErrorRatio'), 'a pair and a node rule together')
    const bad: Array<[string, RegExp]> = [
      ['probe=pod&nodeSelector=a%20in%20b&maxNodeErrorRatio=0.1', /nodeSelector="a in b" \(gate "adhoc"\): expected a Kubernetes label selector such as migration-batch=7 \("a in b" is not a Kubernetes label selector: at character 6, found "b", expected "\(" after in\)/],
      ['probe=pod&maxNodeErrorRatio=0.1', /expected src and dst \(a group pair\), or nodes or nodeSelector/],
      ['probe=pod&src=aws&dst=cilium&maxNodeErrorRatio=0.1', /maxNodeErrorRatio: judges each selected node; give nodes or nodeSelector/],
      ['probe=pod&nodes=n3&maxErrorRatio=0.1', /maxErrorRatio: judges a group pair; give src and dst, or use maxNodeErrorRatio/],
      ['probe=pod&nodes=n3&src=aws&maxNodeErrorRatio=0.1', /dst: expected both src and dst/],
      ['probe=pod&nodes=N_3', /nodes/],
      ['probe=pod&nodes=n3&minPeers=0&maxNodeErrorRatio=0.1', /minPeers/],
      ['probe=dns-lookup&nodes=n3&minPeers=2&maxNodeErrorRatio=0.1', /no minPeers for probe dns-lookup/],
      ['probe=pod&nodes=n3&maxNodeP99=soon', /maxNodeP99/]
    ]
    for (const [query, message] of bad) {
      t.match(await call('GET', `/api/v1/gates/adhoc?${query}`, '/api/v1/gates/adhoc'), { status: 400, body: { code: 'PINGFLEET_ERR_BAD_QUERY', message } }, query)
    }
  })

  await t.test('a named gate asked with nodes= or nodeSelector= judges those nodes, without touching its history', async t => {
    const before = (await call('GET', '/api/v1/gates/aws-to-cilium/history', '/api/v1/gates/{name}/history')).body.transitions.length
    const scoped = await call('GET', '/api/v1/gates/aws-to-cilium?nodeSelector=cniplugin%3Daws', '/api/v1/gates/{name}')
    t.match(scoped.body, { name: 'aws-to-cilium', nodes: ['n1'] })
    t.ok(scoped.body.checks.some((c: { id: string }) => c.id === 'coverage nodes'), 'the scope adds node coverage')
    const status = await call('GET', '/api/v1/gates/aws-to-cilium/status?nodes=nowhere', '/api/v1/gates/{name}/status')
    t.match(status, { status: 412, body: { nodes: ['nowhere'], checks: [{ id: 'pod aws->cilium minSamples' }] } })
    t.match(status.body.checks.find((c: { id: string }) => c.id === 'coverage nodes'), { verdict: 'insufficient_data', worst: [{ node: 'nowhere', detail: 'no agent has connected from it' }] })
    t.equal((await call('GET', '/api/v1/gates/aws-to-cilium/history', '/api/v1/gates/{name}/history')).body.transitions.length, before)
    t.match(await call('GET', '/api/v1/gates/aws-to-cilium?nodeSelector=%3D%3D', '/api/v1/gates/{name}'), { status: 400, body: { code: 'PINGFLEET_ERR_BAD_QUERY', message: /nodeSelector/ } })
    t.match(await call('GET', '/api/v1/gates/aws-to-cilium/status?selector=x', '/api/v1/gates/{name}/status'), { status: 400, body: { code: 'PINGFLEET_ERR_BAD_QUERY', message: /unknown query parameter "selector"; expected nodes, nodeSelector/ } })
  })
})

t.test('named gates are evaluated every interval, so history records transitions nobody asked for', async t => {
  const file = join(dir, 'periodic.yaml')
  writeFileSync(file, 'gates: [{ name: aws-up, maxStaleness: 1m, coverage: [{ group: aws, minRatio: 1 }] }]\n')
  const agg = await aggregator({ PINGFLEET_GATES_FILE: file, PINGFLEET_INTERVAL: '100ms' })
  t.teardown(() => agg.close())
  const history = async (): Promise<Answer['transitions']> =>
    ((await (await fetch(`${agg.address()}/api/v1/gates/aws-up/history`)).json()) as Answer).transitions
  t.same((await history()).map(x => [x.from, x.verdict]), [[null, 'insufficient_data']], 'evaluated at start')
  const agent = new RawAgent(agg.address())
  t.teardown(() => agent.socket.close())
  await agent.opened()
  agent.send(hello('n1', { cniplugin: 'aws' }))
  await agent.waitFor(m => m.type === 'welcome')
  agent.send(report(1, Date.now(), []))
  await agent.waitFor(m => m.type === 'ack' && m.seq === 1)
  // Only the history is read here, and reading it evaluates nothing.
  for (let i = 0; i < 100 && (await history()).length < 2; i++) await new Promise(resolve => setTimeout(resolve, 50))
  t.same((await history()).map(x => [x.from, x.verdict]), [[null, 'insufficient_data'], ['insufficient_data', 'pass']])
})
