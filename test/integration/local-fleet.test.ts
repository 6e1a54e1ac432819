// `npm start` as a user runs it: every probe kind must produce green samples against the local
// stand-ins, and the service view must see every agent answer through the stand-in VIP.

import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { PROBE_KIND_NAMES } from '@pingfleet/protocol'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
// Its own ports and addresses, so a developer's `npm start` or a parallel run does not collide.
const PORT = 24_000 + (process.pid % 1000) * 3
const SUBNET = `127.${100 + (process.pid % 150)}`

interface Cell { src: string, dst: string, samples: number, errors: number, errorsByReason: Record<string, number> }

t.test('npm start exercises every probe kind on loopback', async t => {
  const child = spawn(process.execPath, ['scripts/local-fleet.ts', '--port', String(PORT), '--subnet', SUBNET, '--interval', '500ms'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  // When local-fleet printed its last agent's line: that agent is up and a backend of the Service stand-in.
  let fleetUpAt: number | undefined
  child.stdout.on('data', chunk => {
    out += chunk
    if (fleetUpAt === undefined && /^agent\s.*node-06-cilium/m.test(out)) fleetUpAt = Date.now()
  })
  child.stderr.on('data', chunk => { out += chunk })
  const exited = new Promise(resolve => child.once('exit', resolve))
  t.teardown(async () => {
    if (child.exitCode === null) child.kill('SIGINT')
    await exited
  })
  const base = `http://127.0.0.1:${PORT}`
  const get = async <T>(path: string): Promise<T | undefined> => {
    try {
      const response = await fetch(base + path)
      return response.ok ? await response.json() as T : undefined
    } catch {
      return undefined
    }
  }
  const green = new Set<string>()
  let backends = 0
  const deadline = Date.now() + 60_000
  while (Date.now() < deadline && (green.size < PROBE_KIND_NAMES.length || backends < 6)) {
    if (child.exitCode !== null) break
    for (const probe of PROBE_KIND_NAMES) {
      const m = await get<{ cells: Cell[] }>(`/api/v1/matrix?probe=${probe}&groupBy=cniplugin&window=10s`)
      if (m !== undefined && m.cells.length > 0 && m.cells.every(c => c.samples > 0)) green.add(probe)
    }
    const view = await get<{ rows: Array<{ backends: Array<{ node: string }> }> }>('/api/v1/service?groupBy=cniplugin&window=1m')
    backends = new Set(view?.rows.flatMap(r => r.backends.map(b => b.node)) ?? []).size
    await new Promise(resolve => setTimeout(resolve, 500))
  }
  t.same([...green].sort(), [...PROBE_KIND_NAMES].sort(), 'every kind has samples in every group pair')
  t.equal(backends, 6, 'every agent answered through the stand-in Service VIP')
  // Once everything runs, the last seconds are error-free in every kind but one: the large mtu
  // answers from the agent behind the black-hole path stall, and only those. "Once everything runs"
  // means a window that starts after the last agent joined: the first agent probes the Service
  // stand-in before local-fleet has seen it healthy and made it the first backend, and a Service
  // without endpoints closes the connection (raw EOF, reason ECONNRESET), as it would in a cluster.
  // Six agents start within 5 s on a fast machine, so a 5 s window read at once could reach back to it.
  t.ok(fleetUpAt !== undefined, 'local-fleet printed every agent')
  const WINDOW_MS = 5000
  await new Promise(resolve => setTimeout(resolve, Math.max(0, (fleetUpAt ?? 0) + WINDOW_MS + 1000 - Date.now())))
  for (const probe of PROBE_KIND_NAMES) {
    if (probe === 'mtu') continue
    const cells = (await get<{ cells: Cell[] }>(`/api/v1/matrix?probe=${probe}&groupBy=node&window=${WINDOW_MS / 1000}s`))?.cells ?? []
    const samples = cells.reduce((n, c) => n + c.samples, 0)
    t.ok(samples > 0, `${probe}: ${samples} samples in the last 5 s`)
    t.same(cells.filter(c => c.errors > 0).map(c => [c.src, c.dst, c.errorsByReason]), [], `${probe}: no errors`)
  }
  // A stalled answer takes the whole mtu timeout (2 s) to be judged, so wait for it from every peer.
  const BLACK_HOLED = 'node-06-cilium'
  let mtu: Cell[] = []
  for (const until = Date.now() + 20_000; Date.now() < until; await new Promise(resolve => setTimeout(resolve, 500))) {
    mtu = (await get<{ cells: Cell[] }>('/api/v1/matrix?probe=mtu&groupBy=node&window=15s'))?.cells ?? []
    if (mtu.filter(c => c.dst === `${BLACK_HOLED}/8500` && c.errors > 0).length === 5) break
  }
  const red = mtu.filter(c => c.errors > 0)
  t.equal(red.length, 5, `every peer sees the black hole toward ${BLACK_HOLED}`)
  t.ok(red.length > 0 && red.every(c => c.dst === `${BLACK_HOLED}/8500` && Object.keys(c.errorsByReason).join() === 'MTU_BLACKHOLE'), `only ${BLACK_HOLED}/8500 is red, as MTU_BLACKHOLE`, { red })
  // Each check over "every cell toward it" first counts the cells: an empty list would pass any .every.
  const small = mtu.filter(c => c.dst === `${BLACK_HOLED}/1400`)
  t.equal(small.length, 5, `every peer probes ${BLACK_HOLED}/1400`)
  t.ok(small.length > 0 && small.every(c => c.samples > 0 && c.errors === 0), 'the small size to the same agent stays green', { small })
  const pod = ((await get<{ cells: Cell[] }>('/api/v1/matrix?probe=pod&groupBy=node&window=10s'))?.cells ?? []).filter(c => c.dst === BLACK_HOLED)
  t.equal(pod.length, 5, `every peer pod-probes ${BLACK_HOLED}`)
  t.ok(pod.length > 0 && pod.every(c => c.samples > 0 && c.errors === 0), 'and so do pod probes', { pod })
  for (const name of ['Service VIP', 'cluster resolver', 'external endpoint', 'path-MTU black hole']) t.match(out, `stand-in     ${name}`, `the ${name} stand-in is named as such`)
  for (const probe of PROBE_KIND_NAMES) t.match(out, `probe=${probe}&`, `the ${probe} matrix URL is printed`)
})
