import t from 'tap'
import { hostPort, parseHostPort } from '../../src/layers/address.ts'

t.test('host:port, IPv6 literals in brackets', async t => {
  t.equal(hostPort('example.com', 443), 'example.com:443')
  t.equal(hostPort('10.0.0.1', 80), '10.0.0.1:80')
  t.equal(hostPort('2001:db8::1', 443), '[2001:db8::1]:443')
})

t.test('parsing host:port', async t => {
  t.same(parseHostPort('[::1]:8443'), { host: '::1', port: 8443 })
  t.same(parseHostPort(' example.com:443 '), { host: 'example.com', port: 443 })
  for (const bad of ['example.com', 'example.com:0', 'example.com:70000', '[nope]:80', '::1:80', 'a b:80', '[10.0.0.1]:80']) {
    t.equal(parseHostPort(bad), null, `rejects ${bad}`)
  }
})
