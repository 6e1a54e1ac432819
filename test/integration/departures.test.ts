// Planned departures against crashes, with real processes on loopback (static mode, no Kubernetes):
// an agent stopped with SIGTERM announces itself (close 1001), turns `terminating` at once and
// keeps answering /ping until its peers have the new list, so no probe toward it fails; an agent
// killed with SIGKILL is a failure its peers report. Addresses 127.0.6.x keep clear of the other suites.

import t from 'tap'
import { getJson, startAgent, startAggregator, type Proc } from '../../scripts/fleet-processes.ts'
import { FLEET_AGENT_ENV, FLEET_ENV, fleetGroup } from '../helpers/relayed-fleet.ts'
import { until } from '../helpers/wait.ts'

const TOKEN = 'integration-token-departures'
// Below the kernel's ephemeral range (32768+), as in fleet.test.ts, on addresses of our own.
const BASE = 21_000 + (process.pid % 1100) * 10
const AGG_HOST = '127.0.6.1'
const nodes = ['d1', 'd2', 'd3', 'd4']
const ip = (i: number): string => `127.0.6.${21 + i}`

interface Cell { src: string, dst: string, samples: number, errors: number, errorsByReason: Record<string, number> }
interface AgentRow { node: string, state: string, connected: boolean }
interface Status { peers: number }

t.test('a SIGTERM is a planned departure, a SIGKILL a failure', async t => {
  // The fleet's own settings without relays: agents are stopped, not refused. The default drain (2s)
  // is what is under test: it is not set here.
  const agentEnv = { ...FLEET_AGENT_ENV, PINGFLEET_MTU_SIZES: '' }
  const aggregator = await startAggregator({ host: AGG_HOST, port: BASE, token: TOKEN, env: FLEET_ENV })
  const agents: Proc[] = []
  t.teardown(async () => {
    await Promise.all(agents.map(a => a.stop('SIGKILL')))
    await aggregator.stop('SIGKILL')
  })
  const start = (i: number): Promise<Proc> => startAgent({
    node: nodes[i]!, ip: ip(i), port: BASE + 1, labels: { cniplugin: fleetGroup(i) }, aggregatorUrl: aggregator.url, token: TOKEN, env: agentEnv
  })
  for (const i of nodes.keys()) agents.push(await start(i))
  const matrix = async (window: string): Promise<Cell[]> =>
    (await getJson<{ cells: Cell[] }>(`${aggregator.url}/api/v1/matrix?probe=pod&groupBy=node&window=${window}`)).cells
  const rows = async (): Promise<AgentRow[]> => (await getJson<{ agents: AgentRow[] }>(`${aggregator.url}/api/v1/agents`)).agents
  const lastReport = async (): Promise<number> => (await getJson<{ agents: Array<{ reports: { lastSeq: number } }> }>(`${aggregator.url}/api/v1/agents`)).agents.reduce((n, a) => n + a.reports.lastSeq, 0)

  await until('12 green cells', async () => {
    const cells = await matrix('2s')
    return cells.length === 12 && cells.every(c => c.samples > 0 && c.errors === 0) ? true : undefined
  }, 20_000)

  await t.test('SIGTERM: terminating at once, and not one failed probe toward it', async t => {
    const started = Date.now()
    t.equal(await agents[3]!.stop('SIGTERM'), 0, 'd4 exits 0')
    const row = (await rows()).find(r => r.node === 'd4')!
    t.match(row, { state: 'terminating', connected: false }, 'the aggregator knew before the process ended')
    // Three more intervals of reports from the others, so anything that failed toward d4 has arrived.
    const before = await lastReport()
    await until('three more reports from each remaining agent', async () => (await lastReport()) >= before + 9 ? true : undefined, 10_000)
    for (const i of [0, 1, 2]) t.equal((await getJson<Status>(`${agents[i]!.url}/status`)).peers, 2, `${nodes[i]} probes the two others`)
    const window = `${Math.ceil((Date.now() - started) / 1000) + 5}s`
    const toward = (await matrix(window)).filter(c => c.dst === 'd4')
    t.ok(toward.length > 0 && toward.every(c => c.samples > 0), 'd4 was probed right up to its departure')
    for (const c of toward) t.equal(c.errors, 0, `${c.src}→d4: no error around the departure ${JSON.stringify(c.errorsByReason)}`)
  })

  await t.test('a restarted agent is ready and probed again', async t => {
    agents[3] = await start(3)
    await until('d4 ready and green', async () => {
      const row = (await rows()).find(r => r.node === 'd4')
      const toward = (await matrix('1s')).filter(c => c.dst === 'd4')
      return row?.state === 'ready' && toward.length === 3 && toward.every(c => c.samples > 0 && c.errors === 0) ? true : undefined
    }, 15_000)
    t.pass('d4 is back')
  })

  await t.test('SIGKILL: still ready, and its peers report the failures', async t => {
    await agents[2]!.stop('SIGKILL')
    const { length } = await until('every peer reports d3 refused', async () => {
      const toward = (await matrix('1s')).filter(c => c.dst === 'd3')
      return toward.length === 3 && toward.every(c => (c.errorsByReason.ECONNREFUSED ?? 0) > 0) ? toward : undefined
    }, 10_000)
    t.equal(length, 3)
    t.match((await rows()).find(r => r.node === 'd3'), { state: 'ready', connected: false }, 'a crash is no announcement')
  })
})
