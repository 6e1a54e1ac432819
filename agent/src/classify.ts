// Maps what the runtime threw (or the HTTP status that came back) to exactly one protocol Reason,
// keeping the raw code beside it. Shared by every probe that opens sockets or resolves names.

import type { Reason } from '@pingfleet/protocol'

export interface Classified {
  reason: Reason
  /** The runtime's own code, e.g. UND_ERR_CONNECT_TIMEOUT or EAI_NODATA (at most 64 characters). */
  raw: string
}

/** Where the probe was when it failed: before the TCP handshake finished, or after. */
export type Phase = 'connect' | 'response'

const DIRECT: Record<string, Reason> = {
  ECONNREFUSED: 'ECONNREFUSED',
  ECONNRESET: 'ECONNRESET',
  EPIPE: 'ECONNRESET',
  ECONNABORTED: 'ECONNRESET',
  UND_ERR_SOCKET: 'ECONNRESET',
  EHOSTUNREACH: 'EHOSTUNREACH',
  EHOSTDOWN: 'EHOSTUNREACH',
  ENETUNREACH: 'ENETUNREACH',
  ENETDOWN: 'ENETUNREACH',
  UND_ERR_CONNECT_TIMEOUT: 'CONNECT_TIMEOUT',
  UND_ERR_HEADERS_TIMEOUT: 'RESPONSE_TIMEOUT',
  UND_ERR_BODY_TIMEOUT: 'RESPONSE_TIMEOUT',
  // getaddrinfo: Node folds EAI_NONAME and EAI_NODATA into ENOTFOUND; the raw code keeps the original.
  ENOTFOUND: 'ENOTFOUND',
  EAI_NONAME: 'ENOTFOUND',
  EAI_NODATA: 'ENOTFOUND',
  EAI_AGAIN: 'EAI_AGAIN',
  EAI_FAIL: 'EAI_FAIL'
}

/**
 * An answer larger than the probe reads: the same raw code from every probe kind and runtime
 * (our own readers, node:http's llhttp, undici), always BAD_RESPONSE.
 */
const TOO_LARGE: Record<string, string> = {
  BODY_TOO_LARGE: 'BODY_TOO_LARGE',
  UND_ERR_RES_EXCEEDED_MAX_SIZE: 'BODY_TOO_LARGE',
  HEADERS_TOO_LARGE: 'HEADERS_TOO_LARGE',
  HPE_HEADER_OVERFLOW: 'HEADERS_TOO_LARGE',
  UND_ERR_HEADERS_OVERFLOW: 'HEADERS_TOO_LARGE'
}

/** Errors that mean "ran out of time": which timeout it was depends on the phase. */
const TIMEOUTS = new Set(['ETIMEDOUT', 'AbortError', 'TimeoutError', 'ABORT_ERR', 'UND_ERR_ABORTED', 'UND_ERR_ABORT'])
/** Of those, the ones that are the probe's own deadline firing: raw `TIMEOUT`, as every probe reports it. */
const OWN_DEADLINE = new Set(['AbortError', 'TimeoutError', 'ABORT_ERR', 'UND_ERR_ABORTED', 'UND_ERR_ABORT'])

const TLS = /^(ERR_TLS_|ERR_SSL_|CERT_|UNABLE_TO_|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|HOSTNAME_MISMATCH)/

function codeOf (err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined
  const { code, name } = err as { code?: unknown, name?: unknown }
  if (typeof code === 'string' && code !== '') return code
  if (typeof name === 'string' && name !== '' && name !== 'Error') return name
  return undefined
}

function truncate (raw: string): string {
  return raw.length <= 64 ? raw : raw.slice(0, 64)
}

/** One reason for one failure. `phase` decides between CONNECT_TIMEOUT and RESPONSE_TIMEOUT for aborts. */
export function classifyError (err: unknown, phase: Phase): Classified {
  // Happy-eyeballs connects fail with every attempt's error; the first one says what happened.
  if (err instanceof AggregateError && err.errors.length > 0 && (err as { code?: unknown }).code === undefined) {
    return classifyError(err.errors[0], phase)
  }
  const code = codeOf(err)
  if (code === undefined) return { reason: 'OTHER', raw: typeof err === 'string' ? truncate(err) : 'UNKNOWN' }
  // undici wraps a socket error; a known cause is more precise than "other side closed".
  if (code === 'UND_ERR_SOCKET') {
    const cause = codeOf((err as { cause?: unknown }).cause)
    if (cause !== undefined && DIRECT[cause] !== undefined) return { reason: DIRECT[cause], raw: truncate(cause) }
  }
  const tooLarge = TOO_LARGE[code]
  if (tooLarge !== undefined) return { reason: 'BAD_RESPONSE', raw: tooLarge }
  const direct = DIRECT[code]
  if (direct !== undefined) return { reason: direct, raw: truncate(code) }
  // llhttp's codes (node:http, undici, the pod probe's own parser): an answer came, but not HTTP.
  if (code.startsWith('HPE_')) return { reason: 'BAD_RESPONSE', raw: truncate(code) }
  if (TIMEOUTS.has(code)) return { reason: phase === 'connect' ? 'CONNECT_TIMEOUT' : 'RESPONSE_TIMEOUT', raw: OWN_DEADLINE.has(code) ? 'TIMEOUT' : truncate(code) }
  if (TLS.test(code)) return { reason: 'TLS_ERROR', raw: truncate(code) }
  return { reason: 'OTHER', raw: truncate(code) }
}

/** The reason for a non-2xx answer, or null when the status is a success. */
export function classifyStatus (status: number): Classified | null {
  if (status >= 200 && status < 300) return null
  const raw = `HTTP_${status}`
  if (status >= 400 && status < 500) return { reason: 'HTTP_4XX', raw }
  if (status >= 500 && status < 600) return { reason: 'HTTP_5XX', raw }
  return { reason: 'HTTP_OTHER', raw }
}

/** Reasons that only say "too slow": untrustworthy when the agent's own event loop was late. */
export function isTimeoutReason (reason: Reason): boolean {
  return reason === 'CONNECT_TIMEOUT' || reason === 'RESPONSE_TIMEOUT' || reason === 'LOOKUP_TIMEOUT' ||
    reason === 'DNS_TIMEOUT' || reason === 'MTU_BLACKHOLE' || reason === 'UDP_NO_ECHO'
}
