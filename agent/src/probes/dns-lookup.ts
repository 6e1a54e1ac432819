// The dns-lookup probe: getaddrinfo for one name, the path every application in the pod takes
// (resolv.conf search list and ndots, /etc/hosts, nsswitch), run under the lookup pool's guard.

import type { DnsOutcome } from '../dns-expect.ts'
import { lookupName } from '../layers/resolve.ts'
import type { LookupFamily, LookupPool } from '../lookup-pool.ts'
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
 * The probe: one getaddrinfo call under the lookup pool's guard (layers/resolve.ts lookupName, which
 * the DNS phase of the service, http and tcp probes shares). A timeout is LOOKUP_TIMEOUT at once, the
 * uncancellable call left to the pool; a saturated pool makes the failure AGENT_OVERLOADED and a
 * success `lagged`. The target's `expect` decides whether a negative answer is the healthy one.
 */
export function createDnsLookupProbe (pool: LookupPool): Probe<DnsLookupTarget> {
  return function dnsLookupProbe (target, signal): Promise<ProbeResult> {
    return lookupName(pool, target.name, target.family, signal, target.expect)
  }
}
