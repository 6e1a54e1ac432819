import t from 'tap'
import { classifyError, classifyStatus, isTimeoutReason } from '../src/classify.ts'

const err = (code: string, extra: object = {}) => Object.assign(new Error(code), { code, ...extra })

t.test('system and undici codes map to one reason each, keeping the raw code', async t => {
  const cases: Array<[unknown, string, string]> = [
    [err('ECONNREFUSED'), 'ECONNREFUSED', 'ECONNREFUSED'],
    [err('EPIPE'), 'ECONNRESET', 'EPIPE'],
    [err('EHOSTDOWN'), 'EHOSTUNREACH', 'EHOSTDOWN'],
    [err('ENETUNREACH'), 'ENETUNREACH', 'ENETUNREACH'],
    [err('UND_ERR_CONNECT_TIMEOUT'), 'CONNECT_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT'],
    [err('UND_ERR_BODY_TIMEOUT'), 'RESPONSE_TIMEOUT', 'UND_ERR_BODY_TIMEOUT'],
    [err('UND_ERR_SOCKET'), 'ECONNRESET', 'UND_ERR_SOCKET'],
    [err('UND_ERR_SOCKET', { cause: err('EHOSTUNREACH') }), 'EHOSTUNREACH', 'EHOSTUNREACH'],
    [err('EAI_NODATA'), 'ENOTFOUND', 'EAI_NODATA'],
    [err('EAI_AGAIN'), 'EAI_AGAIN', 'EAI_AGAIN'],
    [err('ERR_TLS_CERT_ALTNAME_INVALID'), 'TLS_ERROR', 'ERR_TLS_CERT_ALTNAME_INVALID'],
    [err('CERT_HAS_EXPIRED'), 'TLS_ERROR', 'CERT_HAS_EXPIRED'],
    [err('HPE_INVALID_CONSTANT'), 'BAD_RESPONSE', 'HPE_INVALID_CONSTANT'],
    [err('EWHATEVER'), 'OTHER', 'EWHATEVER'],
    [new Error('no code'), 'OTHER', 'UNKNOWN'],
    [new TypeError('typed'), 'OTHER', 'TypeError'],
    ['a string', 'OTHER', 'a string'],
    [null, 'OTHER', 'UNKNOWN'],
    [err('E'.repeat(80)), 'OTHER', 'E'.repeat(64)],
    [new AggregateError([err('ECONNREFUSED'), err('ENETUNREACH')]), 'ECONNREFUSED', 'ECONNREFUSED']
  ]
  for (const [error, reason, raw] of cases) t.same(classifyError(error, 'connect'), { reason, raw }, `${reason} ${raw}`)
})

t.test('aborts and ETIMEDOUT depend on the phase', async t => {
  const timeout = new DOMException('late', 'TimeoutError')
  t.same(classifyError(timeout, 'connect'), { reason: 'CONNECT_TIMEOUT', raw: 'TIMEOUT' })
  t.same(classifyError(timeout, 'response'), { reason: 'RESPONSE_TIMEOUT', raw: 'TIMEOUT' })
  t.same(classifyError(err('ETIMEDOUT'), 'connect'), { reason: 'CONNECT_TIMEOUT', raw: 'ETIMEDOUT' })
  t.same(classifyError(err('UND_ERR_ABORTED'), 'response'), { reason: 'RESPONSE_TIMEOUT', raw: 'TIMEOUT' })
  t.same(classifyError(err('ETIMEDOUT'), 'connect'), { reason: 'CONNECT_TIMEOUT', raw: 'ETIMEDOUT' }, 'the kernel giving up keeps its own code')
})

t.test('HTTP statuses', async t => {
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
