// The chart's aggregator settings load as they are rendered: serviceAccount mode starts without a
// PINGFLEET_TOKEN, and the service account and pod selector it checks match the agents the chart
// deploys. (The regression: both components once required PINGFLEET_TOKEN, so the default could not start.)

import t from 'tap'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadConfig } from '../src/config.ts'
import { loadGatesFile } from '../src/gates/spec.ts'
import { matchesSelector } from './kube-fake.ts'
import { missingTools, needs, parseManifests, template, type Manifest } from '../../test/deploy/tools.ts'

const tools = needs(missingTools())

type Env = Record<string, string>
/** Literal values only; downward-API values get what the kubelet would put there. */
function envOf (manifest: Manifest, fieldRefs: Env): Env {
  const out: Env = {}
  for (const e of manifest.spec.template.spec.containers[0].env as Array<{ name: string, value?: string, valueFrom?: { fieldRef?: { fieldPath: string } } }>) {
    if (e.value !== undefined) out[e.name] = e.value
    else if (e.valueFrom?.fieldRef !== undefined) out[e.name] = fieldRefs[e.valueFrom.fieldRef.fieldPath] ?? ''
  }
  return out
}

t.test('the default (serviceAccount) chart renders an aggregator config that loads', tools, async t => {
  const manifests = parseManifests(template('default-values.yaml').stdout)
  const deployment = manifests.find(m => m.kind === 'Deployment')!
  const daemonset = manifests.find(m => m.kind === 'DaemonSet')!
  const env = envOf(deployment, { 'metadata.namespace': 'pingfleet' })
  t.notOk('PINGFLEET_TOKEN' in env)
  // In the pod: the API server's Service variables; the CA file comes from the mounted service account.
  const config = loadConfig({ ...env, KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443', PINGFLEET_KUBE_CA_FILE: '' })
  t.equal(config.authMode, 'serviceAccount')
  t.equal(config.discovery, true)
  t.equal(config.namespace, 'pingfleet')
  t.equal(config.tokenAudience, daemonset.spec.template.spec.volumes.find((v: { name: string }) => v.name === 'token').projected.sources[0].serviceAccountToken.audience)
  t.equal(config.agentServiceAccount, `system:serviceaccount:pingfleet:${daemonset.spec.template.spec.serviceAccountName}`)
  t.ok(matchesSelector(config.agentSelector, daemonset.spec.template.metadata.labels), 'the default selector finds the chart\'s agent pods')
})

t.test('the static-token chart still loads in static mode', tools, async t => {
  const manifests = parseManifests(template('minimal-values.yaml').stdout)
  const env = envOf(manifests.find(m => m.kind === 'Deployment')!, { 'metadata.namespace': 'pingfleet' })
  const config = loadConfig({ ...env, PINGFLEET_TOKEN: 'from-the-secret-1', KUBERNETES_SERVICE_HOST: '10.96.0.1', PINGFLEET_KUBE_CA_FILE: '' })
  t.equal(config.authMode, 'static')
})

t.test('gates in the chart values reach the aggregator as a gates file it accepts', tools, async t => {
  const manifests = parseManifests(template('monitoring-values.yaml').stdout)
  const deployment = manifests.find(m => m.kind === 'Deployment')!
  const configMap = manifests.find(m => m.kind === 'ConfigMap' && m.metadata.name.endsWith('-aggregator-gates'))
  t.ok(configMap, 'a gates ConfigMap is rendered')
  const pod = deployment.spec.template.spec
  const env = envOf(deployment, { 'metadata.namespace': 'pingfleet' })
  const mount = pod.containers[0].volumeMounts.find((m: { name: string }) => m.name === 'gates')
  t.equal(env.PINGFLEET_GATES_FILE, `${mount.mountPath}/gates.yaml`, 'the file the aggregator reads is the one mounted')
  t.equal(pod.volumes.find((v: { name: string }) => v.name === 'gates').configMap.name, configMap!.metadata.name)
  t.ok(deployment.spec.template.metadata.annotations['checksum/gates'], 'a changed gate restarts the aggregator')
  const dir = mkdtempSync(join(tmpdir(), 'pingfleet-chart-gates-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'gates.yaml')
  writeFileSync(file, configMap!.data['gates.yaml'])
  const gates = loadGatesFile(file, { intervalMs: 5000, maxWindowMs: 15 * 60_000 })
  t.same(gates.map(g => g.name), ['into-cilium', 'cilium-batch'])
  t.equal(gates[1]!.scope?.selector?.text, 'pingfleet.io/migration-batch', 'a node-scoped gate keeps its selector')
})
