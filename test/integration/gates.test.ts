// Gates against a real fleet: an aggregator and four agents as processes on loopback, peers
// reached through TCP relays. Refusing one cilium agent's traffic flips the gate to fail, letting
// it through again flips it back, and the history records both. The example Argo Rollouts
// AnalysisTemplate, Flagger webhooks and the CLI are checked against the same live answers.
// Addresses (127.0.3.x, 127.0.4.x) and ports differ from fleet.test.ts so both run in parallel.

import t from 'tap'
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parse as parseYaml } from 'yaml'
import { getJson } from '../../scripts/fleet-processes.ts'
import { startRelayedFleet } from '../helpers/relayed-fleet.ts'
import { until } from '../helpers/wait.ts'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const CLI = join(ROOT, 'aggregator/src/cli.ts')
const TOKEN = 'integration-token-gates'
const BASE = 40_000 + (process.pid % 2000) * 10
const AGG_HOST = '127.0.3.1'
const AGG_PORT = BASE
const AGENT_PORT = BASE + 1
const listenIp = (i: number): string => `127.0.3.${21 + i}`
const podIp = (i: number): string => `127.0.4.${21 + i}`

const dir = mkdtempSync(join(tmpdir(), 'pingfleet-gates-it-'))
const gatesFile = join(dir, 'gates.yaml')
writeFileSync(gatesFile, `
gates:
  - name: into-cilium
    description: every group reaches the cilium pods
    window: 2s
    minSamples: 2
    maxStaleness: 5s
    rules:
      - { probe: pod, src: "*", dst: cilium, maxErrorRatio: 0 }
    coverage:
      - { group: "*", minRatio: 1 }
  - name: dns-backends
    services: [{ service: kube-dns, minBackendRatio: 1 }]
`)

interface Check { id: string, verdict: string, observed: number | null }
interface GateAnswer { name: string, verdict: string, checks: Check[] }
interface History { transitions: Array<{ from: string | null, verdict: string, result: GateAnswer }> }

function cli (...args: string[]): Promise<{ code: number | null, stdout: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'ignore'] })
    let stdout = ''
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
    child.once('error', reject)
    child.once('close', code => resolve({ code, stdout }))
  })
}

// --- Argo Rollouts, in the smallest subset the example uses ------------------------------------
// Argo's web provider GETs the URL, treats a non-2xx as a measurement error, extracts `result`
// with the k8s JSONPath in `jsonPath`, then evaluates failureCondition and successCondition
// (expr-lang); when neither holds the measurement is Inconclusive. Rather than reimplement
// JSONPath and expr, this accepts only what the example needs and throws on anything else:
//   jsonPath   {$.field} or {$.field.field}
//   condition  result == "text" | result == 'text' | result != "text", joined by ||

interface WebMetric {
  successCondition: string
  failureCondition: string
  provider: { web: { url: string, jsonPath: string } }
}

function argoJsonPath (path: string, body: unknown): unknown {
  const m = /^\{\$((?:\.[A-Za-z_][A-Za-z0-9_]*)+)\}$/.exec(path)
  if (m === null) throw new Error(`jsonPath ${path} is outside the subset this test evaluates`)
  let value: unknown = body
  for (const key of m[1]!.slice(1).split('.')) value = (value as Record<string, unknown>)[key]
  return value
}

function argoCondition (condition: string, result: unknown): boolean {
  return condition.split('||').some(part => {
    const m = /^\s*result\s*(==|!=)\s*(?:"([^"]*)"|'([^']*)')\s*$/.exec(part)
    if (m === null) throw new Error(`condition ${condition} is outside the subset this test evaluates`)
    const equal = result === (m[2] ?? m[3])
    return m[1] === '==' ? equal : !equal
  })
}

async function argoMeasure (metric: WebMetric, args: Record<string, string>): Promise<string> {
  const url = metric.provider.web.url.replace(/\{\{\s*args\.([\w-]+)\s*\}\}/g, (_, name: string) => args[name]!)
  const response = await fetch(url)
  if (response.status < 200 || response.status > 299) return 'Error'
  const result = argoJsonPath(metric.provider.web.jsonPath, await response.json())
  if (argoCondition(metric.failureCondition, result)) return 'Failed'
  if (argoCondition(metric.successCondition, result)) return 'Successful'
  return 'Inconclusive'
}

// --- Flagger: a webhook POSTs {name, namespace, phase, metadata}; any 2xx is a pass -----------

interface Webhook { name: string, type: string, url: string }

/**
 * Calls the example's webhook on the test aggregator, for the test's gate in place of the example's;
 * a node selector the example passes is replaced by `nodeSelector` (the test fleet's own labels).
 */
async function flaggerCall (hook: Webhook, aggregatorUrl: string, gate: string, nodeSelector = 'cniplugin=cilium'): Promise<number> {
  const example = new URL(hook.url)
  if (!/^\/api\/v1\/gates\/[a-z0-9-]+\/status$/.test(example.pathname)) throw new Error(`webhook ${hook.name} does not call a gate's status form: ${hook.url}`)
  // The example's own parameters (view=brief) stay; only its node selector is the test fleet's.
  if (example.searchParams.has('nodeSelector')) example.searchParams.set('nodeSelector', nodeSelector)
  const url = `${aggregatorUrl}/api/v1/gates/${gate}/status${example.search}`
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'podinfo', namespace: 'test', phase: 'Progressing', checksum: 'abc', metadata: { type: hook.type } })
  })
  await response.arrayBuffer()
  return response.status
}

t.test('gates over a fleet of four agents', async t => {
  const fleet = await startRelayedFleet({
    token: TOKEN, aggregatorHost: AGG_HOST, aggregatorPort: AGG_PORT, agentPort: AGENT_PORT, listenIp, podIp,
    aggregatorEnv: { PINGFLEET_GATES_FILE: gatesFile }
  })
  t.teardown(fleet.stop)
  const { aggregator } = fleet
  const gate = (name = 'into-cilium'): Promise<GateAnswer> => getJson<GateAnswer>(`${aggregator.url}/api/v1/gates/${name}`)
  const template = parseYaml(readFileSync(join(ROOT, 'docs/examples/analysis-template.yaml'), 'utf8')) as {
    kind: string, spec: { args: Array<{ name: string, value: string }>, metrics: WebMetric[] }
  }
  // The template's node selector is the batch label; the test fleet's batch is its cilium nodes.
  const argoArgs = (name: string): Record<string, string> => ({
    ...Object.fromEntries(template.spec.args.map(a => [a.name, a.value])), aggregator: aggregator.url, gate: name, 'node-selector': encodeURIComponent('cniplugin=cilium')
  })
  const canary = parseYaml(readFileSync(join(ROOT, 'docs/examples/flagger-canary.yaml'), 'utf8')) as { spec: { analysis: { webhooks: Webhook[] } } }
  const hooks = canary.spec.analysis.webhooks

  await t.test('the gate passes once every group reaches the cilium pods', async t => {
    const answer = await until('into-cilium passes', async () => {
      const a = await gate()
      return a.verdict === 'pass' ? a : undefined
    }, 20_000)
    t.ok(answer.checks.some(c => c.id === 'pod aws->cilium maxErrorRatio' && c.verdict === 'pass'))
    t.ok(answer.checks.some(c => c.id === 'pod cilium->cilium maxErrorRatio' && c.verdict === 'pass'))
    t.equal(template.kind, 'AnalysisTemplate')
    t.equal(await argoMeasure(template.spec.metrics[0]!, argoArgs('into-cilium')), 'Successful', 'Argo: pass is Successful')
    for (const hook of hooks) t.equal(await flaggerCall(hook, aggregator.url, 'into-cilium'), 200, `Flagger ${hook.type} webhook passes`)
    t.equal((await cli('gate', 'into-cilium', '--url', aggregator.url)).code, 0, 'CLI exits 0')
  })

  await t.test('refusing one cilium agent fails the gate', async t => {
    await fleet.refuse(3)
    const answer = await until('into-cilium fails', async () => {
      const a = await gate()
      return a.verdict === 'fail' ? a : undefined
    }, 10_000)
    const failed = answer.checks.filter(c => c.verdict === 'fail').map(c => c.id)
    t.ok(failed.includes('pod aws->cilium maxErrorRatio') || failed.includes('pod cilium->cilium maxErrorRatio'), `failing checks: ${failed.join(', ')}`)
    t.equal(await argoMeasure(template.spec.metrics[0]!, argoArgs('into-cilium')), 'Failed', 'Argo: fail is Failed')
    for (const hook of hooks) t.equal(await flaggerCall(hook, aggregator.url, 'into-cilium'), 412, `Flagger ${hook.type} webhook is refused`)
    const run = await cli('gate', 'into-cilium', '--url', aggregator.url)
    t.equal(run.code, 1, 'CLI exits 1')
    t.match(run.stdout, /FAIL pod \w+->cilium maxErrorRatio/)
  })

  await t.test('insufficient data is inconclusive for Argo and refused by Flagger', async t => {
    t.equal((await gate('dns-backends')).verdict, 'insufficient_data')
    t.equal(await argoMeasure(template.spec.metrics[0]!, argoArgs('dns-backends')), 'Inconclusive')
    t.equal(await flaggerCall(hooks[0]!, aggregator.url, 'dns-backends'), 412)
    t.equal((await cli('gate', 'dns-backends', '--url', aggregator.url)).code, 2, 'CLI exits 2')
    t.equal(await argoMeasure(template.spec.metrics[0]!, argoArgs('no-such-gate')), 'Error', 'Argo: an unknown gate is a measurement error')
  })

  await t.test('letting it through again passes, and the history records both flips', async t => {
    await fleet.admit(3)
    // The CLI waits through the failing window until the gate passes again.
    const run = await cli('gate', 'into-cilium', '--url', aggregator.url, '--wait', '20s', '--interval', '250ms', '--json')
    t.equal(run.code, 0, 'CLI --wait exits 0 once the gate passes')
    t.equal((JSON.parse(run.stdout) as GateAnswer).verdict, 'pass')
    // The aggregator evaluates its gates every interval, so the history has the transitions
    // whether or not anyone asked in between.
    const history = await until('history with fail -> pass', async () => {
      const h = await getJson<History>(`${aggregator.url}/api/v1/gates/into-cilium/history`)
      return h.transitions.some(x => x.from === 'fail' && x.verdict === 'pass') ? h : undefined
    }, 5_000)
    const flips = history.transitions.map(x => `${x.from}->${x.verdict}`)
    t.ok(flips.includes('pass->fail'), `history: ${flips.join(', ')}`)
    t.ok(flips.includes('fail->pass'))
    const toFail = history.transitions.find(x => x.from === 'pass' && x.verdict === 'fail')!
    t.ok(toFail.result.checks.some(c => c.verdict === 'fail' && c.observed !== null && c.observed > 0), 'the fail transition carries its evidence')
    const metrics = await (await fetch(`${aggregator.url}/metrics`)).text()
    t.match(metrics, /pingfleet_gate_pass\{gate="into-cilium"\} 1/)
  })
})
