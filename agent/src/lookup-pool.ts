// Keeps dns.lookup honest on the libuv threadpool: sizes the pool at start, caps lookups in flight
// below it, and flags samples taken while the pool was saturated so queueing is not reported as DNS latency.
//
// getaddrinfo runs on the threadpool (4 threads unless UV_THREADPOOL_SIZE says otherwise) next to fs,
// crypto and zlib work, and libuv lets "slow I/O" work such as getaddrinfo use only (size + 1) / 2 of
// the threads. A lookup that waits for a thread looks exactly like a slow resolver. So:
//  - sizeThreadpool() must run before anything touches the pool: call it from the first module the
//    entry point imports (a bootstrap module whose only job is that), because libuv reads the variable
//    once, on first use, and never again.
//  - LookupPool admits at most maxInFlight lookups (default size / 2, within libuv's slow-I/O share);
//    the rest wait in a queue that is not part of the measured latency.
//  - Every admitted lookup is preceded by a tiny threadpool canary (an fs.stat). libuv dequeues in order,
//    so while the canary is still waiting for a thread the lookup behind it is waiting too: a canary
//    slower than lagThresholdMs marks the sample `lagged`.
//  - getaddrinfo cannot be cancelled. When the probe gives up, the lookup keeps its thread and its slot
//    until it returns; those are counted as `abandoned`.

import { stat } from 'node:fs/promises'
import { lookup as dnsLookup, type LookupAddress } from 'node:dns'

export type { LookupAddress }

export const LIBUV_DEFAULT_THREADPOOL_SIZE = 4
export const LIBUV_MAX_THREADPOOL_SIZE = 1024
/** What the agent asks for when the operator did not set UV_THREADPOOL_SIZE. */
export const DEFAULT_THREADPOOL_SIZE = 16
export const DEFAULT_LAG_THRESHOLD_MS = 25

type Env = Record<string, string | undefined>

/** The pool size libuv derives from the environment, with its own parsing (atoi, 0 becomes 1, capped). */
export function threadpoolSize (env: Env = process.env): number {
  const text = env.UV_THREADPOOL_SIZE
  if (text === undefined) return LIBUV_DEFAULT_THREADPOOL_SIZE
  const n = Number.parseInt(text, 10)
  if (!Number.isFinite(n) || n === 0) return 1
  // libuv stores it unsigned, so a negative number wraps round to a huge one and hits the cap.
  return n < 0 ? LIBUV_MAX_THREADPOOL_SIZE : Math.min(n, LIBUV_MAX_THREADPOOL_SIZE)
}

/**
 * Sets UV_THREADPOOL_SIZE unless the operator already did, and returns the size in effect.
 * Only works before the first threadpool use in this process; see the module comment.
 */
export function sizeThreadpool (wanted = DEFAULT_THREADPOOL_SIZE, env: Env = process.env): number {
  // An empty value (a Kubernetes env entry left blank) counts as unset.
  if (env.UV_THREADPOOL_SIZE === undefined || env.UV_THREADPOOL_SIZE === '') env.UV_THREADPOOL_SIZE = String(wanted)
  return threadpoolSize(env)
}

/** Default cap on lookups in flight: half the pool, which is also libuv's share for getaddrinfo. */
export function defaultMaxInFlight (poolSize: number): number {
  return Math.max(1, Math.floor(poolSize / 2))
}

export interface LookupPoolOptions {
  /** Size of the libuv pool, for the default cap and stats. Default: threadpoolSize(). */
  threadpoolSize?: number
  /** Lookups allowed to run at once. Default: half the pool, and never the whole pool. */
  maxInFlight?: number
  /** A canary slower than this marks the sample lagged. Default: 25 ms. */
  lagThresholdMs?: number
  /** A tiny unit of threadpool work. Default: fs.stat('/'). */
  canary?: () => Promise<unknown>
  /** The resolver behind lookup(). Default: dns.lookup with `all: true`; tests replace it only to stand in for a resolver that hangs. */
  resolve?: (name: string, family: LookupFamily) => Promise<LookupAddress[]>
}

export interface PoolTiming {
  /** From the moment the work started to when it settled, or to when the probe gave up. */
  seconds: number
  /** Time spent waiting for a slot under maxInFlight (not part of `seconds`). */
  queueSeconds: number
  /** How long the canary took, or how long it had been waiting when the work ended. */
  canarySeconds: number
  /** The threadpool was saturated during the work, so `seconds` includes waiting for a thread. */
  lagged: boolean
  /** The canary had not come back when the work ended: the work itself may never have got a thread. */
  canaryPending: boolean
}

export type PoolOutcome<T> =
  | { state: 'fulfilled', value: T, timing: PoolTiming }
  | { state: 'rejected', error: unknown, timing: PoolTiming }
  /** The signal fired while the work ran; the work keeps its slot until it returns. */
  | { state: 'abandoned', timing: PoolTiming }
  /** The signal fired before a slot came free; the work never started. */
  | { state: 'not-started', timing: PoolTiming }

export interface LookupPoolStats {
  threadpoolSize: number
  maxInFlight: number
  inFlight: number
  queued: number
  /** Lookups still running although their probe already gave up. */
  abandoned: number
  abandonedTotal: number
}

export type LookupFamily = 0 | 4 | 6

interface Waiter {
  start: () => void
}

function defaultCanary (): Promise<unknown> {
  return stat('/')
}

function lookupAll (name: string, family: LookupFamily): Promise<LookupAddress[]> {
  return new Promise((resolve, reject) => {
    dnsLookup(name, { family, all: true }, (err, addresses) => {
      if (err !== null) reject(err)
      else resolve(addresses)
    })
  })
}

/** Owns the admission queue in front of the threadpool; one per agent process. */
export class LookupPool {
  readonly threadpoolSize: number
  readonly maxInFlight: number
  readonly lagThresholdMs: number
  private readonly canary: () => Promise<unknown>
  private readonly resolve: (name: string, family: LookupFamily) => Promise<LookupAddress[]>
  private readonly waiters: Waiter[] = []
  private inFlight = 0
  private abandoned = 0
  private abandonedTotal = 0

  constructor (options: LookupPoolOptions = {}) {
    this.threadpoolSize = options.threadpoolSize ?? threadpoolSize()
    const cap = options.maxInFlight ?? defaultMaxInFlight(this.threadpoolSize)
    this.maxInFlight = Math.max(1, Math.min(cap, this.threadpoolSize - 1))
    this.lagThresholdMs = options.lagThresholdMs ?? DEFAULT_LAG_THRESHOLD_MS
    this.canary = options.canary ?? defaultCanary
    this.resolve = options.resolve ?? lookupAll
  }

  stats (): LookupPoolStats {
    return {
      threadpoolSize: this.threadpoolSize,
      maxInFlight: this.maxInFlight,
      inFlight: this.inFlight,
      queued: this.waiters.length,
      abandoned: this.abandoned,
      abandonedTotal: this.abandonedTotal
    }
  }

  /** dns.lookup with `all: true` under the pool's guard. */
  lookup (name: string, family: LookupFamily, signal: AbortSignal): Promise<PoolOutcome<LookupAddress[]>> {
    return this.run(() => this.resolve(name, family), signal)
  }

  /** Runs one unit of threadpool work under the cap; never rejects. */
  async run<T> (work: () => Promise<T>, signal: AbortSignal): Promise<PoolOutcome<T>> {
    const queuedAt = performance.now()
    const admitted = await this.admit(signal)
    const queueSeconds = (performance.now() - queuedAt) / 1000
    if (admitted && signal.aborted) this.release()
    if (!admitted || signal.aborted) return { state: 'not-started', timing: { seconds: 0, queueSeconds, canarySeconds: 0, lagged: false, canaryPending: false } }

    // The canary goes first so that, in libuv's queue, it stands in front of the work.
    const canaryStart = performance.now()
    let canaryEnd: number | undefined
    this.canary().then(() => { canaryEnd = performance.now() }, () => { canaryEnd = performance.now() })
    const start = performance.now()
    const timing = (): PoolTiming => {
      const now = performance.now()
      const canaryMs = (canaryEnd ?? now) - canaryStart
      return { seconds: (now - start) / 1000, queueSeconds, canarySeconds: canaryMs / 1000, lagged: canaryMs > this.lagThresholdMs, canaryPending: canaryEnd === undefined }
    }

    let abandoned = false
    let settled: ((outcome: PoolOutcome<T>) => void) | undefined
    const outcome = new Promise<PoolOutcome<T>>(resolve => { settled = resolve })
    const onAbort = (): void => {
      abandoned = true
      this.abandoned++
      this.abandonedTotal++
      settled!({ state: 'abandoned', timing: timing() })
    }
    signal.addEventListener('abort', onAbort, { once: true })

    const finish = (result: { value: T } | { error: unknown }): void => {
      signal.removeEventListener('abort', onAbort)
      if (abandoned) this.abandoned--
      else settled!('value' in result ? { state: 'fulfilled', value: result.value, timing: timing() } : { state: 'rejected', error: result.error, timing: timing() })
      this.release()
    }
    let running: Promise<T>
    try {
      running = work()
    } catch (error) {
      running = Promise.reject(error)
    }
    running.then(value => finish({ value }), (error: unknown) => finish({ error }))
    return outcome
  }

  private admit (signal: AbortSignal): Promise<boolean> {
    if (signal.aborted) return Promise.resolve(false)
    if (this.inFlight < this.maxInFlight && this.waiters.length === 0) {
      this.inFlight++
      return Promise.resolve(true)
    }
    return new Promise(resolve => {
      const waiter: Waiter = {
        start: () => {
          signal.removeEventListener('abort', onAbort)
          this.inFlight++
          resolve(true)
        }
      }
      const onAbort = (): void => {
        const i = this.waiters.indexOf(waiter)
        if (i !== -1) this.waiters.splice(i, 1)
        resolve(false)
      }
      signal.addEventListener('abort', onAbort, { once: true })
      this.waiters.push(waiter)
    })
  }

  private release (): void {
    this.inFlight--
    const next = this.waiters.shift()
    if (next !== undefined) next.start()
  }
}
