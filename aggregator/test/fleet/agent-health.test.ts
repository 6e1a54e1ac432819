import t from 'tap'
import { FEATURE_REPORT_CPU, FEATURES_HEADER, bucketIndex } from '@pingfleet/protocol'
import { AgentHealth, DEGRADED_SHARE, MIN_JUDGED_SAMPLES } from '../../src/fleet/agent-health.ts'
import { aggregator, hello, RawAgent, report } from '../helpers.ts'

t.test('an agent whose samples are mostly lagged is degraded; one with a few lagged ones is not', async t => {
  let now = 1_000_000
  const health = new AgentHealth({ windowMs: 60_000, now: () => now })
  health.observe('busy', now, { count: 100, lagged: 80, overloaded: 0 })
  health.observe('fine', now, { count: 100, lagged: 5, overloaded: 0 })
  health.observe('swamped', now, { count: 100, lagged: 10, overloaded: 60 })
  health.observe('quiet', now, { count: MIN_JUDGED_SAMPLES - 1, lagged: MIN_JUDGED_SAMPLES - 1, overloaded: 0 })
  t.match(health.verdict('busy'), { samples: 100, lagged: 80, laggedRatio: 0.8, degraded: true, degradedReason: 'lagged', degradedDetail: /80% of its 100 samples in the last 60 s were lagged/ })
  t.match(health.verdict('fine'), { laggedRatio: 0.05, degraded: false, degradedReason: null, degradedDetail: null })
  t.match(health.verdict('swamped'), { degraded: true, degradedReason: 'overloaded', degradedDetail: /60% .* AGENT_OVERLOADED/ })
  t.match(health.verdict('quiet'), { degraded: false, laggedRatio: 1 }, 'too few samples to judge')
  t.match(health.verdict('unknown'), { samples: 0, laggedRatio: null, degraded: false })
  t.equal(DEGRADED_SHARE, 0.5)

  now += 61_000
  health.observe('busy', now, { count: 100, lagged: 0, overloaded: 0 })
  t.match(health.verdict('busy'), { samples: 100, lagged: 0, degraded: false }, 'the window moves on: a recovered agent is no longer degraded')
  t.match(health.verdict('fine'), { samples: 0, laggedRatio: null })
  health.forget('busy')
  t.same([...health.nodes()].sort(), ['fine', 'quiet', 'swamped'])
})

t.test('the degraded detail names the CPU throttling over the window', async t => {
  let now = 0
  const health = new AgentHealth({ windowMs: 60_000, now: () => now })
  health.observe('n1', now, { count: 50, lagged: 40, overloaded: 0 }, { periods: 1000, throttledPeriods: 100, throttledUsec: 9_000_000 })
  now = 30_000
  health.observe('n1', now, { count: 50, lagged: 40, overloaded: 0 }, { periods: 1300, throttledPeriods: 400, throttledUsec: 37_500_000 })
  t.match(health.verdict('n1').degradedDetail, /CPU-throttled in 300 of 300 periods \(28\.5 s\)/)
  t.same(health.cpu('n1'), { periods: 1300, throttledPeriods: 400, throttledUsec: 37_500_000 })
  t.equal(health.cpu('n2'), null)
})

t.test('GET /api/v1/agents and /metrics: degraded, lagged ratio and CPU throttling per node', async t => {
  const agg = await aggregator()
  t.teardown(() => agg.close())
  const features: string[] = []
  const connect = async (node: string): Promise<RawAgent> => {
    const a = new RawAgent(agg.address())
    a.socket.on('upgrade', res => { features.push(String(res.headers[FEATURES_HEADER])) })
    await a.opened()
    a.send(hello(node, { cniplugin: node === 'busy' ? 'aws' : 'cilium' }))
    await a.waitFor(m => m.type === 'welcome')
    return a
  }
  const busy = await connect('busy')
  const fine = await connect('fine')
  // The header lists every optional feature (report.cpu and the cell features of protocol features.ts).
  t.same(features.map(f => f.split(',').map(x => x.trim()).includes(FEATURE_REPORT_CPU)), [true, true], 'the upgrade answer announces report.cpu')
  const now = Date.now()
  busy.send({ ...report(1, now, [{ probe: 'pod', target: 'fine', count: 20, latency: [bucketIndex(0.001), 2], lagged: 18 }]), cpu: { periods: 600, throttledPeriods: 41, throttledUsec: 3_895_000 } })
  fine.send(report(1, now, [{ probe: 'pod', target: 'busy', count: 20, latency: [bucketIndex(0.001), 19], lagged: 1 }]))
  await busy.waitFor(m => m.type === 'ack')
  await fine.waitFor(m => m.type === 'ack')

  const agents = (await agg.app.inject('/api/v1/agents')).json() as { agents: Array<Record<string, unknown>> }
  t.match(agents.agents, [
    { node: 'busy', degraded: true, degradedReason: 'lagged', degradedDetail: /90% of its 20 samples/, laggedRatio: 0.9, cpu: { periods: 600, throttledPeriods: 41, throttledSeconds: 3.895 } },
    { node: 'fine', degraded: false, degradedReason: null, degradedDetail: null, laggedRatio: 0.05, cpu: null }
  ])
  const metrics = (await agg.app.inject('/metrics')).body
  t.match(metrics, /pingfleet_node_lagged_ratio\{node="busy",group="aws"\} 0\.9\n/)
  t.match(metrics, /pingfleet_node_lagged_ratio\{node="fine",group="cilium"\} 0\.05\n/)
  t.match(metrics, /pingfleet_agent_degraded\{node="busy",group="aws"\} 1\n/)
  t.match(metrics, /pingfleet_agent_degraded\{node="fine",group="cilium"\} 0\n/)
  t.match(metrics, /# TYPE pingfleet_agent_cpu_throttled_periods_total counter\npingfleet_agent_cpu_throttled_periods_total\{node="busy",group="aws"\} 41\n/)
  t.match(metrics, /pingfleet_agent_cpu_throttled_seconds_total\{node="busy",group="aws"\} 3\.895\n/)
  t.notMatch(metrics, /pingfleet_agent_cpu_throttled_periods_total\{node="fine"/, 'no series for an agent that reports no cpu.stat')
  busy.socket.close()
  fine.socket.close()
})
