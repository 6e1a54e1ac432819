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

/** Websocket upgrades in flight at once (see runFleet). */
const OPENING = 50
/** Handshake attempts per simulated agent before the run fails. */
const HANDSHAKE_TRIES = 30

export async function runFleet (o: SimOptions): Promise<SimResult> {
  const groups = o.groups ?? ['aws', 'cilium']
  const ackLatencyMs: number[] = []
  let cells = 0
  const started = performance.now()
  const step = o.reports > 1 ? (o.to - o.from) / (o.reports - 1) : 0
  // At most OPENING upgrades in flight: 1,000 at once behind the joins' peer-list pushes waited past
  // the aggregator's 10 s headersTimeout on a loaded machine (408; issue 14's bounds), as a real
  // fleet's staggered starts would not.
  let opening = 0
  const waiting: Array<() => void> = []
  const gate = async (): Promise<void> => {
    if (opening < OPENING) { opening++; return }
    await new Promise<void>(resolve => waiting.push(resolve))
  }
  const release = (): void => {
    const next = waiting.shift()
    if (next !== undefined) next()
    else opening--
  }
  await Promise.all(Array.from({ length: o.agents }, async (_, i) => { await gate(); return await new Promise<void>((resolve, reject) => {
    const variants = [0, 1, 2, 3].map(v => cellsJson(i, o.targets, v, o.phases ?? true))
    let gated = true
    const ungate = (): void => { if (gated) { gated = false; release() } }
    let socket: WebSocket
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
    const onMessage = (data: WebSocket.RawData): void => {
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
    }
    // A handshake that fails (a 408 when the aggregator's loop was held past its 10 s headersTimeout
    // on a loaded machine) is retried after a second, as an agent reconnects; nothing was sent yet.
    const connect = (attempt: number): void => {
      let opened = false
      socket = new WebSocket(o.url.replace(/^http/, 'ws') + '/api/v1/stream', {
        headers: { authorization: `Bearer ${o.token}` },
        maxPayload: 64 * 1024 * 1024,
        perMessageDeflate: false
      })
      socket.on('message', onMessage)
      socket.on('error', error => {
        ungate()
        if (!opened && attempt < HANDSHAKE_TRIES) setTimeout(() => connect(attempt + 1), 1000)
        else reject(error)
      })
      socket.on('open', () => {
        opened = true
        ungate()
        socket.send(JSON.stringify({
          type: 'hello', v: PROTOCOL_VERSION, node: nodeName(i), pod: `agent-${i}`, podIp: '127.0.0.1', port: 8081,
          labels: { cniplugin: groups[i % groups.length]! }, version: 'bench', bootId: `bench-${i}-${Date.now()}`
        }))
      })
    }
    connect(1)
  }) }))
  return { cells, ackLatencyMs, wallMs: performance.now() - started }
}
