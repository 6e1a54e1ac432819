// The connect layer (address → resolve → connect → exchange → classify): one brand-new TCP connection
// per probe, its handshake timed on its own. A pooled connection would hide the failures of new flows.

import { connect, type Socket } from 'node:net'
import { performance } from 'node:perf_hooks'

export interface Connected {
  socket: Socket
  /** The handshake's duration in seconds, from the connect call to the 'connect' event. */
  seconds: number
}

/**
 * The error an exchange rejects with when the probe's signal fired first (ABORT_ERR, the signal's
 * reason as its cause): layers/classify.ts reads it as the deadline of the stage the probe was in.
 */
export function abortError (signal: AbortSignal): Error {
  return Object.assign(new Error('the probe was aborted', { cause: signal.reason }), { name: 'AbortError', code: 'ABORT_ERR' })
}

/**
 * Opens a TCP connection to `address:port` (an IP literal: resolving is the layer before). Resolves
 * once the handshake finished, with the socket, which the caller owns and must destroy. Rejects with
 * the socket's error (ECONNREFUSED, EHOSTUNREACH, ETIMEDOUT, …), or with an ABORT_ERR when `signal`
 * fires first; either way the socket is destroyed.
 */
export function connectTimed (address: string, port: number, signal: AbortSignal): Promise<Connected> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(abortError(signal))
      return
    }
    const start = performance.now()
    const socket = connect({ host: address, port })
    const onAbort = (): void => {
      socket.destroy()
      reject(abortError(signal))
    }
    signal.addEventListener('abort', onAbort, { once: true })
    socket.once('connect', () => {
      signal.removeEventListener('abort', onAbort)
      socket.off('error', onError)
      resolve({ socket, seconds: (performance.now() - start) / 1000 })
    })
    const onError = (err: Error): void => {
      signal.removeEventListener('abort', onAbort)
      socket.destroy()
      reject(err)
    }
    socket.once('error', onError)
  })
}
