// forbidFindings: a gate fails while an active finding of a forbidden kind concerns a selected node
// or its groups (scoped gates) or the groups its rules name (group gates), and quotes it; in gates
// files (and so the Helm values), ad hoc, and over HTTP against an aggregator with synthetic findings.

import t from 'tap'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Fleet } from '../../src/fleet/fleet.ts'
import { Roster } from '../../src/fleet/roster.ts'
import type { Finding } from '../../src/findings/finding.ts'
import { FindingTracker } from '../../src/findings/tracker.ts'
import { adhocGate } from '../../src/gates/adhoc.ts'
import { evaluateGate, type Check, type GateResult, type GateSources } from '../../src/gates/eval.ts'
import { compileGate, loadGatesFile, type GateDefinition } from '../../src/gates/spec.ts'
import { defaultTiers, Store } from '../../src/store/store.ts'
import { hello, RawAgent } from '../helpers.ts'
import { syntheticFleet } from '../findings/fixture.ts'
import { boundaryDetection, nodeDetection, resolverDetection } from '../findings/detections.ts'
import type { Detection } from '../../src/findings/finding.ts'

const T0 = Date.parse('2026-11-29T10:02:15Z')
const LIMITS = { intervalMs: 1000, maxWindowMs: 15 * 60_000 }

/** Gate sources over a roster of c1, c2 (cilium, batch 7), c9 (cilium) and a1 (aws), with `active` as the findings. */
function sources (active: (() => readonly Finding[] | null) | undefined): GateSources {
  const tiers = defaultTiers(1000, LIMITS.maxWindowMs)
  const roster = new Roster(120_000)
  roster.join(hello('c1', { cniplugin: 'cilium', batch: '7' }), T0)
  roster.join(hello('c2', { cniplugin: 'cilium', batch: '7' }), T0)
  roster.join(hello('c9', { cniplugin: 'cilium' }), T0)
  roster.join(hello('a1', { cniplugin: 'aws' }), T0)
  return { groups: new Store(tiers), nodes: new Store(tiers), fleet: new Fleet({ roster, groupLabel: 'cniplugin' }), serviceBackends: () => null, ...(active === undefined ? {} : { findings: active }) }
}

/** The active findings a tracker holds after one evaluation of `detections`. */
function active (...detections: Detection[]): Finding[] {
  const tracker = new FindingTracker()
  tracker.update(detections, T0)
  return tracker.active()
}

const gate = (def: Omit<GateDefinition, 'name'>): ReturnType<typeof compileGate> => compileGate({ name: 'g', window: '10s', ...def }, LIMITS)
const forbidChecks = (r: GateResult): Check[] => r.checks.filter(c => c.criterion === 'forbidFindings')
const judge = (def: Omit<GateDefinition, 'name'>, findings: Finding[] | null): GateResult => evaluateGate(gate(def), sources(() => findings), T0 + 1000)

t.test('scoped gate: a finding on a selected node fails it and is quoted; one on another group does not', async t => {
  const batch = { nodeSelector: 'batch=7', forbidFindings: ['node-inbound', 'node-isolated'] }
  const onC1 = judge(batch, active(nodeDetection('c1', 'cilium')))
  t.equal(onC1.verdict, 'fail')
  const [inbound, isolated] = forbidChecks(onC1)
  t.match(inbound, {
    id: 'forbidFindings node-inbound',
    verdict: 'fail',
    observed: 1,
    threshold: 0,
    kind: 'node-inbound',
    findings: ['node-inbound:node/c1'],
    detail: '1 active node-inbound finding concerns the selected nodes (c1, c2) or their groups (cilium): c1 (cilium): inbound pod probes fail from 9 of 10 peers since 10:02:15 (CONNECT_TIMEOUT); its own outbound probes succeed'
  })
  t.match(isolated, { verdict: 'pass', observed: 0, detail: 'no active node-isolated finding concerns the selected nodes (c1, c2) or their groups (cilium)' })

  const onAws = judge(batch, active(nodeDetection('a1', 'aws')))
  t.same(forbidChecks(onAws).map(c => c.verdict), ['pass', 'pass'], 'a1 is neither selected nor in a selected node\'s group')
  t.same(forbidChecks(judge(batch, active(nodeDetection('c9', 'cilium')))).map(c => c.verdict), ['fail', 'pass'], 'c9 is in the batch\'s group, cilium')
  t.same(forbidChecks(judge(batch, active(nodeDetection('c1', 'cilium', { kind: 'node-outbound' })))).map(c => c.verdict), ['pass', 'pass'], 'a kind not forbidden')
  t.same(forbidChecks(judge(batch, active(resolverDetection('10.96.0.10')))).map(c => c.verdict), ['pass', 'pass'], 'a resolver finding is not a forbidden kind here')
  t.same(forbidChecks(judge({ nodeSelector: 'batch=7', forbidFindings: ['dns-resolver'] }, active(resolverDetection('10.96.0.10')))).map(c => c.verdict), ['fail'], 'a finding naming no node or group concerns every gate')
})

t.test('more than three findings: three quoted, the rest counted', async t => {
  const many = active(...['c1', 'c2', 'c9', 'c3', 'c4'].map(n => nodeDetection(n, 'cilium')))
  const [c] = forbidChecks(judge({ nodes: ['c1'], forbidFindings: ['node-inbound'] }, many))
  t.equal(c!.observed, 5)
  t.match(c!.detail, /^5 active node-inbound findings concern .*; and 2 more$/)
  t.equal(c!.findings!.length, 5)
})

t.test('group gate: findings of the groups its rules name', async t => {
  const def = { rules: [{ probe: 'pod', src: 'aws', dst: 'cilium', maxErrorRatio: 0.01 }], forbidFindings: ['group-boundary'] }
  t.match(forbidChecks(judge(def, active(boundaryDetection('aws', 'cilium'))))[0], { verdict: 'fail', detail: /^1 active group-boundary finding concerns groups aws, cilium: aws -> cilium: pod probes fail across the boundary since 10:02:15$/ })
  t.match(forbidChecks(judge(def, active(boundaryDetection('calico', 'flannel'))))[0], { verdict: 'pass' }, 'another boundary')
  const star = { rules: [{ probe: 'pod', src: '*', dst: '*', maxErrorRatio: 0.01 }], forbidFindings: ['group-boundary'] }
  t.match(forbidChecks(judge(star, active(boundaryDetection('calico', 'flannel'))))[0], { verdict: 'fail', detail: /concerns the fleet/ }, '* is every group')
})

t.test('resolved findings do not count; no findings yet, or none to read, is insufficient', async t => {
  const tracker = new FindingTracker()
  tracker.update([nodeDetection('c1', 'cilium')], T0)
  tracker.update([], T0 + 5000)
  tracker.update([], T0 + 10_000)
  t.equal(tracker.all()[0]!.state, 'resolved')
  const def = { nodes: ['c1'], forbidFindings: ['node-inbound'] }
  t.match(forbidChecks(judge(def, tracker.all()))[0], { verdict: 'pass' })
  const before = judge(def, null)
  t.match(forbidChecks(before)[0], { verdict: 'insufficient_data', observed: null, detail: 'findings have not been evaluated yet' })
  t.not(before.verdict, 'pass')
  t.match(forbidChecks(evaluateGate(gate(def), sources(undefined), T0))[0], { verdict: 'insufficient_data' }, 'no findings source')
})

t.test('definitions: a gate of forbidFindings alone, unknown kinds refused with where and what', async t => {
  t.same(gate({ forbidFindings: ['mtu', 'mtu', 'loss'] }).forbidFindings, ['mtu', 'loss'])
  const dir = mkdtempSync(join(tmpdir(), 'pingfleet-forbid-'))
  const file = join(dir, 'gates.yaml')
  writeFileSync(file, 'gates:\n  - name: batch\n    nodeSelector: batch=7\n    forbidFindings: [node-inbound, node-sideways]\n')
  t.throws(() => loadGatesFile(file, LIMITS), { code: 'PINGFLEET_ERR_CONFIG', message: /invalid at \/gates\/0\/forbidFindings\/1 \(gate "batch"\): got "node-sideways", expected one of "node-inbound"/ })
  writeFileSync(file, 'gates:\n  - name: batch\n    nodeSelector: batch=7\n    forbidFindings: []\n')
  t.throws(() => loadGatesFile(file, LIMITS), { code: 'PINGFLEET_ERR_CONFIG', message: /forbidFindings/ })
  t.throws(() => adhocGate({ probe: 'pod', nodes: 'c1', forbidFindings: 'node-sideways' }, LIMITS), { statusCode: 400, message: /forbidFindings=.*expected a finding kind/ })
  const adhoc = adhocGate({ probe: 'pod', nodes: 'c1', forbidFindings: 'node-inbound,node-isolated' }, LIMITS)
  t.same(adhoc.forbidFindings, ['node-inbound', 'node-isolated'])
  t.same(adhoc.nodeRules, [], 'forbidFindings alone needs no node rule')
  t.equal(adhocGate({ probe: 'pod', nodes: 'c1', maxNodeErrorRatio: 0.01, forbidFindings: 'mtu' }, LIMITS).nodeRules.length, 1)
})

t.test('over HTTP: a named gate and an ad-hoc one fail while the finding is active, and pass after', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'pingfleet-forbid-http-'))
  const file = join(dir, 'gates.yaml')
  writeFileSync(file, 'gates:\n  - name: batch\n    nodes: [n1]\n    forbidFindings: [node-inbound, node-isolated]\n')
  const fleet = await syntheticFleet(undefined, [nodeDetection('n1', 'cilium')], { PINGFLEET_GATES_FILE: file })
  t.teardown(() => fleet.agg.close())
  const agent = new RawAgent(fleet.url)
  t.teardown(() => agent.socket.close())
  await agent.opened()
  agent.send(hello('n1', { cniplugin: 'cilium' }))
  await agent.waitFor(m => m.type === 'peers')
  await fleet.evaluations(1)
  const named = await (await fetch(`${fleet.url}/api/v1/gates/batch`)).json() as GateResult
  t.equal(named.verdict, 'fail')
  t.match(named.checks.find(c => c.id === 'forbidFindings node-inbound'), { verdict: 'fail', kind: 'node-inbound', findings: ['node-inbound:node/n1'], detail: /n1 \(cilium\): inbound pod probes fail/ })
  const adhoc = await fetch(`${fleet.url}/api/v1/gates/adhoc/status?probe=pod&nodes=n1&forbidFindings=node-inbound`)
  t.equal(adhoc.status, 412)
  await adhoc.body?.cancel()
  const bad = await fetch(`${fleet.url}/api/v1/gates/adhoc?probe=pod&nodes=n1&forbidFindings=node-sideways`)
  t.equal(bad.status, 400)
  t.match(await bad.json(), { code: 'PINGFLEET_ERR_BAD_QUERY', message: /forbidFindings="node-sideways"/ })
  fleet.detect([])
  await fleet.evaluations(3)
  const after = await (await fetch(`${fleet.url}/api/v1/gates/batch`)).json() as GateResult
  t.match(after.checks.find(c => c.id === 'forbidFindings node-inbound'), { verdict: 'pass' })
  const list = await (await fetch(`${fleet.url}/api/v1/gates`)).json() as { gates: Array<{ definition: GateDefinition }> }
  t.same(list.gates[0]!.definition.forbidFindings, ['node-inbound', 'node-isolated'], 'the definition shows it')
})
