import t from 'tap'
import { readFileSync } from 'node:fs'
import { REASON_CODES } from '@pingfleet/protocol'
import { classifyBlackhole, classifyDeadline, classifyDnsDeadline, classifyError, classifyEvent, classifyPingAnswer, classifyRcode, classifyStatus, classifyThrown, classifyTruncated, EOF, PROBE_EVENTS, type Stage } from '../src/layers/classify.ts'

// docs/reasons.md is the operator's guide to every reason; a reason added to the protocol must be documented.
const doc = readFileSync(new URL('../../docs/reasons.md', import.meta.url), 'utf8')

t.test('every reason code has a row in docs/reasons.md', async t => {
  for (const code of REASON_CODES) {
    t.match(doc, new RegExp(`^\\| \`${code}\` \\|`, 'm'), `${code} is documented`)
  }
})

t.test('docs/reasons.md documents no reason the protocol lacks', async t => {
  const documented = [...doc.matchAll(/^\| `([A-Z0-9_]+)` \|/gm)].map(m => m[1])
  t.same(documented.filter(code => !(REASON_CODES as string[]).includes(code!)), [])
})

t.test('the raw codes the classifier makes up itself are documented', async t => {
  const stages: Stage[] = ['lookup', 'connect', 'tls', 'request', 'body']
  const made = new Set([
    ...stages.map(stage => classifyDeadline(stage).raw),
    EOF,
    ...['BODY_TOO_LARGE', 'UND_ERR_HEADERS_OVERFLOW'].map(code => classifyError(Object.assign(new Error(code), { code }), 'body').raw),
    classifyError(Object.assign(new Error('bad'), { name: 'HTTPParserError' }), 'request').raw,
    ...(['INVALID_JSON', 'NOT_A_PING_ANSWER', 'NODE_MISMATCH'] as const).map(event => classifyPingAnswer(event).raw),
    ...PROBE_EVENTS.map(event => classifyEvent(event).raw),
    ...(['none', 'udp', 'tcp'] as const).flatMap(transport => (['connect', 'request'] as const).map(stage => classifyDnsDeadline(transport, stage).raw)),
    classifyBlackhole('request').raw,
    classifyBlackhole('body').raw,
    classifyTruncated({ reason: 'DNS_TIMEOUT', raw: 'TCP_TIMEOUT' }).raw,
    classifyRcode('NOERROR', false)!.raw,
    classifyThrown(new Error('bug')).raw
  ])
  for (const raw of made) t.match(doc, `\`${raw}\``, `${raw} is documented`)
  t.match(doc, '`HTTP_<status>`', 'HTTP statuses')
  t.equal(classifyStatus(503)?.raw, 'HTTP_503')
})
