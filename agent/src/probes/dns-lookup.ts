// The dns-lookup probe: getaddrinfo for one name, the path every application in the pod takes
// (resolv.conf search list and ndots, /etc/hosts, nsswitch), run under the lookup pool's guard.

import { isIP } from 'node:net'
import { getSystemErrorName } from 'node:util'
import type { Reason } from '@pingfleet/protocol'
import type { LookupFamily, LookupPool, PoolTiming } from '../lookup-pool.ts'
import type { DnsOutcome } from '../dns-expect.ts'
import type { Probe, ProbeResult, Target } from '../probe.ts'

/**
 * `name` is passed to getaddrinfo as written: `kubernetes.default` goes through the search list,
 * `kubernetes.default.svc.cluster.local.` (trailing dot) does not. Family 0 asks for both A and AAAA.
 */
export interface DnsLookupTarget extends Target {
  kind: 'dns-lookup'
  name: string
  family: LookupFamily
  /** What a healthy resolver answers (dns-expect.ts): `nodata` passes EAI_NODATA, `nxdomain` passes EAI_NONAME. Default `answer`. */
  expect?: DnsOutcome
}

const SUFFIX = '@getaddrinfo'

/** Column id: `<name>@getaddrinfo`, plus `/4` or `/6` when the lookup is limited to one family. */
export function dnsLookupTarget (name: string, family: LookupFamily = 0): DnsLookupTarget {
  return { kind: 'dns-lookup', id: `${name}${SUFFIX}${family === 0 ? '' : `/${family}`}`, name, family }
}

// A hostname as getaddrinfo takes it: labels of letters, digits, '-' and '_', an optional trailing dot.
const NAME = /^(?=.{1,254}$)([A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?$/

/** Parses one configured entry, `name` or `name/4` or `name/6`; null when it is not one. */
export function parseDnsLookupTarget (text: string): DnsLookupTarget | null {
  const match = /^(.+?)(?:\/([46]))?$/.exec(text.trim())
  if (match === null || !NAME.test(match[1]!)) return null
  return dnsLookupTarget(match[1]!, match[2] === undefined ? 0 : Number(match[2]) as 4 | 6)
}

/**
 * Maps a dns.lookup error to its reason. Node folds EAI_NONAME and EAI_NODATA into ENOTFOUND but keeps
 * the libuv errno, so the raw code recovers which one it was.
 */
export function lookupReason (err: unknown): { reason: Reason, raw: string } {
  const e = (typeof err === 'object' && err !== null ? err : {}) as { code?: unknown, errno?: unknown }
  const code = typeof e.code === 'string' ? e.code : 'UNKNOWN'
  let raw = code
  if (code === 'ENOTFOUND' && typeof e.errno === 'number' && e.errno < 0) {
    const name = getSystemErrorName(e.errno)
    if (name.startsWith('EAI_')) raw = name
  }
  switch (code) {
    case 'ENOTFOUND':
    case 'EAI_NONAME':
    case 'EAI_NODATA':
      return { reason: 'ENOTFOUND', raw }
    case 'EAI_AGAIN':
      return { reason: 'EAI_AGAIN', raw }
    case 'EAI_FAIL':
      return { reason: 'EAI_FAIL', raw }
    default:
      return { reason: 'OTHER', raw }
  }
}

/**
 * The probe. A timeout resolves LOOKUP_TIMEOUT at once, while the getaddrinfo call it cannot cancel keeps
 * its thread (the pool counts it as abandoned). When the pool was saturated, or the lookup never got a
 * slot, the failure is the agent's own: AGENT_OVERLOADED. Successful samples taken while the pool was
 * saturated carry `lagged: true` and must not be recorded as DNS latency.
 */
export function createDnsLookupProbe (pool: LookupPool): Probe<DnsLookupTarget> {
  return async function dnsLookupProbe (target, signal): Promise<ProbeResult> {
    const outcome = await pool.lookup(target.name, target.family, signal)
    const { seconds, lagged } = outcome.timing
    const phases = { dns: seconds }
    switch (outcome.state) {
      case 'fulfilled': {
        const addresses = outcome.value
        if (addresses.length === 0) return { ok: false, reason: 'ENOTFOUND', raw: 'NO_ADDRESSES', seconds, phases }
        if (target.expect === 'nxdomain') return { ok: false, reason: 'BAD_RESPONSE', raw: 'UNEXPECTED_ANSWER', seconds, phases, detail: { address: addresses[0]!.address } }
        const detail: Record<string, string | number> = { addresses: addresses.length, address: addresses[0]!.address }
        return { ok: true, seconds, phases, detail, ...(lagged ? { lagged, ...held(outcome.timing) } : {}) }
      }
      case 'rejected': {
        const { reason, raw } = lookupReason(outcome.error)
        // An expected negative answer is a success: the name is known without data (EAI_NODATA), or,
        // where it should not exist, it does not (EAI_NONAME). Its latency is the resolver's.
        const expected = (target.expect === 'nodata' && raw === 'EAI_NODATA') || (target.expect === 'nxdomain' && raw === 'EAI_NONAME')
        if (expected) return { ok: true, seconds, phases, detail: { rcode: raw }, ...(lagged ? { lagged, ...held(outcome.timing) } : {}) }
        if (target.expect === 'nxdomain' && raw === 'EAI_NODATA') return { ok: false, reason: 'BAD_RESPONSE', raw: 'UNEXPECTED_NODATA', seconds, phases }
        return { ok: false, reason, raw, seconds, phases, ...(lagged ? { lagged } : {}) }
      }
      case 'abandoned':
        // Only a canary still waiting at the deadline says the lookup never got a thread. A canary that
        // came back late says the pool held the lookup that long, no more: the rest is the resolver's.
        if (outcome.timing.canaryPending && lagged) return { ok: false, reason: 'AGENT_OVERLOADED', raw: 'THREADPOOL_SATURATED', seconds }
        return { ok: false, reason: 'LOOKUP_TIMEOUT', raw: 'TIMEOUT', seconds, detail: { abandoned: pool.stats().abandoned }, ...held(outcome.timing) }
      case 'not-started':
        return { ok: false, reason: 'AGENT_OVERLOADED', raw: 'LOOKUP_QUEUE_FULL', seconds: outcome.timing.queueSeconds }
    }
  }
}

/** `heldMs` for a result whose lookup waited for the threadpool longer than the pool's lag threshold. */
function held (timing: PoolTiming): { heldMs?: number } {
  return timing.lagged ? { heldMs: Math.round(timing.canarySeconds * 1000) } : {}
}

export type HostResolution =
  | { ok: true, address: string, family: 4 | 6, seconds?: number, lagged: boolean, heldMs?: number }
  | { ok: false, result: ProbeResult }

/**
 * The DNS phase of the http and tcp probes: an IP literal passes through, a name is looked up under the
 * pool's guard and the first address is used. A failure is already the probe's result.
 */
export async function resolveHost (pool: LookupPool, host: string, family: LookupFamily, signal: AbortSignal): Promise<HostResolution> {
  const literal = isIP(host)
  if (literal !== 0) return { ok: true, address: host, family: literal as 4 | 6, lagged: false }
  const result = await createDnsLookupProbe(pool)(dnsLookupTarget(host, family), signal)
  if (!result.ok) return { ok: false, result }
  const heldMs = result.heldMs === undefined ? {} : { heldMs: result.heldMs }
  return { ok: true, address: String(result.detail!.address), family: isIP(String(result.detail!.address)) as 4 | 6, seconds: result.seconds, lagged: result.lagged === true, ...heldMs }
}
