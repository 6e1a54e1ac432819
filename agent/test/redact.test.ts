import t from 'tap'
import { basicAuth, redactText, redactUrl } from '../src/redact.ts'

t.test('userinfo: a password is masked, a lone user name (often a token) too', async t => {
  t.equal(redactUrl('http://user:pass@host/health'), 'http://user:***@host/health')
  t.equal(redactUrl('https://ghp_abcdef@host/x'), 'https://***@host/x')
  t.equal(redactUrl('http://u:p%40ss@[::1]:8080/a'), 'http://u:***@[::1]:8080/a')
})

t.test('credential-like query values are masked; other parameters and plain URLs stay as they are', async t => {
  t.equal(redactUrl('https://h/x?a=1&token=abc&access_token=z'), 'https://h/x?a=1&token=***&access_token=***')
  t.equal(redactUrl('https://h/o?X-Amz-Signature=zz&X-Amz-Credential=c&b=2'), 'https://h/o?X-Amz-Signature=***&X-Amz-Credential=***&b=2')
  t.equal(redactUrl('https://h/?apikey=1&api_key=2&password=3&secret=4&sig=5&session=6'), 'https://h/?apikey=***&api_key=***&password=***&secret=***&sig=***&session=***')
  t.equal(redactUrl('http://h/p?q=1&page=2'), 'http://h/p?q=1&page=2')
  t.equal(redactUrl('not a url'), 'not a url')
  t.equal(redactUrl('example.com:443'), 'example.com:443')
})

t.test('free text: every URL, and user:password@ without a scheme', async t => {
  t.equal(redactText('X="http://a:b@h/,https://h/?token=t" is invalid'), 'X="http://a:***@h/,https://h/?token=***" is invalid')
  t.equal(redactText('X="user:hunter2@host/health"'), 'X="user:***@host/health"')
  t.equal(redactText('X="10s"'), 'X="10s"')
})

t.test('basic credentials from the userinfo, percent-decoded', async t => {
  t.equal(basicAuth(new URL('http://u:p%40ss@h/')), `Basic ${Buffer.from('u:p@ss').toString('base64')}`)
  t.equal(basicAuth(new URL('http://tok@h/')), `Basic ${Buffer.from('tok:').toString('base64')}`)
  t.equal(basicAuth(new URL('http://h/')), undefined)
})
