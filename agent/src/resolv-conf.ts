// Reads resolv.conf the way glibc does, so the agent knows which nameservers, search list and
// ndots the application path (getaddrinfo) uses, and can probe the same servers on the wire.

import { readFile } from 'node:fs/promises'

export const DEFAULT_RESOLV_CONF_PATH = '/etc/resolv.conf'

export interface ResolvConf {
  /** In file order; glibc only ever uses the first three (MAXNS). */
  nameservers: string[]
  /** The search list; `domain` and `search` replace each other, the last line wins. */
  search: string[]
  ndots: number
  /** Seconds getaddrinfo waits for one server before it tries the next one. */
  timeout: number
  /** Rounds over the server list before getaddrinfo gives up. */
  attempts: number
  rotate: boolean
  /** Every `options` token, also those not interpreted above, e.g. `single-request-reopen`. */
  options: Record<string, string | true>
}

// glibc's defaults and caps (resolv/res_init.c, resolv.h).
const DEFAULTS = { ndots: 1, timeout: 5, attempts: 2 }
const CAPS = { ndots: 15, timeout: 30, attempts: 5 }
export const MAX_NAMESERVERS = 3

function applyOptions (conf: ResolvConf, tokens: string[]): void {
  for (const token of tokens) {
    const colon = token.indexOf(':')
    const key = colon === -1 ? token : token.slice(0, colon)
    const value = colon === -1 ? undefined : token.slice(colon + 1)
    conf.options[key] = value ?? true
    if (key === 'rotate') conf.rotate = true
    if ((key === 'ndots' || key === 'timeout' || key === 'attempts') && value !== undefined && /^\d+$/.test(value)) {
      conf[key] = Math.min(Number(value), CAPS[key])
    }
  }
}

/**
 * Parses resolv.conf text. `env` supplies LOCALDOMAIN and RES_OPTIONS, which override the file
 * for every process that inherits them, exactly as in glibc; pass `{}` to read the file alone.
 */
export function parseResolvConf (text: string, env: Record<string, string | undefined> = {}): ResolvConf {
  const conf: ResolvConf = { nameservers: [], search: [], ndots: DEFAULTS.ndots, timeout: DEFAULTS.timeout, attempts: DEFAULTS.attempts, rotate: false, options: {} }
  for (const rawLine of text.split('\n')) {
    const line = rawLine.replace(/[#;].*$/, '').trim()
    if (line === '') continue
    const [keyword, ...args] = line.split(/\s+/)
    if (keyword === 'nameserver' && args[0] !== undefined) conf.nameservers.push(args[0])
    else if (keyword === 'search') conf.search = args
    else if (keyword === 'domain' && args[0] !== undefined) conf.search = [args[0]]
    else if (keyword === 'options') applyOptions(conf, args)
  }
  if (env.LOCALDOMAIN !== undefined) conf.search = env.LOCALDOMAIN.trim().split(/\s+/).filter(s => s !== '')
  if (env.RES_OPTIONS !== undefined) applyOptions(conf, env.RES_OPTIONS.trim().split(/\s+/).filter(s => s !== ''))
  conf.search = conf.search.map(domain => domain.replace(/\.$/, ''))
  return conf
}

/** Reads and parses a resolv.conf; the path is configurable so a test namespace can supply its own. */
export async function readResolvConf (path = DEFAULT_RESOLV_CONF_PATH, env: Record<string, string | undefined> = {}): Promise<ResolvConf> {
  return parseResolvConf(await readFile(path, 'utf8'), env)
}

/**
 * The names getaddrinfo tries, in order: an absolute name (trailing dot) only as given; a name with
 * at least `ndots` dots as given first, then with each search domain; a shorter one the other way round.
 */
export function candidateNames (name: string, conf: Pick<ResolvConf, 'search' | 'ndots'>): string[] {
  if (name.endsWith('.')) return [name.slice(0, -1)]
  const dots = name.split('.').length - 1
  const searched = conf.search.map(domain => `${name}.${domain}`)
  return dots >= conf.ndots ? [name, ...searched] : [...searched, name]
}

/** True when every nameserver the resolver would use is on loopback (127.0.0.0/8 or ::1). */
export function nameserversAreLoopback (conf: Pick<ResolvConf, 'nameservers'>): boolean {
  // glibc falls back to 127.0.0.1 when no nameserver line is present.
  return conf.nameservers.slice(0, MAX_NAMESERVERS).every(ns => ns.startsWith('127.') || ns === '::1')
}

/**
 * How long glibc waits for one server in one round, in seconds, for each server in order. From
 * res_send.c send_dg(): `seconds = retrans << ns; if (ns > 0) seconds /= nscount; if (seconds <= 0)
 * seconds = 1`, where retrans is `options timeout:` and ns the server's index. With no nameserver
 * line glibc uses 127.0.0.1 alone; at most MAXNS (3) servers count.
 */
export function serverWaits (conf: Pick<ResolvConf, 'nameservers' | 'timeout'>): number[] {
  const n = Math.max(1, Math.min(conf.nameservers.length, MAX_NAMESERVERS))
  return Array.from({ length: n }, (_, ns) => ns === 0 ? Math.max(1, conf.timeout) : Math.max(1, Math.floor((conf.timeout << ns) / n)))
}

/**
 * The longest one getaddrinfo call can take before it returns, in seconds, when servers stay silent
 * (glibc 2.x, resolv.conf(5), res_send.c, res_query.c):
 * - one query (A and AAAA together) is `attempts` rounds over the servers, each waiting serverWaits;
 * - the A and AAAA queries go out together; when one answer arrives and the other never does, send_dg
 *   re-sends in `single-request` mode and then in `single-request-reopen` mode, each with a fresh wait,
 *   before it returns the one answer as a success: up to 2 more waits (1 with `options
 *   single-request`, 0 with `single-request-reopen`; none for a lookup limited to one family);
 * - a name without a trailing dot may be queried twice with a timeout: a timeout ends the search-list
 *   walk, but res_context_search() then still tries the name as is (or, with dots ≥ ndots, the as-is
 *   try came first and the first search domain follows). NXDOMAIN answers are quick and do not count.
 * So: queries × attempts × Σ waits + extra × max wait. glibc's defaults (timeout:5 attempts:2, one
 * server) give 2 × 2 × 5 + 2 × 5 = 30 s for `kubernetes.default`, 20 s for an absolute name, and 15 s
 * for the A-answered-AAAA-lost case alone.
 */
export function getaddrinfoWorstCaseSeconds (conf: Pick<ResolvConf, 'nameservers' | 'timeout' | 'attempts' | 'options'>, lookup: { relative: boolean, bothFamilies: boolean }): number {
  const waits = serverWaits(conf)
  const round = waits.reduce((sum, wait) => sum + wait, 0)
  const extra = !lookup.bothFamilies || conf.options['single-request-reopen'] !== undefined ? 0 : conf.options['single-request'] !== undefined ? 1 : 2
  const queries = lookup.relative ? 2 : 1
  return queries * Math.max(1, conf.attempts) * round + extra * Math.max(...waits)
}
