import t from 'tap'
import { defaultOutcome, expectedOutcome, lookupOutcome, parseDnsExpectation } from '../src/dns-expect.ts'

t.test('parsing: name/TYPE=outcome, name compared without case or trailing dot', async t => {
  t.same(parseDnsExpectation(' Absent.Example./A=nxdomain '), { name: 'absent.example', type: 'A', outcome: 'nxdomain' })
  for (const bad of ['absent.example/A', 'absent.example=nxdomain', '/A=answer', './A=answer', 'a.example/MX=answer', 'a.example/A=NXDOMAIN', 'a b/A=answer']) {
    t.equal(parseDnsExpectation(bad), null, `rejects ${bad}`)
  }
})

t.test('defaults follow the pod\'s address family', async t => {
  t.equal(defaultOutcome('A', '10.0.0.1'), 'answer')
  t.equal(defaultOutcome('AAAA', '10.0.0.1'), 'nodata')
  t.equal(defaultOutcome('A', 'fd00::1'), 'nodata')
  t.equal(defaultOutcome('AAAA', 'fd00::1'), 'answer')
  const entries = [{ name: 'x.example', type: 'AAAA' as const, outcome: 'answer' as const }]
  t.equal(expectedOutcome(entries, 'X.example.', 'AAAA', '10.0.0.1'), 'answer', 'an entry wins')
  t.equal(expectedOutcome(entries, 'y.example', 'AAAA', '10.0.0.1'), 'nodata')
})

t.test('a both-families lookup uses explicit entries only', async t => {
  const nx = { name: 'x.example', type: 'A' as const, outcome: 'nxdomain' as const }
  t.equal(lookupOutcome([], 'x.example', 0, '10.0.0.1'), 'answer')
  t.equal(lookupOutcome([nx], 'x.example', 0, '10.0.0.1'), 'nxdomain')
  t.equal(lookupOutcome([nx, { ...nx, type: 'AAAA', outcome: 'answer' }], 'x.example', 0, '10.0.0.1'), 'answer')
  t.equal(lookupOutcome([nx, { ...nx, type: 'AAAA', outcome: 'nodata' }], 'x.example', 0, '10.0.0.1'), 'nodata')
  t.equal(lookupOutcome([], 'x.example', 6, '10.0.0.1'), 'nodata')
  t.equal(lookupOutcome([nx], 'x.example', 4, '10.0.0.1'), 'nxdomain')
})
