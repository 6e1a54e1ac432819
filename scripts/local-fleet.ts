// npm start: a local fleet on loopback, an aggregator and six agents on 127.0.0.11-16, half
// labelled cniplugin=aws and half cniplugin=cilium, until Ctrl-C.
// Flags: --agents N (default 6), --port P (aggregator, default 8080), --interval 2s.

import { randomBytes } from 'node:crypto'
import { mkdirSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { getJson, startAgent, startAggregator, type Proc } from './fleet-processes.ts'

const { values } = parseArgs({
  options: {
    agents: { type: 'string', default: '6' },
    port: { type: 'string', default: '8080' },
    interval: { type: 'string', default: '2s' }
  }
})
const agentCount = Number(values.agents)
const port = Number(values.port)
if (!Number.isInteger(agentCount) || agentCount < 2 || agentCount > 200) {
  console.error(`pingfleet-fleet: PINGFLEET_ERR_CONFIG: --agents=${values.agents} is invalid: expected an integer from 2 to 200`)
  process.exit(2)
}
const token = randomBytes(18).toString('base64url')
const logDir = '.cache/fleet'
mkdirSync(logDir, { recursive: true })
const env = { PINGFLEET_INTERVAL: values.interval!, PINGFLEET_LOG_LEVEL: 'info' }

const procs: Proc[] = []
async function shutdown (code: number): Promise<never> {
  await Promise.all(procs.reverse().map(p => p.stop()))
  process.exit(code)
}
process.on('SIGINT', () => void shutdown(0))
process.on('SIGTERM', () => void shutdown(0))

try {
  const aggregator = await startAggregator({ port, token, env, log: `${logDir}/aggregator.log` })
  procs.push(aggregator)
  console.log(`aggregator   ${aggregator.url}   (log ${logDir}/aggregator.log)`)
  for (let i = 0; i < agentCount; i++) {
    const ip = `127.0.0.${11 + i}`
    const group = i % 2 === 0 ? 'aws' : 'cilium'
    const node = `node-${String(i + 1).padStart(2, '0')}-${group}`
    procs.push(await startAgent({
      node, ip, port: 8081, labels: { cniplugin: group, 'topology.kubernetes.io/zone': `zone-${'abc'[i % 3]}` },
      aggregatorUrl: aggregator.url, token, env, log: `${logDir}/${node}.log`
    }))
    console.log(`agent        http://${ip}:8081/ping   ${node}   cniplugin=${group}`)
  }
  console.log(`
matrix (node × node)    ${aggregator.url}/api/v1/matrix?probe=pod&groupBy=node&window=1m
matrix (group × group)  ${aggregator.url}/api/v1/matrix?probe=pod&groupBy=cniplugin&window=1m
agents                  ${aggregator.url}/api/v1/agents
metrics                 ${aggregator.url}/metrics
Ctrl-C stops the fleet.
`)
  // Show the group matrix once the first reports are in, then every 30 s.
  const show = async (): Promise<void> => {
    const m = await getJson<{ cells: Array<{ src: string, dst: string, samples: number, errorRatio: number, latency: { p50: number | null, p99: number | null } }> }>(
      `${aggregator.url}/api/v1/matrix?probe=pod&groupBy=cniplugin&window=1m`)
    for (const c of m.cells) {
      const ms = (s: number | null): string => s === null ? '-' : (s * 1000).toFixed(2) + ' ms'
      console.log(`${c.src.padEnd(8)} → ${c.dst.padEnd(8)} samples ${String(c.samples).padStart(5)}  errors ${(c.errorRatio * 100).toFixed(1).padStart(5)}%  p50 ${ms(c.latency.p50)}  p99 ${ms(c.latency.p99)}`)
    }
    console.log('')
  }
  setTimeout(() => void show().catch(err => console.error(String(err))), 5000)
  setInterval(() => void show().catch(err => console.error(String(err))), 30_000)
} catch (err) {
  console.error(`pingfleet-fleet: could not start: ${err instanceof Error ? err.message : String(err)}`)
  await shutdown(1)
}
