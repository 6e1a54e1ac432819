// npm start: a local fleet on loopback, an aggregator and six agents on 127.0.0.11-16, half
// labelled cniplugin=aws and half cniplugin=cilium, running every probe kind until Ctrl-C.
// What a cluster provides is played by small local stand-ins (scripts/stand-ins/): a round-robin
// forwarder as the agents' Service (127.0.1.100:8081, and localhost:<port + 2> by name), a resolver
// (127.0.1.53:5353), an external HTTP endpoint (127.0.1.200:8088), and a path with an MTU black
// hole in front of the last agent, so one mtu column turns red on purpose. No traffic, DNS included,
// leaves loopback: getaddrinfo only sees `localhost` (from /etc/hosts), and the wire probes ask the
// stand-in resolver, never the machine's.
// Flags: --agents N (default 6), --port P (aggregator, default 8080), --interval 2s,
// --subnet 127.0 (agents on <subnet>.0.x, stand-ins on <subnet>.1.x: a second fleet can run beside the first).

import { randomBytes } from 'node:crypto'
import { mkdirSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { getJson, HEALTHY_WITHIN_MS, startAgent, startAggregator, type Proc } from './fleet-processes.ts'
import { startDnsStandIn } from './stand-ins/dns-server.ts'
import { startHttpStandIn } from './stand-ins/http-target.ts'
import { startMtuBlackHole } from './stand-ins/mtu-blackhole.ts'
import { startServiceVip } from './stand-ins/service-vip.ts'

const USAGE = `Usage: npm start -- [--agents N] [--port P] [--interval D] [--subnet 127.N]

A local fleet on loopback: an aggregator on port P and N agents (half cniplugin=aws, half
cniplugin=cilium) on <subnet>.x.y, with stand-ins for a Service VIP, a resolver, an external
endpoint and an MTU black hole. Ctrl-C stops everything.

  --agents N      agents, 2 to 200 (default 6)
  --port P        aggregator port (default 8080; the Service stand-in by name uses P+2)
  --interval D    probe and report interval, e.g. 2s (default 2s)
  --subnet 127.N  loopback /16 for the agents and stand-ins (default 127.0)
  -h, --help      this text
`

let parsed
try {
  parsed = parseArgs({
    options: {
      agents: { type: 'string', default: '6' },
      port: { type: 'string', default: '8080' },
      interval: { type: 'string', default: '2s' },
      subnet: { type: 'string', default: '127.0' },
      help: { type: 'boolean', short: 'h', default: false }
    }
  })
} catch (err) {
  console.error(`pingfleet-fleet: PINGFLEET_ERR_CONFIG: ${(err as Error).message}\n\n${USAGE}`)
  process.exit(2)
}
const { values } = parsed
if (values.help) {
  process.stdout.write(USAGE)
  process.exit(0)
}
const agentCount = Number(values.agents)
const port = Number(values.port)
const subnet = values.subnet!
if (!Number.isInteger(agentCount) || agentCount < 2 || agentCount > 200) {
  console.error(`pingfleet-fleet: PINGFLEET_ERR_CONFIG: --agents=${values.agents} is invalid: expected an integer from 2 to 200`)
  process.exit(2)
}
if (!/^127\.(25[0-5]|2[0-4]\d|1?\d?\d)$/.test(subnet)) {
  console.error(`pingfleet-fleet: PINGFLEET_ERR_CONFIG: --subnet=${subnet} is invalid: expected 127.N, such as 127.0`)
  process.exit(2)
}
const token = randomBytes(18).toString('base64url')
const logDir = '.cache/fleet'
mkdirSync(logDir, { recursive: true })
const env = { PINGFLEET_INTERVAL: values.interval!, PINGFLEET_LOG_LEVEL: 'info' }

const AGENT_PORT = 8081
const VIP = { host: `${subnet}.1.100`, port: 8081 }
/** The Service by name: `localhost` resolves from /etc/hosts, so getaddrinfo stays on the machine. */
const VIP_BY_NAME = { host: 'localhost', port: port + 2 }
const DNS = { host: `${subnet}.1.53`, port: 5353 }
const EXTERNAL = { host: `${subnet}.1.200`, port: 8088 }
const SERVICE_FQDN = 'pingfleet-agent.pingfleet.svc.cluster.local'
const agentIps = Array.from({ length: agentCount }, (_, i) => `${subnet}.0.${11 + i}`)
/** The last agent is reached over a path that drops answers past this many bytes: a path-MTU black hole. */
const BLACK_HOLE_LIMIT = 4000
const blackHoled = agentCount - 1
const blackHolePath = { host: `${subnet}.1.${11 + blackHoled}`, port: AGENT_PORT }
const pad = (text: string, width: number): string => text.length >= width ? text : text.padEnd(width)

const procs: Proc[] = []
const standIns: Array<{ close: () => Promise<void> }> = []
/** Set as shutdown begins: the status printer then stops, and its requests failing is expected. */
let stopping = false
const printers: NodeJS.Timeout[] = []
async function shutdown (code: number): Promise<never> {
  stopping = true
  for (const timer of printers) clearTimeout(timer)
  await Promise.all(procs.reverse().map(p => p.stop()))
  await Promise.all(standIns.map(s => s.close()))
  process.exit(code)
}
process.on('SIGINT', () => void shutdown(0))
process.on('SIGTERM', () => void shutdown(0))

try {
  // Stand-ins first, so the agents' first probes find them.
  // Like a Service's endpoints, only agents that are up: each is added once it is healthy. The first
  // agent probes the Service before that, so its first service probe may find no backend at all and be
  // closed unanswered (raw EOF), as a Service without endpoints does; once one agent is in, none is.
  const backends: Array<{ host: string, port: number }> = []
  const vip = await startServiceVip([VIP.host], VIP.port, () => backends)
  standIns.push(vip)
  // ::1 only where the machine has IPv6 loopback; localhost may resolve to either.
  const vipByName = await startServiceVip(['127.0.0.1', '::1'], VIP_BY_NAME.port, () => backends)
  standIns.push(vipByName)
  const dns = await startDnsStandIn(DNS.host, DNS.port, {
    'kubernetes.default.svc.cluster.local': [VIP.host],
    [SERVICE_FQDN]: [VIP.host]
  })
  standIns.push(dns)
  const external = await startHttpStandIn(EXTERNAL.host, EXTERNAL.port)
  standIns.push(external)
  console.log(`stand-in     Service VIP (round-robin TCP forwarder)   ${VIP.host}:${VIP.port} and ${vipByName.listening.join(', ')} → the agents' :${AGENT_PORT}`)
  console.log(`stand-in     cluster resolver (answers locally only)   ${dns.address} udp+tcp   ${SERVICE_FQDN}, kubernetes.default.svc.cluster.local`)
  console.log(`stand-in     external endpoint (HTTP 200)              ${external.url}/healthz`)
  const blackHole = await startMtuBlackHole(blackHolePath.host, blackHolePath.port, { host: agentIps[blackHoled]!, port: AGENT_PORT }, BLACK_HOLE_LIMIT)
  standIns.push(blackHole)
  console.log(`stand-in     path-MTU black hole (answers > ${BLACK_HOLE_LIMIT} B stall)  ${blackHole.address} → ${agentIps[blackHoled]}:${AGENT_PORT}: peers reach the last agent over it, so its mtu/8500 column is MTU_BLACKHOLE on purpose`)

  const aggregator = await startAggregator({ port, token, env, log: `${logDir}/aggregator.log` })
  procs.push(aggregator)
  console.log(`aggregator   ${aggregator.url}   (log ${logDir}/aggregator.log)`)
  const suite = {
    PINGFLEET_MTU_SIZES: '1400,8500',
    // A demo shows the black hole within seconds, so mtu probes keep the fleet's own cadence here.
    PINGFLEET_MTU_INTERVAL: values.interval!,
    // udp trains default to every 30 s; the demo runs them at the fleet cadence so its udp matrix fills at once.
    PINGFLEET_UDP_INTERVAL: values.interval!,
    PINGFLEET_SERVICE_TARGETS: `${VIP.host}:${VIP.port},${VIP_BY_NAME.host}:${VIP_BY_NAME.port}`,
    // Names getaddrinfo answers from /etc/hosts: the machine's own resolver is never asked.
    PINGFLEET_DNS_NAMES: 'localhost,localhost/4',
    PINGFLEET_DNS_SERVERS: dns.address,
    PINGFLEET_DNS_WIRE_NAMES: `${SERVICE_FQDN},kubernetes.default.svc.cluster.local`,
    PINGFLEET_DNS_WIRE_TYPES: 'A',
    PINGFLEET_HTTP_TARGETS: `${external.url}/healthz`,
    PINGFLEET_TCP_TARGETS: `${EXTERNAL.host}:${EXTERNAL.port},localhost:${port}`
  }
  for (let i = 0; i < agentCount; i++) {
    const ip = agentIps[i]!
    const group = i % 2 === 0 ? 'aws' : 'cilium'
    const node = `node-${String(i + 1).padStart(2, '0')}-${group}`
    procs.push(await startAgent({
      // Peers are told the black-hole path as this agent's pod IP.
      ...(i === blackHoled ? { podIp: blackHolePath.host } : {}),
      node, ip, port: AGENT_PORT, labels: { cniplugin: group, 'topology.kubernetes.io/zone': `zone-${'abc'[i % 3]}` },
      aggregatorUrl: aggregator.url, token, env: { ...env, ...suite }, log: `${logDir}/${node}.log`,
      // Each agent already running probes every other one, so the load grows with the square of their
      // number and a new agent starts slower with every one before it. Measured with --agents 30 on a
      // shared 2-core machine: the 13th took 18 s, the 21st 34 s. So its wait grows with their number.
      healthyWithinMs: HEALTHY_WITHIN_MS + 2000 * i
    }))
    backends.push({ host: ip, port: AGENT_PORT })
    console.log(`agent        http://${ip}:${AGENT_PORT}/ping   ${node}   cniplugin=${group}${i === blackHoled ? `   (peers reach it via the black-hole path ${blackHole.address})` : ''}`)
  }
  const matrix = (probe: string, groupBy: string): string => `${aggregator.url}/api/v1/matrix?probe=${probe}&groupBy=${groupBy}&window=1m`
  console.log(`
matrix in a browser               ${aggregator.url}/?probe=pod&groupBy=node
matrix pod (node × node)          ${matrix('pod', 'node')}
matrix pod (group × group)        ${matrix('pod', 'cniplugin')}
matrix mtu (node × node/size)     ${matrix('mtu', 'node')}
matrix mtu (group × group)        ${matrix('mtu', 'cniplugin')}
matrix service (group × target)   ${matrix('service', 'cniplugin')}
matrix dns-lookup                 ${matrix('dns-lookup', 'cniplugin')}
matrix dns-wire                   ${matrix('dns-wire', 'cniplugin')}
matrix http                       ${matrix('http', 'cniplugin')}
matrix tcp                        ${matrix('tcp', 'cniplugin')}
matrix udp (group × group, loss)  ${matrix('udp', 'cniplugin')}
service backends per group        ${aggregator.url}/api/v1/service?groupBy=cniplugin&window=5m
agents                            ${aggregator.url}/api/v1/agents
metrics                           ${aggregator.url}/metrics
Ctrl-C stops the fleet.
`)
  // Show every kind's group matrix once the first reports are in, then every 30 s.
  type Matrix = { cells: Array<{ src: string, dst: string, samples: number, errorRatio: number, errorsByReason: Record<string, number>, latency: { p50: number | null, p99: number | null }, loss?: { retransmitRatio: number | null, lossRatio: number | null, jitter: number | null } }> }
  const show = async (): Promise<void> => {
    const ms = (s: number | null): string => s === null ? '-' : (s * 1000).toFixed(2) + ' ms'
    const pct = (r: number): string => (r * 100).toFixed(1) + '%'
    const lossText = (loss: Matrix['cells'][number]['loss']): string => {
      if (loss === undefined) return ''
      if (loss.lossRatio !== null) return `  loss ${pct(loss.lossRatio)}  jitter ${ms(loss.jitter)}`
      return loss.retransmitRatio === null ? '' : `  syn-retransmits ${pct(loss.retransmitRatio)}`
    }
    for (const probe of ['pod', 'mtu', 'service', 'dns-lookup', 'dns-wire', 'http', 'tcp', 'udp']) {
      if (stopping) return
      const m = await getJson<Matrix>(matrix(probe, 'cniplugin'))
      for (const c of m.cells) {
        const reasons = Object.keys(c.errorsByReason).join(',')
        console.log(`${probe.padEnd(10)} ${c.src.padEnd(8)} → ${pad(c.dst, 52)} samples ${String(c.samples).padStart(5)}  errors ${(c.errorRatio * 100).toFixed(1).padStart(5)}%${reasons === '' ? '' : ` (${reasons})`}  p50 ${ms(c.latency.p50)}  p99 ${ms(c.latency.p99)}${lossText(c.loss)}`)
      }
    }
    const view = await getJson<{ rows: Array<{ service: string, src: string, backends: Array<{ node: string }>, flagged: string[], judged: boolean }> }>(`${aggregator.url}/api/v1/service?groupBy=cniplugin&window=5m`)
    for (const r of view.rows) {
      const never = !r.judged ? ' (too few answers yet to tell which never answer)' : r.flagged.length === 0 ? '' : `; never: ${r.flagged.join(', ')}`
      console.log(`service    ${r.src.padEnd(8)} → ${r.service.padEnd(20)} answered by ${r.backends.length} backends${never}`)
    }
    console.log('')
  }
  // Ctrl-C in a terminal signals the whole process group: the aggregator may stop before this process
  // hears of it, so a request failing while the aggregator exits is the shutdown, not an error.
  const aggregatorExited = new Promise(resolve => aggregator.child.once('exit', resolve))
  const print = (): void => {
    void show().catch(async (err: unknown) => {
      await Promise.race([aggregatorExited, new Promise(resolve => setTimeout(resolve, 2000).unref())])
      if (!stopping && aggregator.child.exitCode === null && aggregator.child.signalCode === null) console.error(String(err))
    })
  }
  printers.push(setTimeout(print, 5000), setInterval(print, 30_000))
} catch (err) {
  console.error(`pingfleet-fleet: could not start: ${err instanceof Error ? err.message : String(err)}`)
  await shutdown(1)
}
