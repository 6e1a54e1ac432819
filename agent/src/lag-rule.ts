// When the agent's own slowness may excuse a probe's outcome. A stall excuses a failure only when it
// can explain it; the derivation, and what the turn counts are, is in docs/reasons.md ("Lagged samples").

import type { ProbeKind, Reason } from '@pingfleet/protocol'
import { isTimeoutReason } from './layers/classify.ts'
import type { ProbeResult } from './probe.ts'

/**
 * Event-loop turns a healthy exchange of each kind needs, read off the probes' code paths: each turn
 * waits for the loop once, so at most one stall can delay it. A lookup is two turns (the pool's canary
 * and the getaddrinfo callback); a connection is its connect callback, the answer's data and its end.
 */
export const PROBE_TURNS: Partial<Record<ProbeKind, number>> = {
  pod: 3, // connect (and write), data, end
  mtu: 6, // connect, headers and body of the small answer, then headers, body and end of the large one
  service: 5, // lookup (2) + connect, data, end
  'dns-lookup': 2, // canary, getaddrinfo callback
  'dns-wire': 5, // UDP: send, reply; after a truncated reply the TCP retry: connect, data, end
  http: 9, // lookup (2) + connect, TLS (2), headers, body, end, and one spare for the TLS session ticket
  tcp: 3, // lookup (2) + connect
  udp: 3 // connect callback (sends the first datagram), the echo's read, the verdict (setImmediate)
}
/** For a kind without an entry. */
export const DEFAULT_TURNS = 3

export function turnsOf (kind: ProbeKind): number {
  return PROBE_TURNS[kind] ?? DEFAULT_TURNS
}

/** Failures that only say "too slow" (or "the agent itself was too slow"): the kinds a stall could cause. */
export function isExcusable (reason: Reason): boolean {
  return isTimeoutReason(reason) || reason === 'AGENT_OVERLOADED'
}

export interface LagEvidence {
  /** A stall above the threshold overlapped the probe. */
  stalled: boolean
  /** The most the loop's stalls could have delayed the probe (sum of the `turns` largest overlapping stalls), ms. */
  delayBoundMs: number
  /** The probe's time limit, ms. */
  timeoutMs: number
}

/**
 * Whether one finished probe counts as lagged instead of as a latency sample or an error:
 *  - a success is lagged when a stall overlapped it, or when the probe flagged its own timing;
 *  - a timeout (or AGENT_OVERLOADED) is lagged only when the agent's delay bound, the loop's plus the
 *    time the probe's own machinery held it (`heldMs`, e.g. a saturated threadpool), reaches the timeout:
 *    only then could a healthy exchange have failed this way;
 *  - every other failure stands as an error.
 */
export function isLagged (result: ProbeResult, evidence: LagEvidence): boolean {
  if (result.ok) return evidence.stalled || result.lagged === true
  if (!isExcusable(result.reason)) return false
  return evidence.delayBoundMs + (result.heldMs ?? 0) >= evidence.timeoutMs
}
