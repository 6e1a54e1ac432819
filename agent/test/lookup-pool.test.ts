import t from 'tap'
import { pbkdf2 } from 'node:crypto'
import { defaultMaxInFlight, LookupPool, sizeThreadpool, threadpoolSize, type PoolOutcome } from '../src/lookup-pool.ts'

function deferred<T> (): { promise: Promise<T>, resolve: (v: T) => void, reject: (e: unknown) => void } {
  let resolve!: (v: T) => void
  let reject!: (e: unknown) => void
  const promise = new Promise<T>((res, rej) => { resolve = res; reject = rej })
  return { promise, resolve, reject }
}

const tick = (): Promise<void> => new Promise(resolve => setImmediate(resolve))

t.test('threadpool size follows libuv parsing', async t => {
  t.equal(threadpoolSize({}), 4)
  t.equal(threadpoolSize({ UV_THREADPOOL_SIZE: '8' }), 8)
  t.equal(threadpoolSize({ UV_THREADPOOL_SIZE: 'lots' }), 1, 'atoi gives 0, libuv makes it 1')
  t.equal(threadpoolSize({ UV_THREADPOOL_SIZE: '0' }), 1)
  t.equal(threadpoolSize({ UV_THREADPOOL_SIZE: '5000' }), 1024)
  t.equal(threadpoolSize({ UV_THREADPOOL_SIZE: '-2' }), 1024)
})

t.test('sizeThreadpool sets the variable unless the operator did', async t => {
  const env: Record<string, string | undefined> = {}
  t.equal(sizeThreadpool(12, env), 12)
  t.equal(env.UV_THREADPOOL_SIZE, '12')
  t.equal(sizeThreadpool(undefined, { UV_THREADPOOL_SIZE: '6' }), 6, 'an explicit setting wins')
  t.equal(sizeThreadpool(undefined, {}), 16)
  t.equal(sizeThreadpool(undefined, { UV_THREADPOOL_SIZE: '' }), 16, 'a blank value counts as unset')
})

t.test('the cap stays below the pool', async t => {
  t.equal(defaultMaxInFlight(16), 8)
  t.equal(defaultMaxInFlight(1), 1)
  t.equal(new LookupPool({ threadpoolSize: 4 }).maxInFlight, 2)
  t.equal(new LookupPool({ threadpoolSize: 4, maxInFlight: 10 }).maxInFlight, 3, 'never the whole pool')
  t.equal(new LookupPool({ threadpoolSize: 1 }).maxInFlight, 1)
})

t.test('admits at most maxInFlight and queues the rest in order', async t => {
  const pool = new LookupPool({ threadpoolSize: 8, maxInFlight: 2, canary: async () => {} })
  const gates = [0, 1, 2, 3].map(() => deferred<number>())
  const started: number[] = []
  const outcomes = gates.map((gate, i) => pool.run(() => { started.push(i); return gate.promise }, new AbortController().signal))
  await tick()
  t.same(started, [0, 1])
  t.match(pool.stats(), { inFlight: 2, queued: 2, maxInFlight: 2, threadpoolSize: 8 })
  gates[1]!.resolve(1)
  await tick()
  t.same(started, [0, 1, 2], 'a finished lookup lets the next one in')
  gates[0]!.reject(Object.assign(new Error('nope'), { code: 'ENOTFOUND' }))
  gates[2]!.resolve(2)
  gates[3]!.resolve(3)
  const results = await Promise.all(outcomes)
  t.match(results[0], { state: 'rejected', error: { code: 'ENOTFOUND' } })
  t.match(results[1], { state: 'fulfilled', value: 1 })
  t.ok(results[3]!.timing.queueSeconds >= 0)
  t.match(pool.stats(), { inFlight: 0, queued: 0 })
})

t.test('a probe that gives up while queued never starts its lookup', async t => {
  const pool = new LookupPool({ threadpoolSize: 4, maxInFlight: 1, canary: async () => {} })
  const gate = deferred<void>()
  const first = pool.run(() => gate.promise, new AbortController().signal)
  const ac = new AbortController()
  let ran = false
  const second = pool.run(async () => { ran = true }, ac.signal)
  await tick()
  ac.abort()
  t.match(await second, { state: 'not-started' })
  t.match(pool.stats(), { queued: 0, inFlight: 1 })
  gate.resolve()
  await first
  t.equal(ran, false)
  t.match(await pool.run(async () => 'x', AbortSignal.abort()), { state: 'not-started' }, 'an aborted signal is refused up front')
})

t.test('a lookup the probe gave up on keeps its slot until it returns', async t => {
  const pool = new LookupPool({ threadpoolSize: 4, maxInFlight: 1, canary: async () => {} })
  const gate = deferred<string>()
  const ac = new AbortController()
  const outcome = pool.run(() => gate.promise, ac.signal)
  await tick()
  ac.abort()
  t.match(await outcome, { state: 'abandoned' })
  t.match(pool.stats(), { inFlight: 1, abandoned: 1, abandonedTotal: 1 })
  let second: PoolOutcome<string> | undefined
  const pending = pool.run(async () => 'next', new AbortController().signal).then(o => { second = o })
  await tick()
  t.equal(second, undefined, 'the next lookup waits for the stuck one')
  gate.resolve('late')
  await pending
  t.match(second, { state: 'fulfilled', value: 'next' })
  t.match(pool.stats(), { inFlight: 0, abandoned: 0, abandonedTotal: 1 })
})

t.test('a probe that gives up just as its slot comes free does not start', async t => {
  const pool = new LookupPool({ threadpoolSize: 4, maxInFlight: 1, canary: async () => {} })
  const gate = deferred<void>()
  const first = pool.run(() => gate.promise, new AbortController().signal)
  const ac = new AbortController()
  let ran = false
  const second = pool.run(async () => { ran = true }, ac.signal)
  await tick()
  gate.resolve()
  // Runs after the slot is handed over but before the queued run continues.
  queueMicrotask(() => ac.abort())
  await first
  t.match(await second, { state: 'not-started' })
  t.equal(ran, false)
  t.match(pool.stats(), { inFlight: 0, queued: 0 })
})

t.test('a failing canary does not break the lookup', async t => {
  const pool = new LookupPool({ threadpoolSize: 4, canary: () => Promise.reject(new Error('canary')) })
  t.match(await pool.run(async () => 7, new AbortController().signal), { state: 'fulfilled', value: 7 })
})

t.test('work that throws synchronously is a rejection', async t => {
  const pool = new LookupPool({ threadpoolSize: 4, canary: async () => {} })
  const outcome = await pool.run(() => { throw new Error('sync') }, new AbortController().signal)
  t.match(outcome, { state: 'rejected', error: { message: 'sync' } })
  t.equal(pool.stats().inFlight, 0)
})

// Calibrates a pbkdf2 job to roughly `ms` on this machine, so the saturation below is long enough
// to be unmistakable without hard-coding a speed.
async function pbkdf2Iterations (ms: number): Promise<number> {
  const probe = 20_000
  const start = performance.now()
  await new Promise<void>((resolve, reject) => pbkdf2('pw', 'salt', probe, 32, 'sha512', err => err ? reject(err) : resolve()))
  const took = Math.max(1, performance.now() - start)
  return Math.ceil(probe * ms / took)
}

function occupyThreadpool (jobs: number, iterations: number): Promise<void[]> {
  return Promise.all(Array.from({ length: jobs }, () => new Promise<void>((resolve, reject) => {
    pbkdf2('pw', 'salt', iterations, 32, 'sha512', err => err ? reject(err) : resolve())
  })))
}

t.test('a saturated threadpool flags the sample instead of reporting DNS latency', async t => {
  // Threshold well above an idle canary on a noisy machine, well below one pbkdf2 job.
  const pool = new LookupPool({ lagThresholdMs: 200 })
  const idle = await pool.lookup('localhost', 4, new AbortController().signal)
  t.match(idle, { state: 'fulfilled', timing: { lagged: false } }, 'an idle pool does not flag')

  const iterations = await pbkdf2Iterations(400)
  const busy = occupyThreadpool(threadpoolSize(), iterations)
  const saturated = await pool.lookup('localhost', 4, new AbortController().signal)
  await busy
  t.equal(saturated.state, 'fulfilled')
  t.equal(saturated.timing.lagged, true, 'the lookup waited behind pbkdf2 and is flagged')
  t.ok(saturated.timing.canarySeconds > 0.2, 'the canary saw the wait')
})
