// Pod-to-pod probe: HTTP GET /ping to a peer agent's pod IP, on a brand-new TCP connection each time,
// because a pooled connection hides exactly the failures of new flows that a CNI migration causes.

import { performance } from 'node:perf_hooks'
import { classifyError, classifyStatus } from '../layers/classify.ts'
import { readPingAnswer } from '../layers/ping-answer.ts'
import { pingOnce, pingStage, type PingTimings } from '../ping-client.ts'
import type { Phases, Probe, ProbeResult, Target } from '../probe.ts'

/** A peer agent. `id` is the peer's node name, which its /ping answer must repeat. */
export interface PodTarget extends Target {
  kind: 'pod'
  podIp: string
  port: number
}

export interface PodProbeOptions {
  /** Upper bound for silence on the connection; the scheduler's signal normally fires first. */
  timeoutMs: number
}

/**
 * The probe. Layers: the pod IP needs no resolving; connect and exchange are pingOnce (ping-client.ts),
 * classify is layers/classify.ts by the stage the exchange reached (connect, request, body). Phases in
 * seconds: `connect` is the TCP handshake, `firstByte` runs from connected to the answer's first byte;
 * `seconds` is the whole probe, body included. A non-2xx answer is HTTP_4XX/5XX/OTHER (raw
 * `HTTP_<status>`); a body that is not an answer naming `target.id` is BAD_RESPONSE
 * (readPingAnswer: raw INVALID_JSON, NOT_A_PING_ANSWER or NODE_MISMATCH with `detail.node`). Never rejects.
 */
export function createPodProbe (options: PodProbeOptions): Probe<PodTarget> {
  return async function podProbe (target, signal): Promise<ProbeResult> {
    const start = performance.now()
    const timings: PingTimings = { connectedAt: undefined, firstByteAt: undefined, headersAt: undefined }
    const phases = (): Phases => {
      const { connectedAt, firstByteAt } = timings
      if (connectedAt === undefined) return {}
      return firstByteAt === undefined ? { connect: (connectedAt - start) / 1000 } : { connect: (connectedAt - start) / 1000, firstByte: (firstByteAt - connectedAt) / 1000 }
    }
    try {
      const response = await pingOnce(target.podIp, target.port, signal, options.timeoutMs, timings)
      const seconds = (performance.now() - start) / 1000
      const status = classifyStatus(response.status)
      if (status !== null) return { ok: false, ...status, seconds, phases: phases() }
      const read = readPingAnswer(response.body, target.id)
      if (!read.ok) return { ...read, seconds, phases: phases() }
      return { ok: true, seconds, phases: phases() }
    } catch (err) {
      const seconds = (performance.now() - start) / 1000
      const { reason, raw } = classifyError(err, pingStage(timings))
      return { ok: false, reason, raw, seconds, phases: phases() }
    }
  }
}
