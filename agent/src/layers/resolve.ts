// The resolve layer (address → resolve → connect → exchange → classify): getaddrinfo for a name under
// the lookup pool's guard, judged the same way whether it is the dns-lookup probe itself or the DNS
// phase of a service, http or tcp probe. An IP literal passes through without a lookup.

import { isIP } from 'node:net'
import type { DnsOutcome } from '../dns-expect.ts'
import type { LookupFamily, LookupPool, PoolTiming } from '../lookup-pool.ts'
import type { Phases, ProbeResult } from '../probe.ts'
import { classifyDeadline, classifyError, classifyEvent } from './classify.ts'

/** `heldMs` for a result whose lookup waited for the threadpool longer than the pool's lag threshold. */
function held (timing: PoolTiming): { heldMs?: number } {
  return timing.lagged ? { heldMs: Math.round(timing.canarySeconds * 1000) } : {}
}

/**
 * One getaddrinfo call for `name` (as written: the search list applies unless it ends in a dot) under
 * the pool, as a probe result with `phases.dns` (seconds). A timeout resolves LOOKUP_TIMEOUT at once,
 * while the call it cannot cancel keeps its thread (the pool counts it as abandoned). When the pool was
 * saturated, or the lookup never got a slot, the failure is the agent's own: AGENT_OVERLOADED.
 * Successful samples taken while the pool was saturated carry `lagged: true` (and `heldMs`) and must
 * not be recorded as DNS latency. `expect` (dns-expect.ts) turns an expected negative answer into a
 * success and an unexpected answer into BAD_RESPONSE. Never rejects.
 */
export async function lookupName (pool: LookupPool, name: string, family: LookupFamily, signal: AbortSignal, expect: DnsOutcome = 'answer'): Promise<ProbeResult> {
  const outcome = await pool.lookup(name, family, signal)
  const { seconds, lagged } = outcome.timing
  const phases = { dns: seconds }
  switch (outcome.state) {
    case 'fulfilled': {
      const addresses = outcome.value
      if (addresses.length === 0) return { ok: false, ...classifyEvent('NO_ADDRESSES'), seconds, phases }
      if (expect === 'nxdomain') return { ok: false, ...classifyEvent('UNEXPECTED_ANSWER'), seconds, phases, detail: { address: addresses[0]!.address } }
      const detail: Record<string, string | number> = { addresses: addresses.length, address: addresses[0]!.address }
      return { ok: true, seconds, phases, detail, ...(lagged ? { lagged, ...held(outcome.timing) } : {}) }
    }
    case 'rejected': {
      const { reason, raw } = classifyError(outcome.error, 'lookup')
      // An expected negative answer is a success: the name is known without data (EAI_NODATA), or,
      // where it should not exist, it does not (EAI_NONAME). Its latency is the resolver's.
      const expected = (expect === 'nodata' && raw === 'EAI_NODATA') || (expect === 'nxdomain' && raw === 'EAI_NONAME')
      if (expected) return { ok: true, seconds, phases, detail: { rcode: raw }, ...(lagged ? { lagged, ...held(outcome.timing) } : {}) }
      if (expect === 'nxdomain' && raw === 'EAI_NODATA') return { ok: false, ...classifyEvent('UNEXPECTED_NODATA'), seconds, phases }
      return { ok: false, reason, raw, seconds, phases, ...(lagged ? { lagged } : {}) }
    }
    case 'abandoned':
      // Only a canary still waiting at the deadline says the lookup never got a thread. A canary that
      // came back late says the pool held the lookup that long, no more: the rest is the resolver's.
      if (outcome.timing.canaryPending && lagged) return { ok: false, ...classifyEvent('THREADPOOL_SATURATED'), seconds }
      return { ok: false, ...classifyDeadline('lookup'), seconds, detail: { abandoned: pool.stats().abandoned }, ...held(outcome.timing) }
    case 'not-started':
      return { ok: false, ...classifyEvent('LOOKUP_QUEUE_FULL'), seconds: outcome.timing.queueSeconds }
  }
}

/** What a resolved host brings to the probe's result, copied into it by the later layers. */
export interface Resolved {
  ok: true
  /** The IP literal to connect to: the host itself, or the first address getaddrinfo returned. */
  address: string
  family: 4 | 6
  /** `dns` in seconds when a lookup ran; a fresh object the probe adds its later phases to. */
  phases: Phases
  /** `address`, as every probe that resolves reports it. */
  detail: Record<string, string | number>
  /** `lagged` (and `heldMs`) when the lookup waited for a saturated threadpool: the whole sample is untrustworthy. */
  trust: { lagged?: true, heldMs?: number }
}

export type HostResolution = Resolved | { ok: false, result: ProbeResult }

/**
 * The DNS phase of the service, http and tcp probes: an IP literal passes through (no `dns` phase), a
 * name is looked up with lookupName and its first address is used. A failure is already the probe's
 * result (the dns-lookup probe's reasons: ENOTFOUND, EAI_AGAIN, LOOKUP_TIMEOUT, AGENT_OVERLOADED, …). Never rejects.
 */
export async function resolveHost (pool: LookupPool, host: string, family: LookupFamily, signal: AbortSignal): Promise<HostResolution> {
  const literal = isIP(host)
  if (literal !== 0) return { ok: true, address: host, family: literal as 4 | 6, phases: {}, detail: { address: host }, trust: {} }
  const result = await lookupName(pool, host, family, signal)
  if (!result.ok) return { ok: false, result }
  const address = String(result.detail!.address)
  const trust: Resolved['trust'] = result.lagged === true ? { lagged: true, ...(result.heldMs === undefined ? {} : { heldMs: result.heldMs }) } : {}
  return { ok: true, address, family: isIP(address) as 4 | 6, phases: { dns: result.seconds }, detail: { address }, trust }
}
