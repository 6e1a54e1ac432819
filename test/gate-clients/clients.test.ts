// The documented gate integrations, run with the clients' own code against a live fleet (an
// aggregator and four agents as processes on loopback): Argo Rollouts v1.10.2's web metric
// provider and argument resolution, and Flagger v1.36.1's CallWebhook (test/gate-clients/*/main.go,
// built by .ci/install-gate-clients.sh). The Job-provider template's command runs as its Job would.
// Every verdict, an unknown gate, an unreachable and a frozen aggregator, and a stand-in that answers
// 200 with HTML, where the web provider passes (Argo's behaviour) and the Job template does not.

import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import { homedir, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { getJson } from '../../scripts/fleet-processes.ts'
import { fleetGroup, startRelayedFleet } from '../helpers/relayed-fleet.ts'
import { until } from '../helpers/wait.ts'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const BIN = join(process.env.PINGFLEET_TOOLS_DIR ?? join(homedir(), '.cache/pingfleet-tools'), 'bin')
const ARGO = join(BIN, 'argo-harness')
const FLAGGER = join(BIN, 'flagger-harness')
const WEB_TEMPLATE = join(ROOT, 'docs/examples/analysis-template.yaml')
const JOB_TEMPLATE = join(ROOT, 'docs/examples/analysis-template-job.yaml')
const CANARY = join(ROOT, 'docs/examples/flagger-canary.yaml')

const missing = [ARGO, FLAGGER].filter(p => !existsSync(p))
const skip = missing.length === 0 || process.env.CI === 'true'
  ? false
  : `${missing.join(', ')} missing: run bash .ci/install-gate-clients.sh; CI=true makes this a failure`

const TOKEN = 'integration-token-clients'
const BASE = 27_000 + (process.pid % 500) * 10
const AGG_HOST = '127.0.5.1'
const AGENT_PORT = BASE + 1
const listenIp = (i: number): string => `127.0.5.${21 + i}`
const podIp = (i: number): string => `127.0.6.${21 + i}`

interface Run { code: number | null, stdout: string, stderr: string }

function run (command: string, args: string[], timeoutMs = 60_000): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
    child.once('error', reject)
    child.once('close', code => resolve({ code, stdout, stderr }))
  })
}

interface ArgoResult { metric: string, provider: string, phase: string, value: string, message?: string, job?: { containers: Array<{ command?: string[], args?: string[] }> } }
interface FlaggerResult { webhook: string, type: string, phase: string, ok: boolean, error?: string }

async function argo (template: string, args: Record<string, string>): Promise<ArgoResult> {
  const out = await run(ARGO, ['-template', template, ...Object.entries(args).flatMap(([k, v]) => ['-arg', `${k}=${v}`])])
  if (out.code !== 0) throw new Error(`argo-harness exited ${out.code}: ${out.stderr}`)
  return JSON.parse(out.stdout.trim().split('\n')[0]!) as ArgoResult
}

/**
 * The Job template's measurement, as Argo's job provider takes it: the Job's one container runs
 * (here on this machine, from the repository root, as the image's WORKDIR), exit 0 is Successful
 * and anything else Failed.
 */
async function argoJob (args: Record<string, string>): Promise<{ phase: string, code: number | null, stdout: string }> {
  const { job } = await argo(JOB_TEMPLATE, args)
  const container = job!.containers[0]!
  const [command, ...rest] = [...(container.command ?? []), ...(container.args ?? [])]
  if (command !== 'node') throw new Error(`the Job runs ${command}, not node`)
  const out = await run(process.execPath, rest)
  return { phase: out.code === 0 ? 'Successful' : 'Failed', code: out.code, stdout: out.stdout }
}

/** Calls the example canary's webhooks; `gate` points every one of them at that gate instead (a copy of the canary). */
async function flagger (base: string, gate?: string): Promise<FlaggerResult[]> {
  let canary = CANARY
  if (gate !== undefined) {
    canary = join(mkdtempSync(join(tmpdir(), 'pingfleet-canary-')), 'canary.yaml')
    writeFileSync(canary, readFileSync(CANARY, 'utf8').replace(/\/api\/v1\/gates\/[a-z0-9-]+\/status/g, `/api/v1/gates/${gate}/status`))
  }
  const out = await run(FLAGGER, ['-canary', canary, '-base', base])
  if (out.code !== 0) throw new Error(`flagger-harness exited ${out.code}: ${out.stderr}`)
  return out.stdout.trim().split('\n').map(line => JSON.parse(line) as FlaggerResult)
}

// Three frozen-aggregator timeouts and a fleet's start-up: longer than the suite's default limit.
t.setTimeout(300_000)

t.test('gate integrations with the real Argo Rollouts and Flagger code', { skip }, async t => {
  // Under CI=true a missing harness is a failure that names the fix, not a spawn error.
  if (missing.length > 0) throw new Error(`${missing.join(', ')} missing: run bash .ci/install-gate-clients.sh`)
  const dir = mkdtempSync(join(tmpdir(), 'pingfleet-clients-'))
  const gatesFile = join(dir, 'gates.yaml')
  // The examples name baseline and cilium-batch; here both are a small mesh gate, and needs-data can never have enough.
  writeFileSync(gatesFile, `
gates:
  - name: baseline
    window: 3s
    minSamples: 2
    rules:
      - { probe: pod, src: "*", dst: "*", maxErrorRatio: 0 }
  - name: cilium-batch
    window: 3s
    minSamples: 2
    rules:
      - { probe: pod, src: "*", dst: "*", maxErrorRatio: 0 }
  - name: needs-data
    window: 3s
    minSamples: 1000000
    rules:
      - { probe: pod, src: "*", dst: "*", maxErrorRatio: 0 }
`)
  const html: Server = createServer((_req, res) => { res.writeHead(200, { 'content-type': 'text/html' }); res.end('<html><body>Sign in to continue</body></html>') })
  await new Promise<void>(resolve => html.listen(0, '127.0.5.2', resolve))
  const htmlUrl = `http://127.0.5.2:${(html.address() as { port: number }).port}`
  t.teardown(() => {
    html.close()
    rmSync(dir, { recursive: true, force: true })
  })
  const fleet = await startRelayedFleet({
    token: TOKEN, aggregatorHost: AGG_HOST, aggregatorPort: BASE, agentPort: AGENT_PORT, listenIp, podIp,
    // The examples scope the batch gate to nodes carrying the batch label: here, all of them.
    labels: i => ({ cniplugin: fleetGroup(i), 'pingfleet.io/migration-batch': '1' }),
    aggregatorEnv: { PINGFLEET_GATES_FILE: gatesFile }
  })
  t.teardown(fleet.stop)
  const { aggregator } = fleet
  const verdict = async (name: string): Promise<string> => (await getJson<{ verdict: string }>(`${aggregator.url}/api/v1/gates/${name}`)).verdict
  const jobArgs = (gate: string, url = aggregator.url): Record<string, string> => ({ gate, aggregator: url, wait: '2s' })

  await t.test('pass: Successful for Argo (web and Job), accepted by Flagger', async t => {
    await until('cilium-batch passes', async () => await verdict('cilium-batch') === 'pass' ? true : undefined, 20_000)
    t.match(await argo(WEB_TEMPLATE, { gate: 'cilium-batch', aggregator: aggregator.url }), { provider: 'web', phase: 'Successful', value: '"pass"' })
    t.match(await argoJob(jobArgs('cilium-batch')), { phase: 'Successful', code: 0 })
    const hooks = await flagger(aggregator.url)
    t.ok(hooks.length >= 2, 'every webhook of the example was called')
    for (const hook of hooks) t.ok(hook.ok, `${hook.type} webhook ${hook.webhook} passes`)
    t.equal(hooks.find(h => h.type === 'confirm-rollout')?.phase, '', 'Flagger sends no phase on confirm-rollout')
  })

  await t.test('insufficient data: Inconclusive for the web template, Failed for the Job, refused by Flagger', async t => {
    t.equal(await verdict('needs-data'), 'insufficient_data')
    t.match(await argo(WEB_TEMPLATE, { gate: 'needs-data', aggregator: aggregator.url }), { phase: 'Inconclusive', value: '"insufficient_data"' })
    t.match(await argoJob(jobArgs('needs-data')), { phase: 'Failed', code: 2 })
    for (const hook of await flagger(aggregator.url, 'needs-data')) {
      t.notOk(hook.ok, `${hook.type} webhook refused`)
      t.match(hook.error, /"verdict":"insufficient_data"/, 'with the brief answer')
    }
  })

  await t.test('fail: Failed everywhere', async t => {
    await fleet.refuse(3)
    await until('cilium-batch fails', async () => await verdict('cilium-batch') === 'fail' ? true : undefined, 10_000)
    t.match(await argo(WEB_TEMPLATE, { gate: 'cilium-batch', aggregator: aggregator.url }), { phase: 'Failed', value: '"fail"' })
    t.match(await argoJob(jobArgs('cilium-batch')), { phase: 'Failed', code: 1 })
    for (const hook of await flagger(aggregator.url)) {
      t.notOk(hook.ok, `${hook.type} webhook refused`)
      t.ok(Buffer.byteLength(hook.error ?? '') <= 512, `Flagger's event carries a short answer (${Buffer.byteLength(hook.error ?? '')} bytes): ${hook.error}`)
    }
    await fleet.admit(3)
    await until('cilium-batch passes again', async () => await verdict('cilium-batch') === 'pass' ? true : undefined, 20_000)
  })

  await t.test('an unknown gate is an Error for Argo, a failed Job, refused by Flagger', async t => {
    t.match(await argo(WEB_TEMPLATE, { gate: 'no-such-gate', aggregator: aggregator.url }), { phase: 'Error', message: /non 2xx response code: 404/ })
    t.match(await argoJob(jobArgs('no-such-gate')), { phase: 'Failed', code: 3 })
    for (const hook of await flagger(aggregator.url, 'no-such-gate')) t.match(hook, { ok: false, error: /PINGFLEET_ERR_NOT_FOUND/ }, `${hook.type} webhook refused`)
  })

  await t.test('an unreachable aggregator: Error for Argo, a failed Job, refused by Flagger', async t => {
    const closed = 'http://127.0.5.3:9'
    t.match(await argo(WEB_TEMPLATE, { gate: 'cilium-batch', aggregator: closed }), { phase: 'Error' })
    t.match(await argoJob(jobArgs('cilium-batch', closed)), { phase: 'Failed', code: 3 })
    for (const hook of await flagger(closed)) t.notOk(hook.ok, `${hook.type} webhook refused`)
  })

  await t.test('a frozen aggregator: Error for Argo, a failed Job, refused by Flagger (after their timeouts)', async t => {
    process.kill(aggregator.child.pid!, 'SIGSTOP')
    try {
      const [web, job, hooks] = await Promise.all([
        argo(WEB_TEMPLATE, { gate: 'cilium-batch', aggregator: aggregator.url }),
        argoJob(jobArgs('cilium-batch')),
        flagger(aggregator.url)
      ])
      t.match(web, { phase: 'Error' })
      t.match(job, { phase: 'Failed', code: 3 })
      for (const hook of hooks) t.notOk(hook.ok, `${hook.type} webhook refused`)
    } finally {
      process.kill(aggregator.child.pid!, 'SIGCONT')
    }
  })

  await t.test('200 with an HTML page: the web provider passes without asking pingfleet (Argo\'s behaviour); the Job template does not', async t => {
    const web = await argo(WEB_TEMPLATE, { gate: 'cilium-batch', aggregator: htmlUrl })
    t.equal(web.phase, 'Successful', 'Argo v1.10.2 takes any non-JSON 200 as Successful: the pitfall docs/gates.md warns about')
    t.match(await argoJob(jobArgs('cilium-batch', htmlUrl)), { phase: 'Failed', code: 3 })
    for (const hook of await flagger(htmlUrl)) t.ok(hook.ok, `Flagger too takes a 200 page as a pass (${hook.type}): the pitfall is documented`)
  })
})
