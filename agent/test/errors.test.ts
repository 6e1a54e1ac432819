// docs/errors.md lists every code for operators; its Agent section must equal AGENT_ERRORS,
// and no source file may spell a code that errors.ts does not declare.

import t from 'tap'
import { readdirSync, readFileSync } from 'node:fs'
import * as errors from '../src/errors.ts'

const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8')

/** The rows of one `## ` section of docs/errors.md as sorted `[code, status]` pairs, `—` read as null. */
function documented (section: string): Array<[string, number | null]> {
  const body = doc.split(/^## /m).find(s => s.startsWith(`${section}\n`)) ?? ''
  return [...body.matchAll(/^\| `(PINGFLEET_ERR_[A-Z0-9_]+)` \| (—|\d{3}) \|/gm)]
    .map(([, code, status]): [string, number | null] => [code!, status === '—' ? null : Number(status)]).sort()
}

t.test('docs/errors.md lists every agent code, with its HTTP status, and no other', async t => {
  t.same(documented('Agent'), Object.entries(errors.AGENT_ERRORS).map(([code, spec]) => [code, spec.status]).sort())
})

t.test('every exported code constant is in the catalogue, and every catalogued code is exported', async t => {
  const exported = Object.values(errors).filter(v => typeof v === 'string' && v.startsWith('PINGFLEET_ERR_')).sort()
  t.same(exported, Object.keys(errors.AGENT_ERRORS).sort())
})

t.test('no source file outside errors.ts spells a code', async t => {
  const src = new URL('../src/', import.meta.url)
  for (const file of readdirSync(src, { recursive: true, encoding: 'utf8' })) {
    if (!file.endsWith('.ts') || file === 'errors.ts') continue
    t.notMatch(readFileSync(new URL(file, src), 'utf8'), /['"`]PINGFLEET_ERR_/, file)
  }
})
