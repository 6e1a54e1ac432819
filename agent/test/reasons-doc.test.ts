import t from 'tap'
import { readFileSync } from 'node:fs'
import { REASON_CODES } from '@pingfleet/protocol'

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
