// Pod-to-pod probe: HTTP GET /ping to a peer agent's pod IP, on a brand-new TCP connection each time,
// because a pooled connection hides exactly the failures of new flows that a CNI migration causes.

import { isIPv6 } from 'node:net'
import { performance } from 'node:perf_hooks'
import { buildConnector, Client } from 'undici'
import { classifyError, classifyStatus } from '../classify.ts'
import type { Probe, ProbeResult, Target } from '../probe.ts'

/** A peer agent. `id` is the peer's node name, which its /ping answer must repeat. */
export interface PodTarget extends Target {
  kind: 'pod'
  podIp: string
  port: number
}

export interface PodProbeOptions {
  /** Upper bound for undici's own connect/headers/body timers; the scheduler's signal normally fires first. */
  timeoutMs: number
}

/**
 * Phases: `connect` is the TCP handshake, `firstByte` runs from connected to the response headers;
 * `seconds` is the whole probe, body included.
 */
export function createPodProbe (options: PodProbeOptions): Probe<PodTarget> {
  const connector = buildConnector({ timeout: options.timeoutMs })
  return async function podProbe (target, signal): Promise<ProbeResult> {
    const start = performance.now()
    let connectedAt: number | undefined
    let headersAt: number | undefined
    const host = isIPv6(target.podIp) ? `[${target.podIp}]` : target.podIp
    const client = new Client(`http://${host}:${target.port}`, {
      pipelining: 1,
      headersTimeout: options.timeoutMs,
      bodyTimeout: options.timeoutMs,
      connect (opts, callback) {
        connector(opts, (...args) => {
          if (args[0] === null) connectedAt = performance.now()
          callback(...args)
        })
      }
    })
    const phases = () => ({
      ...(connectedAt !== undefined ? { connect: (connectedAt - start) / 1000 } : {}),
      ...(connectedAt !== undefined && headersAt !== undefined ? { firstByte: (headersAt - connectedAt) / 1000 } : {})
    })
    try {
      const response = await client.request({ method: 'GET', path: '/ping', signal, headers: { connection: 'close' } })
      headersAt = performance.now()
      // Read the body in full even on errors: an unread body pins its socket.
      const body = await response.body.text()
      const seconds = (performance.now() - start) / 1000
      const status = classifyStatus(response.statusCode)
      if (status !== null) return { ok: false, ...status, seconds, phases: phases() }
      let node: unknown
      try {
        node = (JSON.parse(body) as { node?: unknown }).node
      } catch {
        return { ok: false, reason: 'BAD_RESPONSE', raw: 'INVALID_JSON', seconds, phases: phases() }
      }
      if (node !== target.id) {
        return { ok: false, reason: 'BAD_RESPONSE', raw: 'NODE_MISMATCH', seconds, phases: phases(), detail: { node: String(node) } }
      }
      return { ok: true, seconds, phases: phases() }
    } catch (err) {
      const seconds = (performance.now() - start) / 1000
      const { reason, raw } = classifyError(err, connectedAt === undefined ? 'connect' : 'response')
      return { ok: false, reason, raw, seconds, phases: phases() }
    } finally {
      await client.destroy().catch(() => {})
    }
  }
}
