// The one writer of probe outcomes: folds results per (probe, target) between two reports into
// protocol Cells. Holds the invariants the aggregator checks: latency samples + errors + lagged <= count,
// and no phase with more samples than latency.

import {
  CONNECT_PROBE_KINDS, MAX_BACKENDS_PER_CELL, PHASE_NAMES, PHASE_PROBE_KINDS, SparseBuilder, SYN_RTO_SECONDS,
  type Cell, type CellError, type Phase, type ProbeKind, type Reason
} from '@pingfleet/protocol'
import { isExcusable } from './lag-rule.ts'
import type { Phases, ProbeResult, Target } from './probe.ts'

/** The protocol allows 64 error entries per cell; the last one collects any overflow. */
const MAX_ERRORS_PER_CELL = 64

interface Accumulator {
  probe: ProbeKind
  target: string
  count: number
  /** Latencies of trusted successes (protocol's sparse builder: a few words per cell). */
  latency: SparseBuilder
  errors: Map<string, CellError>
  lagged: number
  /** Service targets: answers per backend node. Created on the first named answer. */
  backends: Map<string, number> | undefined
  /** Loss signals: slow handshakes (connect kinds), datagrams (udp); see countLoss. */
  loss: LossCounts | undefined
  /** PHASE_PROBE_KINDS only: one builder per phase the cell's trusted successes went through, made on first use. */
  phases: Partial<Record<Phase, SparseBuilder>> | undefined
  /** Whether the kind is in PHASE_PROBE_KINDS (decided once per cell, not per probe). */
  timesPhases: boolean
}

interface LossCounts { slowConnects: number, sent: number, lost: number, jitterUs: number, jitterPairs: number }

const isConnectKind = new Set<string>(CONNECT_PROBE_KINDS)
const isPhaseKind = new Set<string>(PHASE_PROBE_KINDS)

/**
 * Counts a trusted success's phases, each in its own histogram (the same sparse layout as `latency`).
 * No allocation per probe: a phase's builder is made the first time the cell sees that phase.
 */
function recordPhases (cell: Accumulator, phases: Phases): void {
  const builders = cell.phases ??= {}
  for (let i = 0; i < PHASE_NAMES.length; i++) {
    const phase = PHASE_NAMES[i]!
    const seconds = phases[phase]
    if (seconds !== undefined) (builders[phase] ??= new SparseBuilder()).record(seconds)
  }
}

/** The wire form of a cell's phases; undefined when no phase was recorded (the field is then absent). */
function phasesOf (builders: Partial<Record<Phase, SparseBuilder>> | undefined): Cell['phases'] {
  if (builders === undefined) return undefined
  let out: Cell['phases']
  for (const phase of PHASE_NAMES) {
    const builder = builders[phase]
    if (builder !== undefined && !builder.empty) (out ??= {})[phase] = builder.toSparse()
  }
  return out
}

/**
 * Loss as the agent sees it, beside the error count. A trusted (not lagged) success whose handshake took
 * SYN_RTO_SECONDS or more lost a SYN or SYN-ACK; a udp train's datagrams count whether or not the train
 * failed or lagged (the probe judges each datagram against its own wait), its jitter only when trusted.
 */
function countLoss (cell: Accumulator, result: ProbeResult, lagged: boolean): void {
  const connect = result.phases?.connect
  const slow = result.ok && !lagged && connect !== undefined && connect >= SYN_RTO_SECONDS && isConnectKind.has(cell.probe)
  const datagrams = result.datagrams
  if (!slow && datagrams === undefined) return
  const loss = cell.loss ??= { slowConnects: 0, sent: 0, lost: 0, jitterUs: 0, jitterPairs: 0 }
  if (slow) loss.slowConnects++
  if (datagrams === undefined) return
  loss.sent += datagrams.sent
  loss.lost += datagrams.lost
  if (!lagged) {
    loss.jitterUs += datagrams.jitterUs
    loss.jitterPairs += datagrams.jitterPairs
  }
}

export interface Window {
  start: number
  end: number
  cells: Cell[]
}

export class Results {
  #cells = new Map<string, Accumulator>()
  #start: number

  constructor (start = Date.now()) {
    this.#start = start
  }

  /**
   * Records one finished probe. `lagged` is the scheduler's verdict (lag-rule.ts): a lagged success
   * keeps its latency (and its phases) out of the histograms, a lagged timeout is not an error. Failures that are not
   * timeouts stand as errors whatever the verdict.
   */
  record (target: Target, result: ProbeResult, lagged: boolean): void {
    const key = `${target.kind}\u0000${target.id}`
    let cell = this.#cells.get(key)
    if (cell === undefined) {
      cell = {
        probe: target.kind, target: target.id, count: 0, latency: new SparseBuilder(), errors: new Map(), lagged: 0,
        backends: undefined, loss: undefined, phases: undefined, timesPhases: isPhaseKind.has(target.kind)
      }
      this.#cells.set(key, cell)
    }
    cell.count++
    countLoss(cell, result, lagged)
    if (result.ok) {
      if (result.backend !== undefined) addBackend(cell, result.backend)
      if (lagged) cell.lagged++
      else {
        cell.latency.record(result.seconds)
        if (cell.timesPhases && result.phases !== undefined) recordPhases(cell, result.phases)
      }
      return
    }
    if (lagged && isExcusable(result.reason)) {
      cell.lagged++
      return
    }
    addError(cell.errors, result.reason, result.raw.slice(0, 64))
  }

  /** Returns the cells recorded since the last drain (only targets with at least one result) and starts a new window. */
  drain (end = Date.now()): Window {
    const cells: Cell[] = []
    for (const acc of this.#cells.values()) {
      const cell: Cell = { probe: acc.probe, target: acc.target, count: acc.count, latency: acc.latency.toSparse() }
      if (acc.errors.size > 0) cell.errors = [...acc.errors.values()]
      if (acc.lagged > 0) cell.lagged = acc.lagged
      if (acc.backends !== undefined) cell.backends = [...acc.backends].map(([node, count]) => ({ node, count }))
      // Absent means none: most windows have no slow handshake, and the aggregator knows the denominator.
      if (acc.loss !== undefined && acc.loss.slowConnects > 0) cell.slowConnects = acc.loss.slowConnects
      const phases = phasesOf(acc.phases)
      if (phases !== undefined) cell.phases = phases
      if (acc.probe === 'udp') {
        const loss = acc.loss ?? { sent: 0, lost: 0, jitterUs: 0, jitterPairs: 0 }
        Object.assign(cell, { sent: loss.sent, lost: loss.lost, jitterUs: loss.jitterUs, jitterPairs: loss.jitterPairs })
      }
      cells.push(cell)
    }
    const window = { start: this.#start, end: Math.max(end, this.#start), cells }
    this.#cells.clear()
    this.#start = window.end
    return window
  }
}

/** Past the protocol's bound, further new names are not kept: a Service never has that many backends per agent window. */
function addBackend (cell: Accumulator, node: string): void {
  const backends = cell.backends ??= new Map()
  const seen = backends.get(node)
  if (seen !== undefined) backends.set(node, seen + 1)
  else if (backends.size < MAX_BACKENDS_PER_CELL) backends.set(node, 1)
}

function addError (errors: Map<string, CellError>, reason: Reason, raw: string): void {
  let key = `${reason}\u0000${raw}`
  if (!errors.has(key) && errors.size >= MAX_ERRORS_PER_CELL - 1) {
    reason = 'OTHER'
    raw = 'TOO_MANY_DISTINCT_ERRORS'
    key = `${reason}\u0000${raw}`
  }
  const entry = errors.get(key)
  if (entry !== undefined) entry.count++
  else errors.set(key, { reason, raw, count: 1 })
}
