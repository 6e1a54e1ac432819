// The one rules file under promtool: it checks, every alert carries what the conventions ask,
// and every alert has unit tests that fire on a fault, stay silent on health and across an
// aggregator restart (test/prometheus/rules-tests/*.yaml).

import t from 'tap'
import { spawnSync } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parse } from 'yaml'
import { needs, readRules, requireBinary, ROOT, RULES_FILE, RULES_TESTS_DIR } from './tools.ts'

const alerts = readRules().groups.flatMap(g => g.rules).filter(r => r.alert !== undefined)
const testFiles = readdirSync(RULES_TESTS_DIR).filter(f => f.endsWith('.yaml')).sort().map(f => join(RULES_TESTS_DIR, f))

interface AlertTest { eval_time: string, alertname: string, exp_alerts?: unknown[] }
interface UnitTest { name: string, alert_rule_test?: AlertTest[] }
const unitTests: UnitTest[] = testFiles.flatMap(f => (parse(readFileSync(f, 'utf8')) as { tests: UnitTest[] }).tests)

t.test('every alert carries severity, summary, description and a runbook section', async t => {
  const runbooks = readFileSync(join(ROOT, 'docs/runbooks.md'), 'utf8')
  const anchors = new Set([...runbooks.matchAll(/^## (\S+)/gm)].map(m => m[1]!.toLowerCase()))
  t.ok(alerts.length >= 7, `${alerts.length} alerts`)
  for (const a of alerts) {
    t.match(a.labels?.severity, /^(critical|warning|info)$/, `${a.alert} severity`)
    for (const key of ['summary', 'description', 'runbook_url']) t.type(a.annotations?.[key], 'string', `${a.alert} ${key}`)
    const anchor = a.annotations?.runbook_url?.split('#')[1]
    t.equal(anchor, a.alert!.toLowerCase(), `${a.alert} runbook_url points at its own section`)
    t.ok(anchors.has(anchor ?? ''), `docs/runbooks.md has a section for ${a.alert}`)
  }
})

t.test('every alert has unit tests: fires on a fault, silent when healthy and across a restart', async t => {
  for (const a of alerts) {
    const cases = unitTests.filter(u => u.alert_rule_test?.some(x => x.alertname === a.alert))
    const fires = cases.filter(u => u.alert_rule_test!.some(x => x.alertname === a.alert && (x.exp_alerts?.length ?? 0) > 0))
    const silent = cases.filter(u => u.alert_rule_test!.every(x => x.alertname !== a.alert || (x.exp_alerts?.length ?? 0) === 0))
    t.ok(fires.length > 0, `${a.alert} fires in a test`)
    t.ok(silent.some(u => /healthy/.test(u.name)), `${a.alert} is silent on a healthy fleet`)
    t.ok(silent.some(u => /restart/.test(u.name)), `${a.alert} is silent across an aggregator restart`)
  }
  const spike = unitTests.find(u => /steady high rate/.test(u.name))
  t.ok(spike?.alert_rule_test !== undefined && spike.alert_rule_test.length > 0 && spike.alert_rule_test.every(x => x.alertname === 'PingfleetDNSNotFoundSpike' && x.exp_alerts?.length === 0), 'the spike alert stays silent on a steady high rate')
})

t.test('promtool check rules', needs('promtool'), async t => {
  const result = spawnSync(requireBinary('promtool'), ['check', 'rules', RULES_FILE], { encoding: 'utf8' })
  t.equal(result.status, 0, 'exit status', { output: result.stdout + result.stderr })
  t.match(result.stdout, /SUCCESS: \d+ rules found/)
})

t.test('promtool test rules', needs('promtool'), async t => {
  for (const file of testFiles) {
    const result = spawnSync(requireBinary('promtool'), ['test', 'rules', file], { encoding: 'utf8', cwd: ROOT })
    t.equal(result.status, 0, file.slice(ROOT.length + 1), { output: result.stdout + result.stderr })
  }
})
