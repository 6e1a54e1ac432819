// The rules and the dashboard against a real Prometheus: it scrapes a real aggregator with four real
// agents (peers reach each through a relay the test controls) and a simulated DNS agent, every 1 s,
// and evaluates charts/pingfleet/files/rules.yaml every 1 s. Only the alerts' `for:` is shortened
// (rulesWithShortFor), so an alert's pending → firing → resolved cycle takes seconds.

import t from 'tap'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startRelayedFleet } from '../helpers/relayed-fleet.ts'
import { dnsAgent, freePort, rejectedConnection, rulesWithShortFor, startPrometheus, until, type Prometheus } from './harness.ts'
import { DASHBOARDS_DIR, needs, requireBinary } from './tools.ts'

t.setTimeout(300_000)

const TOKEN = 'prometheus-suite-token-01'
const AGG_HOST = '127.0.3.1'
const nodes = ['p1', 'p2', 'p3', 'p4']
const listenIp = (i: number): string => `127.0.3.${21 + i}`
const podIp = (i: number): string => `127.0.4.${21 + i}`
const FOR = '10s'

interface Target { expr: string, refId: string }
interface Panel { title: string, type: string, targets?: Target[] }
interface Variable { name: string, type: string, query?: { query: string } }
interface Dashboard { templating: { list: Variable[] }, panels: Panel[] }

/** Grafana's template variables as a dashboard user would pick them: every group, the pod probe. */
function substitute (expr: string): string {
  return expr
    .replaceAll('$__rate_interval', '10s')
    .replaceAll('$probe', 'pod')
    .replaceAll('$src_group', '.*')
    .replaceAll('$dst_group', '.*')
}

t.test('rules and dashboard against a real Prometheus', needs('prometheus'), async t => {
  const binary = requireBinary('prometheus')
  const dir = mkdtempSync(join(tmpdir(), 'pingfleet-prom-suite-'))
  const gatesFile = join(dir, 'gates.yaml')
  writeFileSync(gatesFile, JSON.stringify({
    gates: [{ name: 'pod-aws-cilium', window: '10s', minSamples: 1, rules: [{ probe: 'pod', src: 'aws', dst: 'cilium', maxErrorRatio: 0.05 }] }]
  }))
  const aggPort = await freePort(AGG_HOST)
  const agentPort = await freePort(listenIp(0))
  const stops: Array<() => Promise<unknown>> = []
  t.teardown(async () => {
    for (const stop of stops) await stop().catch(() => {})
    rmSync(dir, { recursive: true, force: true })
  })
  const fleet = await startRelayedFleet({
    token: TOKEN, nodes, aggregatorHost: AGG_HOST, aggregatorPort: aggPort, agentPort, listenIp, podIp,
    aggregatorEnv: { PINGFLEET_GATES_FILE: gatesFile }
  })
  stops.push(fleet.stop)
  const dns = await dnsAgent({ aggregatorUrl: fleet.aggregator.url, token: TOKEN, node: 'p-dns', group: 'aws', ip: '127.0.3.30' })
  stops.push(dns.stop)
  const prom: Prometheus = await startPrometheus(binary, { host: '127.0.3.2', scrapeTarget: `${AGG_HOST}:${aggPort}`, rules: rulesWithShortFor(FOR) })
  stops.unshift(prom.stop)

  await t.test('an aggregator restart resets every counter and fires no alert', async t => {
    // The simulated DNS agent's failures (ENOTFOUND for one name, a DNS_TIMEOUT in four wire
    // queries, on purpose) legitimately keep PingfleetDNSErrorRatioHigh firing, and the findings
    // the aggregator draws from them keep PingfleetFindingActive firing for a dns-* kind; any other
    // alert, a finding of any other kind included, fails the test.
    const legitimate = (labels: Record<string, string>): boolean => labels.alertname === 'PingfleetDNSErrorRatioHigh' ||
      (labels.alertname === 'PingfleetFindingActive' && labels.kind?.startsWith('dns-') === true)
    const unexpected = async (): Promise<string[]> => (await prom.alerts())
      .filter(a => a.state === 'firing' && !legitimate(a.labels))
      .map(a => JSON.stringify(a.labels))
    const reports = async (): Promise<number> => Number((await prom.query('sum(pingfleet_ingest_reports_total)'))[0]?.value[1] ?? NaN)
    await until('reports ingested and scraped', async () => (await reports()) > 10 ? true : undefined, 30_000)
    const before = await reports()
    await fleet.restartAggregator()
    await until('the counters reset in Prometheus', async () => (await reports()) < before ? true : undefined, 20_000)
    await until('every agent back', async () => {
      const [connected] = await prom.query('sum(pingfleet_agents_connected)')
      return connected?.value[1] === String(nodes.length + 1) ? true : undefined
    }, 30_000)
    // Longer than every alert's for: here, so anything the restart set off would have fired by now.
    const watchUntil = Date.now() + 15_000
    const seen = new Set<string>()
    while (Date.now() < watchUntil) {
      for (const a of await unexpected()) seen.add(a)
      await new Promise(resolve => setTimeout(resolve, 500))
    }
    t.same([...seen], [], 'no alert fired across the restart')
    t.ok((await prom.query('increase(pingfleet_ingest_reports_total[1m]) > 0')).length > 0, 'rate() reads through the reset')
  })

  await t.test('a peer that refuses: PingfleetNodeIsolated goes pending, fires, and resolves once it answers again', async t => {
    const isolated = async (): Promise<string | null> =>
      (await prom.alerts()).find(a => a.labels.alertname === 'PingfleetNodeIsolated' && a.labels.node === 'p4' && a.labels.direction === 'in')?.state ?? null
    await until('p4 inbound ratio recorded, and 0', async () => {
      const [sample] = await prom.query('node_group_direction:pingfleet_node_probe_errors_per_probes:ratio_rate5m{node="p4",direction="in"}')
      return sample !== undefined && sample.value[1] === '0' ? true : undefined
    }, 30_000)
    t.equal(await isolated(), null, 'not alerting while healthy')

    await fleet.refuse(3)
    const states: string[] = []
    await until('PingfleetNodeIsolated firing for p4', async () => {
      const state = await isolated()
      if (state !== null && states.at(-1) !== state) states.push(state)
      return state === 'firing' ? true : undefined
    }, 90_000, 200)
    t.same(states, ['pending', 'firing'], 'pending first, then firing')
    const [alert] = (await prom.query('ALERTS{alertname="PingfleetNodeIsolated", alertstate="firing"}'))
    t.match(alert?.metric, { node: 'p4', group: 'cilium', direction: 'in', severity: 'critical' })
    const pair = await prom.query('ALERTS{alertname="PingfleetGroupPairErrorRatioHigh", src_group="aws", dst_group="cilium"}')
    t.ok(pair.length > 0, 'the aws → cilium error ratio alert is active too')
    t.equal((await prom.query('pingfleet_gate_pass{gate="pod-aws-cilium"}'))[0]?.value[1], '0', 'the gate reports fail')

    await fleet.admit(3)
    await until('PingfleetNodeIsolated resolved', async () => (await isolated()) === null ? true : undefined, 120_000, 500)
    t.pass('resolved after p4 answers again')
  })

  await t.test('every dashboard query parses and returns data', async t => {
    await rejectedConnection(fleet.aggregator.url) // so the rejected-connections query has a series
    const dashboard = JSON.parse(readFileSync(join(DASHBOARDS_DIR, 'migration-overview.json'), 'utf8')) as Dashboard
    const targets = dashboard.panels.flatMap(p => (p.targets ?? []).map(target => ({ panel: p.title, ...target })))
    t.ok(targets.length >= 15, `${targets.length} queries`)
    for (const target of targets) {
      const expr = substitute(target.expr)
      t.notOk(expr.includes('$'), `${target.panel} ${target.refId}: every variable substituted`)
      const result = await until(`${target.panel} ${target.refId} data`, async () => {
        const r = await prom.query(expr)
        return r.length > 0 ? r : undefined
      }, 20_000, 500).catch((err: Error) => err)
      t.ok(Array.isArray(result), `${target.panel} ${target.refId}: ${expr}${Array.isArray(result) ? ` → ${result.length} series` : ` → ${result.message}`}`)
    }
    for (const v of dashboard.templating.list.filter(v => v.type === 'query')) {
      const match = /^label_values\((.+), (\w+)\)$/.exec(v.query!.query)
      t.ok(match, `$${v.name} is label_values(selector, label)`)
      const response = await fetch(`${prom.url}/api/v1/label/${match![2]}/values?match[]=${encodeURIComponent(match![1]!)}`)
      const values = (await response.json() as { data: string[] }).data
      t.ok(values.length > 0, `$${v.name} has values: ${values.join(', ')}`)
    }
  })
})
