// Runs probes: one jittered, staggered timer per target, a global concurrency cap, a timeout signal
// around every probe, and a reconcile step (setTargets) that starts and stops targets by diff.
// Every outcome goes to Results, the only writer.

import { performance } from 'node:perf_hooks'
import type { Logger } from 'pino'
import type { ProbeKind } from '@pingfleet/protocol'
import { AGENT_ERR_PROBE_THREW } from './errors.ts'
import { classifyEvent, classifyThrown } from './layers/classify.ts'
import { isLagged, turnsOf } from './lag-rule.ts'
import type { LagWatch } from './loop-lag.ts'
import type { Probe, ProbeResult, Target } from './probe.ts'
import type { Results } from './results.ts'

export type { LagWatch }

export interface SchedulerOptions {
  /** The probe function for each kind of target; targets of other kinds are ignored. */
  probes: Partial<Record<ProbeKind, Probe>>
  results: Results
  lag: LagWatch
  intervalMs: number
  /**
   * A slower cadence per kind: such targets run every max(intervals[kind], intervalMs). For mtu,
   * whose answer (a path's MTU) rarely changes while each probe costs a connection and two requests.
   */
  intervals?: Partial<Record<ProbeKind, number>>
  /** Time limit of one probe; `timeouts` overrides it per kind. */
  timeoutMs: number
  timeouts?: Partial<Record<ProbeKind, number>>
  concurrency: number
  /** How long a probe may wait for a free slot before it counts as AGENT_OVERLOADED (default: timeoutMs). */
  startDeadlineMs?: number
  /** Each period is intervalMs × (1 ± jitter); default 0.1. */
  jitter?: number
  random?: () => number
  logger?: Logger
}

interface Running {
  target: Target
  timer: NodeJS.Timeout | undefined
  controller: AbortController | undefined
  stopped: boolean
  /** Settles when the current run (if any) has finished. */
  done: Promise<void>
}

/**
 * Runs every target on its own timer: the first run at a random point of the first period (staggered),
 * then every max(intervals[kind], intervalMs) × (1 ± jitter) milliseconds, measured from the planned
 * start so a slow probe does not shift the cadence. At most `concurrency` probes run at once; a probe
 * that waits longer than `startDeadlineMs` for a slot is recorded as AGENT_OVERLOADED (raw
 * CONCURRENCY_LIMIT). Each probe gets an AbortSignal that fires after its kind's timeout (ms). Every
 * outcome, judged for lag by lag-rule.ts, is recorded in `results` (the only writer); a probe that
 * throws is logged with PINGFLEET_ERR_AGENT_PROBE_THREW and recorded as OTHER. Never throws itself.
 */
export class Scheduler {
  #options: SchedulerOptions
  #intervalMs: number
  #random: () => number
  #running = new Map<string, Running>()
  #active = 0
  #waiting: Array<{ grant: (ok: boolean) => void, timer: NodeJS.Timeout }> = []

  constructor (options: SchedulerOptions) {
    this.#options = options
    this.#intervalMs = options.intervalMs
    this.#random = options.random ?? Math.random
  }

  get size (): number {
    return this.#running.size
  }

  /** Probes running right now (for tests and status). */
  get active (): number {
    return this.#active
  }

  targets (): Target[] {
    return [...this.#running.values()].map(r => r.target)
  }

  /** The aggregator may change the cadence; running targets pick it up at their next period. */
  setIntervalMs (ms: number): void {
    this.#intervalMs = ms
  }

  /** Reconcile: start wanted targets that do not run, stop running ones that are not wanted, update changed ones. */
  setTargets (wanted: readonly Target[]): void {
    const next = new Map<string, Target>()
    for (const target of wanted) {
      if (this.#options.probes[target.kind] !== undefined) next.set(keyOf(target), target)
    }
    for (const [key, running] of this.#running) {
      if (!next.has(key)) this.#stop(key, running)
    }
    for (const [key, target] of next) {
      const running = this.#running.get(key)
      if (running !== undefined) running.target = target
      else this.#start(key, target)
    }
  }

  /** Stops every target, aborting probes in flight, and waits for them to return. */
  async stop (): Promise<void> {
    const pending = [...this.#running.values()].map(r => r.done)
    for (const [key, running] of this.#running) this.#stop(key, running)
    await Promise.all(pending)
  }

  #start (key: string, target: Target): void {
    const running: Running = { target, timer: undefined, controller: undefined, stopped: false, done: Promise.resolve() }
    this.#running.set(key, running)
    // Staggered start: spread the first runs over one period so a roster change causes no burst.
    this.#arm(running, this.#random() * this.#periodOf(target))
  }

  #stop (key: string, running: Running): void {
    running.stopped = true
    clearTimeout(running.timer)
    running.controller?.abort(new DOMException('target removed', 'AbortError'))
    this.#running.delete(key)
  }

  #arm (running: Running, delayMs: number): void {
    running.timer = setTimeout(() => {
      const plannedAt = performance.now()
      running.done = this.#run(running).then(() => {
        if (running.stopped) return
        const jitter = this.#options.jitter ?? 0.1
        const period = this.#periodOf(running.target) * (1 + jitter * (2 * this.#random() - 1))
        this.#arm(running, Math.max(0, plannedAt + period - performance.now()))
      })
    }, delayMs)
  }

  #periodOf (target: Target): number {
    return Math.max(this.#options.intervals?.[target.kind] ?? 0, this.#intervalMs)
  }

  async #run (running: Running): Promise<void> {
    const target = running.target
    const probe = this.#options.probes[target.kind]!
    const slot = await this.#acquire(this.#options.startDeadlineMs ?? this.#options.timeoutMs)
    if (running.stopped) {
      if (slot) this.#release()
      return
    }
    if (!slot) {
      this.#options.results.record(target, { ok: false, ...classifyEvent('CONCURRENCY_LIMIT'), seconds: 0 }, false)
      return
    }
    const controller = new AbortController()
    running.controller = controller
    const timeoutMs = this.#options.timeouts?.[target.kind] ?? this.#options.timeoutMs
    const timer = setTimeout(() => controller.abort(new DOMException('probe timeout', 'TimeoutError')), timeoutMs)
    const start = performance.now()
    let result: ProbeResult
    try {
      result = await probe(target, controller.signal)
    } catch (err) {
      this.#options.logger?.error({ code: AGENT_ERR_PROBE_THREW, err, probe: target.kind, target: target.id }, 'probe threw instead of returning a result')
      result = { ok: false, ...classifyThrown(err), seconds: (performance.now() - start) / 1000 }
    } finally {
      clearTimeout(timer)
      running.controller = undefined
      this.#release()
    }
    // A probe aborted because its target went away says nothing about the network.
    if (running.stopped) return
    // The agent's own slowness (its event loop, seen here, or the probe's machinery, such as a saturated
    // threadpool) excuses the outcome only where it could explain it (lag-rule.ts).
    const end = performance.now()
    const lag = this.#options.lag
    const lagged = isLagged(result, {
      stalled: lag.stalledDuring(start, end),
      delayBoundMs: result.ok ? 0 : lag.delayBoundMs(start, end, turnsOf(target.kind)),
      timeoutMs
    })
    this.#options.results.record(target, result, lagged)
  }

  #acquire (deadlineMs: number): Promise<boolean> {
    if (this.#active < this.#options.concurrency) {
      this.#active++
      return Promise.resolve(true)
    }
    return new Promise(resolve => {
      const waiter = {
        grant: resolve,
        timer: setTimeout(() => {
          this.#waiting.splice(this.#waiting.indexOf(waiter), 1)
          resolve(false)
        }, deadlineMs)
      }
      this.#waiting.push(waiter)
    })
  }

  #release (): void {
    const next = this.#waiting.shift()
    if (next === undefined) {
      this.#active--
      return
    }
    // Hand the slot straight to the longest waiter; #active stays the same.
    clearTimeout(next.timer)
    next.grant(true)
  }
}

function keyOf (target: Target): string {
  return `${target.kind}\u0000${target.id}`
}
