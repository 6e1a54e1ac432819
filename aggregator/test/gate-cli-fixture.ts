// The gate CLI's test fleet: an aggregator with a gates file, an aws agent (n1) whose pod probes to
// n3 fail 1 in 4, and a cilium agent (n3); and the CLI run as a process. Shared by gate-cli.test.ts
// and migrate-nodes.test.ts.

import type { Test } from 'tap'
import { spawn } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { bucketIndex } from '@pingfleet/protocol'
import { aggregator, hello, RawAgent, report } from './helpers.ts'

export const CLI = fileURLToPath(new URL('../src/cli.ts', import.meta.url))
export const MIGRATE = fileURLToPath(new URL('../../docs/examples/migrate-nodes.sh', import.meta.url))
const dir = mkdtempSync(join(tmpdir(), 'pingfleet-cli-'))
export const gatesFile = join(dir, 'gates.yaml')
writeFileSync(gatesFile, `
gates:
  - name: aws-up
    maxStaleness: 1m
    coverage: [{ group: aws, minRatio: 1 }]
  - name: aws-to-cilium
    minSamples: 1
    window: 5m
    maxStaleness: 5m
    rules: [{ probe: pod, src: aws, dst: cilium, maxErrorRatio: 0 }]
  - name: dns-backends
    services: [{ service: kube-dns, minBackendRatio: 1 }]
  - name: late
    coverage: [{ group: late, minRatio: 1 }]
  - name: batch
    window: 5m
    minSamples: 1
    maxStaleness: 5m
    nodeSelector: batch2
    nodeRules: [{ probe: pod, maxNodeErrorRatio: 0 }]
`)

export interface Run { code: number | null, stdout: string, stderr: string }

/** Starts the CLI; `output()` shows what it printed so far, `done` resolves when it exits. */
export function start (...args: string[]): { output: () => string, done: Promise<Run> } {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
  const done = new Promise<Run>((resolve, reject) => {
    child.once('error', reject)
    child.once('close', code => resolve({ code, stdout, stderr }))
  })
  return { output: () => stdout, done }
}

export const cli = (...args: string[]): Promise<Run> => start(...args).done

/** A loopback port nothing listens on. */
export async function closedPort (): Promise<number> {
  const server = createServer()
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as { port: number }).port
  await new Promise(resolve => server.close(resolve))
  return port
}

/** The fleet every CLI test reads; torn down with `t`. */
export async function cliFleet (t: Test): Promise<{ url: string, agent: RawAgent, cilium: RawAgent }> {
  const agg = await aggregator({ PINGFLEET_GATES_FILE: gatesFile })
  t.teardown(() => agg.close())
  const url = agg.address()
  const agent = new RawAgent(url)
  t.teardown(() => agent.socket.close())
  await agent.opened()
  agent.send(hello('n1', { cniplugin: 'aws' }))
  await agent.waitFor(m => m.type === 'peers')
  agent.send(report(1, Date.now(), [{ probe: 'pod', target: 'n3', count: 4, latency: [bucketIndex(0.002), 3], errors: [{ reason: 'ECONNREFUSED', raw: 'ECONNREFUSED', count: 1 }] }]))
  await agent.waitFor(m => m.type === 'ack' && m.seq === 1)
  // n3 is not in the roster, so its results land in the "(none)" group: register it as cilium.
  const cilium = new RawAgent(url)
  t.teardown(() => cilium.socket.close())
  await cilium.opened()
  cilium.send(hello('n3', { cniplugin: 'cilium' }))
  await cilium.waitFor(m => m.type === 'welcome')
  agent.send(report(2, Date.now(), [{ probe: 'pod', target: 'n3', count: 4, latency: [bucketIndex(0.002), 3], errors: [{ reason: 'ECONNREFUSED', raw: 'ECONNREFUSED', count: 1 }] }]))
  cilium.send(report(1, Date.now(), []))
  await agent.waitFor(m => m.type === 'ack' && m.seq === 2)
  await cilium.waitFor(m => m.type === 'ack' && m.seq === 1)

  return { url, agent, cilium }
}
