// The agent's own cost: one real agent process probing `peers` stand-in peers every interval.
// Peers are loopback listeners (127.1.x.y) that answer /ping with the name the roster gives them;
// the roster comes from the real aggregator, fed with one hello per stand-in over websockets.

import { createSocket, type Socket } from 'node:dgram'
import { createServer, type Server } from 'node:http'
import WebSocket from 'ws'
import { PROTOCOL_VERSION } from '@pingfleet/protocol'

/** 250 stand-ins per /24, host parts 1–250: never .0 or .255. */
export function peerAddress (i: number): string {
  return `127.1.${Math.floor(i / 250)}.${(i % 250) + 1}`
}

export function peerName (i: number): string {
  return `peer-${String(i).padStart(4, '0')}`
}

/**
 * Starts one /ping listener per peer address (all share one handler) and, on the same port number over
 * UDP, an echo like the agent's (udp-echo.ts) for the udp probe's trains.
 */
export async function startPeers (count: number, port: number): Promise<{ close: () => Promise<void> }> {
  const names = new Map<string, string>()
  for (let i = 0; i < count; i++) names.set(peerAddress(i), peerName(i))
  const servers: Server[] = []
  const echoes: Socket[] = []
  for (let i = 0; i < count; i++) {
    const server = createServer((req, res) => {
      const node = names.get(req.socket.localAddress ?? '') ?? 'unknown'
      const body = JSON.stringify({ node, pod: `pod-${node}`, labels: {} })
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
      res.end(body)
    })
    server.keepAliveTimeout = 1000
    await new Promise<void>((resolve, reject) => server.listen(port, peerAddress(i), resolve).once('error', reject))
    servers.push(server)
    const echo = createSocket('udp4')
    echo.on('message', (data, from) => echo.send(data, from.port, from.address))
    await new Promise<void>((resolve, reject) => { echo.once('error', reject); echo.bind(port, peerAddress(i), () => resolve()) })
    echoes.push(echo)
  }
  return {
    close: async () => {
      for (const echo of echoes) echo.close()
      await Promise.all(servers.map(s => new Promise(resolve => s.close(resolve))))
    }
  }
}

/** Registers the stand-ins with the aggregator (hello only) and keeps their sockets open. */
export async function registerPeers (url: string, token: string, count: number, port: number): Promise<{ close: () => void }> {
  const sockets: WebSocket[] = []
  await Promise.all(Array.from({ length: count }, (_, i) => new Promise<void>((resolve, reject) => {
    const socket = new WebSocket(url.replace(/^http/, 'ws') + '/api/v1/stream', { headers: { authorization: `Bearer ${token}` } })
    sockets.push(socket)
    socket.on('error', reject)
    socket.on('message', data => { if ((JSON.parse(data.toString()) as { type: string }).type === 'welcome') resolve() })
    socket.on('open', () => socket.send(JSON.stringify({
      type: 'hello', v: PROTOCOL_VERSION, node: peerName(i), pod: `pod-${i}`, podIp: peerAddress(i), port,
      labels: { cniplugin: i % 2 === 0 ? 'aws' : 'cilium' }, version: 'bench', bootId: `peer-${i}-${Date.now()}`
    })))
  })))
  return { close: () => { for (const s of sockets) s.terminate() } }
}
