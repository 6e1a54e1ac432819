// Starts real aggregator and agent processes on loopback, for the local fleet and the
// integration suites. Each process runs the same entry point a container runs.

import { spawn, type ChildProcess } from 'node:child_process'
import { createWriteStream } from 'node:fs'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('..', import.meta.url))

export interface Proc {
  name: string
  child: ChildProcess
  url: string
  stop: (signal?: NodeJS.Signals) => Promise<number | null>
}

/** How long a process gets to answer /healthz by default. */
export const HEALTHY_WITHIN_MS = 15_000

export interface SpawnOptions {
  name: string
  /** A script relative to the repository root, run with this Node. */
  entry: string
  env: Record<string, string>
  url: string
  /** Where the JSON log lines go; 'inherit' prints them. */
  log: string | 'inherit' | 'ignore'
  /** How long it may take to answer /healthz; default HEALTHY_WITHIN_MS. */
  healthyWithinMs?: number
}

/** The last `n` non-empty lines of a text, for error messages. */
function lastLines (text: string, n: number): string[] {
  return text.split('\n').map(l => l.trimEnd()).filter(l => l !== '').slice(-n)
}

/** What a process said before it failed to start: its stderr, else the tail of its log. */
function said (stderr: string, stdout: string, log: string): string {
  const err = lastLines(stderr, 5)
  const out = lastLines(stdout, 3)
  const where = log === 'inherit' || log === 'ignore' ? '' : `; log ${log}`
  if (err.length > 0) return `; stderr: ${err.join(' | ')}${where}`
  return out.length > 0 ? `; nothing on stderr; last log lines: ${out.join(' | ')}${where}` : `; nothing on stderr or stdout${where}`
}

/**
 * Spawns `node <entry>` and resolves once GET <url>/healthz answers 200. Rejects when the process
 * exits first or is not healthy within `healthyWithinMs` (the process is then killed), quoting what it
 * printed: the last lines of stderr, else of its log.
 */
export async function spawnNode (o: SpawnOptions): Promise<Proc> {
  const child = spawn(process.execPath, [o.entry], {
    cwd: ROOT,
    env: { ...process.env, ...o.env },
    stdio: ['ignore', o.log === 'inherit' ? 'inherit' : 'pipe', 'pipe']
  })
  let stderr = ''
  // The last few KiB of stdout, to quote when the process fails to start.
  let stdout = ''
  child.stderr!.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  if (o.log !== 'inherit') child.stdout!.on('data', (chunk: Buffer) => { stdout = (stdout + chunk.toString()).slice(-4096) })
  if (o.log !== 'inherit' && o.log !== 'ignore') child.stdout!.pipe(createWriteStream(o.log, { flags: 'a' }))
  const exited = new Promise<number | null>(resolve => child.once('exit', code => resolve(code)))
  const withinMs = o.healthyWithinMs ?? HEALTHY_WITHIN_MS
  const deadline = Date.now() + withinMs
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${o.name} exited with ${child.exitCode}${said(stderr, stdout, o.log)}`)
    try {
      if ((await fetch(`${o.url}/healthz`)).ok) break
    } catch {}
    if (Date.now() > deadline) {
      child.kill('SIGKILL')
      throw new Error(`${o.name} did not become healthy at ${o.url} within ${withinMs / 1000} s${said(stderr, stdout, o.log)}`)
    }
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  return {
    name: o.name,
    child,
    url: o.url,
    stop: async (signal = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal)
      return exited
    }
  }
}

export interface AggregatorOptions {
  host?: string
  port: number
  token: string
  env?: Record<string, string>
  log?: string | 'inherit' | 'ignore'
}

export function startAggregator (o: AggregatorOptions): Promise<Proc> {
  const host = o.host ?? '127.0.0.1'
  return spawnNode({
    name: 'aggregator',
    entry: 'aggregator/src/main.ts',
    url: `http://${host}:${o.port}`,
    log: o.log ?? 'ignore',
    // As in the image (see Dockerfile).
    env: { MALLOC_MMAP_THRESHOLD_: '131072', PINGFLEET_LISTEN: `${host}:${o.port}`, PINGFLEET_TOKEN: o.token, ...o.env }
  })
}

export interface AgentOptions {
  node: string
  /** The address the agent listens on. */
  ip: string
  /** The address peers are told to probe; defaults to `ip`. */
  podIp?: string
  port: number
  labels: Record<string, string>
  aggregatorUrl: string
  token: string
  env?: Record<string, string>
  log?: string | 'inherit' | 'ignore'
  /** How long it may take to answer /healthz; default HEALTHY_WITHIN_MS. */
  healthyWithinMs?: number
}

export function startAgent (o: AgentOptions): Promise<Proc> {
  return spawnNode({
    name: o.node,
    entry: 'agent/src/main.ts',
    url: `http://${o.ip}:${o.port}`,
    log: o.log ?? 'ignore',
    ...(o.healthyWithinMs === undefined ? {} : { healthyWithinMs: o.healthyWithinMs }),
    env: {
      PINGFLEET_AGGREGATOR_URL: o.aggregatorUrl,
      PINGFLEET_TOKEN: o.token,
      PINGFLEET_NODE_NAME: o.node,
      PINGFLEET_POD_NAME: `pingfleet-agent-${o.node}`,
      PINGFLEET_POD_IP: o.podIp ?? o.ip,
      PINGFLEET_LISTEN: `${o.ip}:${o.port}`,
      PINGFLEET_LABELS: Object.entries(o.labels).map(([k, v]) => `${k}=${v}`).join(','),
      // On a workstation the agents' DNS defaults (cluster names, the machine's resolvers) would send
      // queries off the machine: by default look up only /etc/hosts names, and query no resolver.
      PINGFLEET_DNS_NAMES: 'localhost',
      PINGFLEET_DNS_WIRE_NAMES: '',
      ...o.env
    }
  })
}

export async function getJson<T = unknown> (url: string): Promise<T> {
  const response = await fetch(url)
  if (!response.ok) throw new Error(`GET ${url}: ${response.status} ${await response.text()}`)
  return await response.json() as T
}
