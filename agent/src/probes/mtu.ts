// MTU probe: on one new connection to a peer agent, a small GET /ping and then GET /ping?size=N.
// When the small exchange works but the large response never completes, full-size packets are
// being dropped on the path (a path MTU black hole), which the pod probe's tiny answer cannot see.

import { performance } from 'node:perf_hooks'
import { classifyBlackhole, classifyError, classifyEvent, classifyStatus, isOutOfTime } from '../layers/classify.ts'
import { readPingAnswer } from '../layers/ping-answer.ts'
import { MAX_PING_BODY_BYTES, PingConnection, pingStage } from '../ping-client.ts'
import type { Phases, Probe, ProbeResult, Target } from '../probe.ts'

/** A peer agent asked for a response of `size` bytes. */
export interface MtuTarget extends Target {
  kind: 'mtu'
  /** The peer's node name, which both answers must repeat. */
  node: string
  podIp: string
  port: number
  size: number
}

/** Column id `<node>/<size>`: node names never contain `/`, so the aggregator can split it off. */
export function mtuTarget (peer: { node: string, podIp: string, port: number }, size: number): MtuTarget {
  return { kind: 'mtu', id: `${peer.node}/${size}`, node: peer.node, podIp: peer.podIp, port: peer.port, size }
}

export interface MtuProbeOptions {
  /** Upper bound for silence on the connection; the scheduler's signal normally fires first. */
  timeoutMs: number
}

/**
 * The probe. Layers: the pod IP needs no resolving; connect and exchange are one PingConnection
 * (a raw socket, two requests on one connection); classify is layers/classify.ts by stage, except that
 * running out of time on the large answer, after the small one worked, is MTU_BLACKHOLE (raw
 * HEADERS_TIMEOUT or BODY_TIMEOUT, the stage's deadline code). Never rejects.
 *
 * Reads are capped (ping-client.ts): the small answer at MAX_PING_BODY_BYTES, the large one at `size`
 * plus that; past a cap the probe fails at once as BAD_RESPONSE, raw BODY_TOO_LARGE or HEADERS_TOO_LARGE.
 * Phases: `connect` is the handshake, `firstByte` runs from sending the large request to its headers;
 * `seconds` is the whole probe. `detail.received` counts the large body's bytes that arrived.
 */
export function createMtuProbe (options: MtuProbeOptions): Probe<MtuTarget> {
  return async function mtuProbe (target, signal): Promise<ProbeResult> {
    const start = performance.now()
    const connection = new PingConnection(target.podIp, target.port, { timeoutMs: options.timeoutMs })
    const phases: Phases = {}
    const seconds = (): number => (performance.now() - start) / 1000
    const connected = (): void => {
      const at = connection.connectedAt
      if (at !== undefined) phases.connect = (at - start) / 1000
    }
    let large = false
    let sentAt = 0
    try {
      // The small exchange first: if it fails, the failure is an ordinary one, not an MTU problem.
      const small = await connection.get('/ping', signal, false)
      connected()
      const smallStatus = classifyStatus(small.status)
      if (smallStatus !== null) return { ok: false, ...smallStatus, seconds: seconds(), phases }
      const smallRead = readPingAnswer(small.body, target.node)
      if (!smallRead.ok) return { ...smallRead, seconds: seconds(), phases }

      large = true
      sentAt = performance.now()
      // The answer is padded to exactly `size`, or is the bare identity when that is larger.
      const response = await connection.get(`/ping?size=${target.size}`, signal, true, target.size + MAX_PING_BODY_BYTES)
      phases.firstByte = (connection.headersAt! - sentAt) / 1000
      const received = connection.received
      const detail = { received }
      const status = classifyStatus(response.status)
      if (status !== null) return { ok: false, ...status, seconds: seconds(), phases, detail }
      if (received < target.size) return { ok: false, ...classifyEvent('SHORT_BODY'), seconds: seconds(), phases, detail }
      const read = readPingAnswer(response.body, target.node)
      if (!read.ok) return { ...read, seconds: seconds(), phases, detail: { ...detail, ...read.detail } }
      return { ok: true, seconds: seconds(), phases, detail }
    } catch (err) {
      connected()
      const received = connection.received
      if (large && (signal.aborted || isOutOfTime(err))) {
        // Connected, answered small, then silence: the large segments are being dropped.
        const headersAt = connection.headersAt
        if (headersAt !== undefined) phases.firstByte = (headersAt - sentAt) / 1000
        return { ok: false, ...classifyBlackhole(pingStage(connection)), seconds: seconds(), phases, detail: { received } }
      }
      const { reason, raw } = classifyError(err, pingStage(connection))
      return { ok: false, reason, raw, seconds: seconds(), phases, ...(large ? { detail: { received } } : {}) }
    } finally {
      connection.close()
    }
  }
}
