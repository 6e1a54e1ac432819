// In-process A/B of the agent's one results writer (agent/src/results.ts): CPU per recorded probe and
// per drained window, for a 1,000-peer agent's mix (pod successes with connect and first-byte phases,
// service successes by name with a dns phase too). `node bench/results-micro.ts <checkout> [cells=1000]
// [windows=200]` loads <checkout>'s results.ts (with its node_modules), so two checkouts run
// alternately compare old and new code without sockets or the scheduler in the way. Prints one JSON line.

const root = process.argv[2] ?? '.'
const cells = Number(process.argv[3] ?? 1000)
const windows = Number(process.argv[4] ?? 200)
const { Results } = await import(`${root}/agent/src/results.ts`)

// Probe results as the probes build them, made up front so only recording is timed. Latencies
// log-normal around 1 ms, as in fleet-sim; every tenth cell is a service target looked up by name.
const draw = (median: number): number => median * Math.exp(0.5 * Math.sqrt(-2 * Math.log(1 - Math.random())) * Math.cos(2 * Math.PI * Math.random()))
const targets = Array.from({ length: cells }, (_, i) => i % 10 === 0 ? { kind: 'service', id: `svc-${i}:8081` } : { kind: 'pod', id: `peer-${i}` })
const made = targets.map(target => {
  const connect = draw(0.0003)
  const firstByte = draw(0.0005)
  if (target.kind === 'pod') return { ok: true, seconds: connect + firstByte + 0.0001, phases: { connect, firstByte } }
  const dns = draw(0.0004)
  return { ok: true, seconds: dns + connect + firstByte + 0.0001, backend: `peer-${target.id.length}`, phases: { dns, connect, firstByte } }
})

const results = new Results(0)
const run = (n: number): { recordNs: number, drainUs: number } => {
  let record = 0
  let drain = 0
  for (let w = 0; w < n; w++) {
    const t0 = process.cpuUsage()
    for (let i = 0; i < cells; i++) results.record(targets[i], made[i], false)
    const t1 = process.cpuUsage()
    results.drain(w + 1)
    const t2 = process.cpuUsage()
    record += (t1.user + t1.system) - (t0.user + t0.system)
    drain += (t2.user + t2.system) - (t1.user + t1.system)
  }
  return { recordNs: record * 1000 / (n * cells), drainUs: drain / n }
}
run(Math.max(20, windows / 5)) // warm-up: the JIT settles
const measured = run(windows)
console.log(JSON.stringify({ root, cells, windows, ...measured }))
