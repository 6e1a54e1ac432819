// The udp probe: a short train of datagrams to a peer agent's UDP echo, counting the echoes. It reads
// packet loss (both directions together), round-trip time and jitter directly, where a TCP probe only
// shows loss as a retransmit delay. A new socket per train, so every train is a new flow.

import { randomBytes } from 'node:crypto'
import { createSocket, type Socket } from 'node:dgram'
import { isIPv6 } from 'node:net'
import { performance } from 'node:perf_hooks'
import { classifyError, classifyEvent } from '../layers/classify.ts'
import type { Probe, ProbeResult, Target } from '../probe.ts'
import { isProbeDatagram, UDP_DATAGRAM_BYTES, UDP_MAGIC } from '../udp-echo.ts'

/** A peer agent's echo. `id` is the peer's node name (the matrix column, as for pod probes). */
export interface UdpTarget extends Target {
  kind: 'udp'
  podIp: string
  port: number
}

export function udpTarget (peer: { node: string, podIp: string, port: number }): UdpTarget {
  return { kind: 'udp', id: peer.node, podIp: peer.podIp, port: peer.port }
}

export interface UdpProbeOptions {
  /** Datagrams per train. */
  count: number
  /** Pause between two datagrams of a train, ms. */
  spacingMs: number
  /**
   * The probe's time limit, ms (the scheduler aborts it then). A datagram counts as sent, and so can
   * count as lost, only once it has waited half of this for its echo; see createUdpProbe.
   */
  timeoutMs: number
}

/** The median of a non-empty list (the lower one for an even count). */
function lowerMedian (values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[(sorted.length - 1) >> 1]!
}

/**
 * One train: `count` datagrams of 16 bytes (magic, a random 8-byte nonce per train, sequence number),
 * `spacingMs` apart, on a connected socket; then it waits for the echoes until every one came back or
 * the signal fires. An echo counts once, only with this train's nonce and a sequence number it sent:
 * duplicates, strays and echoes of older trains (another socket and nonce) are ignored.
 *
 * - `datagrams.sent`: datagrams the kernel accepted that were judged, i.e. echoed, or unechoed after
 *   waiting at least timeoutMs / 2. One sent late because the agent stalled is left out, not lost.
 * - `datagrams.lost`: judged datagrams with no echo. Loss in either direction looks the same.
 * - Success (a sample) when at least one echo came back: `seconds` is the train's lower-median RTT.
 *   `datagrams.jitterUs`/`jitterPairs`: |RTT difference| of consecutively numbered echoed datagrams
 *   (the IP delay variation of RFC 3393 between neighbours), summed in µs, and their number.
 * - Failure when none came back: the socket's error if it had one (ECONNREFUSED from an ICMP port
 *   unreachable, EHOSTUNREACH, …), otherwise UDP_NO_ECHO.
 *
 * When the signal fires, the verdict waits one turn of the event loop (setImmediate), so echoes that
 * already sit in the socket's buffer after a stall are read first and not miscounted as lost.
 */
export function createUdpProbe (options: UdpProbeOptions): Probe<UdpTarget> {
  const judgeAfterMs = options.timeoutMs / 2
  return function udpProbe (target, signal): Promise<ProbeResult> {
    const start = performance.now()
    const nonce = randomBytes(8)
    const sentAt = new Float64Array(options.count).fill(NaN)
    const rtt = new Float64Array(options.count).fill(NaN)
    let echoed = 0
    let socketError: unknown
    let socket: Socket | undefined
    return new Promise<ProbeResult>(resolve => {
      let finished = false
      let spacing: NodeJS.Timeout | undefined
      const finish = (): void => {
        if (finished) return
        finished = true
        clearTimeout(spacing)
        signal.removeEventListener('abort', onAbort)
        socket?.close()
        resolve(verdict())
      }
      const onAbort = (): void => { setImmediate(finish) }
      const verdict = (): ProbeResult => {
        const now = performance.now()
        const seconds = (now - start) / 1000
        let sent = 0
        let lost = 0
        const rtts: number[] = []
        let jitter = 0
        let pairs = 0
        for (let i = 0; i < options.count; i++) {
          if (Number.isNaN(sentAt[i]!)) continue
          if (!Number.isNaN(rtt[i]!)) {
            sent++
            rtts.push(rtt[i]!)
            if (i > 0 && !Number.isNaN(rtt[i - 1]!)) {
              jitter += Math.abs(rtt[i]! - rtt[i - 1]!)
              pairs++
            }
          } else if (now - sentAt[i]! >= judgeAfterMs) {
            sent++
            lost++
          }
        }
        const datagrams = { sent, lost, jitterUs: Math.round(jitter * 1000), jitterPairs: pairs }
        if (rtts.length > 0) return { ok: true, seconds: lowerMedian(rtts) / 1000, datagrams }
        if (socketError !== undefined) return { ok: false, ...classifyError(socketError, 'request'), seconds, datagrams }
        return { ok: false, ...classifyEvent('NO_ECHO'), seconds, datagrams }
      }
      if (signal.aborted) {
        finish()
        return
      }
      signal.addEventListener('abort', onAbort)
      const s = socket = createSocket({ type: isIPv6(target.podIp) ? 'udp6' : 'udp4' })
      s.on('error', err => { socketError ??= err })
      s.on('message', data => {
        const at = performance.now()
        if (!isProbeDatagram(data) || !data.subarray(4, 12).equals(nonce)) return
        const seq = data.readUInt32BE(12)
        if (seq >= options.count || Number.isNaN(sentAt[seq]!) || !Number.isNaN(rtt[seq]!)) return
        rtt[seq] = at - sentAt[seq]!
        if (++echoed === options.count) finish()
      })
      let seq = 0
      const sendNext = (): void => {
        if (finished) return
        const datagram = Buffer.allocUnsafe(UDP_DATAGRAM_BYTES)
        datagram.writeUInt32BE(UDP_MAGIC, 0)
        nonce.copy(datagram, 4)
        const n = seq++
        datagram.writeUInt32BE(n, 12)
        // Set before sending: on loopback the echo may be read before send()'s callback runs.
        sentAt[n] = performance.now()
        s.send(datagram, err => {
          if (err === null || err === undefined) return
          sentAt[n] = NaN
          socketError ??= err
        })
        if (seq < options.count) spacing = setTimeout(sendNext, options.spacingMs)
      }
      // A failed connect emits 'error' (kept above) instead of calling back: the verdict names it at the deadline.
      s.connect(target.port, target.podIp, sendNext)
    })
  }
}
