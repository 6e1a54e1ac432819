import t from 'tap'
import { classifyBlackhole, classifyDeadline, classifyDnsDeadline, classifyError, classifyEvent, classifyPingAnswer, classifyRcode, classifyStatus, classifyThrown, classifyTruncated, closedEarly, isOutOfTime, isTimeoutReason, PROBE_EVENTS, type Stage } from '../../src/layers/classify.ts'

const err = (code: string, extra: object = {}) => Object.assign(new Error(code), { code, ...extra })
// What the kernel's errors look like: a syscall beside the code (read ECONNRESET, connect ECONNREFUSED).
const sys = (code: string, syscall = 'read') => err(code, { syscall, errno: -1 })

t.test('system and undici codes map to one reason each, keeping the raw code', async t => {
  const cases: Array<[unknown, string, string]> = [
    [sys('ECONNREFUSED', 'connect'), 'ECONNREFUSED', 'ECONNREFUSED'],
    [sys('ECONNRESET'), 'ECONNRESET', 'ECONNRESET'],
    [err('EPIPE'), 'ECONNRESET', 'EPIPE'],
    [err('EHOSTDOWN'), 'EHOSTUNREACH', 'EHOSTDOWN'],
    [err('EHOSTUNREACH'), 'EHOSTUNREACH', 'EHOSTUNREACH'],
    [err('ENETUNREACH'), 'ENETUNREACH', 'ENETUNREACH'],
    [err('UND_ERR_CONNECT_TIMEOUT'), 'CONNECT_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT'],
    [err('UND_ERR_SOCKET', { cause: sys('EHOSTUNREACH') }), 'EHOSTUNREACH', 'EHOSTUNREACH'],
    [err('UND_ERR_SOCKET', { cause: sys('ECONNRESET') }), 'ECONNRESET', 'ECONNRESET'],
    [err('EAI_NODATA'), 'ENOTFOUND', 'EAI_NODATA'],
    [err('EAI_AGAIN'), 'EAI_AGAIN', 'EAI_AGAIN'],
    [err('ERR_TLS_CERT_ALTNAME_INVALID'), 'TLS_ERROR', 'ERR_TLS_CERT_ALTNAME_INVALID'],
    [err('CERT_HAS_EXPIRED'), 'TLS_ERROR', 'CERT_HAS_EXPIRED'],
    [err('HPE_INVALID_CONSTANT'), 'BAD_RESPONSE', 'HPE_INVALID_CONSTANT'],
    [Object.assign(new Error('bad'), { name: 'HTTPParserError' }), 'BAD_RESPONSE', 'HTTP_PARSE_ERROR'],
    [err('UND_ERR_RES_CONTENT_LENGTH_MISMATCH'), 'BAD_RESPONSE', 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH'],
    [err('EWHATEVER'), 'OTHER', 'EWHATEVER'],
    [err('EPERM'), 'OTHER', 'EPERM'],
    [new Error('no code'), 'OTHER', 'UNKNOWN'],
    [new TypeError('typed'), 'OTHER', 'TypeError'],
    ['a string', 'OTHER', 'a string'],
    [null, 'OTHER', 'UNKNOWN'],
    [err('E'.repeat(80)), 'OTHER', 'E'.repeat(64)],
    [new AggregateError([sys('ECONNREFUSED', 'connect'), err('ENETUNREACH')]), 'ECONNREFUSED', 'ECONNREFUSED']
  ]
  for (const [error, reason, raw] of cases) t.same(classifyError(error, 'connect'), { reason, raw }, `${reason} ${raw}`)
})

t.test('an answer too large for the probe has one raw code, whichever reader saw it', async t => {
  for (const code of ['BODY_TOO_LARGE', 'UND_ERR_RES_EXCEEDED_MAX_SIZE']) t.same(classifyError(err(code), 'body'), { reason: 'BAD_RESPONSE', raw: 'BODY_TOO_LARGE' }, code)
  for (const code of ['HEADERS_TOO_LARGE', 'HPE_HEADER_OVERFLOW', 'UND_ERR_HEADERS_OVERFLOW']) t.same(classifyError(err(code), 'request'), { reason: 'BAD_RESPONSE', raw: 'HEADERS_TOO_LARGE' }, code)
})

t.test('a reset (RST) and an early close (FIN) are both ECONNRESET, told apart by the raw code', async t => {
  const stages: Stage[] = ['tls', 'request', 'body']
  for (const stage of stages) {
    t.same(classifyError(sys('ECONNRESET'), stage), { reason: 'ECONNRESET', raw: 'ECONNRESET' }, `${stage}: the kernel's reset`)
    t.same(classifyError(closedEarly('closed'), stage), { reason: 'ECONNRESET', raw: 'EOF' }, `${stage}: our readers' early close`)
    t.same(classifyError(err('ECONNRESET'), stage), { reason: 'ECONNRESET', raw: 'EOF' }, `${stage}: node:http's "socket hang up" (no syscall)`)
    t.same(classifyError(err('UND_ERR_SOCKET'), stage), { reason: 'ECONNRESET', raw: 'EOF' }, `${stage}: undici's "other side closed"`)
  }
})

t.test('the probe\'s own deadline: one raw code per stage, however the client reports it', async t => {
  const expected: Record<Stage, [string, string]> = {
    lookup: ['LOOKUP_TIMEOUT', 'TIMEOUT'],
    connect: ['CONNECT_TIMEOUT', 'TIMEOUT'],
    tls: ['RESPONSE_TIMEOUT', 'TLS_HANDSHAKE_TIMEOUT'],
    request: ['RESPONSE_TIMEOUT', 'HEADERS_TIMEOUT'],
    body: ['RESPONSE_TIMEOUT', 'BODY_TIMEOUT']
  }
  for (const [stage, [reason, raw]] of Object.entries(expected) as Array<[Stage, [string, string]]>) {
    t.same(classifyDeadline(stage), { reason, raw }, stage)
    for (const aborted of [new DOMException('late', 'TimeoutError'), new DOMException('gone', 'AbortError'), err('ABORT_ERR'), err('UND_ERR_ABORTED')]) {
      t.same(classifyError(aborted, stage), { reason, raw }, `${stage} ${String((aborted as { code?: unknown }).code ?? aborted.name)}`)
    }
  }
  t.same(classifyError(err('UND_ERR_HEADERS_TIMEOUT'), 'request'), { reason: 'RESPONSE_TIMEOUT', raw: 'HEADERS_TIMEOUT' })
  t.same(classifyError(err('UND_ERR_BODY_TIMEOUT'), 'body'), { reason: 'RESPONSE_TIMEOUT', raw: 'BODY_TIMEOUT' })
})

t.test('the kernel giving up (ETIMEDOUT) keeps its own code; the stage picks the reason', async t => {
  t.same(classifyError(err('ETIMEDOUT'), 'connect'), { reason: 'CONNECT_TIMEOUT', raw: 'ETIMEDOUT' })
  t.same(classifyError(err('ETIMEDOUT'), 'request'), { reason: 'RESPONSE_TIMEOUT', raw: 'ETIMEDOUT' })
  t.same(classifyError(err('ETIMEDOUT'), 'body'), { reason: 'RESPONSE_TIMEOUT', raw: 'ETIMEDOUT' })
})

t.test('getaddrinfo errors map to reasons and keep the raw code', async t => {
  const nodeError = (code: string, errno: number): Error => Object.assign(new Error(`getaddrinfo ${code} x`), { code, errno, syscall: 'getaddrinfo' })
  t.same(classifyError(nodeError('ENOTFOUND', -3008), 'lookup'), { reason: 'ENOTFOUND', raw: 'EAI_NONAME' })
  t.same(classifyError(nodeError('ENOTFOUND', -3007), 'lookup'), { reason: 'ENOTFOUND', raw: 'EAI_NODATA' })
  t.same(classifyError(nodeError('EAI_AGAIN', -3001), 'lookup'), { reason: 'EAI_AGAIN', raw: 'EAI_AGAIN' })
  t.same(classifyError(nodeError('EAI_FAIL', -3004), 'lookup'), { reason: 'EAI_FAIL', raw: 'EAI_FAIL' })
  t.same(classifyError(nodeError('EAI_MEMORY', -3006), 'lookup'), { reason: 'OTHER', raw: 'EAI_MEMORY' })
  t.same(classifyError(err('EAI_NODATA'), 'lookup'), { reason: 'ENOTFOUND', raw: 'EAI_NODATA' })
  t.same(classifyError(err('ENOTFOUND', { errno: -999999 }), 'lookup'), { reason: 'ENOTFOUND', raw: 'ENOTFOUND' }, 'an unknown errno keeps the code')
  t.same(classifyError(42, 'lookup'), { reason: 'OTHER', raw: 'UNKNOWN' })
})

t.test('in the TLS handshake, what is not a transport failure is TLS_ERROR', async t => {
  t.same(classifyError(err('ERR_SOME_NEW_TLS_THING'), 'tls'), { reason: 'TLS_ERROR', raw: 'ERR_SOME_NEW_TLS_THING' })
  t.same(classifyError(sys('ECONNRESET'), 'tls'), { reason: 'ECONNRESET', raw: 'ECONNRESET' })
  t.same(classifyError(err('ERR_SOME_NEW_TLS_THING'), 'request'), { reason: 'OTHER', raw: 'ERR_SOME_NEW_TLS_THING' })
})

t.test('HTTP statuses: raw HTTP_<status>', async t => {
  t.equal(classifyStatus(204), null)
  t.same(classifyStatus(101), { reason: 'HTTP_OTHER', raw: 'HTTP_101' })
  t.same(classifyStatus(429), { reason: 'HTTP_4XX', raw: 'HTTP_429' })
  t.same(classifyStatus(502), { reason: 'HTTP_5XX', raw: 'HTTP_502' })
  t.same(classifyStatus(600), { reason: 'HTTP_OTHER', raw: 'HTTP_600' })
})

t.test('timeout reasons', async t => {
  t.ok(isTimeoutReason('CONNECT_TIMEOUT'))
  t.ok(isTimeoutReason('DNS_TIMEOUT'))
  t.notOk(isTimeoutReason('ECONNREFUSED'))
})

t.test('events the probe sees itself: one reason each, the event\'s name as raw code', async t => {
  t.same(classifyEvent('SHORT_BODY'), { reason: 'BAD_RESPONSE', raw: 'SHORT_BODY' })
  t.same(classifyEvent('NO_ECHO'), { reason: 'UDP_NO_ECHO', raw: 'NO_ECHO' })
  t.same(classifyEvent('NO_ADDRESSES'), { reason: 'ENOTFOUND', raw: 'NO_ADDRESSES' })
  t.same(classifyEvent('DECODE_ERROR'), { reason: 'MALFORMED', raw: 'DECODE_ERROR' })
  for (const event of ['ID_MISMATCH', 'QUESTION_MISMATCH', 'NOT_A_RESPONSE'] as const) t.same(classifyEvent(event), { reason: 'MISMATCH', raw: event })
  for (const event of ['CONCURRENCY_LIMIT', 'LOOKUP_QUEUE_FULL', 'THREADPOOL_SATURATED'] as const) t.same(classifyEvent(event), { reason: 'AGENT_OVERLOADED', raw: event })
  for (const event of ['UNEXPECTED_ANSWER', 'UNEXPECTED_NODATA'] as const) t.same(classifyEvent(event), { reason: 'BAD_RESPONSE', raw: event })
  for (const event of PROBE_EVENTS) t.equal(classifyEvent(event).raw, event)
})

t.test('bad /ping answers: BAD_RESPONSE, one raw code per event', async t => {
  for (const event of ['INVALID_JSON', 'NOT_A_PING_ANSWER', 'NODE_MISMATCH'] as const) t.same(classifyPingAnswer(event), { reason: 'BAD_RESPONSE', raw: event })
})

t.test('mtu black hole: the stage\'s deadline raw code; what counts as out of time', async t => {
  t.same(classifyBlackhole('request'), { reason: 'MTU_BLACKHOLE', raw: 'HEADERS_TIMEOUT' })
  t.same(classifyBlackhole('body'), { reason: 'MTU_BLACKHOLE', raw: 'BODY_TIMEOUT' })
  for (const code of ['ETIMEDOUT', 'ABORT_ERR', 'UND_ERR_HEADERS_TIMEOUT']) t.ok(isOutOfTime(Object.assign(new Error('x'), { code })), code)
  t.ok(isOutOfTime(new DOMException('probe timeout', 'TimeoutError')))
  t.notOk(isOutOfTime(Object.assign(new Error('x'), { code: 'ECONNRESET' })))
  t.notOk(isOutOfTime('a string'))
})

t.test('dns-wire: deadlines, truncation and rcodes', async t => {
  t.same(classifyDnsDeadline('none', 'connect'), { reason: 'DNS_TIMEOUT', raw: 'TIMEOUT' })
  t.same(classifyDnsDeadline('udp', 'request'), { reason: 'DNS_TIMEOUT', raw: 'UDP_TIMEOUT' })
  t.same(classifyDnsDeadline('tcp', 'connect'), { reason: 'DNS_TIMEOUT', raw: 'TCP_CONNECT_TIMEOUT' })
  t.same(classifyDnsDeadline('tcp', 'request'), { reason: 'DNS_TIMEOUT', raw: 'TCP_TIMEOUT' })
  t.same(classifyTruncated({ reason: 'DNS_TIMEOUT', raw: 'TCP_TIMEOUT' }), { reason: 'TRUNCATED', raw: 'TCP_TIMEOUT' })
  t.same(classifyTruncated({ reason: 'ECONNREFUSED', raw: 'ECONNREFUSED' }), { reason: 'TRUNCATED', raw: 'TCP_ECONNREFUSED' })
  t.equal(classifyRcode('NOERROR', true), null)
  t.same(classifyRcode('NOERROR', false), { reason: 'NODATA', raw: 'NOERROR' })
  for (const rcode of ['NXDOMAIN', 'SERVFAIL', 'REFUSED'] as const) t.same(classifyRcode(rcode, false), { reason: rcode, raw: rcode })
  t.same(classifyRcode('NOTIMP', false), { reason: 'DNS_OTHER_RCODE', raw: 'NOTIMP' })
})

t.test('a probe that threw: OTHER, its code or PROBE_THREW', async t => {
  t.same(classifyThrown(new Error('bug')), { reason: 'OTHER', raw: 'PROBE_THREW' })
  t.same(classifyThrown(Object.assign(new Error('bug'), { code: 'EPERM' })), { reason: 'OTHER', raw: 'EPERM' })
  t.same(classifyThrown(undefined), { reason: 'OTHER', raw: 'PROBE_THREW' })
})
