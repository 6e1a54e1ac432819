// DNS failure signals: columns judged per node (FAIL, OK, unjudged) with the failures that count,
// and their scope (fleet, groups, nodes); the pieces dns.ts and dns-detections.ts share.

import { UNEXPECTED_ANSWER_RAWS, WIRE_NAME_REASONS } from './dns-service-limits.ts'
import type { Column, DnsServiceInput, NodeCell, WireColumn } from './dns-service-input.ts'
import { evidence, FAIL, failsNow, judgeCell, OK, recentOf, scopeOf, UNJUDGED, type Scope } from './dns-service-judge.ts'
import type { Evidence, EvidenceReason } from './finding.ts'
import type { FindingsContext } from './input.ts'
/** A negative answer about the name itself (RFC 1035 NXDOMAIN, RFC 2308 NODATA, or an unexpected answer). */
export function isNameAnswer (r: EvidenceReason): boolean {
  return WIRE_NAME_REASONS.has(r.reason) || (r.reason === 'BAD_RESPONSE' && UNEXPECTED_ANSWER_RAWS.has(r.raw))
}
export const isResolverFailure = (r: EvidenceReason): boolean => !isNameAnswer(r)

/** A name as expectations compare it: lower case, no trailing dot (agent/src/dns-expect.ts). */
export function nameKey (name: string): string {
  return name.toLowerCase().replace(/\.$/, '')
}

/** One DNS failure signal: some columns judged per node with some failures counted. */
export interface Signal {
  probe: 'dns-wire' | 'dns-lookup'
  /** How the summary names it: `resolver 10.96.0.10`, or a name. */
  label: string
  columns: Column[]
  accept?: (r: EvidenceReason) => boolean
  status: Int8Array
  scope: Scope
}

/**
 * Per node: FAIL when any column fails there and one of those still fails in the recent sub-window
 * (or has no probe there), OK when one is judged and none fails (or none still fails); only witnesses.
 * `explained(n)`: a failure there is already another finding's, so the node is left unjudged (a node
 * that works stays a witness that it works).
 */
export function statusOf (columns: readonly Column[], witness: readonly boolean[], accept?: (r: EvidenceReason) => boolean, explained?: (node: number) => boolean): Int8Array {
  const status = new Int8Array(witness.length).fill(UNJUDGED)
  for (let n = 0; n < witness.length; n++) {
    if (!witness[n]) continue
    // A cell failing over the window but with probes and no failure in the recent sub-window is a
    // fault gone from that node: it is OK now, so a draining fault does not make a narrower scope.
    let failing = false
    let stillFailing = false
    for (const c of columns) {
      const v = judgeCell(c.cells[n], accept)
      if (v === FAIL) {
        failing = true
        const r = recentOf(c.cells[n], accept)
        if (r === null || r.samples === 0 || r.errors > 0) stillFailing = true
      } else if (v > status[n]!) status[n] = v
    }
    if (failing) status[n] = stillFailing ? FAIL : OK
    if (status[n] === FAIL && explained?.(n) === true) status[n] = UNJUDGED
  }
  return status
}

/** Per node: whether a witness fails now in any column (failsNow), unless `explained` takes it. */
export function nowOf (columns: readonly Column[], witness: readonly boolean[], accept?: (r: EvidenceReason) => boolean, explained?: (node: number) => boolean): boolean[] {
  return witness.map((w, n) => w && columns.some(c => failsNow(c.cells[n], accept)) && explained?.(n) !== true)
}

/**
 * A signal over `columns`: each witness's verdict (statusOf) and the scope of the failures, which
 * waits while the failure still reaches more nodes (scopeOf with nowOf).
 */
export function signal (ctx: FindingsContext, probe: Signal['probe'], label: string, columns: Column[], witness: readonly boolean[], accept?: Signal['accept'], explained?: (node: number) => boolean): Signal {
  const status = statusOf(columns, witness, accept, explained)
  return { probe, label, columns, accept, status, scope: scopeOf(ctx, status, nowOf(columns, witness, accept, explained)) }
}

/** The cells of `nodes` in a signal's columns, for evidence. */
export function cellsOf (s: Signal, nodes: readonly number[]): Array<[number, string, NodeCell]> {
  const out: Array<[number, string, NodeCell]> = []
  for (const c of s.columns) for (const n of nodes) { const cell = c.cells[n]; if (cell !== undefined) out.push([n, c.target, cell]) }
  return out
}

/** Node indexes whose verdict is `value` (and that `inGroup` accepts), ascending. */
export function nodesWhere (status: Int8Array, value: number, inGroup?: (n: number) => boolean): number[] {
  const out: number[] = []
  for (let n = 0; n < status.length; n++) if (status[n] === value && (inGroup === undefined || inGroup(n))) out.push(n)
  return out
}

/** One Evidence of a signal over `nodes`: `judged` of them judged, its failing ones agreeing. */
export function signalEvidence (ctx: FindingsContext, s: Signal, scope: string, nodes: readonly number[], judged: number): Evidence {
  const failing = nodes.filter(n => s.status[n] === FAIL)
  return evidence(ctx, { probe: s.probe, scope, cells: cellsOf(s, nodes), agreeing: { count: failing.length, of: judged }, accept: s.accept })
}

/** Where DNS failed for one group or one node, to become its dns-group finding. */
export interface Local { signals: Signal[] }

/** Items by key, in first-seen order. */
export function groupBy<T> (items: readonly T[], key: (item: T) => string): Map<string, T[]> {
  const out = new Map<string, T[]>()
  for (const item of items) {
    const k = key(item)
    const list = out.get(k)
    if (list === undefined) out.set(k, [item])
    else list.push(item)
  }
  return out
}

/** Wire columns that ask the lookup's name: the same name, or (a relative name) one of its search-list expansions. */
export function relatedWire (input: DnsServiceInput, name: string): WireColumn[] {
  const key = nameKey(name)
  const relative = !name.endsWith('.')
  return input.wire.filter(w => { const k = nameKey(w.name); return k === key || (relative && k.startsWith(key + '.')) })
}

/** Whether most judged witnesses get answers from `columns` (every failure counted). */
export function answers (ctx: FindingsContext, columns: Column[], witness: readonly boolean[]): boolean {
  if (columns.length === 0) return false
  const s = statusOf(columns, witness)
  let ok = 0
  let judged = 0
  for (const v of s) if (v !== UNJUDGED) { judged++; if (v === OK) ok++ }
  return judged > 0 && ok / judged > 0.5
}

