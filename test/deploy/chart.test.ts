// The Helm chart: lint, render every ci/*-values.yaml for every pinned Kubernetes version, validate
// the result with kubeconform against offline schemas, and check the rules the conventions set
// (restricted Pod Security Standard, no hostNetwork, labels, one rules file and one dashboard).

import t from 'tap'
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parse } from 'yaml'
import {
  CHART, KUBERNETES_VERSIONS, SCHEMA_LOCATIONS, helm, kubeconform, missingTools, needs, parseManifests, template,
  type Manifest
} from './tools.ts'

const CI_VALUES = readdirSync(join(CHART, 'ci')).filter(f => f.endsWith('-values.yaml')).sort()
const missing = missingTools()
const tools = needs(missing)

t.test('the pinned helm, kubeconform and schemas are installed', tools, async t => {
  // Skipped locally when they are missing; under CI=true this fails with the reason instead.
  t.equal(missing, null, missing ?? 'all in place')
})

t.test('there is a CI values file for each case the chart promises', async t => {
  t.same(CI_VALUES, ['default-values.yaml', 'large-cluster-values.yaml', 'minimal-values.yaml', 'monitoring-values.yaml'])
})

t.test('helm lint --strict passes with each CI values file', tools, async t => {
  for (const file of CI_VALUES) {
    const lint = helm(['lint', '--strict', CHART, '-f', join(CHART, 'ci', file)])
    t.equal(lint.status, 0, `${file}: ${lint.stdout}${lint.stderr}`)
  }
})

t.test('every CI values file renders to manifests kubeconform accepts, on every pinned Kubernetes', tools, async t => {
  t.ok(KUBERNETES_VERSIONS.length >= 2, `versions pinned: ${KUBERNETES_VERSIONS.join(' ')}`)
  for (const version of KUBERNETES_VERSIONS) {
    for (const file of CI_VALUES) {
      const rendered = template(file, ['--kube-version', version])
      if (rendered.status !== 0) {
        t.fail(`${file} does not render for ${version}: ${rendered.stderr}`)
        continue
      }
      const count = parseManifests(rendered.stdout).length
      // -strict rejects unknown fields; no -ignore-missing-schemas, so every kind needs a schema.
      const check = kubeconform([
        '-strict', '-summary', '-output', 'json', '-kubernetes-version', version,
        ...SCHEMA_LOCATIONS.flatMap(location => ['-schema-location', location])
      ], rendered.stdout)
      t.equal(check.status, 0, `${file} on ${version}: ${check.stdout}${check.stderr}`)
      const summary = JSON.parse(check.stdout).summary
      t.same(summary, { valid: count, invalid: 0, errors: 0, skipped: 0 }, `${file} on ${version}: all ${count} resources valid`)
    }
  }
})

t.test('kubeconform with these schemas does reject bad manifests', tools, async t => {
  // Guards the guard: generated schemas that accepted anything would make the test above vacuous.
  const rendered = template('default-values.yaml').stdout
  for (const [what, from, to, complaint] of [
    ['an unknown field', 'readOnlyRootFilesystem: true', 'readOnlyRootFilesystem: true\n            readOnlyRootFilesystm: true', /readOnlyRootFilesystm/],
    ['a wrong type', 'containerPort: 8081', 'containerPort: "8081"', /containerPort.*want integer/],
    ['a missing required field', '- name: agent\n          image:', '- image:', /missing property 'name'/]
  ] as const) {
    const broken = rendered.replace(from, to)
    t.not(broken, rendered, `${what}: the manifest was changed`)
    const check = kubeconform(['-strict', '-kubernetes-version', KUBERNETES_VERSIONS[0]!,
      ...SCHEMA_LOCATIONS.flatMap(location => ['-schema-location', location])], broken)
    t.not(check.status, 0, `${what} is rejected`)
    t.match(check.stdout, complaint, `${what}: ${check.stdout.trim()}`)
  }
})

function workloads (manifests: Manifest[]): Manifest[] {
  return manifests.filter(m => ['DaemonSet', 'Deployment', 'StatefulSet', 'Job', 'CronJob', 'Pod'].includes(m.kind))
}

function byKind (manifests: Manifest[], kind: string): Manifest[] {
  return manifests.filter(m => m.kind === kind)
}

const RESTRICTED_VOLUMES = ['configMap', 'csi', 'downwardAPI', 'emptyDir', 'ephemeral', 'persistentVolumeClaim', 'projected', 'secret']

t.test('every rendered pod meets the restricted Pod Security Standard', tools, async t => {
  for (const file of CI_VALUES) {
    const manifests = parseManifests(template(file).stdout)
    const found = workloads(manifests)
    t.same(found.map(w => w.kind).sort(), ['DaemonSet', 'Deployment'], `${file}: the agent DaemonSet and the aggregator Deployment`)
    for (const workload of found) {
      const where = `${file} ${workload.kind}/${workload.metadata.name}`
      const pod = workload.spec.template.spec
      t.equal(pod.securityContext?.runAsNonRoot, true, `${where}: pod runAsNonRoot`)
      t.equal(pod.securityContext?.seccompProfile?.type, 'RuntimeDefault', `${where}: pod seccomp RuntimeDefault`)
      t.not(pod.securityContext?.runAsUser, 0, `${where}: not uid 0`)
      for (const field of ['hostNetwork', 'hostPID', 'hostIPC']) t.not(pod[field], true, `${where}: no ${field}`)
      for (const volume of pod.volumes ?? []) {
        const types = Object.keys(volume).filter(k => k !== 'name')
        // A volume has exactly one source: none would pass .every without checking anything.
        t.ok(types.length === 1 && types.every(type => RESTRICTED_VOLUMES.includes(type)), `${where}: volume ${volume.name} (${types}) is allowed`)
      }
      const containers = [...(pod.initContainers ?? []), ...pod.containers]
      t.ok(containers.length > 0)
      for (const c of containers) {
        const sc = c.securityContext ?? {}
        const at = `${where} container ${c.name}`
        t.equal(sc.allowPrivilegeEscalation, false, `${at}: allowPrivilegeEscalation false`)
        t.not(sc.privileged, true, `${at}: not privileged`)
        t.equal(sc.readOnlyRootFilesystem, true, `${at}: read-only root filesystem`)
        t.equal(sc.runAsNonRoot, true, `${at}: runAsNonRoot`)
        t.not(sc.runAsUser, 0, `${at}: not uid 0`)
        t.same(sc.capabilities?.drop, ['ALL'], `${at}: drops ALL capabilities`)
        t.same(sc.capabilities?.add ?? [], [], `${at}: adds none`)
        t.equal(sc.seccompProfile?.type ?? pod.securityContext.seccompProfile.type, 'RuntimeDefault', `${at}: seccomp`)
        t.ok((c.ports ?? []).every((p: { hostPort?: number }) => p.hostPort === undefined), `${at}: no hostPort`)
        t.ok(c.livenessProbe?.httpGet && c.readinessProbe?.httpGet, `${at}: liveness and readiness probes`)
        t.ok(c.resources !== undefined, `${at}: resources set`)
      }
    }
  }
})

t.test('agents: every node, no hostNetwork, downward API, no RBAC, both Services', tools, async t => {
  const manifests = parseManifests(template('default-values.yaml').stdout)
  const [ds] = byKind(manifests, 'DaemonSet')
  const pod = ds!.spec.template.spec
  t.same(pod.tolerations, [{ operator: 'Exists' }], 'tolerates every taint by default')
  t.equal(pod.priorityClassName, 'pingfleet-agent')
  t.same(byKind(manifests, 'PriorityClass').map(p => p.metadata.name), ['pingfleet-agent'])
  t.equal(pod.hostNetwork, false)
  t.equal(pod.automountServiceAccountToken, false)
  t.equal(pod.enableServiceLinks, false)
  const env = Object.fromEntries(pod.containers[0].env.map((e: { name: string }) => [e.name, e]))
  t.equal(env.PINGFLEET_NODE_NAME.valueFrom.fieldRef.fieldPath, 'spec.nodeName')
  t.equal(env.PINGFLEET_POD_NAME.valueFrom.fieldRef.fieldPath, 'metadata.name')
  t.equal(env.PINGFLEET_POD_IP.valueFrom.fieldRef.fieldPath, 'status.podIP')
  t.equal(env.UV_THREADPOOL_SIZE.value, '16')
  t.equal(env.PINGFLEET_AGGREGATOR_URL.value, 'http://pingfleet-aggregator.pingfleet.svc.cluster.local:8080')
  t.equal(env.PINGFLEET_SERVICE_TARGETS.value, 'pingfleet-agent.pingfleet.svc.cluster.local:8081')
  t.equal(env.PINGFLEET_CLUSTER_DOMAIN.value, 'cluster.local')
  t.notOk(env.PINGFLEET_LABELS, 'labels come from the Node objects in a cluster')

  const services = Object.fromEntries(byKind(manifests, 'Service').map(s => [s.metadata.name, s.spec]))
  t.equal(services['pingfleet-agent']?.type, 'ClusterIP')
  t.notOk(services['pingfleet-agent']?.clusterIP, 'the probed Service has a cluster IP')
  t.equal(services['pingfleet-agent-headless']?.clusterIP, 'None')
  t.equal(services['pingfleet-aggregator']?.ports[0].port, 8080)

  const subjects = manifests.filter(m => m.kind === 'RoleBinding' || m.kind === 'ClusterRoleBinding')
    .flatMap(b => b.subjects.map((s: { name: string }) => s.name))
  t.same([...new Set(subjects)], ['pingfleet-aggregator'], 'only the aggregator is bound to a role')
  const rules = [...byKind(manifests, 'ClusterRole'), ...byKind(manifests, 'Role')].flatMap(r => r.rules)
  t.same(rules, [
    { apiGroups: [''], resources: ['nodes'], verbs: ['list', 'watch'] },
    { apiGroups: ['authentication.k8s.io'], resources: ['tokenreviews'], verbs: ['create'] },
    { apiGroups: [''], resources: ['pods'], verbs: ['list', 'watch'] }
  ])
})

t.test('clusterDomain reaches every name the agents use, the DNS probe names included', tools, async t => {
  const manifests = parseManifests(template('default-values.yaml', ['--set', 'clusterDomain=corp.example']).stdout)
  const env = Object.fromEntries(byKind(manifests, 'DaemonSet')[0]!.spec.template.spec.containers[0].env.map((e: { name: string }) => [e.name, e]))
  t.equal(env.PINGFLEET_CLUSTER_DOMAIN.value, 'corp.example', 'the agent builds kubernetes.default.svc.corp.example from it')
  t.equal(env.PINGFLEET_AGGREGATOR_URL.value, 'http://pingfleet-aggregator.pingfleet.svc.corp.example:8080')
  t.equal(env.PINGFLEET_SERVICE_TARGETS.value, 'pingfleet-agent.pingfleet.svc.corp.example:8081')
  t.notOk(JSON.stringify(manifests).includes('cluster.local'), 'no name in the rendered chart is left on cluster.local')
  // And what the agent makes of that variable (agent/test/config.test.ts covers the resolv.conf path).
  const { loadConfig } = await import('../../agent/src/config.ts')
  const config = loadConfig({ PINGFLEET_AGGREGATOR_URL: env.PINGFLEET_AGGREGATOR_URL.value, PINGFLEET_TOKEN: 'x', PINGFLEET_NODE_NAME: 'n', PINGFLEET_POD_IP: '10.0.0.1', PINGFLEET_CLUSTER_DOMAIN: env.PINGFLEET_CLUSTER_DOMAIN.value })
  t.same([...config.dnsNames, ...config.dnsWireNames], ['kubernetes.default', 'kubernetes.default.svc.corp.example.', 'kubernetes.default.svc.corp.example'])
})

t.test('auth modes: projected ServiceAccount token, or a static token from a Secret', tools, async t => {
  const sa = parseManifests(template('default-values.yaml').stdout)
  const agent = byKind(sa, 'DaemonSet')[0]!.spec.template.spec
  const projected = agent.volumes.find((v: { name: string }) => v.name === 'token').projected.sources[0].serviceAccountToken
  t.equal(projected.audience, 'pingfleet')
  t.equal(byKind(sa, 'Secret').length, 0)

  const stat = parseManifests(template('minimal-values.yaml').stdout)
  const secret = byKind(stat, 'Secret')[0]!
  t.equal(Buffer.from(secret.data.token, 'base64').toString(), 'ci-only-not-a-secret')
  for (const workload of workloads(stat)) {
    const env = workload.spec.template.spec.containers[0].env.find((e: { name: string }) => e.name === 'PINGFLEET_TOKEN')
    t.same(env.valueFrom.secretKeyRef, { name: secret.metadata.name, key: 'token' }, `${workload.kind} reads the token`)
    t.match(workload.spec.template.metadata.annotations, { 'checksum/token': /^[0-9a-f]{64}$/ }, 'a new token restarts the pods')
  }
  t.notOk(byKind(stat, 'ClusterRole').length, 'rbac.create=false')

  const existing = parseManifests(template('large-cluster-values.yaml').stdout)
  t.equal(byKind(existing, 'Secret').length, 0, 'an existing Secret is not created again')
  const env = byKind(existing, 'Deployment')[0]!.spec.template.spec.containers[0].env
  t.same(env.find((e: { name: string }) => e.name === 'PINGFLEET_TOKEN').valueFrom.secretKeyRef, { name: 'pingfleet-token', key: 'bearer' })

  const missing = template('', ['--set', 'auth.mode=static'])
  t.not(missing.status, 0)
  t.match(missing.stderr, /auth.mode=static needs auth.static.existingSecret/)
})

t.test('values.schema.json rejects unknown keys and bad values', tools, async t => {
  for (const [set, complaint] of [
    ['agent.intervall=5s', /intervall/],
    ['auth.static.token=short', /token/],
    ['serviceMonitor.enabeld=true', /enabeld/],
    ['auth.mode=mtls', /mode/],
    ['interval=5 seconds', /interval/],
    ['bogus=1', /bogus/]
  ] as const) {
    const result = template('', ['--set', set])
    t.not(result.status, 0, `--set ${set} is refused`)
    t.match(result.stderr, complaint, `--set ${set}: ${result.stderr.trim()}`)
  }
})

t.test('the schema forbids additional properties on every object it defines', async t => {
  const schema = JSON.parse(readFileSync(join(CHART, 'values.schema.json'), 'utf8'))
  const loose: string[] = []
  const walk = (node: unknown, path: string): void => {
    if (node === null || typeof node !== 'object') return
    const record = node as Record<string, unknown>
    if (record.properties !== undefined && record.additionalProperties !== false) loose.push(path)
    for (const [key, value] of Object.entries(record)) walk(value, `${path}/${key}`)
  }
  walk(schema, '#')
  t.same(loose, [])
})

t.test('monitoring objects: behind enabled, additionalLabels, one rules file and one dashboard', tools, async t => {
  const off = parseManifests(template('default-values.yaml').stdout)
  for (const kind of ['ServiceMonitor', 'PrometheusRule', 'ConfigMap', 'NetworkPolicy', 'Ingress']) {
    t.equal(byKind(off, kind).length, 0, `no ${kind} by default`)
  }
  const on = parseManifests(template('monitoring-values.yaml').stdout)
  const [sm] = byKind(on, 'ServiceMonitor')
  const [rule] = byKind(on, 'PrometheusRule')
  // The dashboards' ConfigMaps; the aggregator's gates file is a ConfigMap too (the values set gates).
  const dashboardMaps = byKind(on, 'ConfigMap').filter(m => !m.metadata.name.endsWith('-aggregator-gates'))
  const [dashboard] = dashboardMaps
  for (const m of [sm, rule, dashboard]) t.equal(m?.metadata.labels?.release, 'kube-prometheus-stack', `${m?.kind} additionalLabels`)
  t.same(sm!.spec.endpoints[0].port, 'http')
  t.same(sm!.spec.endpoints[0].path, '/metrics')

  const rulesFile = parse(readFileSync(join(CHART, 'files/rules.yaml'), 'utf8'))
  t.ok(Array.isArray(rulesFile.groups) && rulesFile.groups.length > 0, 'files/rules.yaml has groups')
  t.same(rule!.spec.groups, rulesFile.groups, 'the PrometheusRule embeds files/rules.yaml as it is')

  const dashboardsDir = join(CHART, 'files/dashboards')
  const dashboards = readdirSync(dashboardsDir).filter(f => f.endsWith('.json')).sort()
  t.ok(dashboards.includes('migration-overview.json'))
  const configMaps = dashboardMaps
  t.equal(configMaps.length, dashboards.length, 'one ConfigMap per dashboard')
  for (const cm of configMaps) {
    const [name] = Object.keys(cm.data)
    t.equal(cm.data[name!], readFileSync(join(dashboardsDir, name!), 'utf8').replace(/\n$/, ''), `${name} embedded as it is`)
    t.equal(cm.metadata.labels?.grafana_dashboard, '1', 'the sidecar label')
    t.equal(cm.metadata.namespace, 'monitoring')
    const json = JSON.parse(cm.data[name!])
    t.type(json.title, 'string', `${name} is a dashboard`)
  }

  t.equal(byKind(on, 'NetworkPolicy').length, 2)
  t.equal(byKind(on, 'Ingress')[0]?.spec.rules[0].http.paths[0].backend.service.name, 'pingfleet-aggregator')
})

t.test('every resource carries the recommended labels', tools, async t => {
  for (const file of CI_VALUES) {
    for (const m of parseManifests(template(file).stdout)) {
      const labels = m.metadata.labels ?? {}
      for (const key of ['helm.sh/chart', 'app.kubernetes.io/name', 'app.kubernetes.io/instance',
        'app.kubernetes.io/version', 'app.kubernetes.io/managed-by', 'app.kubernetes.io/component']) {
        t.ok(labels[key], `${file} ${m.kind}/${m.metadata.name} has ${key}`)
      }
    }
  }
})

t.test('names stay within 63 characters with a long release name', tools, async t => {
  const rendered = helm(['template', 'a-very-long-release-name-for-a-migration-canary-2026', CHART, '--namespace', 'pingfleet'])
  t.equal(rendered.status, 0, rendered.stderr)
  for (const m of parseManifests(rendered.stdout)) {
    if (m.kind === 'ClusterRole' || m.kind === 'ClusterRoleBinding') continue
    t.ok(m.metadata.name.length <= 63, `${m.kind}/${m.metadata.name} (${m.metadata.name.length})`)
  }
})

/**
 * NOTES.txt as `helm install` would print it. `helm install --dry-run=client` still wants a cluster,
 * so a copy of the chart renders the notes inside a ConfigMap that `helm template` shows.
 */
function renderNotes (extra: readonly string[] = []): { status: number | null, notes: string, stderr: string } {
  const dir = mkdtempSync(join(tmpdir(), 'pingfleet-notes-'))
  try {
    const chart = join(dir, 'pingfleet')
    cpSync(CHART, chart, { recursive: true })
    const notes = readFileSync(join(chart, 'templates/NOTES.txt'), 'utf8')
    rmSync(join(chart, 'templates/NOTES.txt'))
    writeFileSync(join(chart, 'templates/zz-notes.yaml'), `{{- define "notes.under.test" }}${notes}{{ end -}}
apiVersion: v1
kind: ConfigMap
metadata:
  name: notes
data:
  notes: {{ include "notes.under.test" . | toJson }}
`)
    const result = helm(['template', 'pingfleet', chart, '--namespace', 'pingfleet', '--show-only', 'templates/zz-notes.yaml', ...extra])
    return { status: result.status, notes: result.status === 0 ? parse(result.stdout).data.notes : '', stderr: result.stderr }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

t.test('NOTES.txt tells how to reach the matrix and a gate', tools, async t => {
  const { status, notes, stderr } = renderNotes()
  t.equal(status, 0, stderr)
  t.match(notes, 'kubectl -n pingfleet port-forward svc/pingfleet-aggregator 8080:8080')
  t.match(notes, 'curl -s http://127.0.0.1:8080/api/v1/matrix')
  t.match(notes, 'curl -s http://127.0.0.1:8080/api/v1/gates/')
  t.match(notes, 'projected ServiceAccount tokens')
  const stat = renderNotes(['-f', join(CHART, 'ci/monitoring-values.yaml'), '--set', 'auth.mode=static', '--set', 'auth.static.token=ci-only-not-a-secret'])
  t.equal(stat.status, 0, stat.stderr)
  t.match(stat.notes, 'static token in Secret pingfleet-token')
  t.match(stat.notes, 'ServiceMonitor scrapes the aggregator')
  t.match(stat.notes, 'grafana_dashboard="1" in namespace monitoring')
})
