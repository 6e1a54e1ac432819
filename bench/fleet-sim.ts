// Simulated agents for benchmarks: real websockets on loopback, pre-serialised reports, and a
// window of reports in flight per agent so the aggregator, not the generator, is the bottleneck.

import WebSocket from 'ws'
import { bucketIndex, PROTOCOL_VERSION } from '@pingfleet/protocol'

export interface SimOptions {
  url: string
  token: string
  agents: number
  targets: number
  /** Reports each agent sends. */
  reports: number
  inFlight: number
  /** Time of the first and last report's end, ms. */
  from: number
  to: number
  groups?: readonly string[]
  /** Real time (ms since the epoch) before which report `seq` is not sent; none: send at once. */
  notBefore?: (seq: number) => number
  /** Whether pod cells carry `phases` (connect and firstByte), as agents send them to an aggregator with feature `phases`; default true. */
  phases?: boolean
}

export interface SimResult {
  cells: number
  ackLatencyMs: number[]
  wallMs: number
}

export function nodeName (i: number): string {
  return `node-${String(i).padStart(4, '0')}`
}

// Latencies around 1 ms with a log-normal spread, like a healthy pod network. With phases, each
// probe's connect and first byte, as a real pod probe times them (no name to resolve, no TLS): the
// handshake takes 30–50% of the total, the request the rest.
function cellsJson (agent: number, targets: number, variant: number, phases: boolean): string {
  let seed = (agent * 7919 + variant * 104729) >>> 0
  const rand = (): number => {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0
    return seed / 2 ** 32
  }
  const parts: string[] = []
  for (let t = 0; t < targets; t++) {
    const seconds = 0.001 * Math.exp((rand() + rand() + rand() - 1.5) * 0.6)
    const connect = seconds * (0.3 + 0.2 * rand())
    const extra = phases ? `,"phases":{"connect":[${bucketIndex(connect)},1],"firstByte":[${bucketIndex(seconds - connect)},1]}` : ''
    parts.push(`{"probe":"pod","target":"${nodeName(t)}","count":1,"latency":[${bucketIndex(seconds)},1]${extra}}`)
  }
  return '[' + parts.join(',') + ']'
}

export async function runFleet (o: SimOptions): Promise<SimResult> {
  const groups = o.groups ?? ['aws', 'cilium']
  const ackLatencyMs: number[] = []
  let cells = 0
  const started = performance.now()
  const step = o.reports > 1 ? (o.to - o.from) / (o.reports - 1) : 0
  await Promise.all(Array.from({ length: o.agents }, (_, i) => new Promise<void>((resolve, reject) => {
    const variants = [0, 1, 2, 3].map(v => cellsJson(i, o.targets, v, o.phases ?? true))
    const socket = new WebSocket(o.url.replace(/^http/, 'ws') + '/api/v1/stream', {
      headers: { authorization: `Bearer ${o.token}` },
      maxPayload: 64 * 1024 * 1024,
      perMessageDeflate: false
    })
    const sentAt = new Map<number, number>()
    let next = 1
    let acked = 0
    let paced: NodeJS.Timeout | null = null
    const send = (): void => {
      while (next <= o.reports && sentAt.size < o.inFlight) {
        const wait = o.notBefore === undefined ? 0 : o.notBefore(next) - Date.now()
        if (wait > 0) {
          paced ??= setTimeout(() => { paced = null; send() }, wait)
          return
        }
        const seq = next++
        const end = Math.round(o.from + step * (seq - 1))
        sentAt.set(seq, performance.now())
        socket.send(`{"type":"report","v":${PROTOCOL_VERSION},"seq":${seq},"start":${end - 5000},"end":${end},"cells":${variants[seq % 4]}}`)
      }
    }
    socket.on('message', data => {
      const m = JSON.parse(data.toString()) as { type: string, seq?: number }
      if (m.type === 'welcome') send()
      if (m.type !== 'ack') return
      const t0 = sentAt.get(m.seq!)
      if (t0 === undefined) return
      sentAt.delete(m.seq!)
      ackLatencyMs.push(performance.now() - t0)
      cells += o.targets
      if (++acked === o.reports) {
        socket.close()
        resolve()
      } else send()
    })
    socket.on('error', reject)
    socket.on('open', () => socket.send(JSON.stringify({
      type: 'hello', v: PROTOCOL_VERSION, node: nodeName(i), pod: `agent-${i}`, podIp: '127.0.0.1', port: 8081,
      labels: { cniplugin: groups[i % groups.length]! }, version: 'bench', bootId: `bench-${i}-${Date.now()}`
    })))
  })))
  return { cells, ackLatencyMs, wallMs: performance.now() - started }
}
