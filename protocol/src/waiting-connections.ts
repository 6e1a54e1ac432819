// One defence both HTTP servers share against floods of connections that never send a request
// (issue 14: 10k idle connections): past a bound, the oldest such connection is closed to make room.

import type { Server } from 'node:http'
import type { Socket } from 'node:net'

/**
 * Keeps at most `max` connections of `server` that have not sent a request yet: past that, the
 * oldest of them is destroyed. A connection leaves the count with its first request or websocket
 * upgrade. Well-behaved clients send their request the moment they connect, so only idle or slow
 * ones are ever the oldest, and a flood cannot crowd them out. Returns how many were closed so.
 */
export function boundWaitingConnections (server: Server, max: number): { closed: () => number } {
  // A Set iterates in insertion order: the first entry is the oldest.
  const waiting = new Set<Socket>()
  let closed = 0
  const requested = (socket: Socket): void => { waiting.delete(socket) }
  server.on('connection', (socket: Socket) => {
    waiting.add(socket)
    socket.once('close', () => waiting.delete(socket))
    if (waiting.size > max) {
      const oldest = waiting.values().next().value!
      waiting.delete(oldest)
      oldest.destroy()
      closed++
    }
  })
  server.on('request', (request: { socket: Socket }) => requested(request.socket))
  server.on('upgrade', (_request: unknown, socket: Socket) => requested(socket))
  return { closed: () => closed }
}
