// The gates file: JSON or YAML, checked once at start-up; a bad file stops the aggregator with
// one line naming the file, the JSON pointer and what was expected.

import { Ajv } from 'ajv'
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { loadConfig } from '../../src/config.ts'
import { gateDefinitionSchema } from '../../src/gates/spec.ts'
import { TOKEN } from '../helpers.ts'

const dir = mkdtempSync(join(tmpdir(), 'pingfleet-gates-'))
const MAIN = fileURLToPath(new URL('../../src/main.ts', import.meta.url))
let n = 0
function file (text: string, ext = 'yaml'): string {
  const path = join(dir, `gates-${++n}.${ext}`)
  writeFileSync(path, text)
  return path
}

const load = (path: string) => loadConfig({ PINGFLEET_TOKEN: TOKEN, PINGFLEET_INTERVAL: '5s', PINGFLEET_GATES_FILE: path })

t.test('a YAML gates file loads with its defaults filled in', async t => {
  const config = load(file(`
gates:
  - name: cilium-batch
    rules:
      - { probe: pod, src: "*", dst: cilium, maxErrorRatio: 0.01, maxP99: 250ms }
      - { probe: dns-lookup, src: cilium, dst: "*", window: 1m, minSamples: 5, maxErrorRatioByReason: { ENOTFOUND: 0.001 } }
    coverage: [{ group: cilium, minRatio: 0.9 }]
`))
  t.equal(config.gates.length, 1)
  const gate = config.gates[0]!
  t.match(gate, { name: 'cilium-batch', windowMs: 300_000, maxStalenessMs: 15_000, coverage: [{ group: 'cilium', minRatio: 0.9 }] })
  t.match(gate.rules[0], { probe: 'pod', src: '*', dst: 'cilium', windowMs: 300_000, minSamples: 10, maxErrorRatio: 0.01, maxP99: 0.25 })
  t.match(gate.rules[1], { probe: 'dns-lookup', windowMs: 60_000, minSamples: 5, maxErrorRatioByReason: { ENOTFOUND: 0.001 } })
  t.match(gate.definition, { window: '5m', minSamples: 10, maxStaleness: '15s' })
  t.ok(Object.isFrozen(gate), 'frozen')
})

t.test('a node-scoped gate loads with its selector parsed and its rules defaulted', async t => {
  const config = load(file(`
gates:
  - name: batch
    minSamples: 20
    nodes: [n2, n1, n1]
    nodeSelector: "pingfleet.io/migration-batch in (7,8),!spot"
    nodeRules:
      - { probe: pod, peers: aws, maxNodeErrorRatio: 0.01, maxNodeP99: 500ms, minPeers: 3 }
      - { probe: dns-lookup, window: 1m, maxNodeExcessErrorRatio: 0.005 }
`))
  const gate = config.gates[0]!
  t.same(gate.scope?.nodes, ['n1', 'n2'], 'names sorted, duplicates dropped')
  t.same(gate.scope?.selector?.requirements, [{ key: 'pingfleet.io/migration-batch', operator: 'in', values: ['7', '8'] }, { key: 'spot', operator: '!', values: [] }])
  t.match(gate.nodeRules[0], { probe: 'pod', peers: 'aws', windowMs: 300_000, minSamples: 20, maxNodeErrorRatio: 0.01, maxNodeP99: 0.5, minPeers: 3 })
  t.match(gate.nodeRules[1], { probe: 'dns-lookup', peers: '*', windowMs: 60_000, maxNodeExcessErrorRatio: 0.005 })
  t.match(gate.definition, { nodeSelector: 'pingfleet.io/migration-batch in (7,8),!spot' })
  t.equal(load(file('gates: [{ name: c, nodeSelector: "x=1" }]')).gates[0]!.nodeRules.length, 0, 'a scope alone is a gate: it checks coverage of the selected nodes')
})

t.test('a JSON gates file loads too, and no file means no gates', async t => {
  const config = load(file(JSON.stringify({ gates: [{ name: 'a', coverage: [{ group: '*', minRatio: 1 }] }] }), 'json'))
  t.equal(config.gates[0]!.name, 'a')
  t.same(loadConfig({ PINGFLEET_TOKEN: TOKEN }).gates, [])
  t.equal(loadConfig({ PINGFLEET_TOKEN: TOKEN }, ['--gates-file', config.gatesFile!]).gates.length, 1, '--gates-file flag')
})

const bad: Array<[string, string, RegExp]> = [
  ['a ratio above 1', 'gates: [{ name: a, rules: [{ probe: pod, src: aws, dst: cilium, maxErrorRatio: 2 }] }]', /at \/gates\/0\/rules\/0\/maxErrorRatio \(gate "a", rule pod aws->cilium\): got 2, expected a ratio from 0 to 1$/],
  ['an unknown field', 'gates: [{ name: a, maxErorRatio: 0.1, coverage: [{ group: x, minRatio: 1 }] }]', /at \/gates\/0\/maxErorRatio \(gate "a"\): got 0\.1, expected no field "maxErorRatio" here \(a misspelling\?\); known fields: name, description, window, minSamples/],
  ['an unknown probe kind', 'gates: [{ name: a, rules: [{ probe: icmp, src: aws, dst: cilium, maxErrorRatio: 0.1 }] }]', /at \/gates\/0\/rules\/0\/probe \(gate "a", rule icmp aws->cilium\): got "icmp", expected one of "pod", "mtu"/],
  ['a missing dst', 'gates: [{ name: a, rules: [{ probe: pod, src: aws }] }]', /at \/gates\/0\/rules\/0\/dst \(gate "a", rule pod aws->\?\): expected a field "dst"$/],
  ['a bad duration', 'gates: [{ name: a, window: 5 minutes, coverage: [{ group: x, minRatio: 1 }] }]', /at \/gates\/0\/window \(gate "a"\): got "5 minutes", expected a duration such as 500ms/],
  ['a window longer than kept', 'gates: [{ name: a, window: 1h, coverage: [{ group: x, minRatio: 1 }] }]', /at \/gates\/0\/window \(gate "a"\): got "1h", expected a window of at most 15m \(PINGFLEET_MAX_WINDOW\)/],
  ['a rule window shorter than an interval', 'gates: [{ name: a, rules: [{ probe: pod, src: a, dst: b, window: 1s, maxErrorRatio: 0.1 }] }]', /at \/gates\/0\/rules\/0\/window \(gate "a", rule pod a->b\): got "1s", expected a window of at least one report interval \(5s\)/],
  ['an unknown reason', 'gates: [{ name: a, rules: [{ probe: dns-lookup, src: a, dst: "*", maxErrorRatioByReason: { NOTFOUND: 0.1 } }] }]', /at \/gates\/0\/rules\/0\/maxErrorRatioByReason\/NOTFOUND \(gate "a", rule dns-lookup a->\*\): got 0\.1, expected a reason code/],
  ['a gate with nothing to check', 'gates: [{ name: a }]', /at \/gates\/0 \(gate "a"\): got \{"name":"a"\}, expected at least one entry in rules, coverage, services, nodeRules or forbidFindings, or nodes or nodeSelector/],
  ['a duplicate name', 'gates: [{ name: a, coverage: [{ group: x, minRatio: 1 }] }, { name: a, coverage: [{ group: y, minRatio: 1 }] }]', /at \/gates\/1\/name \(gate "a"\): got "a", expected a unique name \("a" is also \/gates\/0\/name\)/],
  ['the reserved name', 'gates: [{ name: adhoc, coverage: [{ group: x, minRatio: 1 }] }]', /at \/gates\/0\/name \(gate "adhoc"\): got "adhoc", expected a name other than "adhoc"/],
  ['an upper-case name', 'gates: [{ name: Cilium, coverage: [{ group: x, minRatio: 1 }] }]', /at \/gates\/0\/name \(gate "Cilium"\): got "Cilium", expected a lower-case DNS label/],
  ['no gates key', 'gate: []', /at \/gates: expected a field "gates"/],
  ['a bad node selector', 'gates: [{ name: a, nodeSelector: "zone in a" }]', /at \/gates\/0\/nodeSelector \(gate "a"\): got "zone in a", expected a Kubernetes label selector such as migration-batch=7 \("zone in a" is not a Kubernetes label selector: at character 9, found "a", expected "\(" after in\)$/],
  ['node rules without a node scope', 'gates: [{ name: a, nodeRules: [{ probe: pod, maxNodeErrorRatio: 0.01 }] }]', /at \/gates\/0\/nodeRules \(gate "a"\): got \[\{"probe":"pod","maxNodeErrorRatio":0\.01\}\], expected nodes or nodeSelector next to nodeRules/],
  ['a bad node name', 'gates: [{ name: a, nodes: [Node_1] }]', /at \/gates\/0\/nodes\/0 \(gate "a"\): got "Node_1", expected a node name \(a lower-case DNS subdomain\)/],
  ['minPeers for a target kind', 'gates: [{ name: a, nodes: [n1], nodeRules: [{ probe: dns-lookup, minPeers: 2, maxNodeErrorRatio: 0.01 }] }]', /at \/gates\/0\/nodeRules\/0\/minPeers \(gate "a", node rule dns-lookup\): got 2, expected no minPeers for probe dns-lookup/],
  ['a node rule ratio above 1', 'gates: [{ name: a, nodes: [n1], nodeRules: [{ probe: pod, maxNodeErrorRatio: 1.5 }] }]', /at \/gates\/0\/nodeRules\/0\/maxNodeErrorRatio \(gate "a", node rule pod\): got 1\.5, expected a ratio from 0 to 1$/],
  ['not YAML', 'gates: [ {', /at \/: expected JSON or YAML/],
  // Raw JSON-schema texts ("must NOT have fewer than 1 characters") never reach the user.
  ['an empty source group', 'gates: [{ name: a, rules: [{ probe: pod, src: "", dst: b, maxErrorRatio: 0.1 }] }]', /at \/gates\/0\/rules\/0\/src \(gate "a", rule pod ->b\): got "", expected a non-empty string$/],
  ['a ratio that is not a number', 'gates: [{ name: a, rules: [{ probe: pod, src: a, dst: b, maxErrorRatio: lots }] }]', /at \/gates\/0\/rules\/0\/maxErrorRatio \(gate "a", rule pod a->b\): got "lots", expected a number$/],
  ['minSamples of 0', 'gates: [{ name: b, coverage: [{ group: x, minRatio: 1 }] }, { name: a, minSamples: 0, coverage: [{ group: x, minRatio: 1 }] }]', /at \/gates\/1\/minSamples \(gate "a"\): got 0, expected an integer >= 1$/],
  ['an empty reason map', 'gates: [{ name: a, rules: [{ probe: dns-lookup, src: a, dst: b, maxErrorRatioByReason: {} }] }]', /at \/gates\/0\/rules\/0\/maxErrorRatioByReason \(gate "a", rule dns-lookup a->b\): got \{\}, expected at least 1 entry$/],
  ['an empty node list', 'gates: [{ name: a, nodes: [] }]', /at \/gates\/0\/nodes \(gate "a"\): got \[\], expected at least 1 entry$/],
  // A rule that cannot fail would pass whatever its probes found: refused where it is written.
  ['a rule with no bound', 'gates: [{ name: a, rules: [{ probe: pod, src: aws, dst: cilium, maxErrorRatio: 0.01 }, { probe: pod, src: "*", dst: cilium }] }]', /at \/gates\/0\/rules\/1 \(gate "a", rule pod \*->cilium\): got \{"probe":"pod","src":"\*","dst":"cilium"\}, expected a rule with at least one bound \(maxErrorRatio, maxP50, maxP99 or maxErrorRatioByReason\)/],
  ['a rule whose only criterion is minSamples', 'gates: [{ name: a, rules: [{ probe: pod, src: aws, dst: cilium, minSamples: 100 }] }]', /at \/gates\/0\/rules\/0 \(gate "a", rule pod aws->cilium\): .*expected a rule with at least one bound/],
  ['a node rule with no bound', 'gates: [{ name: a, nodes: [n1], nodeRules: [{ probe: pod, minPeers: 3, minSamples: 20 }] }]', /at \/gates\/0\/nodeRules\/0 \(gate "a", node rule pod\): .*expected a node rule with at least one bound \(maxNodeErrorRatio, maxNodeP99 or maxNodeExcessErrorRatio\)/]
]

for (const [what, text, message] of bad) {
  t.test(`a gates file with ${what} is refused`, async t => {
    const path = file(text)
    t.throws(() => load(path), { code: 'PINGFLEET_ERR_CONFIG', message: new RegExp(`^PINGFLEET_GATES_FILE=${JSON.stringify(path).replaceAll('/', '\\/').replaceAll('.', '\\.')} is invalid ${message.source}`) })
  })
}

t.test('a missing file is refused', async t => {
  t.throws(() => load(join(dir, 'nope.yaml')), { code: 'PINGFLEET_ERR_CONFIG', message: /nope\.yaml" is invalid at \/: expected a readable file \(ENOENT\)/ })
})

t.test('the aggregator refuses to start on a bad gates file: one line, exit 78 (EX_CONFIG)', async t => {
  const path = file('gates: [{ name: a, rules: [{ probe: pod, src: aws, dst: cilium, maxErrorRatio: 2 }] }]')
  const run = spawnSync(process.execPath, [MAIN], {
    env: { ...process.env, PINGFLEET_TOKEN: TOKEN, PINGFLEET_LISTEN: '127.0.0.1:0', PINGFLEET_GATES_FILE: path },
    encoding: 'utf8',
    timeout: 20_000
  })
  t.equal(run.status, 78)
  const lines = run.stderr.trim().split('\n')
  t.equal(lines.length, 1, 'one line')
  t.match(lines[0], `pingfleet-aggregator: PINGFLEET_ERR_CONFIG: PINGFLEET_GATES_FILE="${path}" is invalid at /gates/0/rules/0/maxErrorRatio (gate "a", rule pod aws->cilium): got 2, expected a ratio from 0 to 1`)
})

t.test('the chart validates aggregator.gates with this same gate schema', async t => {
  const values = JSON.parse(readFileSync(fileURLToPath(new URL('../../../charts/pingfleet/values.schema.json', import.meta.url)), 'utf8')) as { properties: { aggregator: { properties: { gates: { items: unknown } } } } }
  t.same(values.properties.aggregator.properties.gates.items, JSON.parse(JSON.stringify(gateDefinitionSchema)), 'charts/pingfleet/values.schema.json: regenerate its gates.items from gateDefinitionSchema')
})

t.test('the chart\'s values schema itself refuses a rule without a bound, so helm install fails before the aggregator would', async t => {
  const values = JSON.parse(readFileSync(fileURLToPath(new URL('../../../charts/pingfleet/values.schema.json', import.meta.url)), 'utf8')) as { properties: { aggregator: { properties: { gates: { items: object } } } } }
  const valid = new Ajv({ strict: false }).compile(values.properties.aggregator.properties.gates.items)
  t.ok(valid({ name: 'a', rules: [{ probe: 'pod', src: 'aws', dst: 'cilium', maxErrorRatio: 0.01 }] }))
  t.notOk(valid({ name: 'a', rules: [{ probe: 'pod', src: 'aws', dst: 'cilium', minSamples: 10 }] }), 'a pair rule with minSamples only')
  t.ok(valid({ name: 'a', nodeSelector: 'b=1', nodeRules: [{ probe: 'pod', maxNodeP99: '1s' }] }))
  t.notOk(valid({ name: 'a', nodeSelector: 'b=1', nodeRules: [{ probe: 'pod', minPeers: 3 }] }), 'a node rule with minPeers only')
})

t.test('the example gates file in docs/examples loads', async t => {
  const config = loadConfig({ PINGFLEET_TOKEN: TOKEN, PINGFLEET_GATES_FILE: fileURLToPath(new URL('../../../docs/examples/gates.yaml', import.meta.url)) })
  t.same(config.gates.map(g => g.name), ['baseline', 'cilium-batch', 'cilium-batch-relative', 'cluster-dns-service'])
  t.equal(config.gates[1]!.nodeRules.length, 4)
})
