// Pod-to-service probe: GET /ping through the agents' ClusterIP Service, by IP or by DNS name, on a
// new connection each time so every probe is a new flow through kube-proxy or the eBPF datapath.
// The agent that answers names itself, so the result carries which backend the Service picked.

import { performance } from 'node:perf_hooks'
import { hostPort, parseHostPort } from '../layers/address.ts'
import { classifyError, classifyStatus } from '../layers/classify.ts'
import { readPingAnswer } from '../layers/ping-answer.ts'
import { resolveHost } from '../layers/resolve.ts'
import type { LookupFamily, LookupPool } from '../lookup-pool.ts'
import { pingOnce, pingStage, type PingTimings } from '../ping-client.ts'
import type { Probe, ProbeResult, Target } from '../probe.ts'

export interface ServiceTarget extends Target {
  kind: 'service'
  /** The ClusterIP, or a name looked up through getaddrinfo (search list and all) on every probe. */
  host: string
  port: number
  family: LookupFamily
}

/** Column id: `host:port` as configured, e.g. `10.96.0.20:8081` or `pingfleet-agent.pingfleet:8081`. */
export function serviceTarget (host: string, port: number, family: LookupFamily = 0): ServiceTarget {
  return { kind: 'service', id: hostPort(host, port), host, port, family }
}

/** Parses one configured `host:port` or `[v6]:port`; null when it is not one. */
export function parseServiceTarget (text: string): ServiceTarget | null {
  const hp = parseHostPort(text)
  return hp === null ? null : serviceTarget(hp.host, hp.port)
}

export interface ServiceProbeOptions {
  /** Upper bound for silence on the connection; the scheduler's signal normally fires first. */
  timeoutMs: number
}

/**
 * The probe. Layers: resolve (layers/resolve.ts) → connect and exchange (pingOnce, ping-client.ts) →
 * classify (layers/classify.ts, by stage). Phases in seconds: `dns` when the host is a name, `connect`,
 * and `firstByte` from connected to the answer's first byte. `backend` is the node that answered;
 * `detail.address` the address connected to. A body that is not a /ping answer is BAD_RESPONSE
 * (readPingAnswer: raw INVALID_JSON or NOT_A_PING_ANSWER). Never rejects.
 */
export function createServiceProbe (pool: LookupPool, options: ServiceProbeOptions): Probe<ServiceTarget> {
  return async function serviceProbe (target, signal): Promise<ProbeResult> {
    const start = performance.now()
    const resolved = await resolveHost(pool, target.host, target.family, signal)
    if (!resolved.ok) return resolved.result
    const { phases, detail, trust: lagged } = resolved
    const seconds = (): number => (performance.now() - start) / 1000
    const timings: PingTimings = { connectedAt: undefined, firstByteAt: undefined, headersAt: undefined }
    const connectStart = performance.now()
    try {
      const response = await pingOnce(resolved.address, target.port, signal, options.timeoutMs, timings)
      const at = timings.connectedAt
      if (at !== undefined) {
        phases.connect = (at - connectStart) / 1000
        phases.firstByte = (timings.firstByteAt! - at) / 1000
      }
      const status = classifyStatus(response.status)
      if (status !== null) return { ok: false, ...status, seconds: seconds(), phases, detail, ...lagged }
      // Any agent may answer through the Service: no node is expected, the one that answered is the backend.
      const read = readPingAnswer(response.body)
      if (!read.ok) return { ...read, seconds: seconds(), phases, detail, ...lagged }
      return { ok: true, backend: read.node, seconds: seconds(), phases, detail, ...lagged }
    } catch (err) {
      const at = timings.connectedAt
      if (at !== undefined) phases.connect = (at - connectStart) / 1000
      const { reason, raw } = classifyError(err, pingStage(timings))
      return { ok: false, reason, raw, seconds: seconds(), phases, detail, ...lagged }
    }
  }
}
