import t from 'tap'
import { pbkdf2 } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import { LookupPool, threadpoolSize } from '../../src/lookup-pool.ts'
import { createDnsLookupProbe, dnsLookupTarget, parseDnsLookupTarget } from '../../src/probes/dns-lookup.ts'
import { nameserversAreLoopback, parseResolvConf } from '../../src/resolv-conf.ts'

const never = new AbortController().signal

// AbortSignal.timeout does not keep the process alive; a hanging lookup would then end the test early.
function timeout (ms: number): AbortSignal {
  const ac = new AbortController()
  setTimeout(() => ac.abort(new DOMException('probe timeout', 'TimeoutError')), ms)
  return ac.signal
}

t.test('target ids and parsing', async t => {
  t.same(dnsLookupTarget('kubernetes.default'), { kind: 'dns-lookup', id: 'kubernetes.default@getaddrinfo', name: 'kubernetes.default', family: 0 })
  t.equal(dnsLookupTarget('kubernetes.default.svc.cluster.local.', 6).id, 'kubernetes.default.svc.cluster.local.@getaddrinfo/6')
  t.same(parseDnsLookupTarget(' example.internal./4 '), dnsLookupTarget('example.internal.', 4))
  t.same(parseDnsLookupTarget('localhost'), dnsLookupTarget('localhost', 0))
  for (const bad of ['', '/4', 'a..b', 'a b', '-a.example', 'x/5', `${'a'.repeat(64)}.example`]) {
    t.equal(parseDnsLookupTarget(bad), null, `rejects ${JSON.stringify(bad)}`)
  }
})

// /etc/hosts answers localhost for IPv4 (and for "any family") without DNS traffic; an IPv6-only or
// trailing-dot localhost lookup may fall through to the configured nameservers, so it is not used here.
t.test('resolves localhost from /etc/hosts', async t => {
  const probe = createDnsLookupProbe(new LookupPool())
  for (const family of [4, 0] as const) {
    const result = await probe(dnsLookupTarget('localhost', family), AbortSignal.timeout(5000))
    t.match(result, { ok: true, phases: { dns: Number }, detail: { address: /^127\./, addresses: Number } }, `family ${family}`)
  }
})

// A .invalid name is answered locally only when no DNS server is asked, or the one asked is the
// systemd-resolved stub (RFC 6761). Anything else would send a query off this machine, so skip.
function invalidNameSkipReason (): string | false {
  let hosts = ''
  let resolv = ''
  try {
    hosts = /^hosts:(.*)$/m.exec(readFileSync('/etc/nsswitch.conf', 'utf8'))?.[1] ?? ' files dns'
    resolv = readFileSync('/etc/resolv.conf', 'utf8')
  } catch {
    return 'cannot read /etc/nsswitch.conf or /etc/resolv.conf'
  }
  if (!/\bdns\b/.test(hosts)) return false
  const conf = parseResolvConf(resolv)
  if (nameserversAreLoopback(conf) && conf.nameservers.length > 0 && conf.nameservers.every(ns => ns === '127.0.0.53')) return false
  return `getaddrinfo here would query ${conf.nameservers.join(', ') || '127.0.0.1'} (not a local stub known to answer .invalid); ` +
    'ENOTFOUND through a controlled resolver belongs to the network-namespace suite'
}

t.test('a .invalid name is ENOTFOUND without hanging', { skip: invalidNameSkipReason() }, async t => {
  const probe = createDnsLookupProbe(new LookupPool())
  const result = await probe(dnsLookupTarget('pingfleet-does-not-exist.invalid', 0), AbortSignal.timeout(5000))
  t.match(result, { ok: false, reason: 'ENOTFOUND', raw: /^EAI_NONAME|EAI_NODATA$/ })
})

// Stands in for a resolver that never answers, which only the network-namespace suite can provide for real.
const hangingResolver = (): Promise<never> => new Promise(() => {})

t.test('a lookup that outlives the probe is LOOKUP_TIMEOUT and keeps its slot', async t => {
  const pool = new LookupPool({ threadpoolSize: 4, maxInFlight: 1, resolve: hangingResolver })
  const probe = createDnsLookupProbe(pool)
  const result = await probe(dnsLookupTarget('slow.example', 0), timeout(50))
  t.match(result, { ok: false, reason: 'LOOKUP_TIMEOUT', raw: 'TIMEOUT', detail: { abandoned: 1 } })
  t.ok(result.seconds >= 0.04, 'the probe waited for its signal')
  const queued = await probe(dnsLookupTarget('next.example', 0), timeout(30))
  t.match(queued, { ok: false, reason: 'AGENT_OVERLOADED', raw: 'LOOKUP_QUEUE_FULL' }, 'the stuck lookup still holds the only slot')
})

t.test('a failed lookup carries its reason', async t => {
  const enodata = Object.assign(new Error('getaddrinfo ENOTFOUND x'), { code: 'ENOTFOUND', errno: -3007, syscall: 'getaddrinfo' })
  const probe = createDnsLookupProbe(new LookupPool({ resolve: () => Promise.reject(enodata) }))
  t.match(await probe(dnsLookupTarget('nodata.example'), never), { ok: false, reason: 'ENOTFOUND', raw: 'EAI_NODATA', phases: { dns: Number } })
})

t.test('a success with no address is ENOTFOUND', async t => {
  const probe = createDnsLookupProbe(new LookupPool({ resolve: async () => [] }))
  t.match(await probe(dnsLookupTarget('empty.example'), never), { ok: false, reason: 'ENOTFOUND', raw: 'NO_ADDRESSES' })
})

function occupyThreadpool (iterations: number): Promise<void[]> {
  return Promise.all(Array.from({ length: threadpoolSize() }, () => new Promise<void>((resolve, reject) => {
    pbkdf2('pw', 'salt', iterations, 32, 'sha512', err => err ? reject(err) : resolve())
  })))
}

async function iterationsFor (ms: number): Promise<number> {
  const n = 20_000
  const start = performance.now()
  await new Promise<void>((resolve, reject) => pbkdf2('pw', 'salt', n, 32, 'sha512', err => err ? reject(err) : resolve()))
  return Math.ceil(n * ms / Math.max(1, performance.now() - start))
}

t.test('a saturated threadpool is the agent\'s fault, not the resolver\'s', async t => {
  const iterations = await iterationsFor(250)
  const probe = createDnsLookupProbe(new LookupPool())
  const busy = occupyThreadpool(iterations)
  const timedOut = await probe(dnsLookupTarget('localhost', 4), timeout(100))
  t.match(timedOut, { ok: false, reason: 'AGENT_OVERLOADED', raw: 'THREADPOOL_SATURATED' }, 'a timeout while the pool is full is not LOOKUP_TIMEOUT')
  await busy

  const again = occupyThreadpool(iterations)
  const slow = await probe(dnsLookupTarget('localhost', 4), never)
  await again
  t.match(slow, { ok: true, lagged: true }, 'a success that waited for a thread is flagged')
})

t.test('a canary that came back late does not turn a resolver timeout into the agent\'s fault', async t => {
  // The pool held the lookup 60 ms; the resolver then never answered within the 1 s deadline.
  const pool = new LookupPool({ canary: () => sleep(60), resolve: () => new Promise(() => {}) })
  const result = await createDnsLookupProbe(pool)(dnsLookupTarget('hangs.test', 4), timeout(1000))
  t.match(result, { ok: false, reason: 'LOOKUP_TIMEOUT', raw: 'TIMEOUT' })
  // libuv timers run on a loop clock of 1 ms granularity, so a 60 ms sleep can measure 59.x ms.
  t.ok(result.heldMs !== undefined && result.heldMs >= 59, `the hold is reported (${result.heldMs} ms), for the scheduler to weigh`)
})

t.test('expected negative answers from getaddrinfo: EAI_NODATA where no record of the family is normal, EAI_NONAME for an absent name', async t => {
  // The resolver stands in for getaddrinfo with the errors Node raises (code ENOTFOUND, the libuv errno kept).
  const enotfound = (errno: number): Error => Object.assign(new Error('getaddrinfo ENOTFOUND x'), { code: 'ENOTFOUND', errno, syscall: 'getaddrinfo' })
  const answers: Record<string, () => Promise<Array<{ address: string, family: number }>>> = {
    'v4only.example.internal': () => Promise.reject(enotfound(-3007)), // EAI_NODATA: the name exists, no AAAA
    'absent.example.internal': () => Promise.reject(enotfound(-3008)), // EAI_NONAME
    'present.example.internal': async () => [{ address: '10.0.0.1', family: 4 }],
    'flaky.example.internal': () => Promise.reject(Object.assign(new Error('getaddrinfo EAI_AGAIN x'), { code: 'EAI_AGAIN', errno: -3001 }))
  }
  const pool = new LookupPool({ resolve: name => answers[name]!() })
  const probe = createDnsLookupProbe(pool)
  const run = (name: string, family: 0 | 4 | 6, expect?: 'answer' | 'nodata' | 'nxdomain') => probe({ ...dnsLookupTarget(name, family), ...(expect === undefined ? {} : { expect }) }, timeout(5000))
  t.match(await run('v4only.example.internal', 6, 'nodata'), { ok: true, detail: { rcode: 'EAI_NODATA' } })
  t.match(await run('v4only.example.internal', 6), { ok: false, reason: 'ENOTFOUND', raw: 'EAI_NODATA' }, 'without the expectation it fails as before')
  t.match(await run('absent.example.internal', 6, 'nodata'), { ok: false, reason: 'ENOTFOUND', raw: 'EAI_NONAME' }, 'nodata needs the name to exist')
  t.match(await run('absent.example.internal', 0, 'nxdomain'), { ok: true, detail: { rcode: 'EAI_NONAME' } })
  t.match(await run('present.example.internal', 0, 'nxdomain'), { ok: false, reason: 'BAD_RESPONSE', raw: 'UNEXPECTED_ANSWER', detail: { address: '10.0.0.1' } })
  t.match(await run('v4only.example.internal', 6, 'nxdomain'), { ok: false, reason: 'BAD_RESPONSE', raw: 'UNEXPECTED_NODATA' })
  t.match(await run('flaky.example.internal', 0, 'nxdomain'), { ok: false, reason: 'EAI_AGAIN' }, 'a resolver failure stays one')
})
