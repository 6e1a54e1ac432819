// Gate metrics on /metrics, from each named gate's latest evaluation. Series are bounded by the
// configured gates and their checks; ad-hoc gates are never exported.

import { Gauge, type Registry } from 'prom-client'
import { VERDICTS } from './check.ts'
import type { GateMonitor } from './monitor.ts'

export function registerGateMetrics (registry: Registry, monitor: GateMonitor): void {
  if (monitor.size === 0) return
  new Gauge({
    name: 'pingfleet_gate_pass',
    help: '1 when the gate\'s latest verdict is pass; 0 for fail and for insufficient_data (see pingfleet_gate_verdict).',
    labelNames: ['gate'],
    registers: [registry],
    collect () {
      this.reset()
      for (const spec of monitor.specs()) {
        const latest = monitor.latest(spec.name)
        this.set({ gate: spec.name }, latest?.verdict === 'pass' ? 1 : 0)
      }
    }
  })
  new Gauge({
    name: 'pingfleet_gate_verdict',
    help: 'One-hot latest verdict of each gate: pass, fail or insufficient_data (also before the first evaluation).',
    labelNames: ['gate', 'verdict'],
    registers: [registry],
    collect () {
      this.reset()
      for (const spec of monitor.specs()) {
        const verdict = monitor.latest(spec.name)?.verdict ?? 'insufficient_data'
        for (const v of VERDICTS) this.set({ gate: spec.name, verdict: v }, v === verdict ? 1 : 0)
      }
    }
  })
  const checkGauge = (name: string, help: string, pick: (c: { observed: number | null, threshold: number }) => number | null): void => {
    new Gauge({
      name,
      help,
      labelNames: ['gate', 'check'],
      registers: [registry],
      collect () {
        this.reset()
        for (const spec of monitor.specs()) {
          for (const c of monitor.latest(spec.name)?.checks ?? []) {
            const value = pick(c)
            if (value !== null) this.set({ gate: spec.name, check: c.id }, value)
          }
        }
      }
    })
  }
  checkGauge('pingfleet_gate_check_value', 'Observed value of each gate check (ratio, seconds or count); absent when nothing was measured.', c => c.observed)
  checkGauge('pingfleet_gate_check_threshold', 'Threshold of each gate check, in the unit of its value.', c => c.threshold)
}
