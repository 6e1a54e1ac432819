// The checks every package's error catalogue gets: docs/errors.md's section for the package equals the
// catalogue, every exported code constant is catalogued, no source file outside errors.ts spells a
// code, and no warning or error is logged without one.

import t from 'tap'
import { readdirSync, readFileSync } from 'node:fs'
import type { ErrorCatalogue } from '@pingfleet/protocol'

const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8')

/** The rows of one `## ` section of docs/errors.md as sorted `[code, status]` pairs, `—` read as null. */
function documented (section: string): Array<[string, number | null]> {
  const body = doc.split(/^## /m).find(s => s.startsWith(`${section}\n`)) ?? ''
  return [...body.matchAll(/^\| `(PINGFLEET_ERR_[A-Z0-9_]+)` \| (—|\d{3}) \|/gm)]
    .map(([, code, status]): [string, number | null] => [code!, status === '—' ? null : Number(status)]).sort()
}

/**
 * Every warn, error and fatal log call in `src` whose fields are an object literal, as
 * `file:line text` of those without a `code` field. A call whose fields are a variable is not read.
 */
function uncodedLogCalls (src: URL): string[] {
  const out: string[] = []
  for (const file of readdirSync(src, { recursive: true, encoding: 'utf8' })) {
    if (!file.endsWith('.ts')) continue
    const text = readFileSync(new URL(file, src), 'utf8')
    for (const m of text.matchAll(/\.(warn|error|fatal)\(\s*/g)) {
      const start = m.index + m[0].length
      let fields: string
      if (text[start] === '{') {
        let depth = 0
        let end = start
        for (; end < text.length; end++) {
          if (text[end] === '{') depth++
          else if (text[end] === '}' && --depth === 0) break
        }
        fields = text.slice(start, end + 1)
      } else if (/^['"`]/.test(text.slice(start))) {
        fields = '' // a message with no fields at all
      } else continue
      if (!/\bcode\b/.test(fields)) out.push(`${file}:${text.slice(0, m.index).split('\n').length} ${text.slice(m.index, start + 60).split('\n')[0]}`)
    }
  }
  return out
}

/**
 * Registers the catalogue checks for one package. `module` is its errors.ts (every export), `catalogue`
 * its catalogue, `section` its `## ` heading in docs/errors.md, `src` its source folder.
 */
export function checkErrorCatalogue (o: { section: string, module: Record<string, unknown>, catalogue: ErrorCatalogue, src: URL }): void {
  t.test(`docs/errors.md lists every ${o.section.toLowerCase()} code, with its HTTP status, and no other`, async t => {
    t.same(documented(o.section), Object.entries(o.catalogue).map(([code, spec]) => [code, spec.status]).sort())
  })

  t.test('every exported code constant is in the catalogue, and every catalogued code is exported', async t => {
    const exported = Object.values(o.module).filter(v => typeof v === 'string' && v.startsWith('PINGFLEET_ERR_')).sort()
    t.same(exported, Object.keys(o.catalogue).sort())
  })

  t.test('no source file outside errors.ts spells a code', async t => {
    for (const file of readdirSync(o.src, { recursive: true, encoding: 'utf8' })) {
      if (!file.endsWith('.ts') || file === 'errors.ts') continue
      t.notMatch(readFileSync(new URL(file, o.src), 'utf8'), /['"`]PINGFLEET_ERR_/, file)
    }
  })

  t.test('every warn, error and fatal log line carries a code', async t => {
    t.same(uncodedLogCalls(o.src), [])
  })
}
