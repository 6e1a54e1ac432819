// The one failure classifier, the last layer of every probe (address → resolve → connect → exchange →
// classify). It maps what the runtime threw, the HTTP status that came back, or the probe's own deadline
// to exactly one protocol Reason, keyed by the stage the probe was in, and keeps the raw code beside it.
// The same event gets the same raw code from every probe kind and every client (our own /ping reader,
// node:http, undici, net, dgram, dns.lookup): docs/reasons.md lists them.

import { getSystemErrorName } from 'node:util'
import type { Reason } from '@pingfleet/protocol'

export interface Classified {
  reason: Reason
  /** The runtime's own code, e.g. EAI_NODATA or ERR_TLS_CERT_ALTNAME_INVALID, or one of ours (at most 64 characters). */
  raw: string
}

/**
 * Where a probe was when it failed: resolving the name, in the TCP handshake, in the TLS handshake,
 * waiting for the answer's head (status line and headers), or reading its body.
 */
export type Stage = 'lookup' | 'connect' | 'tls' | 'request' | 'body'

/**
 * The raw code of a connection the peer closed (a FIN) before a complete answer. A reset (a RST) is
 * raw ECONNRESET instead: both are reason ECONNRESET, and the raw code tells them apart.
 */
export const EOF = 'EOF'

/** The error a reader raises when the peer closed before a complete answer (raw EOF). */
export function closedEarly (message: string): Error {
  return Object.assign(new Error(message), { code: EOF })
}

const DIRECT: Record<string, Reason> = {
  ECONNREFUSED: 'ECONNREFUSED',
  ECONNRESET: 'ECONNRESET',
  EPIPE: 'ECONNRESET',
  ECONNABORTED: 'ECONNRESET',
  EHOSTUNREACH: 'EHOSTUNREACH',
  EHOSTDOWN: 'EHOSTUNREACH',
  ENETUNREACH: 'ENETUNREACH',
  ENETDOWN: 'ENETUNREACH',
  UND_ERR_CONNECT_TIMEOUT: 'CONNECT_TIMEOUT',
  // getaddrinfo: Node folds EAI_NONAME and EAI_NODATA into ENOTFOUND; the raw code keeps the original (rawLookupCode).
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

/** The probe's own deadline firing, however the client reports it: classifyDeadline of the stage. */
const OWN_DEADLINE = new Set(['AbortError', 'TimeoutError', 'ABORT_ERR', 'UND_ERR_ABORTED', 'UND_ERR_ABORT'])
/** undici's own response timers are the same events as our deadline in those stages. */
const CLIENT_TIMEOUT: Record<string, Stage> = { UND_ERR_HEADERS_TIMEOUT: 'request', UND_ERR_BODY_TIMEOUT: 'body' }

const TLS = /^(ERR_TLS_|ERR_SSL_|CERT_|UNABLE_TO_|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|HOSTNAME_MISMATCH)/

const DEADLINE: Record<Stage, Classified> = {
  lookup: { reason: 'LOOKUP_TIMEOUT', raw: 'TIMEOUT' },
  connect: { reason: 'CONNECT_TIMEOUT', raw: 'TIMEOUT' },
  // A handshake that stalls after connect is often a path MTU problem: the certificate flight is large.
  tls: { reason: 'RESPONSE_TIMEOUT', raw: 'TLS_HANDSHAKE_TIMEOUT' },
  request: { reason: 'RESPONSE_TIMEOUT', raw: 'HEADERS_TIMEOUT' },
  body: { reason: 'RESPONSE_TIMEOUT', raw: 'BODY_TIMEOUT' }
}

/**
 * The probe's own deadline (the scheduler's signal) fired during `stage`: LOOKUP_TIMEOUT or
 * CONNECT_TIMEOUT (raw TIMEOUT), else RESPONSE_TIMEOUT with raw TLS_HANDSHAKE_TIMEOUT, HEADERS_TIMEOUT
 * or BODY_TIMEOUT. Probes with their own timeout reason (mtu's MTU_BLACKHOLE) keep this raw code.
 */
export function classifyDeadline (stage: Stage): Classified {
  return { ...DEADLINE[stage] }
}

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

/**
 * ENOTFOUND from dns.lookup keeps the libuv errno: EAI_NONAME or EAI_NODATA says which it was.
 * Any other code, or an errno that is not an EAI_ one, stays as it is.
 */
function rawLookupCode (err: object, code: string): string {
  const errno = (err as { errno?: unknown }).errno
  if (code !== 'ENOTFOUND' || typeof errno !== 'number' || !Number.isInteger(errno) || errno >= 0) return code
  const name = getSystemErrorName(errno)
  return name.startsWith('EAI_') ? name : code
}

/**
 * True when the peer closed the connection (a FIN) before a complete answer, as each client says it:
 * our readers' EOF, node:http's and node:tls's synthesised ECONNRESET ("socket hang up", "aborted",
 * "socket disconnected before secure TLS connection"), which unlike a kernel reset has no syscall,
 * and undici's "other side closed" (UND_ERR_SOCKET) without a socket error as its cause.
 */
function isEarlyClose (err: object, code: string): boolean {
  if (code === EOF) return true
  if (code === 'ECONNRESET') return (err as { syscall?: unknown }).syscall === undefined
  if (code === 'UND_ERR_SOCKET') return codeOf((err as { cause?: unknown }).cause) === undefined
  return false
}

/**
 * One reason for one failure that happened during `stage`. Never throws. The probe's own deadline
 * (an AbortError, TimeoutError, ABORT_ERR or undici's abort) is classifyDeadline(stage); the kernel
 * giving up (ETIMEDOUT) is CONNECT_TIMEOUT in the connect stage and RESPONSE_TIMEOUT later, raw
 * ETIMEDOUT. A reset is ECONNRESET raw ECONNRESET (or EPIPE, ECONNABORTED); an early close is
 * ECONNRESET raw EOF. In the tls stage, a failure that is not a transport one is TLS_ERROR.
 */
export function classifyError (err: unknown, stage: Stage): Classified {
  // Happy-eyeballs connects fail with every attempt's error; the first one says what happened.
  if (err instanceof AggregateError && err.errors.length > 0 && (err as { code?: unknown }).code === undefined) {
    return classifyError(err.errors[0], stage)
  }
  const code = codeOf(err)
  if (code === undefined) return { reason: 'OTHER', raw: typeof err === 'string' ? truncate(err) : 'UNKNOWN' }
  const e = err as object
  if (OWN_DEADLINE.has(code)) return classifyDeadline(stage)
  const clientTimeout = CLIENT_TIMEOUT[code]
  if (clientTimeout !== undefined) return classifyDeadline(clientTimeout)
  if (code === 'ETIMEDOUT') return { reason: stage === 'connect' ? 'CONNECT_TIMEOUT' : stage === 'lookup' ? 'LOOKUP_TIMEOUT' : 'RESPONSE_TIMEOUT', raw: code }
  if (isEarlyClose(e, code)) return { reason: 'ECONNRESET', raw: EOF }
  // undici wraps a socket error; its cause is more precise than "other side closed".
  if (code === 'UND_ERR_SOCKET') return classifyError((e as { cause?: unknown }).cause, stage)
  const tooLarge = TOO_LARGE[code]
  if (tooLarge !== undefined) return { reason: 'BAD_RESPONSE', raw: tooLarge }
  const direct = DIRECT[code]
  if (direct !== undefined) return { reason: direct, raw: truncate(rawLookupCode(e, code)) }
  // llhttp's codes (node:http, undici, the pod probe's own parser): an answer came, but not HTTP.
  if (code.startsWith('HPE_') || code.startsWith('UND_ERR_RES_')) return { reason: 'BAD_RESPONSE', raw: truncate(code) }
  if ((e as { name?: unknown }).name === 'HTTPParserError') return { reason: 'BAD_RESPONSE', raw: 'HTTP_PARSE_ERROR' }
  if (TLS.test(code) || stage === 'tls') return { reason: 'TLS_ERROR', raw: truncate(code) }
  return { reason: 'OTHER', raw: truncate(code) }
}

/** The reason for a non-2xx answer (raw `HTTP_<status>`, e.g. HTTP_503, from every probe kind), or null for a 2xx. */
export function classifyStatus (status: number): Classified | null {
  if (status >= 200 && status < 300) return null
  const raw = `HTTP_${status}`
  if (status >= 400 && status < 500) return { reason: 'HTTP_4XX', raw }
  if (status >= 500 && status < 600) return { reason: 'HTTP_5XX', raw }
  return { reason: 'HTTP_OTHER', raw }
}

/**
 * What reading a peer agent's /ping answer (a 2xx body) can find wrong, whichever probe read it
 * (pod, service, mtu): the body is not JSON, is JSON without a non-empty string `node` (not an
 * agent's answer), or names another node than the probe expected. Always BAD_RESPONSE in the body
 * stage; the raw code is the event's name.
 */
export type PingAnswerEvent = 'INVALID_JSON' | 'NOT_A_PING_ANSWER' | 'NODE_MISMATCH'

const PING_ANSWER: Record<PingAnswerEvent, Classified> = {
  INVALID_JSON: { reason: 'BAD_RESPONSE', raw: 'INVALID_JSON' },
  NOT_A_PING_ANSWER: { reason: 'BAD_RESPONSE', raw: 'NOT_A_PING_ANSWER' },
  NODE_MISMATCH: { reason: 'BAD_RESPONSE', raw: 'NODE_MISMATCH' }
}

/** The reason and raw code of a bad /ping answer (layers/ping-answer.ts reads the body). */
export function classifyPingAnswer (event: PingAnswerEvent): Classified {
  return { ...PING_ANSWER[event] }
}

/**
 * Failures no runtime error reports: the probe (or the agent) saw them itself. Keyed by event, with
 * the stage it happens in; the raw code is the event's name.
 */
const EVENTS = {
  // Before the probe ran: the agent's own capacity.
  CONCURRENCY_LIMIT: { stage: 'start', reason: 'AGENT_OVERLOADED' },
  LOOKUP_QUEUE_FULL: { stage: 'lookup', reason: 'AGENT_OVERLOADED' },
  THREADPOOL_SATURATED: { stage: 'lookup', reason: 'AGENT_OVERLOADED' },
  // A lookup that succeeded with nothing usable, or with what it was expected not to find.
  NO_ADDRESSES: { stage: 'lookup', reason: 'ENOTFOUND' },
  UNEXPECTED_ANSWER: { stage: 'lookup', reason: 'BAD_RESPONSE' },
  UNEXPECTED_NODATA: { stage: 'lookup', reason: 'BAD_RESPONSE' },
  // An answer that came but is not what was asked for.
  SHORT_BODY: { stage: 'body', reason: 'BAD_RESPONSE' },
  DECODE_ERROR: { stage: 'body', reason: 'MALFORMED' },
  ID_MISMATCH: { stage: 'body', reason: 'MISMATCH' },
  QUESTION_MISMATCH: { stage: 'body', reason: 'MISMATCH' },
  NOT_A_RESPONSE: { stage: 'body', reason: 'MISMATCH' },
  // No answer at all to a udp train.
  NO_ECHO: { stage: 'request', reason: 'UDP_NO_ECHO' }
} as const satisfies Record<string, { stage: Stage | 'start', reason: Reason }>

/** An event of EVENTS: its name is its raw code. */
export type ProbeEvent = keyof typeof EVENTS

/** Every raw code classifyEvent makes (docs/reasons.md lists them). */
export const PROBE_EVENTS = Object.keys(EVENTS) as ProbeEvent[]

/**
 * The reason of a failure the probe saw itself (EVENTS): e.g. SHORT_BODY is BAD_RESPONSE, NO_ECHO is
 * UDP_NO_ECHO, LOOKUP_QUEUE_FULL is AGENT_OVERLOADED. The raw code is the event's name.
 */
export function classifyEvent (event: ProbeEvent): Classified {
  return { reason: EVENTS[event].reason, raw: event }
}

/**
 * True when `err` means "ran out of time": the probe's own deadline (classifyDeadline), undici's
 * response timers, or ETIMEDOUT (the kernel or the connection's idle bound).
 */
export function isOutOfTime (err: unknown): boolean {
  const code = codeOf(err)
  return code !== undefined && (OWN_DEADLINE.has(code) || code in CLIENT_TIMEOUT || code === 'ETIMEDOUT')
}

/**
 * An mtu probe's large answer ran out of time after the small one worked: MTU_BLACKHOLE, with the
 * raw code of the stage's deadline (HEADERS_TIMEOUT or BODY_TIMEOUT).
 */
export function classifyBlackhole (stage: Stage): Classified {
  return { reason: 'MTU_BLACKHOLE', raw: DEADLINE[stage].raw }
}

/**
 * A dns-wire query's deadline: DNS_TIMEOUT, raw TIMEOUT before anything was sent, UDP_TIMEOUT waiting
 * for a UDP reply, TCP_CONNECT_TIMEOUT / TCP_TIMEOUT before / after the TCP connection was up.
 */
export function classifyDnsDeadline (transport: 'none' | 'udp' | 'tcp', stage: 'connect' | 'request'): Classified {
  if (transport === 'none') return { reason: 'DNS_TIMEOUT', raw: 'TIMEOUT' }
  if (transport === 'udp') return { reason: 'DNS_TIMEOUT', raw: 'UDP_TIMEOUT' }
  return { reason: 'DNS_TIMEOUT', raw: stage === 'connect' ? 'TCP_CONNECT_TIMEOUT' : 'TCP_TIMEOUT' }
}

/** A truncated UDP answer whose TCP retry failed with `tcp`: TRUNCATED, raw `TCP_<tcp's raw>` (never TCP_TCP_). */
export function classifyTruncated (tcp: Classified): Classified {
  return { reason: 'TRUNCATED', raw: tcp.raw.startsWith('TCP_') ? tcp.raw : `TCP_${tcp.raw}` }
}

/**
 * A DNS answer's content, when it is a failure (RFC 1035 §4.1.1 rcodes): NXDOMAIN, SERVFAIL and
 * REFUSED are their own reasons, NOERROR without records is NODATA (raw NOERROR), any other rcode is
 * DNS_OTHER_RCODE with its name as raw code. NOERROR with records is no failure: null.
 */
export function classifyRcode (rcode: string, hasRecords: boolean): Classified | null {
  if (rcode === 'NOERROR') return hasRecords ? null : { reason: 'NODATA', raw: 'NOERROR' }
  if (rcode === 'NXDOMAIN' || rcode === 'SERVFAIL' || rcode === 'REFUSED') return { reason: rcode, raw: rcode }
  return { reason: 'DNS_OTHER_RCODE', raw: truncate(rcode) }
}

/**
 * A probe that threw instead of returning a result (a bug: probes never reject): OTHER, raw the
 * error's `code` (at most 64 characters) or PROBE_THREW when it has none.
 */
export function classifyThrown (err: unknown): Classified {
  return { reason: 'OTHER', raw: String((err as { code?: unknown } | undefined)?.code ?? 'PROBE_THREW').slice(0, 64) }
}

/** Reasons that only say "too slow": untrustworthy when the agent's own event loop was late. */
export function isTimeoutReason (reason: Reason): boolean {
  return reason === 'CONNECT_TIMEOUT' || reason === 'RESPONSE_TIMEOUT' || reason === 'LOOKUP_TIMEOUT' ||
    reason === 'DNS_TIMEOUT' || reason === 'MTU_BLACKHOLE' || reason === 'UDP_NO_ECHO'
}
