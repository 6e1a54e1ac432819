// A cluster for running the documented migration loop end to end: docs/examples/migrate-nodes.sh
// itself drives real agent processes and an aggregator whose discovery watches the fake Kubernetes
// API (aggregator/test/kube-fake.ts). `kubectl` is a stand-in that sends the fake API the requests
// kubectl sends (test/helpers/kubectl-standin.ts); deleting an agent pod runs what the kubelet and the
// DaemonSet controller would: the pod turns terminating, its agent gets SIGTERM, the pod goes, a new
// pod's agent starts. `pingfleet` is the real CLI. Addresses 127.0.7.x (agents) and 127.0.8.x (pod
// addresses where nothing listens: a node whose inbound path is broken) keep clear of other suites;
// each test file takes its own slot.

import type { Test } from 'tap'
import { spawn } from 'node:child_process'
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { API_TOKEN, FakeKube, NAMESPACE, node as kubeNode, pod as kubePod } from '../../aggregator/test/kube-fake.ts'
import { getJson, startAgent, startAggregator, type Proc } from '../../scripts/fleet-processes.ts'
import { until } from './wait.ts'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const SCRIPT = join(ROOT, 'docs/examples/migrate-nodes.sh')
const TOKEN = 'integration-token-migration'
export const INTERVAL_MS = 1000
// Below the kernel's ephemeral range (32768+), as in fleet.test.ts, on addresses of our own.
export const BASE = 22_000 + (process.pid % 1000) * 10
export const BATCH_LABEL = 'pingfleet.io/migration-batch'

// Gates as an operator would write them for this loop (docs/gates.md), scaled to a 1 s interval.
const GATES = `
gates:
  - name: baseline
    window: 3s
    minSamples: 3
    maxStaleness: 3s
    rules:
      - { probe: pod, src: "*", dst: "*", maxErrorRatio: 0 }
    coverage:
      - { group: "*", minRatio: 1 }
  - name: cilium-batch
    window: 3s
    minSamples: 3
    maxStaleness: 3s
    # Every node of any batch; the script narrows it to one batch with --selector.
    nodeSelector: ${BATCH_LABEL}
    nodeRules:
      - { probe: pod, maxNodeErrorRatio: 0, minPeers: 2 }
`

export interface AgentRow { node: string, state: string, connected: boolean, group: string }
export interface Cell { src: string, dst: string, samples: number, errors: number, errorsByReason: Record<string, number> }

/** One cluster: the fake API, an aggregator with discovery and gates, one agent process per node. */
export class Cluster {
  readonly fake = new FakeKube()
  readonly names: string[]
  /** Nodes whose next agent advertises a pod address where nothing listens. */
  readonly broken = new Set<string>()
  readonly agents = new Map<string, Proc>()
  readonly restarts: string[] = []
  private readonly generation = new Map<string, number>()
  private readonly pending = new Set<Promise<void>>()
  private readonly dir = mkdtempSync(join(tmpdir(), 'pingfleet-migration-'))
  private readonly slot: number
  aggregator!: Proc
  apiUrl = ''

  constructor (slot: number, names: string[]) {
    this.slot = slot
    this.names = names
  }

  private ip (i: number): string { return `127.0.7.${21 + this.slot * 10 + i}` }
  private deadIp (i: number): string { return `127.0.8.${21 + this.slot * 10 + i}` }
  private get aggregatorIp (): string { return `127.0.7.${1 + this.slot}` }
  private get port (): number { return BASE + this.slot * 2 }
  private podName (node: string): string { return `agent-${node}-g${this.generation.get(node) ?? 0}` }

  async start (t: Test): Promise<void> {
    t.teardown(() => this.stop())
    const url = this.apiUrl = await this.fake.listen()
    writeFileSync(join(this.dir, 'token'), API_TOKEN)
    writeFileSync(join(this.dir, 'gates.yaml'), GATES)
    for (const [i, name] of this.names.entries()) {
      this.fake.put('Node', kubeNode(name, { cniplugin: 'aws', 'topology.kubernetes.io/zone': 'z1' }))
      this.fake.put('Pod', kubePod(this.podName(name), name, { podIP: this.ip(i) }))
    }
    this.fake.onPodDelete = pod => {
      const node = (pod.spec as { nodeName: string }).nodeName
      const done = this.replace(node, pod.metadata.name).finally(() => this.pending.delete(done))
      this.pending.add(done)
    }
    this.aggregator = await startAggregator({
      host: this.aggregatorIp,
      port: this.port,
      token: TOKEN,
      env: {
        PINGFLEET_INTERVAL: `${INTERVAL_MS}ms`,
        PINGFLEET_HEARTBEAT: '1s',
        PINGFLEET_LOG_LEVEL: 'warn',
        PINGFLEET_KUBE_API_URL: url,
        PINGFLEET_KUBE_TOKEN_FILE: join(this.dir, 'token'),
        PINGFLEET_NAMESPACE: NAMESPACE,
        PINGFLEET_GATES_FILE: join(this.dir, 'gates.yaml')
      }
    })
    for (const name of this.names) this.agents.set(name, await this.startAgent(name))
    await until('every agent connected and every pair green', async () => {
      const rows = await this.rows()
      const cells = await this.matrix('2s')
      const n = this.names.length
      return rows.filter(r => r.connected && r.state === 'ready').length === n && cells.length === n * (n - 1) && cells.every(c => c.samples > 0 && c.errors === 0) ? true : undefined
    }, 30_000)
  }

  private startAgent (name: string): Promise<Proc> {
    const i = this.names.indexOf(name)
    return startAgent({
      node: name,
      ip: this.ip(i),
      podIp: this.broken.has(name) ? this.deadIp(i) : this.ip(i),
      port: this.port + 1,
      labels: { cniplugin: 'aws' },
      aggregatorUrl: this.aggregator.url,
      token: TOKEN,
      env: {
        PINGFLEET_POD_NAME: this.podName(name),
        PINGFLEET_INTERVAL: `${INTERVAL_MS}ms`,
        PINGFLEET_PROBE_TIMEOUT: '500ms',
        PINGFLEET_HEARTBEAT: '1s',
        PINGFLEET_RECONNECT_MIN: '100ms',
        PINGFLEET_RECONNECT_MAX: '500ms',
        PINGFLEET_MTU_SIZES: '',
        PINGFLEET_LOG_LEVEL: 'warn'
      }
    })
  }

  /** The kubelet and the DaemonSet controller: SIGTERM the agent, remove its pod, start the next one. */
  private async replace (name: string, podName: string): Promise<void> {
    this.restarts.push(name)
    await this.agents.get(name)?.stop('SIGTERM')
    this.fake.remove('Pod', podName)
    this.generation.set(name, (this.generation.get(name) ?? 0) + 1)
    const i = this.names.indexOf(name)
    this.fake.put('Pod', kubePod(this.podName(name), name, { podIP: this.broken.has(name) ? this.deadIp(i) : this.ip(i) }))
    this.agents.set(name, await this.startAgent(name))
  }

  /** Waits until every restart the API has asked for has finished. */
  async settled (): Promise<void> {
    while (this.pending.size > 0) await Promise.all([...this.pending])
  }

  async rows (): Promise<AgentRow[]> {
    return (await getJson<{ agents: AgentRow[] }>(`${this.aggregator.url}/api/v1/agents`)).agents
  }

  async matrix (window: string): Promise<Cell[]> {
    return (await getJson<{ cells: Cell[] }>(`${this.aggregator.url}/api/v1/matrix?probe=pod&groupBy=node&window=${window}`)).cells
  }

  nodeLabels (name: string): Record<string, string> {
    return (this.fake.nodes.get(name)!.metadata.labels ?? {}) as Record<string, string>
  }

  cordoned (name: string): boolean {
    return (this.fake.nodes.get(name)!.spec as { unschedulable?: boolean }).unschedulable === true
  }

  /** Runs docs/examples/migrate-nodes.sh (with `args`, such as --resume) with kubectl and pingfleet on PATH. */
  async migrate (env: Record<string, string>, ...args: string[]): Promise<{ code: number | null, out: string }> {
    writeWrapper(join(this.dir, 'kubectl'), join(ROOT, 'test/helpers/kubectl-standin.ts'))
    writeWrapper(join(this.dir, 'pingfleet'), join(ROOT, 'aggregator/src/cli.ts'))
    const child = spawn('bash', [SCRIPT, ...args], {
      cwd: ROOT,
      env: {
        ...process.env,
        PATH: `${this.dir}:${process.env.PATH ?? ''}`,
        KUBECTL_STANDIN_SERVER: this.apiUrl,
        KUBECTL_STANDIN_TOKEN: API_TOKEN,
        AGGREGATOR: this.aggregator.url,
        BASELINE_GATE: 'baseline',
        GATE: 'cilium-batch',
        BATCH_LABEL,
        RUN: 'r1',
        GATE_WAIT: '45s',
        GATE_INTERVAL: '1s',
        ...env
      },
      stdio: ['ignore', 'pipe', 'pipe']
    })
    let out = ''
    child.stdout.on('data', (d: Buffer) => { out += d.toString() })
    child.stderr.on('data', (d: Buffer) => { out += d.toString() })
    const code = await new Promise<number | null>(resolve => child.once('close', resolve))
    await this.settled()
    return { code, out }
  }

  async stop (): Promise<void> {
    this.fake.onPodDelete = undefined
    await Promise.allSettled([...this.pending])
    await Promise.all([...this.agents.values()].map(a => a.stop('SIGKILL')))
    await this.aggregator?.stop('SIGKILL')
    await this.fake.close()
    rmSync(this.dir, { recursive: true, force: true })
  }
}

/** An executable that runs a TypeScript entry point with this Node (24, type stripping). */
function writeWrapper (path: string, entry: string): void {
  writeFileSync(path, `#!/bin/sh\nexec "${process.execPath}" "${entry}" "$@"\n`)
  chmodSync(path, 0o755)
}

