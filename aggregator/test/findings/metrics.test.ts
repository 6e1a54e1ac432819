// The findings gauges: every kind exported (0 when none), one score series per active finding for
// the worst K only, and the rest counted, whatever the number of active findings.

import t from 'tap'
import { Registry } from 'prom-client'
import { FINDING_KIND_NAMES } from '../../src/findings/finding.ts'
import { MAX_SUBJECT_SERIES, registerFindingMetrics } from '../../src/findings/metrics.ts'
import { FindingTracker } from '../../src/findings/tracker.ts'
import { boundaryDetection, nodeDetection } from './detections.ts'

function seriesOf (text: string, family: string): string[] {
  return text.split('\n').filter(l => l.startsWith(`${family}{`) || l.startsWith(`${family} `))
}

t.test('with nothing active: every kind at 0, no subject series, nothing dropped', async t => {
  const registry = new Registry()
  registerFindingMetrics(registry, () => [])
  const text = await registry.metrics()
  t.equal(seriesOf(text, 'pingfleet_findings_active').length, FINDING_KIND_NAMES.length)
  t.ok(seriesOf(text, 'pingfleet_findings_active').every(l => l.endsWith(' 0')))
  t.same(seriesOf(text, 'pingfleet_finding_active_score'), [])
  t.same(seriesOf(text, 'pingfleet_findings_active_subjects_dropped'), ['pingfleet_findings_active_subjects_dropped 0'])
})

t.test(`at most K subject series (K = ${MAX_SUBJECT_SERIES} by default), the worst ones; the rest counted`, async t => {
  const tracker = new FindingTracker()
  const many = Array.from({ length: 500 }, (_, i) => nodeDetection(`node-${i}`, 'cilium', { score: (i % 100) / 100 }))
  tracker.update([...many, boundaryDetection('aws', 'cilium', 1)], Date.now())
  const registry = new Registry()
  registerFindingMetrics(registry, () => tracker.active())
  const text = await registry.metrics()
  const subjects = seriesOf(text, 'pingfleet_finding_active_score')
  t.equal(subjects.length, MAX_SUBJECT_SERIES)
  t.match(subjects[0], /^pingfleet_finding_active_score\{kind="group-boundary",subject="groups\/aws->cilium"\} 1$/, 'the worst first')
  // The K-th highest score among all 501: nothing exported is below it.
  const kth = [1, ...many.map(d => d.score)].sort((a, b) => b - a)[MAX_SUBJECT_SERIES - 1]!
  t.ok(subjects.every(l => Number(l.split(' ').at(-1)) >= kth), `only the highest scores are exported (>= ${kth})`)
  t.match(text, /^pingfleet_findings_active\{kind="node-inbound"\} 500$/m)
  t.match(text, /^pingfleet_findings_active\{kind="group-boundary"\} 1$/m)
  t.match(text, new RegExp(`^pingfleet_findings_active_subjects_dropped ${501 - MAX_SUBJECT_SERIES}$`, 'm'))

  const small = new Registry()
  registerFindingMetrics(small, () => tracker.active(), 3)
  const few = await small.metrics()
  t.equal(seriesOf(few, 'pingfleet_finding_active_score').length, 3, 'K is a parameter')
  t.match(few, /^pingfleet_findings_active_subjects_dropped 498$/m)
})
