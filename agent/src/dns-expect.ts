// What a DNS probe expects from its name and type, so an answer that is normal for the query (NODATA
// for AAAA on an IPv4-only cluster, NXDOMAIN for a name that is meant not to exist) is not a failure.

import { isIP } from 'node:net'

/**
 * `answer`: records of the type must come back (NODATA and NXDOMAIN fail).
 * `nodata`: the name must exist; records of the type may or may not (NODATA passes, NXDOMAIN fails).
 * `nxdomain`: the name must not exist (NXDOMAIN passes; an answer or NODATA fails as BAD_RESPONSE).
 */
export type DnsOutcome = 'answer' | 'nodata' | 'nxdomain'
export type DnsRecordType = 'A' | 'AAAA'

/** One `PINGFLEET_DNS_EXPECT` entry: `<name>/<A|AAAA>=<outcome>`. */
export interface DnsExpectation {
  /** Lower case, without a trailing dot: it matches the name however a target writes it. */
  name: string
  type: DnsRecordType
  outcome: DnsOutcome
}

/** The name as expectations compare it: case-insensitive, trailing dot ignored. */
export function expectationKey (name: string): string {
  return name.toLowerCase().replace(/\.$/, '')
}

/** Parses `name/TYPE=outcome` (e.g. `absent.example/A=nxdomain`); null when it is not one. */
export function parseDnsExpectation (text: string): DnsExpectation | null {
  const match = /^([A-Za-z0-9_.-]+)\/(A|AAAA)=(answer|nodata|nxdomain)$/.exec(text.trim())
  if (match === null || match[1]!.replace(/\.$/, '') === '') return null
  return { name: expectationKey(match[1]!), type: match[2] as DnsRecordType, outcome: match[3] as DnsOutcome }
}

/**
 * What a query expects when no entry names it: records of the pod's own address family must come back;
 * for the other family NODATA is normal (an IPv4 pod on a single-stack cluster gets NODATA for AAAA).
 * A dual-stack cluster that wants both says so: `<name>/AAAA=answer`.
 */
export function defaultOutcome (type: DnsRecordType, podIp: string): DnsOutcome {
  const podType: DnsRecordType = isIP(podIp) === 6 ? 'AAAA' : 'A'
  return type === podType ? 'answer' : 'nodata'
}

/** The outcome for `name` and `type`: the configured entry, else defaultOutcome. */
export function expectedOutcome (expectations: readonly DnsExpectation[], name: string, type: DnsRecordType, podIp: string): DnsOutcome {
  const key = expectationKey(name)
  return expectations.find(e => e.name === key && e.type === type)?.outcome ?? defaultOutcome(type, podIp)
}

/**
 * The outcome for a getaddrinfo lookup of `name` limited to `family` (4: A, 6: AAAA). A lookup of both
 * families (0) succeeds when either answers, so only explicit entries change it: their common outcome,
 * else `answer` if one of them wants an answer, else `nodata`.
 */
export function lookupOutcome (expectations: readonly DnsExpectation[], name: string, family: 0 | 4 | 6, podIp: string): DnsOutcome {
  if (family !== 0) return expectedOutcome(expectations, name, family === 4 ? 'A' : 'AAAA', podIp)
  const key = expectationKey(name)
  const explicit = expectations.filter(e => e.name === key).map(e => e.outcome)
  if (explicit.length === 0) return 'answer'
  if (explicit.every(outcome => outcome === explicit[0])) return explicit[0]!
  return explicit.includes('answer') ? 'answer' : 'nodata'
}
