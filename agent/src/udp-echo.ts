// The agent's UDP echo: answers every well-formed udp-probe datagram with the same bytes, on the same
// port number as its HTTP /ping. Echoing byte for byte (fixed, small size) amplifies nothing.

import { createSocket, type Socket } from 'node:dgram'
import { isIPv6 } from 'node:net'
import type { Logger } from 'pino'

/** `PFU1`: the first four bytes of every udp-probe datagram. */
export const UDP_MAGIC = 0x50465531
/** magic (4) · train nonce (8) · sequence number (4). */
export const UDP_DATAGRAM_BYTES = 16

/** True for a datagram the udp probe sends (and the echo returns): exact size and magic. */
export function isProbeDatagram (data: Buffer): boolean {
  return data.length === UDP_DATAGRAM_BYTES && data.readUInt32BE(0) === UDP_MAGIC
}

/**
 * A bound UDP echo. `host` is the HTTP listen host (0.0.0.0 or :: binds every address). Stray
 * datagrams (wrong size or magic) get no answer. Resolves once bound; rejects with the bind error.
 */
export class UdpEcho {
  readonly #socket: Socket
  #echoed = 0

  private constructor (socket: Socket) {
    this.#socket = socket
  }

  static async listen (host: string, port: number, logger?: Logger): Promise<UdpEcho> {
    const socket = createSocket({ type: isIPv6(host) ? 'udp6' : 'udp4' })
    const echo = new UdpEcho(socket)
    socket.on('message', (data, from) => {
      if (!isProbeDatagram(data)) return
      echo.#echoed++
      socket.send(data, from.port, from.address, err => {
        if (err !== null && err !== undefined) logger?.debug({ err: err.message, to: from.address }, 'udp echo not sent')
      })
    })
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject)
      socket.bind(port, host, () => {
        socket.off('error', reject)
        resolve()
      })
    })
    // After the bind an error (e.g. ICMP feedback on some platforms) must not crash the agent.
    socket.on('error', err => logger?.debug({ err: err.message }, 'udp echo socket error'))
    return echo
  }

  get port (): number { return this.#socket.address().port }
  /** Datagrams echoed since start. */
  get echoed (): number { return this.#echoed }

  close (): Promise<void> {
    return new Promise(resolve => this.#socket.close(() => resolve()))
  }
}
