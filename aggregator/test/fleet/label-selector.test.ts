// Label selectors as Kubernetes parses and matches them (k8s.io/apimachinery/pkg/labels/selector.go):
// the grammar's every operator, the matching rules for absent keys, and the error cases.

import t from 'tap'
import { parseSelector, SelectorError } from '../../src/fleet/label-selector.ts'

const node = { cniplugin: 'cilium', 'topology.kubernetes.io/zone': 'a', 'migration-batch': '7', size: '12' }

t.test('every operator matches as in Kubernetes', async t => {
  const cases: Array<[string, boolean]> = [
    ['migration-batch=7', true],
    ['migration-batch==7', true],
    ['migration-batch=8', false],
    ['migration-batch!=8', true],
    ['absent!=8', true], // != matches objects without the key
    ['absent=8', false],
    ['cniplugin=cilium,topology.kubernetes.io/zone in (a,b)', true],
    ['cniplugin=cilium,topology.kubernetes.io/zone in (b,c)', false],
    ['topology.kubernetes.io/zone notin (b,c)', true],
    ['absent notin (b)', true],
    ['absent in (b)', false],
    ['cniplugin', true],
    ['absent', false],
    ['!absent', true],
    ['!cniplugin', false],
    ['size>10', true],
    ['size<10', false],
    ['cniplugin>1', false], // not an integer: never matches
    ['  cniplugin = cilium ,  migration-batch in ( 6 , 7 ) ', true],
    ['cniplugin=', false], // the empty value
    ['x in (in,notin)', false]
  ]
  for (const [text, expected] of cases) t.equal(parseSelector(text).matches(node), expected, text)
  t.equal(parseSelector('empty=').matches({ empty: '' }), true, 'key= selects the empty value')
  t.equal(parseSelector('x in (a,,b)').matches({ x: '' }), true, 'an empty entry stands for the empty value')
  t.equal(parseSelector('x in ()').matches({ x: '' }), true, '() is the empty value, as in selector.go')
})

t.test('requirements are kept in order with sorted unique values', async t => {
  const s = parseSelector('b in (z,a,z),!c,d')
  t.same(s.requirements, [
    { key: 'b', operator: 'in', values: ['a', 'z'] },
    { key: 'c', operator: '!', values: [] },
    { key: 'd', operator: 'exists', values: [] }
  ])
  t.equal(s.text, 'b in (z,a,z),!c,d')
})

t.test('bad selectors are refused with the position and what was expected', async t => {
  const bad: Array<[string, RegExp]> = [
    ['', /at least one requirement/],
    ['   ', /at least one requirement/],
    ['a=b,', /requirement after ","/],
    ['a=b,,c', /requirement after ","/],
    [',a', /expected a label key/],
    ['a in b', /expected "\(" after in/],
    ['a in (b', /found end of string, expected "," or "\)"/],
    ['a in (b c)', /found "c", expected "," or "\)"/],
    ['a notin', /expected "\(" after notin/],
    ['a = b c', /found "c", expected "," or end of string/],
    ['a b', /found "b", expected one of/],
    ['a=(b)', /found "\(", expected a value after =/],
    ['!a=b', /found "=", expected "," or end of string/],
    ['in=a', /found "in", expected a label key/],
    ['-a=b', /key name "-a"/],
    ['Example.com/a=b', /key prefix "Example.com"/],
    ['/a=b', /key prefix ""/],
    ['a/=b', /key name ""/],
    ['a=' + 'x'.repeat(64), /at most 63 characters/],
    ['a=b_', /the value "b_"/],
    ['a>b', /> needs an integer value/],
    ['a<', /< needs an integer value/],
    [`${'k'.repeat(64)}=v`, /key name/]
  ]
  for (const [text, message] of bad) {
    let caught: unknown = null
    try { parseSelector(text) } catch (err) { caught = err }
    t.ok(caught instanceof SelectorError, `${JSON.stringify(text)} is refused`)
    t.match((caught as Error | null)?.message ?? '', message, `${JSON.stringify(text)} → ${String(message)}`)
  }
  const err = t.throws(() => parseSelector('a in b')) as Error
  t.match(err.message, /^"a in b" is not a Kubernetes label selector: at character 6, found "b"/)
})
