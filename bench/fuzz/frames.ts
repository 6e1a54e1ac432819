// Frames for protocol fuzzing: structure-aware reports and hellos (valid ones at the edges of the
// schema, and mutations of them), plus text and byte mutations and random bytes. Everything comes
// from one seeded generator, so a run is reproduced by its seed.

import {
  BUCKET_COUNT, MAX_BACKENDS_PER_CELL, PROBE_KIND_NAMES, PROTOCOL_VERSION, REASON_CODES,
  type Cell, type Hello, type Report
} from '@pingfleet/protocol'

/** mulberry32: a small, fast, seedable PRNG (Tommy Ettinger's public-domain constants). */
export function prng (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

export class Gen {
  readonly random: () => number
  /** Target names valid reports use: bounded, so memory reflects ingest and not new cells. */
  readonly targets: readonly string[]

  constructor (seed: number, targets: readonly string[]) {
    this.random = prng(seed)
    this.targets = targets
  }

  int (lo: number, hi: number): number { return lo + Math.floor(this.random() * (hi - lo + 1)) }
  pick<T> (items: readonly T[]): T { return items[Math.floor(this.random() * items.length)]! }
  chance (p: number): boolean { return this.random() < p }

  /** A cell that passes the schema and every invariant, often at an edge (0 counts, the overflow bucket, many errors). */
  cell (): Cell {
    const probe = this.pick(PROBE_KIND_NAMES)
    const count = this.pick([0, 1, 2, 10, 1000, 1_000_000_000])
    let left = count
    const latency: number[] = []
    let index = -1
    const buckets = this.int(0, Math.min(8, count))
    for (let i = 0; i < buckets && left > 0; i++) {
      index = this.int(index + 1, Math.min(BUCKET_COUNT - 1, index + 1 + (BUCKET_COUNT >> 2)))
      if (index >= BUCKET_COUNT) break
      const n = this.int(1, Math.max(1, Math.floor(left / 2)))
      latency.push(index, n)
      left -= n
    }
    const cell: Cell = { probe, target: this.pick(this.targets), count, latency }
    if (left > 0 && this.chance(0.5)) {
      const errors = []
      for (const reason of new Set([this.pick(REASON_CODES), this.pick(REASON_CODES)])) {
        if (left === 0) break
        const n = this.int(1, left)
        errors.push({ reason, raw: this.pick(['', 'ECONNREFUSED', 'x'.repeat(64), 'EAI_AGAIN']), count: n })
        left -= n
      }
      cell.errors = errors
    }
    if (left > 0 && this.chance(0.3)) { cell.lagged = this.int(0, left); left -= cell.lagged }
    if (probe === 'service' && left > 0 && this.chance(0.5)) {
      cell.backends = [{ node: this.pick(this.targets), count: this.int(1, left) }]
    }
    return cell
  }

  report (seq: number, now: number): Report {
    const end = now - this.int(0, 20_000)
    const r: Report = { type: 'report', v: PROTOCOL_VERSION, seq, start: end - this.int(0, 10_000), end, cells: Array.from({ length: this.int(0, 12) }, () => this.cell()) }
    if (this.chance(0.7)) r.ageMs = this.pick([0, 3, 1500, 60_000, 20 * 60_000])
    return r
  }

  hello (node: string): Hello {
    return {
      type: 'hello', v: PROTOCOL_VERSION, node, pod: `${node}-pod`, podIp: '127.0.0.1', port: this.int(1, 65535),
      labels: { cniplugin: this.pick(['aws', 'cilium']) }, version: 'fuzz', bootId: `fuzz-${node}-${this.int(0, 1e9)}`, uptimeMs: this.int(0, 1e9)
    }
  }

  /** A value of a random JSON type, sometimes hostile (huge, deep, prototype keys). */
  junk (): unknown {
    switch (this.int(0, 13)) {
      case 0: return null
      case 1: return true
      case 2: return -1
      case 3: return 1.5
      case 4: return 2 ** 60
      case 5: return ''
      case 6: return 'x'.repeat(this.pick([254, 70, 5000]))
      case 7: return []
      case 8: return {}
      case 9: return [this.junk(), this.junk()]
      case 10: return { __proto__: { polluted: true }, constructor: { prototype: 1 } }
      case 11: return Number.MAX_SAFE_INTEGER + 2
      case 12: return '\u0000\ud800'
      default: return { nested: this.junk() }
    }
  }
}

/** A frame to send and whether the sender expects it accepted (ack) or refused (close with a reason). */
export interface Frame {
  data: string | Buffer
  binary: boolean
  /** What the mutation was, for the tally. */
  kind: string
}

/** Replaces, drops or adds one field somewhere in a plain JSON value. */
function mutateValue (g: Gen, value: unknown, depth = 0): unknown {
  if (Array.isArray(value)) {
    if (value.length === 0 || g.chance(0.2)) return g.chance(0.5) ? [...value, g.junk()] : g.junk()
    const copy = [...value]
    const i = g.int(0, copy.length - 1)
    copy[i] = mutateValue(g, copy[i], depth + 1)
    return copy
  }
  if (typeof value === 'object' && value !== null) {
    const copy: Record<string, unknown> = { ...(value as Record<string, unknown>) }
    const keys = Object.keys(copy)
    const roll = g.int(0, 9)
    if (keys.length === 0 || roll === 0) { copy[g.pick(['extra', '__proto__', 'constructor', 'type', 'seq'])] = g.junk(); return copy }
    const key = g.pick(keys)
    if (roll === 1) { delete copy[key]; return copy }
    if (roll <= 4 || depth > 4) { copy[key] = g.junk(); return copy }
    copy[key] = mutateValue(g, copy[key], depth + 1)
    return copy
  }
  return g.junk()
}

/** A mutation of a valid report: structural (schema or invariant broken), textual or bytes. */
export function mutatedReport (g: Gen, seq: number, now: number): Frame {
  const base = g.report(seq, now)
  const roll = g.int(0, 19)
  const text = (value: unknown, kind: string): Frame => ({ data: JSON.stringify(value), binary: false, kind })
  switch (roll) {
    case 0: return text({ ...base, end: base.start - 1 }, 'end-before-start')
    case 1: {
      const cell = { ...g.cell(), count: 0, latency: [5, 1] }
      return text({ ...base, cells: [cell] }, 'samples-exceed-count')
    }
    case 2: return text({ ...base, cells: [{ ...g.cell(), latency: [9, 1, 3, 1] }] }, 'latency-unsorted')
    case 3: return text({ ...base, cells: [{ ...g.cell(), latency: [BUCKET_COUNT, 1] }] }, 'latency-out-of-range')
    case 4: return text({ ...base, cells: [{ ...g.cell(), probe: 'icmp' }] }, 'unknown-probe')
    case 5: return text({ ...base, cells: [{ ...g.cell(), count: 1, errors: [{ reason: 'NOT_A_REASON', raw: '', count: 1 }] }] }, 'unknown-reason')
    case 6: return text({ ...base, cells: [{ probe: 'service', target: 't', count: 1, latency: [], backends: Array.from({ length: MAX_BACKENDS_PER_CELL + 1 }, (_, i) => ({ node: `b${i}`, count: 1 })) }] }, 'too-many-backends')
    case 7: return text({ ...base, v: 2 }, 'wrong-version')
    case 8: return text({ ...base, type: g.pick(['welcome', 'ack', 'peers', 'REPORT', '']) }, 'wrong-type')
    case 9: return text({ ...base, seq: g.pick([0, -1, 1.5, 2 ** 60, '1']) }, 'bad-seq')
    case 10: return text({ ...base, ageMs: g.pick([-1, 0.5, '5', 2 ** 60]) }, 'bad-age')
    case 11: {
      const json = JSON.stringify(base)
      return { data: json.slice(0, g.int(0, json.length - 1)), binary: false, kind: 'truncated' }
    }
    case 12: {
      const bytes = Buffer.from(JSON.stringify(base))
      for (let i = 0, n = g.int(1, 8); i < n; i++) bytes[g.int(0, bytes.length - 1)] = g.int(0, 255)
      return { data: bytes, binary: false, kind: 'bytes-flipped' }
    }
    case 13: return { data: Buffer.from(Array.from({ length: g.int(0, 512) }, () => g.int(0, 255))), binary: g.chance(0.5), kind: 'random-bytes' }
    case 14: return { data: '['.repeat(g.pick([100, 10_000, 200_000])), binary: false, kind: 'deep-nesting' }
    case 15: return { data: `{"type":"report","type":"hello",${JSON.stringify(base).slice(1)}`, binary: false, kind: 'duplicate-keys' }
    case 16: return text({ type: 'hello', v: 1 }, 'second-hello')
    case 17: if (g.chance(0.8)) return text({ ...base, extra: 1 }, 'unknown-field')
      return text({ ...base, cells: Array.from({ length: 20_001 }, () => ({ probe: 'pod', target: 't', count: 0, latency: [] })) }, 'too-many-cells')
    default: return text(mutateValue(g, base), 'field-mutation')
  }
}

/** A mutation of a valid hello, sent as a connection's first frame. */
export function mutatedHello (g: Gen, node: string): Frame {
  const base = g.hello(node)
  if (g.chance(0.2)) return { data: JSON.stringify({ ...base, bootId: 'short' }), binary: false, kind: 'hello-short-boot' }
  if (g.chance(0.2)) return { data: JSON.stringify({ ...base, labels: Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, 'v'])) }), binary: false, kind: 'hello-many-labels' }
  return { data: JSON.stringify(mutateValue(g, base)), binary: false, kind: 'hello-field-mutation' }
}
