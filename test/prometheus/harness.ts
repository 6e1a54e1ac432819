// What the real-Prometheus suite runs: a Prometheus on loopback with the one rules file, a simulated
// DNS agent, and polling helpers (its fleet is test/helpers/relayed-fleet.ts).

import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer as createHttpServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import WebSocket from 'ws'
import { stringify } from 'yaml'
import { bucketIndex, PROTOCOL_VERSION, type Report } from '@pingfleet/protocol'
import { readRules } from './tools.ts'
import { freePort } from '../helpers/relay.ts'
import { until } from '../helpers/wait.ts'

export { freePort, until }


/**
 * The rules file as Prometheus gets it in this suite: the same file, with only each alert's `for:`
 * shortened, so pending → firing takes seconds instead of minutes. Expressions, range windows and
 * thresholds are untouched.
 */
export function rulesWithShortFor (forDuration: string): string {
  const rules = readRules()
  for (const group of rules.groups) for (const rule of group.rules) if (rule.alert !== undefined && rule.for !== undefined) rule.for = forDuration
  return stringify(rules)
}

export interface Prometheus {
  url: string
  query: (expr: string) => Promise<Array<{ metric: Record<string, string>, value: [number, string] }>>
  alerts: () => Promise<Array<{ labels: Record<string, string>, state: string }>>
  stop: () => Promise<void>
}

export async function startPrometheus (binary: string, o: { host: string, scrapeTarget: string, rules: string }): Promise<Prometheus> {
  const dir = mkdtempSync(join(tmpdir(), 'pingfleet-prometheus-'))
  writeFileSync(join(dir, 'rules.yaml'), o.rules)
  writeFileSync(join(dir, 'prometheus.yml'), stringify({
    global: { scrape_interval: '1s', scrape_timeout: '900ms', evaluation_interval: '1s' },
    rule_files: [join(dir, 'rules.yaml')],
    scrape_configs: [{ job_name: 'pingfleet-aggregator', static_configs: [{ targets: [o.scrapeTarget] }] }]
  }))
  const port = await freePort(o.host)
  const child: ChildProcess = spawn(binary, [
    `--config.file=${join(dir, 'prometheus.yml')}`,
    `--storage.tsdb.path=${join(dir, 'data')}`,
    '--storage.tsdb.retention.time=1h',
    `--web.listen-address=${o.host}:${port}`,
    '--log.level=warn'
  ], { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr!.on('data', (chunk: Buffer) => { stderr = (stderr + chunk.toString()).slice(-4000) })
  const exited = new Promise<void>(resolve => child.once('exit', () => resolve()))
  const url = `http://${o.host}:${port}`
  try {
    await until('prometheus ready', async () => {
      if (child.exitCode !== null) throw new Error(`prometheus exited with ${child.exitCode}: ${stderr}`)
      return (await fetch(`${url}/-/ready`)).ok ? true : undefined
    }, 20_000, 100)
  } catch (err) {
    child.kill('SIGKILL')
    throw err
  }
  const api = async <T>(path: string): Promise<T> => {
    const response = await fetch(url + path)
    const body = await response.json() as { status: string, data: T, error?: string }
    if (body.status !== 'success') throw new Error(`${path}: ${body.error ?? response.status}`)
    return body.data
  }
  return {
    url,
    query: async expr => (await api<{ result: Array<{ metric: Record<string, string>, value: [number, string] }> }>(`/api/v1/query?query=${encodeURIComponent(expr)}`)).result,
    alerts: async () => (await api<{ alerts: Array<{ labels: Record<string, string>, state: string }> }>('/api/v1/alerts')).alerts,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
      await exited
      rmSync(dir, { recursive: true, force: true })
    }
  }
}

/**
 * A simulated agent that reports DNS probes (the real agents here probe pods only): getaddrinfo and
 * wire lookups, some failing with ENOTFOUND and DNS_TIMEOUT. It answers /ping like an agent, so the
 * real agents' pod and mtu probes toward it succeed, and it reconnects when the aggregator restarts.
 */
export async function dnsAgent (o: { aggregatorUrl: string, token: string, node: string, group: string, ip: string }): Promise<{ stop: () => Promise<void> }> {
  // Answers /ping and /ping?size=N (padded to N bytes, for the mtu probe) like an agent does.
  const server = createHttpServer((request, response) => {
    const size = Number(new URL(request.url ?? '/', 'http://x').searchParams.get('size') ?? 0)
    const base = Buffer.byteLength(JSON.stringify({ node: o.node, pad: '' }))
    response.setHeader('content-type', 'application/json')
    response.end(JSON.stringify(size > 0 ? { node: o.node, pad: 'x'.repeat(Math.max(0, size - base)) } : { node: o.node }))
  })
  await new Promise<void>((resolve, reject) => server.listen(0, o.ip, resolve).once('error', reject))
  const { port } = server.address() as AddressInfo
  const bootId = `dns-sim-${Date.now()}`
  let stopped = false
  let socket: WebSocket
  const open = (): Promise<void> => {
    socket = new WebSocket(o.aggregatorUrl.replace(/^http/, 'ws') + '/api/v1/stream', { headers: { authorization: `Bearer ${o.token}` } })
    socket.on('message', () => {})
    socket.on('close', () => { if (!stopped) setTimeout(() => { open().catch(() => {}) }, 200) })
    return new Promise<void>((resolve, reject) => {
      socket.once('open', () => {
        socket.send(JSON.stringify({
          type: 'hello', v: PROTOCOL_VERSION, node: o.node, pod: `agent-${o.node}`, podIp: o.ip, port,
          labels: { cniplugin: o.group }, version: 'test', bootId
        }))
        resolve()
      }).once('error', reject)
    })
  }
  await open()
  let seq = 0
  const fast = bucketIndex(0.002)
  const cells: Report['cells'] = [
    { probe: 'dns-lookup', target: 'kubernetes.default@getaddrinfo', count: 4, latency: [fast, 4] },
    { probe: 'dns-lookup', target: 'missing.example@getaddrinfo', count: 2, latency: [], errors: [{ reason: 'ENOTFOUND', raw: 'EAI_NONAME', count: 2 }] },
    { probe: 'dns-wire', target: 'kubernetes.default@127.0.0.53:53/A', count: 4, latency: [fast, 3], errors: [{ reason: 'DNS_TIMEOUT', raw: 'UDP_TIMEOUT', count: 1 }] }
  ]
  // Reports made while disconnected are not kept: the real agents cover resending.
  const timer = setInterval(() => {
    const end = Date.now()
    if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type: 'report', v: PROTOCOL_VERSION, seq: ++seq, start: end - 1000, end, cells }))
  }, 1000)
  return {
    stop: async () => {
      stopped = true
      clearInterval(timer)
      socket.terminate()
      await new Promise(resolve => server.close(resolve))
    }
  }
}

/** Opens and drops one websocket with a wrong token, so the rejected-connections series exists. */
export async function rejectedConnection (aggregatorUrl: string): Promise<void> {
  const socket = new WebSocket(aggregatorUrl.replace(/^http/, 'ws') + '/api/v1/stream', { headers: { authorization: 'Bearer not-the-token' } })
  await new Promise<void>(resolve => {
    socket.on('unexpected-response', (_request, response) => { response.resume(); resolve() })
    socket.on('error', () => resolve())
  })
  socket.terminate()
}
