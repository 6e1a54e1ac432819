// The dashboard as Grafana provisioning loads it: valid panels on one grid, every query on the
// datasource variable, every variable it uses defined. (prometheus.test.ts runs the queries.)

import t from 'tap'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { DASHBOARDS_DIR } from './tools.ts'

interface Panel { id: number, type: string, title: string, gridPos: { x: number, y: number, w: number, h: number }, datasource?: { uid: string }, targets?: Array<{ expr: string, refId: string, datasource?: { uid: string } }> }
interface Dashboard { uid: string, title: string, schemaVersion: number, templating: { list: Array<{ name: string, type: string }> }, panels: Panel[] }

for (const file of readdirSync(DASHBOARDS_DIR).filter(f => f.endsWith('.json'))) {
  t.test(file, async t => {
    const d = JSON.parse(readFileSync(join(DASHBOARDS_DIR, file), 'utf8')) as Dashboard
    t.match(d, { uid: /^[a-z0-9-]{1,40}$/, title: String })
    t.ok(d.schemaVersion >= 36 && d.schemaVersion <= 41, `schemaVersion ${d.schemaVersion}`)
    t.equal(new Set(d.panels.map(p => p.id)).size, d.panels.length, 'panel ids are unique')
    const variables = new Set(d.templating.list.map(v => v.name))
    for (const name of ['datasource', 'probe', 'src_group', 'dst_group']) t.ok(variables.has(name), `$${name} is defined`)

    // No two panels overlap on the 24-column grid.
    const cells = new Map<string, string>()
    for (const p of d.panels) {
      t.ok(p.gridPos.x >= 0 && p.gridPos.x + p.gridPos.w <= 24, `${p.title} fits the grid`)
      for (let x = p.gridPos.x; x < p.gridPos.x + p.gridPos.w; x++) {
        for (let y = p.gridPos.y; y < p.gridPos.y + p.gridPos.h; y++) {
          const other = cells.get(`${x},${y}`)
          if (other !== undefined) t.fail(`${p.title} overlaps ${other}`)
          cells.set(`${x},${y}`, p.title)
        }
      }
    }
    for (const p of d.panels.filter(p => p.type !== 'row')) {
      t.equal(p.datasource?.uid, '${datasource}', `${p.title} uses the datasource variable`)
      t.ok((p.targets ?? []).length > 0, `${p.title} has queries`)
      t.equal(new Set(p.targets!.map(x => x.refId)).size, p.targets!.length, `${p.title} refIds are unique`)
      for (const target of p.targets!) {
        t.equal(target.datasource?.uid, '${datasource}', `${p.title} ${target.refId} uses the datasource variable`)
        const used = [...target.expr.matchAll(/\$(\w+)/g)].map(m => m[1]!).filter(v => !v.startsWith('__'))
        for (const v of used) t.ok(variables.has(v), `${p.title} ${target.refId}: $${v} is defined`)
      }
    }
  })
}
