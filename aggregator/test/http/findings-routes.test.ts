// GET /api/v1/findings and /api/v1/incidents over a real socket, against an aggregator whose
// evaluation is synthetic: answers match the OpenAPI document's schemas, filters work, bad and
// unknown parameters are 400, a failing evaluation is logged with its code and changes nothing.

import t from 'tap'
import { Ajv } from 'ajv'
import { Validator } from '@seriousme/openapi-schema-validator'
import { FINDING_KIND_NAMES } from '../../src/findings/finding.ts'
import type { Incident } from '../../src/findings/incidents.ts'
import type { TrackedFinding } from '../../src/findings/tracker.ts'
import { captureLog, hello, RawAgent } from '../helpers.ts'
import { syntheticFleet } from '../findings/fixture.ts'
import { boundaryDetection, nodeDetection, resolverDetection } from '../findings/detections.ts'

/** What the assertions read of the answers (and of error bodies: code, message). */
interface Body { code: string, message: string, active: number, complete: boolean, findings: TrackedFinding[], incidents: Incident[] }
interface Doc { paths: Record<string, Record<string, { responses: Record<string, { content?: Record<string, { schema: object }> }> }>> }
const ajv = new Ajv({ strict: false, formats: { 'date-time': /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/ } })

t.test('findings and incidents', async t => {
  const { log, lines } = captureLog('info')
  const fleet = await syntheticFleet(log)
  t.teardown(() => fleet.agg.close())
  const doc = await (await fetch(`${fleet.url}/api/v1/openapi.json`)).json() as Doc

  async function get (path: string): Promise<{ status: number, body: Body }> {
    const response = await fetch(fleet.url + path)
    const body = await response.json() as Body
    const route = path.split('?')[0]!
    const schema = doc.paths[route]?.get?.responses[String(response.status)]?.content?.['application/json']?.schema
    t.ok(schema !== undefined, `the OpenAPI document has a ${response.status} schema for GET ${route}`)
    if (schema !== undefined) t.ok(ajv.validate(schema, body), `${path} matches its schema: ${ajv.errorsText()}`)
    return { status: response.status, body }
  }

  await t.test('the OpenAPI document is valid and lists both routes', async t => {
    const result = await new Validator().validate(doc as never)
    t.ok(result.valid, JSON.stringify(result.errors))
    t.ok(doc.paths['/api/v1/findings']?.get)
    t.ok(doc.paths['/api/v1/incidents']?.get)
  })

  await t.test('the evaluation is given the fleet, the window and the group label', async t => {
    const agent = new RawAgent(fleet.url)
    t.teardown(() => agent.socket.close())
    await agent.opened()
    agent.send(hello('n1', { cniplugin: 'aws' }))
    await agent.waitFor(m => m.type === 'peers')
    await fleet.evaluations(1)
    const ctx = fleet.contexts.at(-1)!
    t.equal(ctx.windowMs, 2000)
    t.equal(ctx.groupLabel, 'cniplugin')
    t.match(ctx.nodes, [{ name: 'n1', group: 'aws', connected: true }])
  })

  await t.test('active findings, worst first, with filters', async t => {
    fleet.detect([resolverDetection('10.96.0.10', 0.7), nodeDetection('n1', 'aws', { score: 0.95 }), boundaryDetection('aws', 'cilium', 0.8)])
    await fleet.evaluations(2)
    const all = await get('/api/v1/findings')
    t.equal(all.status, 200)
    t.equal(all.body.active, 3)
    t.same(all.body.findings.map((f: { id: string }) => f.id), ['node-inbound:node/n1', 'group-boundary:groups/aws->cilium', 'dns-resolver:resolver/10.96.0.10'])
    t.match(all.body.findings[0], { state: 'active', summary: /^n1 \(aws\): inbound pod probes fail from 9 of 10 peers since \d\d:\d\d:\d\d \(CONNECT_TIMEOUT\)/, peak: { errorRatio: 0.9 } })
    t.same((await get('/api/v1/findings?kind=group-boundary')).body.findings.map((f: { id: string }) => f.id), ['group-boundary:groups/aws->cilium'])
    t.same((await get('/api/v1/findings?node=n1')).body.findings.map((f: { id: string }) => f.id), ['node-inbound:node/n1'])
    t.same((await get('/api/v1/findings?state=resolved')).body.findings, [])
    t.equal((await get('/api/v1/findings?state=active&kind=dns-resolver')).body.active, 1)
  })

  await t.test('/metrics: every kind counted, one series per active subject', async t => {
    const text = await (await fetch(`${fleet.url}/metrics`)).text()
    for (const kind of FINDING_KIND_NAMES) {
      const expected = ['node-inbound', 'group-boundary', 'dns-resolver'].includes(kind) ? 1 : 0
      t.match(text, new RegExp(`^pingfleet_findings_active\\{kind="${kind}"\\} ${expected}$`, 'm'), kind)
    }
    t.match(text, /^pingfleet_finding_active_score\{kind="node-inbound",subject="node\/n1"\} 0\.95$/m)
    t.match(text, /^pingfleet_findings_active_subjects_dropped 0$/m)
  })

  await t.test('bad and unknown parameters are 400 PINGFLEET_ERR_BAD_QUERY', async t => {
    for (const path of ['/api/v1/findings?kind=nope', '/api/v1/findings?state=gone', '/api/v1/findings?node=Not_A_Node', '/api/v1/findings?limit=3',
      '/api/v1/incidents?since=soon', '/api/v1/incidents?since=yesterday', '/api/v1/incidents?kind=mtu']) {
      const { status, body } = await get(path)
      t.equal(status, 400, path)
      t.equal(body.code, 'PINGFLEET_ERR_BAD_QUERY', path)
    }
    t.match((await get('/api/v1/incidents?since=soon')).body.message, /since="soon" is neither a time/)
  })

  await t.test('findings that resolve become incidents; open ones are listed with end null', async t => {
    const open = await get('/api/v1/incidents')
    t.equal(open.body.incidents.length, 3, 'three open incidents')
    t.ok(open.body.incidents.every((i: { end: string | null }) => i.end === null))
    t.equal(open.body.complete, true)
    fleet.detect([boundaryDetection('aws', 'cilium', 0.8)])
    await fleet.evaluations(3)
    const resolved = await get('/api/v1/findings?state=resolved')
    t.same(resolved.body.findings.map((f: { id: string }) => f.id).sort(), ['dns-resolver:resolver/10.96.0.10', 'node-inbound:node/n1'])
    t.ok(resolved.body.findings.every((f: { resolvedAt?: string }) => typeof f.resolvedAt === 'string'))
    const day = await get('/api/v1/incidents?since=24h')
    t.same(day.body.incidents.map((i: { kind: string, end: string | null }) => `${i.kind} ${i.end === null ? 'open' : 'closed'}`).sort(),
      ['dns-resolver closed', 'group-boundary open', 'node-inbound closed'])
    const n1 = day.body.incidents.find((i: { kind: string }) => i.kind === 'node-inbound')!
    t.same(n1.events.map((e: { text: string }) => e.text.replace(/ at .*/, '')), ['n1 joined (aws)', 'n1 disconnected (aws)'], 'n1\'s join before it opened and its agent\'s disconnect (the first subtest\'s teardown) are quoted')
    const future = await get(`/api/v1/incidents?since=${new Date(Date.now() + 60_000).toISOString()}`)
    t.same(future.body.incidents.map((i: { kind: string }) => i.kind), ['group-boundary'], 'since after every end: only the open one')
    t.equal((await get('/api/v1/incidents?since=48h')).body.complete, false, 'before the 24 h kept: incomplete')
  })

  await t.test('a failing evaluation is logged with its code and leaves the findings as they were', async t => {
    fleet.detect(() => { throw new Error('evaluator bug') })
    await fleet.evaluations(3)
    const logged = lines.filter(l => l.code === 'PINGFLEET_ERR_FINDINGS_EVALUATION')
    t.ok(logged.length >= 3, `${logged.length} failures logged`)
    t.equal(logged[0]!.level, 50)
    const still = await get('/api/v1/findings?state=active')
    t.same(still.body.findings.map((f: { id: string }) => f.id), ['group-boundary:groups/aws->cilium'], 'nothing resolved by failed evaluations')
    fleet.detect([])
    await fleet.evaluations(3)
    t.equal((await get('/api/v1/findings')).body.active, 0, 'and it recovers')
  })

  await t.test('the aggregator opens a finding once its detection is made in 2 evaluations in a row', async t => {
    fleet.detect([])
    await fleet.evaluations(3)
    const d = nodeDetection('n9', 'cilium')
    fleet.detect([d])
    await fleet.evaluations(1)
    fleet.detect([])
    t.equal((await get('/api/v1/findings?state=active')).body.active, 0, 'one evaluation: not yet')
    await fleet.evaluations(2)
    t.equal((await get('/api/v1/findings?state=active')).body.active, 0, 'detected once, then not: never')
    fleet.detect([d])
    await fleet.evaluations(2)
    const after = await get('/api/v1/findings?state=active')
    t.equal(after.body.active, 1, 'two in a row: active')
    t.equal(after.body.findings[0]!.id, 'node-inbound:node/n9')
    t.ok(after.body.findings[0]!.firstSeen < after.body.findings[0]!.lastSeen, 'firstSeen is the first detection, before the evaluation that confirmed it')
    fleet.detect([])
    await fleet.evaluations(3)
  })
})
