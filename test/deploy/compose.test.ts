// docker-compose.yml: valid for docker-compose, two groups of at least two agents, and Prometheus
// and Grafana fed from the chart's one rules file and its dashboards (mounted, never copied).

import t from 'tap'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parse } from 'yaml'
import { ROOT, START, needs, onPath, readCompose, run, type Loose } from './tools.ts'

const composeFile = join(ROOT, 'docker-compose.yml')
const compose = readCompose()
const services = compose.services

t.test('docker-compose config -q accepts the file', needs(onPath('docker-compose') === null ? 'docker-compose is not installed (apt-get install docker-compose)' : null), async t => {
  const result = run('docker-compose', ['-f', composeFile, 'config', '-q'])
  t.equal(result.status, 0, result.stderr)
})

function environment (service: Loose): Record<string, string> {
  return service.environment ?? {}
}

t.test('agents: at least two per group, each on its group network, with its group label', async t => {
  const agents = Object.entries(services).filter(([, s]) => environment(s).PINGFLEET_AGGREGATOR_URL !== undefined)
  const groups: Record<string, string[]> = {}
  for (const [name, service] of agents) {
    const labels = environment(service).PINGFLEET_LABELS ?? ''
    const group = /(?:^|,)cniplugin=([^,]+)/.exec(labels)?.[1]
    t.ok(group, `${name} has a cniplugin label`)
    if (group === undefined) continue
    ;(groups[group] ??= []).push(name)
    const ip = environment(service).PINGFLEET_POD_IP
    t.equal(service.networks?.[group]?.ipv4_address, ip, `${name} is addressed on network ${group}`)
    t.same(service.command, START.agent, `${name} runs the agent`)
    t.ok(environment(service).PINGFLEET_NODE_NAME, `${name} has a node name`)
  }
  t.same(Object.keys(groups).sort(), ['aws', 'cilium'])
  for (const [group, members] of Object.entries(groups)) t.ok(members.length >= 2, `${group}: ${members.join(', ')}`)
  t.same(Object.keys(compose.networks).sort(), ['aws', 'cilium'])
  t.same(services.aggregator.command, START.aggregator)
  t.equal(services.aggregator.environment.PINGFLEET_GROUP_LABEL, 'cniplugin')
})

t.test('every pingfleet container runs as restricted as the chart\'s pods', async t => {
  for (const [name, service] of Object.entries(services)) {
    if (service.image !== 'pingfleet:local') continue
    t.equal(service.user, '1000:1000', `${name}: non-root`)
    t.equal(service.read_only, true, `${name}: read-only root`)
    t.same(service.cap_drop, ['ALL'], `${name}: no capabilities`)
    t.ok(service.security_opt?.includes('no-new-privileges:true'), `${name}: no privilege escalation`)
  }
})

/** The host side of a compose bind mount, resolved from the repository root. */
function mounts (service: Loose): Map<string, string> {
  return new Map((service.volumes ?? []).map((v: string) => {
    const [host, container] = v.split(':')
    return [container!, join(ROOT, host!)]
  }))
}

t.test('Prometheus loads the chart\'s rules file and scrapes the aggregator', async t => {
  const prometheus = mounts(services.prometheus)
  t.equal(prometheus.get('/etc/prometheus/rules/pingfleet.yaml'), join(ROOT, 'charts/pingfleet/files/rules.yaml'))
  const configPath = prometheus.get('/etc/prometheus/prometheus.yml')!
  t.ok(existsSync(configPath))
  const config = parse(readFileSync(configPath, 'utf8'))
  t.same(config.rule_files, ['/etc/prometheus/rules/*.yaml'])
  t.same(config.scrape_configs.flatMap((s: Loose) => s.static_configs.flatMap((c: Loose) => c.targets)), ['aggregator:8080'])
})

t.test('Grafana is provisioned with the chart\'s dashboards and a Prometheus datasource', async t => {
  const grafana = mounts(services.grafana)
  t.equal(grafana.get('/var/lib/grafana/dashboards/pingfleet'), join(ROOT, 'charts/pingfleet/files/dashboards'))
  const provisioning = grafana.get('/etc/grafana/provisioning')!
  const providers = parse(readFileSync(join(provisioning, 'dashboards/pingfleet.yaml'), 'utf8')).providers
  t.equal(providers[0].options.path, '/var/lib/grafana/dashboards/pingfleet')
  const datasources = parse(readFileSync(join(provisioning, 'datasources/prometheus.yaml'), 'utf8')).datasources
  t.match(datasources, [{ type: 'prometheus', uid: 'prometheus', url: 'http://prometheus:9090' }])
})
