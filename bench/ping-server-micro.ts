// The answering side of /ping: CPU of an agent's /ping server (agent/src/server.ts of <checkout>, in a
// process of its own, as a peer's probes see it) per answered probe. In a fleet every agent answers
// every peer's probe: at 1,000 peers every 5 s that is 200 answers a second, which the agent bench
// (bench/agent-load.ts) does not measure. `node bench/ping-server-micro.ts <checkout> [probes=20000]
// [parallel=8]`: the probes are this checkout's pingOnce (a new connection each, as peers do); the
// server's user+system CPU is read from /proc around them, after a warm-up. Prints one JSON line.

import { fork } from 'node:child_process'
import type { AddressInfo } from 'node:net'
import { cpuSeconds } from './proc.ts'

/** Labels as an agent in a cluster has them: the node's Kubernetes labels merged with its own. */
const LABELS = {
  'kubernetes.io/hostname': 'ip-10-0-12-34.eu-west-1.compute.internal', 'kubernetes.io/os': 'linux', 'kubernetes.io/arch': 'amd64',
  'topology.kubernetes.io/region': 'eu-west-1', 'topology.kubernetes.io/zone': 'eu-west-1a', 'node.kubernetes.io/instance-type': 'm6i.xlarge',
  cniplugin: 'cilium'
}
const NODE = 'ip-10-0-12-34.eu-west-1.compute.internal'

if (process.argv[2] === '--serve') {
  const { buildServer } = await import(`${process.argv[3]}/agent/src/server.ts`)
  const { pino } = await import('pino')
  // A new identity object per call, as agent.ts builds it.
  const app = buildServer({ identity: () => ({ node: NODE, pod: 'pingfleet-agent-x7k2p', labels: LABELS }), status: () => { throw new Error('unused') }, draining: () => false }, pino({ level: 'silent' }))
  await app.listen({ host: '127.0.0.1', port: 0 })
  process.send!((app.server.address() as AddressInfo).port)
} else {
  const root = process.argv[2] ?? '.'
  const probes = Number(process.argv[3] ?? 20_000)
  const parallel = Number(process.argv[4] ?? 8)
  const { pingOnce } = await import('../agent/src/ping-client.ts')
  const child = fork(new URL(import.meta.url).pathname, ['--serve', root], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  const port = await new Promise<number>(resolve => child.once('message', port => resolve(port as number)))
  let bytes = 0
  const run = async (n: number): Promise<void> => {
    let next = 0
    await Promise.all(Array.from({ length: parallel }, async () => {
      while (next++ < n) {
        const answer = await pingOnce('127.0.0.1', port, AbortSignal.timeout(5000), 5000, { connectedAt: undefined, firstByteAt: undefined })
        if (answer.status !== 200) throw new Error(`status ${answer.status}`)
        bytes = answer.body.length
      }
    }))
  }
  await run(Math.min(5000, probes))
  const cpu0 = cpuSeconds(child.pid!)
  const t0 = performance.now()
  await run(probes)
  const cpu = cpuSeconds(child.pid!) - cpu0
  const wallS = (performance.now() - t0) / 1000
  child.kill()
  console.log(JSON.stringify({ root, probes, parallel, bodyBytes: bytes, serverUsPerProbe: Math.round(cpu * 1e6 / probes * 10) / 10, probesPerSecond: Math.round(probes / wallS) }))
}
