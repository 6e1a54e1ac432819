// What the DNS, Service and egress evaluator reads: per node × target cells of the dns-lookup,
// dns-wire, service, http and tcp kinds, each target parsed as the agent writes it, plus each
// node's own pod probes (inbound and outbound), from the node store over the evaluation window.

import type { ProbeKind } from '@pingfleet/protocol'
import { AGENT_REASONS, DNS_PORT } from './dns-service-limits.ts'
import type { EvidenceReason } from './finding.ts'
import type { FindingsContext, FindingsSources } from './input.ts'
import { recentWindowMs } from './network-thresholds.ts'

/** Counts of one cell over some window (AGENT_OVERLOADED left out of both counts). */
export interface CellCounts {
  samples: number
  errors: number
  /** One record per (reason, raw code), any order. */
  reasons: EvidenceReason[]
}

/** One node's results toward one target over the window, and over its recent sub-window (recentWindowMs). */
export interface NodeCell extends CellCounts {
  /** The same cell over the recent part of the window; undefined when not read (tests), zero samples when none came. */
  recent?: CellCounts
}

/** One target's column: `cells[i]` is ctx.nodes[i]'s cell, undefined where that node has none. */
export interface Column {
  target: string
  cells: Array<NodeCell | undefined>
}

/** A dns-lookup target `<name>@getaddrinfo[/4|/6]`. */
export interface LookupColumn extends Column {
  name: string
  family: 0 | 4 | 6
}

/** A dns-wire target `<name>@<resolver>/<type>[/tcp]`; `resolver` as subjects name it (resolverLabel). */
export interface WireColumn extends Column {
  name: string
  resolver: string
  type: string
}

/** A service target `host:port`, with the backends that answered each source node. */
export interface ServiceColumn extends Column {
  backends: Array<Map<string, number> | undefined>
}

/** An external target: an http URL (redacted as the agent shows it) or a tcp host:port. */
export interface ExternalColumn extends Column {
  probe: 'http' | 'tcp'
}

/** A node's pod probes in one direction over the window. */
export interface PodSums {
  samples: number
  errors: number
}

/** The DNS, Service and external results the evaluator judges (built by readDnsServiceInput, or by tests). */
export interface DnsServiceInput {
  lookups: LookupColumn[]
  wire: WireColumn[]
  services: ServiceColumn[]
  external: ExternalColumn[]
  /** Per ctx.nodes index: its pod probes toward peers (out) and the peers' toward it (in). */
  podOut: PodSums[]
  podIn: PodSums[]
}

/** A resolver as a subject names it: `10.96.0.10` on port 53, else `10.96.0.10:5353` (`[v6]:port`). */
export function resolverLabel (hostPort: string): string {
  const suffix = `:${DNS_PORT}`
  if (!hostPort.endsWith(suffix)) return hostPort
  const host = hostPort.slice(0, -suffix.length)
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host
}

/** Parses `<name>@getaddrinfo[/4|/6]` (agent/src/probes/dns-lookup.ts); null when it is not one. */
export function parseLookupTarget (target: string): { name: string, family: 0 | 4 | 6 } | null {
  const match = /^(.+)@getaddrinfo(?:\/([46]))?$/.exec(target)
  if (match === null) return null
  return { name: match[1]!, family: match[2] === undefined ? 0 : Number(match[2]) as 4 | 6 }
}

/** Parses `<name>@<host:port>/<A|AAAA>[/tcp]` (agent/src/probes/dns-wire.ts); null when it is not one. */
export function parseWireTarget (target: string): { name: string, resolver: string, type: string } | null {
  const match = /^([^@]+)@(.+)\/(A|AAAA)(\/tcp)?$/.exec(target)
  if (match === null) return null
  return { name: match[1]!, resolver: resolverLabel(match[2]!), type: match[3]! }
}

/**
 * Reads the evaluator's input for `ctx` from the node store over the last ctx.windowMs before
 * ctx.at: the cells of the five kinds (cells of nodes outside ctx.nodes, and targets that do not
 * parse, are skipped), their counts in one sweep per slot, then each one's failures, and the same
 * over the recent sub-window (recentWindowMs, shared with the network evaluator; failures only for cells that failed in the window);
 * the pod sums from the store's per-node sums. Throws nothing.
 */
export function readDnsServiceInput (sources: FindingsSources, ctx: FindingsContext): DnsServiceInput {
  const store = sources.nodes
  const read = store.read(ctx.windowMs, ctx.at)
  const index = new Map(ctx.nodes.map((n, i) => [n.name, i]))
  const size = ctx.nodes.length
  // Per interned name id: the ctx node it names (-1: none), looked up once.
  const nodeOfName = new Int32Array(store.nameCount).fill(-2)
  const nodeOf = (nameId: number): number => {
    let i = nodeOfName[nameId]!
    if (i === -2) i = nodeOfName[nameId] = index.get(store.name(nameId)) ?? -1
    return i
  }
  // Every wanted cell: its column, its node, its probe count (one sweep per slot), then failures.
  const cellColumn: Column[] = []
  const cellNode: number[] = []
  const cellIds: number[] = []
  const blank = (): Array<NodeCell | undefined> => new Array<NodeCell | undefined>(size)
  const gather = <C extends Column>(probe: ProbeKind, make: (target: string) => C | null): C[] => {
    const byTarget = new Map<number, C | null>()
    const ids = store.idsOf(probe)
    const mine: number[] = []
    for (const id of ids) {
      const node = nodeOf(store.srcOf(id))
      if (node < 0) continue
      const targetId = store.targetOf(id)
      let column = byTarget.get(targetId)
      if (column === undefined) byTarget.set(targetId, column = make(store.name(targetId)))
      if (column === null) continue
      mine.push(id)
      cellColumn.push(column)
      cellNode.push(node)
    }
    cellIds.push(...mine)
    return [...byTarget.values()].filter((c): c is C => c !== null)
  }
  const lookups = gather<LookupColumn>('dns-lookup', target => {
    const parsed = parseLookupTarget(target)
    return parsed === null ? null : { target, ...parsed, cells: blank() }
  })
  const wire = gather<WireColumn>('dns-wire', target => {
    const parsed = parseWireTarget(target)
    return parsed === null ? null : { target, ...parsed, cells: blank() }
  })
  const serviceFrom = cellIds.length
  const services = gather<ServiceColumn>('service', target => ({ target, cells: blank(), backends: new Array<Map<string, number> | undefined>(size) }))
  const serviceTo = cellIds.length
  const external = [
    ...gather<ExternalColumn>('http', target => ({ target, probe: 'http', cells: blank() })),
    ...gather<ExternalColumn>('tcp', target => ({ target, probe: 'tcp', cells: blank() }))
  ]
  const counts = new Float64Array(cellIds.length)
  read.sumMany(cellIds, counts)
  // The same recent sub-window the network evaluator confirms its detections on.
  const recentRead = store.read(recentWindowMs(ctx.windowMs), ctx.at)
  const recentCounts = new Float64Array(cellIds.length)
  recentRead.sumMany(cellIds, recentCounts)
  // Cell by cell, not over the window's failure records: pod failures (a broken boundary at
  // 1,000 nodes has ~10^6) must not make this read cost more.
  const countsOf = (from: typeof read, id: number, samples: number): CellCounts => {
    const c: CellCounts = { samples, errors: 0, reasons: [] }
    from.forEachError(id, e => {
      // The agent could not run the probe: no sample at all (docs/reasons.md, AGENT_OVERLOADED).
      if (AGENT_REASONS.has(e.reason)) { c.samples -= e.count; return }
      c.errors += e.count
      const same = c.reasons.find(r => r.reason === e.reason && r.raw === e.raw)
      if (same !== undefined) same.count += e.count
      else c.reasons.push({ reason: e.reason, raw: e.raw, count: e.count })
    })
    return c
  }
  for (let k = 0; k < cellIds.length; k++) {
    if (counts[k] === 0) continue
    const cell: NodeCell = countsOf(read, cellIds[k]!, counts[k]!)
    // The recent part needs reading only where the window saw failures: only they are confirmed there.
    cell.recent = cell.errors === 0 || recentCounts[k] === 0 ? { samples: recentCounts[k]!, errors: 0, reasons: [] } : countsOf(recentRead, cellIds[k]!, recentCounts[k]!)
    cellColumn[k]!.cells[cellNode[k]!] = cell
  }
  for (let k = serviceFrom; k < serviceTo; k++) {
    if (counts[k] === 0) continue
    const column = cellColumn[k] as ServiceColumn
    const into = new Map<string, number>()
    read.addBackends(cellIds[k]!, into)
    column.backends[cellNode[k]!] = into
  }
  const live = <C extends Column>(columns: C[]): C[] => columns.filter(c => {
    let any = false
    for (let n = 0; n < size; n++) {
      const cell = c.cells[n]
      if (cell !== undefined && cell.samples <= 0) c.cells[n] = undefined
      else if (cell !== undefined) any = true
    }
    return any
  })
  const sides = read.nodeSides('pod', ctx.nodes.map(n => n.name), false)
  const sums = (s: { samples: number, errors: number, reasons: Map<string, number> | null }): PodSums => {
    let agent = 0
    for (const reason of AGENT_REASONS) agent += s.reasons?.get(reason) ?? 0
    return { samples: s.samples - agent, errors: s.errors - agent }
  }
  return { lookups: live(lookups), wire: live(wire), services: live(services), external: live(external), podOut: sides.outbound.map(sums), podIn: sides.inbound.map(sums) }
}
