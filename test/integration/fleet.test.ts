// An aggregator and four agents as real processes on loopback. Peers reach each agent through
// a TCP relay the test controls, so "stopping one agent's /ping server" is a real refusal.

import t from 'tap'
import WebSocket from 'ws'
import { getJson } from '../../scripts/fleet-processes.ts'
import { FLEET_INTERVAL_MS as INTERVAL_MS, FLEET_NODES as nodes, startRelayedFleet } from '../helpers/relayed-fleet.ts'
import { timedUntil as until } from '../helpers/wait.ts'

const TOKEN = 'integration-token-0001'
// Below the kernel's ephemeral range (32768+): a port there may be the local end of any outgoing connection.
const BASE = 20_000 + (process.pid % 1200) * 10
const AGG_PORT = BASE
const AGENT_PORT = BASE + 1

interface Cell { src: string, dst: string, samples: number, errors: number, errorRatio: number, errorsByReason: Record<string, number> }
interface AgentRow { node: string, connected: boolean, reports: { accepted: number, duplicates: number, firstSeq: number | null, lastSeq: number } }
interface AgentStatus { seq: number, acked: number, dropped: number, buffered: number }

const listenIp = (i: number): string => `127.0.1.${21 + i}`
const podIp = (i: number): string => `127.0.2.${21 + i}`

t.test('a fleet of four agents', async t => {
  const fleet = await startRelayedFleet({ token: TOKEN, aggregatorPort: AGG_PORT, agentPort: AGENT_PORT, listenIp, podIp })
  t.teardown(fleet.stop)
  const { agents } = fleet
  const matrix = async (window = '2s'): Promise<Cell[]> =>
    (await getJson<{ cells: Cell[] }>(`${fleet.aggregator.url}/api/v1/matrix?probe=pod&groupBy=node&window=${window}`)).cells

  await t.test('every pair is green once the roster has spread', async t => {
    const { value } = await until('12 green cells', async () => {
      const cells = await matrix()
      return cells.length === 12 && cells.every(c => c.samples > 0 && c.errors === 0) ? cells : undefined
    }, 15_000)
    t.equal(value.length, 12)
  })

  await t.test('stopping one agent\'s /ping server turns exactly the cells toward it red', async t => {
    await fleet.refuse(3)
    // A probe fails within one interval of the fault and its report leaves within the next.
    const { value: cells, ms } = await until('cells toward n4 red', async () => {
      const all = await matrix('1s')
      const toward = all.filter(c => c.dst === 'n4')
      // A probe in flight when the relay closes comes back reset; new ones are refused.
      return toward.length === 3 && toward.every(c => (c.errorsByReason.ECONNREFUSED ?? 0) > 0) ? all : undefined
    }, 2 * INTERVAL_MS + 500)
    t.comment(`cells toward n4 red after ${ms} ms (bound ${2 * INTERVAL_MS + 500} ms)`)
    for (const c of cells) {
      if (c.dst === 'n4') t.match(c.errorsByReason, { ECONNREFUSED: Number }, `${c.src}→n4 refused`)
      else t.equal(c.errors, 0, `${c.src}→${c.dst} stays green`)
    }
    await fleet.admit(3)
    const { ms: recovered } = await until('n4 green again', async () => {
      const toward = (await matrix('1s')).filter(c => c.dst === 'n4')
      return toward.length === 3 && toward.every(c => c.errors === 0 && c.samples > 0) ? true : undefined
    }, 4 * INTERVAL_MS)
    t.comment(`cells toward n4 green again after ${recovered} ms`)
  })

  await t.test('a client without the right token is refused before any websocket exists', async t => {
    for (const headers of [{}, { authorization: 'Bearer not-the-token' }, { authorization: TOKEN }]) {
      const status = await new Promise<number>(resolve => {
        const ws = new WebSocket(fleet.aggregator.url.replace('http', 'ws') + '/api/v1/stream', { headers })
        ws.on('unexpected-response', (_req, res) => { resolve(res.statusCode ?? 0); ws.terminate() })
        ws.on('open', () => { resolve(101); ws.close() })
        ws.on('error', () => {})
      })
      t.equal(status, 401, `${JSON.stringify(headers)} gets 401`)
    }
  })

  await t.test('a garbage frame closes only that connection; the agents keep reporting', async t => {
    const rows = async (): Promise<AgentRow[]> => (await getJson<{ agents: AgentRow[] }>(`${fleet.aggregator.url}/api/v1/agents`)).agents
    const before = await rows()
    const ws = new WebSocket(fleet.aggregator.url.replace('http', 'ws') + '/api/v1/stream', { headers: { authorization: `Bearer ${TOKEN}` } })
    const closed = new Promise<number>(resolve => ws.on('close', code => resolve(code)))
    await new Promise<void>((resolve, reject) => ws.once('open', () => resolve()).once('error', reject))
    ws.send('\u0000not json at all')
    t.equal(await closed, 1008, 'the sender is closed with a policy violation')
    await until('every agent delivered another report', async () => {
      const now = await rows()
      return nodes.every(n => now.find(r => r.node === n)!.reports.lastSeq > before.find(r => r.node === n)!.reports.lastSeq) ? true : undefined
    }, 3 * INTERVAL_MS)
    const after = await rows()
    t.equal(after.length, nodes.length, 'every agent is listed')
    t.ok(after.length > 0 && after.every(r => r.connected), 'every agent is still connected')
  })

  await t.test('reports made while the aggregator is down all arrive once, after it is back', async t => {
    await fleet.aggregator.stop('SIGKILL')
    await new Promise(resolve => setTimeout(resolve, 4 * INTERVAL_MS))
    const during = await Promise.all(agents.map(a => getJson<AgentStatus>(`${a.url}/status`)))
    for (const [i, s] of during.entries()) t.ok(s.buffered >= 3, `${nodes[i]} buffered ${s.buffered} reports while the aggregator was down`)
    await fleet.restartAggregator()
    const { value: after } = await until('agents caught up', async () => {
      const rows = (await getJson<{ agents: AgentRow[] }>(`${fleet.aggregator.url}/api/v1/agents`)).agents
      const statuses = await Promise.all(agents.map(a => getJson<AgentStatus>(`${a.url}/status`)))
      const caughtUp = rows.length === 4 && statuses.every((s, i) => s.buffered === 0 && rows.find(r => r.node === nodes[i])!.reports.lastSeq >= during[i]!.seq)
      return caughtUp ? { rows, statuses } : undefined
    }, 10_000)
    for (const [i, node] of nodes.entries()) {
      // What the agent saw acknowledged by the old aggregator, read while no aggregator ran.
      const acked = during[i]!.acked
      const now = after.rows.find(r => r.node === node)!.reports
      t.equal(after.statuses[i]!.dropped, 0, `${node} dropped nothing`)
      t.ok(now.firstSeq !== null && now.firstSeq <= acked + 1, `${node}: no gap between ${acked} (acked by the old aggregator) and ${now.firstSeq} (first at the new one)`)
      t.equal(now.accepted, now.lastSeq - now.firstSeq! + 1, `${node}: every seq from ${now.firstSeq} to ${now.lastSeq} applied exactly once`)
    }
  })
})
