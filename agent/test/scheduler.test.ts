import { lookup as lookupPromise } from 'node:dns/promises'
import { createServer as createHttpServer } from 'node:http'
import { createServer as createNetServer, type AddressInfo, type Socket } from 'node:net'
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { LookupPool } from '../src/lookup-pool.ts'
import { LoopLag } from '../src/loop-lag.ts'
import type { Probe, ProbeResult, Target } from '../src/probe.ts'
import { createDnsLookupProbe, dnsLookupTarget } from '../src/probes/dns-lookup.ts'
import { createPodProbe } from '../src/probes/pod.ts'
import { Results } from '../src/results.ts'
import { Scheduler, type SchedulerOptions } from '../src/scheduler.ts'

const quiet = { stalledDuring: () => false, delayBoundMs: () => 0 }
const ok: ProbeResult = { ok: true, seconds: 0.001 }
const pod = (id: string, extra: Record<string, unknown> = {}): Target => ({ kind: 'pod', id, ...extra }) as Target

function scheduler (t: Test, probe: Probe, options: Partial<SchedulerOptions> = {}): { s: Scheduler, results: Results } {
  const results = new Results(0)
  const s = new Scheduler({ probes: { pod: probe }, results, lag: quiet, intervalMs: 20, timeoutMs: 1000, concurrency: 10, random: () => 0, ...options })
  t.teardown(() => s.stop())
  return { s, results }
}

async function until (check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (check()) return
    await sleep(5)
  }
  throw new Error(`timed out waiting for ${what}`)
}

function counter (): { probe: Probe, calls: Map<string, number>, seen: Target[] } {
  const calls = new Map<string, number>()
  const seen: Target[] = []
  return {
    calls,
    seen,
    probe: async target => {
      calls.set(target.id, (calls.get(target.id) ?? 0) + 1)
      seen.push(target)
      return ok
    }
  }
}

t.test('reconcile starts wanted targets and stops unwanted ones', async t => {
  const { probe, calls } = counter()
  const { s } = scheduler(t, probe)
  s.setTargets([pod('a'), pod('b'), { kind: 'dns-wire', id: 'ignored' }])
  t.equal(s.size, 2, 'a kind without a probe is ignored')
  await until(() => (calls.get('a') ?? 0) >= 2 && (calls.get('b') ?? 0) >= 2, 'a and b to run twice')
  s.setTargets([pod('b'), pod('c')])
  const aCalls = calls.get('a')
  await until(() => (calls.get('c') ?? 0) >= 2, 'c to run twice')
  await sleep(50)
  t.equal(calls.get('a'), aCalls, 'a no longer runs')
  t.same(s.targets().map(x => x.id).sort(), ['b', 'c'])
})

t.test('a changed target is updated in place, not restarted', async t => {
  const { probe, seen } = counter()
  const { s } = scheduler(t, probe)
  s.setTargets([pod('a', { podIp: '10.0.0.1' })])
  await until(() => seen.length >= 1, 'a first run')
  s.setTargets([pod('a', { podIp: '10.0.0.2' })])
  t.equal(s.size, 1)
  await until(() => (seen.at(-1) as { podIp?: string }).podIp === '10.0.0.2', 'the new address to be probed')
})

t.test('first runs are staggered across the interval', async t => {
  const { probe, calls } = counter()
  const randoms = [0, 0.99]
  const { s } = scheduler(t, probe, { intervalMs: 400, random: () => randoms.shift() ?? 0.5 })
  s.setTargets([pod('early'), pod('late')])
  await until(() => calls.has('early'), 'the early target')
  t.notOk(calls.has('late'), 'the late target waits for its slot in the interval')
})

t.test('a probe that cannot get a slot in time counts as AGENT_OVERLOADED', async t => {
  let release!: () => void
  const held = new Promise<void>(resolve => { release = resolve })
  let running = 0
  let most = 0
  const probe: Probe = async () => {
    running++
    most = Math.max(most, running)
    await held
    running--
    return ok
  }
  const { s, results } = scheduler(t, probe, { concurrency: 1, startDeadlineMs: 30, intervalMs: 10_000 })
  s.setTargets([pod('a'), pod('b')])
  await until(() => s.active === 1 && results.drain().cells.length === 0, 'one probe to hold the only slot')
  await sleep(80)
  release()
  await until(() => running === 0, 'the held probe to finish')
  const cells = results.drain().cells
  t.equal(most, 1, 'never more than the cap')
  t.same(cells.map(c => ({ target: c.target, count: c.count, errors: c.errors })).sort((x, y) => x.target.localeCompare(y.target)), [
    { target: 'a', count: 1, errors: undefined },
    { target: 'b', count: 1, errors: [{ reason: 'AGENT_OVERLOADED', raw: 'CONCURRENCY_LIMIT', count: 1 }] }
  ])
})

t.test('a waiting probe gets the slot as soon as one frees up', async t => {
  let running = 0
  let most = 0
  const probe: Probe = async () => {
    running++
    most = Math.max(most, running)
    await sleep(10)
    running--
    return ok
  }
  const { s, results } = scheduler(t, probe, { concurrency: 1, startDeadlineMs: 1000, intervalMs: 10_000 })
  s.setTargets([pod('a'), pod('b'), pod('c')])
  let done = 0
  await until(() => {
    done += results.drain().cells.reduce((sum, c) => sum + c.count - (c.errors?.length ?? 0), 0)
    return done === 3
  }, 'all three to succeed')
  t.equal(most, 1)
})

t.test('the timeout aborts the probe through its signal', async t => {
  let reason: unknown
  const probe: Probe = (_target, signal) => new Promise(resolve => {
    signal.addEventListener('abort', () => {
      reason = signal.reason
      resolve({ ok: false, reason: 'RESPONSE_TIMEOUT', raw: 'TimeoutError', seconds: 0.03 })
    })
  })
  const { s, results } = scheduler(t, probe, { timeoutMs: 30, intervalMs: 10_000 })
  s.setTargets([pod('a')])
  await until(() => reason !== undefined, 'the abort')
  await sleep(5)
  t.equal((reason as DOMException).name, 'TimeoutError')
  t.match(results.drain().cells, [{ target: 'a', count: 1, errors: [{ reason: 'RESPONSE_TIMEOUT' }] }])
})

t.test('a probe that throws is recorded as OTHER with its code', async t => {
  const probe: Probe = async () => { throw Object.assign(new Error('bug'), { code: 'EWEIRD' }) }
  const { s, results } = scheduler(t, probe, { intervalMs: 10_000 })
  s.setTargets([pod('a')])
  let cells: ReturnType<Results['drain']>['cells'] = []
  await until(() => (cells = results.drain().cells).length > 0, 'a result')
  t.same(cells[0]!.errors, [{ reason: 'OTHER', raw: 'EWEIRD', count: 1 }])
})

t.test('a success during a stall is lagged', async t => {
  const results = new Results(0)
  const s = new Scheduler({ probes: { pod: async () => ok }, results, lag: { stalledDuring: () => true, delayBoundMs: () => 60 }, intervalMs: 10_000, timeoutMs: 100, concurrency: 1, random: () => 0 })
  t.teardown(() => s.stop())
  s.setTargets([pod('a')])
  let cells: ReturnType<Results['drain']>['cells'] = []
  await until(() => (cells = results.drain().cells).length > 0, 'a result')
  t.same(cells[0], { probe: 'pod', target: 'a', count: 1, latency: [], lagged: 1 })
})

t.test('stop aborts probes in flight and records nothing for them', async t => {
  let aborted = false
  const probe: Probe = (_target, signal) => new Promise(resolve => {
    signal.addEventListener('abort', () => {
      aborted = true
      resolve({ ok: false, reason: 'CONNECT_TIMEOUT', raw: 'AbortError', seconds: 0 })
    })
  })
  const { s, results } = scheduler(t, probe, { intervalMs: 10_000 })
  s.setTargets([pod('a')])
  await until(() => s.active === 1, 'the probe to start')
  await s.stop()
  t.equal(aborted, true)
  t.equal(s.size, 0)
  t.same(results.drain().cells, [])
})

t.test('a removed target that waits for a slot gives its slot back', async t => {
  let release!: () => void
  const held = new Promise<void>(resolve => { release = resolve })
  const calls: string[] = []
  const probe: Probe = async target => {
    calls.push(target.id)
    if (target.id === 'a') await held
    return ok
  }
  const { s } = scheduler(t, probe, { concurrency: 1, startDeadlineMs: 5000, intervalMs: 10_000 })
  s.setTargets([pod('a'), pod('b')])
  await until(() => calls.length === 1, 'a to hold the slot')
  s.setTargets([pod('a')])
  release()
  await sleep(20)
  t.same(calls, ['a'], 'b never ran')
  t.equal(s.active, 0, 'its slot was released')
})

t.test('a new interval applies from the next period', async t => {
  const { probe, calls } = counter()
  const { s } = scheduler(t, probe, { intervalMs: 30, jitter: 0 })
  s.setTargets([pod('a')])
  await until(() => calls.get('a') === 1, 'the first run')
  s.setIntervalMs(10_000)
  // The period already armed keeps the old interval; the one after it uses the new one.
  await until(() => calls.get('a') === 2, 'the second run')
  await sleep(100)
  t.equal(calls.get('a'), 2)
})

t.test('a probe may flag its own sample lagged (e.g. a saturated threadpool)', async t => {
  const results = new Results(0)
  const s = new Scheduler({ probes: { pod: async () => ({ ...ok, lagged: true }) }, results, lag: quiet, intervalMs: 10_000, timeoutMs: 100, concurrency: 1, random: () => 0 })
  t.teardown(() => s.stop())
  s.setTargets([pod('a')])
  let cells: ReturnType<Results['drain']>['cells'] = []
  await until(() => (cells = results.drain().cells).length > 0, 'a result')
  t.same(cells[0], { probe: 'pod', target: 'a', count: 1, latency: [], lagged: 1 })
})

t.test('timeouts can differ per probe kind', async t => {
  const hang: Probe = (_target, signal) => new Promise(resolve => {
    signal.addEventListener('abort', () => resolve({ ok: false, reason: 'RESPONSE_TIMEOUT', raw: String((signal.reason as DOMException).name), seconds: 0 }))
  })
  const results = new Results(0)
  const s = new Scheduler({ probes: { pod: hang, tcp: hang }, results, lag: quiet, intervalMs: 10_000, timeoutMs: 40, timeouts: { tcp: 5000 }, concurrency: 4, random: () => 0 })
  t.teardown(() => s.stop())
  s.setTargets([pod('a'), { kind: 'tcp', id: 'x:1' }])
  let cells: ReturnType<Results['drain']>['cells'] = []
  await until(() => (cells = results.drain().cells).length > 0, 'a result')
  await sleep(100)
  cells.push(...results.drain().cells)
  t.same(cells.map(c => c.probe), ['pod'], 'the pod probe timed out; the tcp probe still runs under its longer limit')
})

t.test('a kind with a slower interval runs at that cadence, never faster than the interval', async t => {
  const { probe, calls } = counter()
  const results = new Results(0)
  const s = new Scheduler({ probes: { pod: probe, mtu: probe }, results, lag: quiet, intervalMs: 10, intervals: { mtu: 10_000 }, timeoutMs: 1000, concurrency: 4, random: () => 0 })
  t.teardown(() => s.stop())
  s.setTargets([pod('a'), { kind: 'mtu', id: 'a/8500' }])
  await until(() => (calls.get('a') ?? 0) >= 10, 'ten pod runs')
  t.equal(calls.get('a/8500'), 1, 'the mtu target ran once (its staggered first run), not at the pod cadence')

  const slow = new Scheduler({ probes: { mtu: probe }, results, lag: quiet, intervalMs: 10_000, intervals: { mtu: 10 }, timeoutMs: 1000, concurrency: 4, random: () => 0 })
  t.teardown(() => slow.stop())
  slow.setTargets([{ kind: 'mtu', id: 'b/8500' }])
  await until(() => calls.get('b/8500') === 1, 'the first run')
  await sleep(100)
  t.equal(calls.get('b/8500'), 1, 'a kind interval below the interval does not speed the kind up')
})

// The lag rule end to end: a real drift check, real probes on loopback, and real busy loops as stalls.

function block (ms: number): void {
  const until = performance.now() + ms
  while (performance.now() < until) { /* the agent's event loop, stalled */ }
}

/** A listener that accepts connections and never answers: a path that drops every answer. */
async function silentPeer (t: Test): Promise<number> {
  const sockets = new Set<Socket>()
  const server = createNetServer(socket => { sockets.add(socket) })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => {
    for (const s of sockets) s.destroy()
    return new Promise(resolve => server.close(resolve))
  })
  return (server.address() as AddressInfo).port
}

async function pingPeer (t: Test, node: string): Promise<number> {
  const server = createHttpServer((_req, res) => res.end(JSON.stringify({ node, pod: node, labels: {} })))
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => {
    server.closeAllConnections()
    return new Promise(resolve => server.close(resolve))
  })
  return (server.address() as AddressInfo).port
}

function watchLoop (t: Test, thresholdMs: number): LoopLag {
  const lag = new LoopLag({ thresholdMs })
  lag.start()
  t.teardown(() => lag.stop())
  return lag
}

/** Sums every drained cell until `enough` says stop. */
async function collect (results: Results, enough: (c: { count: number, errors: number, lagged: number }) => boolean): Promise<{ count: number, errors: number, lagged: number, reasons: Set<string> }> {
  const total = { count: 0, errors: 0, lagged: 0, reasons: new Set<string>() }
  for (let i = 0; i < 2000 && !enough(total); i++) {
    for (const c of results.drain().cells) {
      total.count += c.count
      total.lagged += c.lagged ?? 0
      for (const e of c.errors ?? []) {
        total.errors += e.count
        total.reasons.add(e.reason)
      }
    }
    await sleep(10)
  }
  return total
}

t.test('short repeated stalls (CPU throttling) never hide a path that drops everything', async t => {
  const port = await silentPeer(t)
  const lag = watchLoop(t, 20)
  // 30 ms stalls every 80 ms, like a cgroup quota running out each period: each one is far above the
  // lag threshold, yet no three of them come near the 1 s timeout.
  const throttle = setInterval(() => block(30), 80)
  t.teardown(() => clearInterval(throttle))
  const results = new Results(0)
  const target = { kind: 'pod', id: 'n2', podIp: '127.0.0.1', port } as Target
  const s = new Scheduler({ probes: { pod: createPodProbe({ timeoutMs: 1000 }) as Probe }, results, lag, intervalMs: 50, timeoutMs: 1000, concurrency: 4, random: () => 0 })
  t.teardown(() => s.stop())
  s.setTargets([target])
  const total = await collect(results, c => c.count >= 3)
  await s.stop()
  t.ok(lag.takeMaxLagMs() > 20, 'the loop was stalled above the threshold')
  t.equal(total.lagged, 0, 'no timeout was excused')
  t.equal(total.errors, total.count, `every probe is an error (${total.errors} of ${total.count})`)
  t.same([...total.reasons], ['RESPONSE_TIMEOUT'])
})

t.test('a stall longer than the timeout on a healthy path is lagged, not an error', async t => {
  const port = await pingPeer(t, 'n2')
  const lag = watchLoop(t, 20)
  const results = new Results(0)
  const pod = createPodProbe({ timeoutMs: 200 })
  // The agent freezes for 400 ms right after the probe opened its connection (a 200 ms timeout).
  const frozen: Probe = (target, signal) => {
    const running = pod(target as never, signal)
    setImmediate(() => block(400))
    return running
  }
  const s = new Scheduler({ probes: { pod: frozen }, results, lag, intervalMs: 10_000, timeoutMs: 200, concurrency: 4, random: () => 0 })
  t.teardown(() => s.stop())
  s.setTargets([{ kind: 'pod', id: 'n2', podIp: '127.0.0.1', port } as Target])
  const total = await collect(results, c => c.count >= 1)
  t.same({ count: total.count, errors: total.errors, lagged: total.lagged }, { count: 1, errors: 0, lagged: 1 })
})

t.test('a stall longer than the timeout is not blamed on the threadpool (dns-lookup)', async t => {
  const lag = watchLoop(t, 20)
  const results = new Results(0)
  // localhost comes from /etc/hosts: only the agent's own stall can make this lookup late. The canary and
  // the lookup each take 20 ms before they reach the threadpool, so the 400 ms freeze (right after the
  // probe started) is sure to catch both of them still out.
  const pool = new LookupPool({
    canary: () => sleep(20),
    resolve: (name, family) => sleep(20).then(() => lookupPromise(name, { family, all: true }))
  })
  const lookup = createDnsLookupProbe(pool)
  const frozen: Probe = (target, signal) => {
    setImmediate(() => block(400))
    return lookup(target as never, signal)
  }
  const s = new Scheduler({ probes: { 'dns-lookup': frozen }, results, lag, intervalMs: 10_000, timeoutMs: 200, concurrency: 4, random: () => 0 })
  t.teardown(() => s.stop())
  s.setTargets([dnsLookupTarget('localhost', 4)])
  const total = await collect(results, c => c.count >= 1)
  t.same({ count: total.count, errors: total.errors, lagged: total.lagged, reasons: [...total.reasons] }, { count: 1, errors: 0, lagged: 1, reasons: [] })
})
