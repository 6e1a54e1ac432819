// Protocol fuzzing against a live aggregator: honest agents report steadily while fuzzing
// connections send structure-aware reports (valid ones at the schema's edges, and mutations),
// text and byte mutations, random bytes and malformed websocket frames. Each frame's expected
// outcome comes from the protocol's own decoder: a valid frame must be acked, an invalid one must
// close its connection with a reason. Afterwards the honest agents' rows must hold exactly what they
// sent. The caller watches for crashes and memory.

import { connect } from 'node:net'
import WebSocket from 'ws'
import { bucketIndex, CLOSE_DUPLICATE_NODE, CLOSE_REPLACED, decodeAgentMessage, PROTOCOL_VERSION } from '@pingfleet/protocol'
import { Gen, mutatedHello, mutatedReport, type Frame } from './frames.ts'

export interface FuzzOptions {
  url: string
  token: string
  /** Frames the fuzzing connections send in all (hellos and raw frames included). */
  frames: number
  seed: number
  /** Fuzzing connections at once. */
  workers: number
  /** Honest agents reporting once per `honestIntervalMs` throughout. */
  honest: number
  honestIntervalMs: number
  /** Called about every second with progress, e.g. to sample the aggregator's memory. */
  onProgress?: (sent: number) => void
}

export interface FuzzResult {
  frames: number
  /** Frames the decoder accepts that were acked (reports) or welcomed (hellos). */
  accepted: number
  /** Frames the decoder refuses that closed their connection with a code and a reason. */
  rejected: number
  /** Connections closed because a mutated hello named a node another fuzzing connection held (4009/4000). */
  displaced: number
  /** Connections closed by the aggregator, by close code and reason code (e.g. `1008 PINGFLEET_ERR_PROTOCOL_SCHEMA`). */
  closes: Record<string, number>
  kinds: Record<string, number>
  /** Frames whose outcome was not the expected one; empty on a pass. */
  wrong: Array<{ kind: string, expected: string, got: string, frame: string }>
  honest: { reports: number, ok: boolean, detail: string[] }
  wallMs: number
}

const fatal = new TextDecoder('utf-8', { fatal: true })
const HONEST_CELL_COUNT = 10
const NO_ANSWER_MS = 15_000

/** What the aggregator should do with a frame: 'accept', or 'close' (with the reason expected, for the tally). */
function expectation (frame: Frame, state: 'hello' | 'report'): 'accept' | 'close' {
  if (frame.binary) return 'close'
  let text: string
  try {
    text = typeof frame.data === 'string' ? frame.data : fatal.decode(frame.data)
  } catch {
    return 'close'
  }
  try {
    const message = decodeAgentMessage(text)
    return message.type === state ? 'accept' : 'close'
  } catch {
    return 'close'
  }
}

interface Conn {
  socket: WebSocket
  next: () => Promise<{ type: 'message', data: { type: string, seq?: number } } | { type: 'close', code: number, reason: string }>
}

function open (url: string, token: string): Promise<Conn> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url.replace(/^http/, 'ws') + '/api/v1/stream', { headers: { authorization: `Bearer ${token}` }, perMessageDeflate: false, maxPayload: 64 * 1024 * 1024 })
    const queue: Array<Awaited<ReturnType<Conn['next']>>> = []
    const waiting: Array<(e: Awaited<ReturnType<Conn['next']>>) => void> = []
    const push = (e: Awaited<ReturnType<Conn['next']>>): void => { const w = waiting.shift(); if (w !== undefined) w(e); else queue.push(e) }
    socket.on('message', data => {
      const m = JSON.parse(data.toString()) as { type: string, seq?: number }
      if (m.type !== 'peers') push({ type: 'message', data: m })
    })
    socket.on('close', (code, reason) => push({ type: 'close', code, reason: reason.toString() }))
    socket.on('error', () => {})
    // No answer within NO_ANSWER_MS is an outcome of its own (a hang), reported as wrong.
    const next = (): Promise<Awaited<ReturnType<Conn['next']>>> => queue.length > 0
      ? Promise.resolve(queue.shift()!)
      : new Promise(resolve => {
        const timer = setTimeout(() => {
          waiting.splice(waiting.indexOf(done), 1)
          socket.terminate()
          resolve({ type: 'close', code: 0, reason: 'no answer' })
        }, NO_ANSWER_MS)
        const done = (e: Awaited<ReturnType<Conn['next']>>): void => { clearTimeout(timer); resolve(e) }
        waiting.push(done)
      })
    socket.once('open', () => resolve({ socket, next }))
    socket.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)))
  })
}

/** Malformed websocket framing written by hand (a ws client will not send these); resolves with the close status. */
function rawFrame (url: string, token: string, g: Gen): Promise<{ kind: string, status: number | null }> {
  const { hostname, port } = new URL(url)
  const kinds: Array<[string, Buffer]> = [
    ['raw-unmasked', Buffer.from([0x81, 0x02, 0x7b, 0x7d])],
    ['raw-reserved-opcode', Buffer.from([0x83, 0x80, 1, 2, 3, 4])],
    ['raw-rsv-bits', Buffer.from([0xc1, 0x80, 1, 2, 3, 4])],
    ['raw-oversize', Buffer.from([0x81, 0xff, 0, 0, 0, 0, 0x01, 0, 0, 0, 1, 2, 3, 4])],
    ['raw-fragmented-ping', Buffer.from([0x09, 0x80, 1, 2, 3, 4])]
  ]
  const [kind, bytes] = g.pick(kinds)
  return new Promise(resolve => {
    const socket = connect(Number(port), hostname, () => {
      socket.write(`GET /api/v1/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`)
    })
    let buffer = Buffer.alloc(0)
    let sent = false
    socket.on('error', () => {})
    socket.on('data', chunk => {
      buffer = Buffer.concat([buffer, chunk])
      const end = buffer.indexOf('\r\n\r\n')
      if (!sent && end !== -1) { sent = true; buffer = buffer.subarray(end + 4); socket.write(bytes) }
    })
    // A server that never closes is an outcome too (reported as status null).
    const timer = setTimeout(() => socket.destroy(), NO_ANSWER_MS)
    socket.on('close', () => {
      clearTimeout(timer)
      const status = buffer.length >= 4 && (buffer[0]! & 0x0f) === 8 ? buffer.readUInt16BE(2) : null
      resolve({ kind, status })
    })
  })
}

export async function runFuzz (o: FuzzOptions): Promise<FuzzResult> {
  const started = performance.now()
  const honestNames = Array.from({ length: o.honest }, (_, i) => `honest-${i}`)
  const targets = [...honestNames, 'fuzz-target', 'kubernetes.default@getaddrinfo', '10.96.0.20:8081']
  const result: FuzzResult = { frames: 0, accepted: 0, rejected: 0, displaced: 0, closes: {}, kinds: {}, wrong: [], honest: { reports: 0, ok: true, detail: [] }, wallMs: 0 }
  const tally = (map: Record<string, number>, key: string): void => { map[key] = (map[key] ?? 0) + 1 }

  // Honest agents: one valid report per interval, pod probes to each other, all fine.
  let stopping = false
  const honestAcked = new Map<string, number>()
  const honestClosed: string[] = []
  const honestLoops = honestNames.map(async (node, i) => {
    const conn = await open(o.url, o.token)
    conn.socket.on('close', (code, reason) => { if (!stopping) honestClosed.push(`${node}: ${code} ${reason.toString()}`) })
    conn.socket.send(JSON.stringify({ type: 'hello', v: PROTOCOL_VERSION, node, pod: `${node}-pod`, podIp: `127.0.2.${i + 1}`, port: 8081, labels: { cniplugin: 'honest' }, version: 'fuzz', bootId: `honest-boot-${i}`, uptimeMs: 1000 }))
    const cells = honestNames.map(dst => ({ probe: 'pod', target: dst, count: HONEST_CELL_COUNT, latency: [bucketIndex(0.001), HONEST_CELL_COUNT] }))
    let seq = 0
    while (!stopping) {
      const end = Date.now()
      conn.socket.send(JSON.stringify({ type: 'report', v: PROTOCOL_VERSION, seq: ++seq, start: end - o.honestIntervalMs, end, ageMs: 0, cells }))
      for (;;) {
        const e = await conn.next()
        if (e.type === 'close') return
        if (e.data.type === 'ack' && e.data.seq === seq) break
      }
      honestAcked.set(node, seq)
      await new Promise(resolve => setTimeout(resolve, o.honestIntervalMs))
    }
    conn.socket.close()
  })

  // Fuzzing workers: each frame is sent alone and its outcome awaited before the next.
  let budget = o.frames
  const take = (): boolean => budget-- > 0
  let lastProgress = performance.now()
  const progress = (): void => {
    if (performance.now() - lastProgress < 1000) return
    lastProgress = performance.now()
    o.onProgress?.(result.frames)
  }
  const outcome = (e: Awaited<ReturnType<Conn['next']>>): string =>
    e.type === 'close' ? `close ${e.code} ${e.reason.split(':')[0]}` : `message ${e.data.type}`
  const check = (frame: Frame, expected: 'accept' | 'close', got: Awaited<ReturnType<Conn['next']>>, acceptedType: string): void => {
    result.frames++
    tally(result.kinds, frame.kind)
    if (got.type === 'close' && (got.code === CLOSE_DUPLICATE_NODE || got.code === CLOSE_REPLACED)) {
      // Two fuzzing hellos mutated to one node name: one of them is told to back off, as designed.
      tally(result.closes, `${got.code} displaced`)
      result.displaced++
      return
    }
    const ok = expected === 'accept'
      ? got.type === 'message' && got.data.type === acceptedType
      : got.type === 'close' && (got.code === 1008 ? /^PINGFLEET_ERR_/.test(got.reason) : [1002, 1007, 1009].includes(got.code))
    if (got.type === 'close') tally(result.closes, `${got.code} ${got.reason.split(':')[0]}`)
    if (ok) {
      if (expected === 'accept') result.accepted++
      else result.rejected++
    } else if (result.wrong.length < 50) {
      const text = typeof frame.data === 'string' ? frame.data : frame.data.toString('hex')
      result.wrong.push({ kind: frame.kind, expected, got: outcome(got), frame: text.slice(0, 300) })
    }
  }

  const workers = Array.from({ length: o.workers }, async (_, w) => {
    const g = new Gen(o.seed * 1000 + w + 1, targets)
    let connection = 0
    while (take()) {
      progress()
      if (g.chance(0.01)) {
        const { kind, status } = await rawFrame(o.url, o.token, g)
        result.frames++
        tally(result.kinds, kind)
        tally(result.closes, `${status} raw`)
        if (status === 1002 || status === 1009) result.rejected++
        else result.wrong.push({ kind, expected: 'close 1002/1009', got: `close ${status}`, frame: kind })
        continue
      }
      // A bounded set of names: each new name would be a new node, whose cells the store keeps.
      const node = `fuzz-${w}-${connection++ % 8}`
      const conn = await open(o.url, o.token)
      const hello = g.chance(0.1) ? mutatedHello(g, node) : { data: JSON.stringify(g.hello(node)), binary: false, kind: 'hello' }
      conn.socket.send(hello.data, { binary: hello.binary })
      const helloExpect = expectation(hello, 'hello')
      const answer = await conn.next()
      check(hello, helloExpect, answer, 'welcome')
      if (answer.type === 'close') continue
      let seq = 0
      let open_ = true
      while (open_ && take()) {
        progress()
        const valid = g.chance(0.5)
        const frame: Frame = valid ? { data: JSON.stringify(g.report(++seq, Date.now())), binary: false, kind: 'valid-report' } : mutatedReport(g, seq + 1, Date.now())
        const expected = expectation(frame, 'report')
        conn.socket.send(frame.data, { binary: frame.binary })
        const got = await conn.next()
        check(frame, expected, got, 'ack')
        if (got.type === 'close') open_ = false
        else if (expected === 'accept') seq = Math.max(seq, (JSON.parse(frame.data as string) as { seq: number }).seq)
      }
      if (open_) {
        conn.socket.close()
        await conn.next()
      }
    }
  })
  await Promise.all(workers)

  // One more honest round after the fuzzing, then stop and compare.
  await new Promise(resolve => setTimeout(resolve, o.honestIntervalMs * 2))
  stopping = true
  await Promise.all(honestLoops)
  // The running totals never expire, so they are compared whatever the window: each honest agent's
  // outgoing pod probes must be exactly what it sent, with no error; fuzzing agents probe honest
  // names too, so incoming totals are not theirs alone and are not compared.
  const metrics = await (await fetch(`${o.url}/metrics`)).text()
  const total = (family: string, node: string): number => Number(new RegExp(`^${family}\\{[^}]*node="${node}"[^}]*direction="out"[^}]*probe="pod"[^}]*\\} (\\S+)$`, 'm').exec(metrics)?.[1] ?? 0)
  for (const node of honestNames) {
    const reports = honestAcked.get(node) ?? 0
    result.honest.reports += reports
    const want = reports * HONEST_CELL_COUNT * honestNames.length
    const probes = total('pingfleet_node_probes_total', node)
    const errors = total('pingfleet_node_probe_errors_total', node)
    if (probes !== want || errors !== 0) {
      result.honest.ok = false
      result.honest.detail.push(`${node}: ${probes} probes and ${errors} errors counted, want ${want} and 0`)
    }
  }
  for (const line of honestClosed) { result.honest.ok = false; result.honest.detail.push(`closed: ${line}`) }
  result.wallMs = performance.now() - started
  return result
}
