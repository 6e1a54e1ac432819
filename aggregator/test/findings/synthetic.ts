// Synthetic node matrices for the network findings' tests: a fleet of nodes in groups and, per
// probe kind, a function that says what each src → dst cell holds; summed as readNetworkInput does.

import type { FindingNode, FindingsContext } from '../../src/findings/input.ts'
import type { FailedCell, GroupLinkSum, NetworkInput, PeerKindInput, SideSum } from '../../src/findings/network-input.ts'

export interface SynCell {
  samples: number
  errors?: number
  reason?: string
  raw?: string
  slowConnects?: number
  sent?: number
  lost?: number
  /** mtu: the response size. */
  size?: number
}

export type CellFn = (src: FindingNode, dst: FindingNode) => SynCell | null

/** `groups` as [name, count]: nodes named `<group>-<i>`, connected, pod ready, not degraded. */
export function fleet (groups: Array<[string, number]>): FindingNode[] {
  return groups.flatMap(([g, n]) => Array.from({ length: n }, (_, i) => ({ name: `${g}-${String(i).padStart(4, '0')}`, group: g, connected: true, podReady: true, degraded: null })))
}

export function context (nodes: FindingNode[]): FindingsContext {
  return { at: Date.UTC(2026, 10, 29, 10, 2, 15), windowMs: 30_000, groupLabel: 'cniplugin', nodes }
}

/** A healthy pod cell: 6 probes (a 30 s window of 5 s reports). */
export const healthy: CellFn = () => ({ samples: 6 })

function kind (nodes: FindingNode[], fn: CellFn, links: Map<string, GroupLinkSum>): PeerKindInput {
  const side = (): SideSum => ({ samples: 0, errors: 0, peers: 0, reasons: null })
  const inbound = new Map(nodes.map(n => [n.name, side()]))
  const outbound = new Map(nodes.map(n => [n.name, side()]))
  const failed: FailedCell[] = []
  for (const src of nodes) {
    for (const dst of nodes) {
      if (src === dst) continue
      const c = fn(src, dst)
      if (c === null) continue
      const errors = c.errors ?? 0
      for (const s of [outbound.get(src.name)!, inbound.get(dst.name)!]) {
        s.samples += c.samples
        s.errors += errors
        s.peers++
        if (errors > 0) { s.reasons ??= new Map(); s.reasons.set(c.reason ?? 'CONNECT_TIMEOUT', (s.reasons.get(c.reason ?? 'CONNECT_TIMEOUT') ?? 0) + errors) }
        if (c.sent !== undefined || c.slowConnects !== undefined) {
          s.loss ??= { sent: 0, lost: 0, slowConnects: 0 }
          s.loss.sent += c.sent ?? 0
          s.loss.lost += c.lost ?? 0
          s.loss.slowConnects += c.slowConnects ?? 0
        }
      }
      const key = `${src.group}\u0000${dst.group}`
      let l = links.get(key)
      if (l === undefined) links.set(key, l = { src: src.group, dst: dst.group, samples: 0, errors: 0, loss: { slowConnects: 0, sent: 0, lost: 0, jitterUs: 0, jitterPairs: 0 } })
      l.samples += c.samples
      l.errors += errors
      l.loss.sent += c.sent ?? 0
      l.loss.lost += c.lost ?? 0
      l.loss.slowConnects += c.slowConnects ?? 0
      if (errors > 0) failed.push({ src: src.name, dst: dst.name, samples: c.samples, errors, reasons: [{ reason: c.reason ?? 'CONNECT_TIMEOUT', raw: c.raw ?? 'UND_ERR_CONNECT_TIMEOUT', count: errors }], ...(c.size === undefined ? {} : { size: c.size }) })
    }
  }
  return { inbound, outbound, failed }
}

/**
 * The evaluator's input over `nodes`: pod cells by `pod`, mtu and udp cells by theirs (none by
 * default); with `recent`, the recent sub-window's pod and udp cells by its functions (none when one
 * is left out), else no recent input (nothing is confirmed).
 */
export function input (nodes: FindingNode[], pod: CellFn, mtu: CellFn = () => null, udp: CellFn = () => null, recent?: { pod?: CellFn, udp?: CellFn }): NetworkInput {
  const links = { pod: new Map<string, GroupLinkSum>(), mtu: new Map<string, GroupLinkSum>(), udp: new Map<string, GroupLinkSum>() }
  const out = { pod: kind(nodes, pod, links.pod), mtu: kind(nodes, mtu, links.mtu), udp: kind(nodes, udp, links.udp) }
  const all = { ...out, links: { pod: [...links.pod.values()], mtu: [...links.mtu.values()], udp: [...links.udp.values()] } }
  if (recent === undefined) return all
  const recentLinks = { pod: new Map<string, GroupLinkSum>(), udp: new Map<string, GroupLinkSum>() }
  const r = { pod: kind(nodes, recent.pod ?? (() => null), recentLinks.pod), udp: kind(nodes, recent.udp ?? (() => null), recentLinks.udp) }
  return { ...all, recent: { ...r, links: { pod: [...recentLinks.pod.values()], udp: [...recentLinks.udp.values()] } } }
}

/** A failing cell: every probe fails with CONNECT_TIMEOUT. */
export const dead: SynCell = { samples: 6, errors: 6, reason: 'CONNECT_TIMEOUT', raw: 'UND_ERR_CONNECT_TIMEOUT' }
