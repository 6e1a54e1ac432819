// Test helpers: an aggregator on an ephemeral loopback port, and a raw protocol client.

import pino, { type Logger } from 'pino'
import WebSocket from 'ws'
import { PROTOCOL_VERSION, type AggregatorMessage, type Hello, type Report } from '@pingfleet/protocol'
import { startAggregator, type Aggregator } from '../src/app.ts'
import { loadConfig } from '../src/config.ts'

export const TOKEN = 'test-token-123456'

export async function aggregator (env: Record<string, string> = {}, now?: () => number, log?: Logger): Promise<Aggregator> {
  const config = loadConfig({ PINGFLEET_LISTEN: '127.0.0.1:0', PINGFLEET_TOKEN: TOKEN, PINGFLEET_INTERVAL: '1s', ...env })
  return startAggregator(config, log ?? pino({ level: 'silent' }), now)
}

/** A pino logger that keeps every line it writes (parsed), for tests that check what was logged. */
export function captureLog (level = 'debug'): { log: Logger, lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = []
  const log = pino({ level }, { write: (text: string) => { lines.push(JSON.parse(text) as Record<string, unknown>) } })
  return { log, lines }
}

export function hello (node: string, labels: Record<string, string> = {}, bootId = `boot-${node}-0001`): Hello {
  return { type: 'hello', v: PROTOCOL_VERSION, node, pod: `agent-${node}`, podIp: '127.0.0.1', port: 8081, labels, version: 'test', bootId }
}

export function report (seq: number, end: number, cells: Report['cells']): Report {
  return { type: 'report', v: PROTOCOL_VERSION, seq, start: end - 1000, end, cells }
}

/** A websocket client that records every message it receives. */
export class RawAgent {
  readonly socket: WebSocket
  readonly received: AggregatorMessage[] = []
  readonly closed: Promise<{ code: number, reason: string }>
  private waiters: Array<() => void> = []

  constructor (base: string, token: string | null = TOKEN) {
    const headers: Record<string, string> = token === null ? {} : { authorization: `Bearer ${token}` }
    this.socket = new WebSocket(base.replace(/^http/, 'ws') + '/api/v1/stream', { headers })
    this.socket.on('message', data => {
      this.received.push(JSON.parse(data.toString()) as AggregatorMessage)
      for (const w of this.waiters.splice(0)) w()
    })
    this.closed = new Promise(resolve => this.socket.on('close', (code, reason) => resolve({ code, reason: reason.toString() })))
  }

  opened (): Promise<void> {
    return new Promise((resolve, reject) => {
      this.socket.once('open', () => resolve())
      this.socket.once('error', reject)
    })
  }

  send (message: unknown): void {
    this.socket.send(typeof message === 'string' ? message : JSON.stringify(message))
  }

  async waitFor (predicate: (m: AggregatorMessage) => boolean, timeoutMs = 5000): Promise<AggregatorMessage> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const found = this.received.find(predicate)
      if (found !== undefined) return found
      if (Date.now() > deadline) throw new Error('timed out waiting for a message')
      await new Promise<void>(resolve => {
        this.waiters.push(resolve)
        setTimeout(resolve, 50)
      })
    }
  }
}
