// Synthetic fleets for the DNS, Service and egress findings: a context of named groups, and an input
// whose columns are filled per node by small functions, healthy unless a test says otherwise.

import type { DnsServiceInput, ExternalColumn, LookupColumn, NodeCell, PodSums, ServiceColumn, WireColumn } from '../../src/findings/dns-service-input.ts'
import type { FindingNode, FindingsContext } from '../../src/findings/input.ts'

export const AT = Date.UTC(2026, 10, 29, 10, 0, 0)
export const RESOLVER = '10.96.0.10'
export const SERVICE = '10.96.0.20:8081'
export const HTTP = 'https://example.com/health'
export const TCP = 'example.com:443'

/** Nodes `<group>-<k>` for each group and count, sorted by name, all connected, ready and trusted. */
export function fleet (groups: Record<string, number>): FindingsContext {
  const nodes: FindingNode[] = []
  for (const [group, count] of Object.entries(groups)) {
    for (let k = 1; k <= count; k++) nodes.push({ name: `${group}-${String(k).padStart(4, '0')}`, group, connected: true, podReady: true, degraded: null })
  }
  nodes.sort((a, b) => a.name < b.name ? -1 : 1)
  return { at: AT, windowMs: 60_000, groupLabel: 'cniplugin', nodes }
}

export const ok = (samples = 12): NodeCell => ({ samples, errors: 0, reasons: [] })
export const fail = (reason: string, raw: string, errors = 12, samples = 12): NodeCell => ({ samples, errors, reasons: [{ reason, raw, count: errors }] })

type Fill = (node: FindingNode, index: number) => NodeCell | undefined

function cells (ctx: FindingsContext, fill: Fill): Array<NodeCell | undefined> {
  return ctx.nodes.map((n, i) => fill(n, i))
}

export function lookup (ctx: FindingsContext, name: string, fill: Fill = () => ok(), family: 0 | 4 | 6 = 0): LookupColumn {
  return { target: `${name}@getaddrinfo${family === 0 ? '' : `/${family}`}`, name, family, cells: cells(ctx, fill) }
}

export function wire (ctx: FindingsContext, name: string, type: 'A' | 'AAAA', fill: Fill = () => ok(), resolver = RESOLVER): WireColumn {
  return { target: `${name}@${resolver}:53/${type}`, name, resolver, type, cells: cells(ctx, fill) }
}

/** A Service column; each node's answers are spread evenly over `backends` (default: every node). */
export function service (ctx: FindingsContext, fill: Fill = () => ok(), backends?: (node: FindingNode) => string[]): ServiceColumn {
  const all = ctx.nodes.map(n => n.name)
  const c = cells(ctx, fill)
  return {
    target: SERVICE,
    cells: c,
    backends: ctx.nodes.map((n, i) => {
      const cell = c[i]
      if (cell === undefined) return undefined
      const answered = cell.samples - cell.errors
      const list = backends?.(n) ?? all
      const map = new Map<string, number>()
      // Spread like random picks (a stride coprime with the fleet sizes used): every group meets every backend.
      for (let k = 0; k < answered; k++) { const b = list[((i * answered + k) * 7919) % list.length]!; map.set(b, (map.get(b) ?? 0) + 1) }
      return map
    })
  }
}

export function external (ctx: FindingsContext, probe: 'http' | 'tcp', fill: Fill = () => ok()): ExternalColumn {
  return { target: probe === 'http' ? HTTP : TCP, probe, cells: cells(ctx, fill) }
}

/** A healthy fleet's input: the default DNS names on both paths (A and AAAA), db.example., one Service, one http and one tcp target. */
export function healthy (ctx: FindingsContext): DnsServiceInput {
  const pods = (): PodSums[] => ctx.nodes.map(() => ({ samples: 12 * (ctx.nodes.length - 1), errors: 0 }))
  return {
    lookups: [lookup(ctx, 'kubernetes.default'), lookup(ctx, 'db.example.')],
    wire: [wire(ctx, 'kubernetes.default.svc.cluster.local', 'A'), wire(ctx, 'kubernetes.default.svc.cluster.local', 'AAAA'), wire(ctx, 'db.example', 'A')],
    services: [service(ctx)],
    external: [external(ctx, 'http'), external(ctx, 'tcp')],
    podOut: pods(),
    podIn: pods()
  }
}

/** Replaces the column with `target` in a list (by target id). */
export function replace<C extends { target: string }> (list: C[], column: C): C[] {
  return list.map(c => c.target === column.target ? column : c)
}
