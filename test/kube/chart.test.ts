// The chart against a real kube-apiserver: every ci/*-values.yaml case is validated server-side
// (--dry-run=server), then applied for real into a namespace that enforces the restricted Pod
// Security Standard; then the service accounts are checked for least privilege with
// `kubectl auth can-i`.

import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { CHART, helm, parseManifests } from '../deploy/tools.ts'
import { needsControlPlane, startControlPlane, TOOLS_BIN, type ControlPlane } from './control-plane.ts'

const CRDS = ['servicemonitors', 'podmonitors', 'prometheusrules'].map(name => join(TOOLS_BIN, '../crds', `${name}.yaml`))
const VALUE_FILES = readdirSync(join(CHART, 'ci')).filter(f => f.endsWith('-values.yaml')).sort()

/** A service account no binding names: what every authenticated user may do (system:basic-user and the like). */
const NOBODY = (namespace: string): string => `system:serviceaccount:${namespace}:nobody-bound-to-nothing`

function releaseOf (file: string): string {
  return `pf-${file.replace(/-values\.yaml$/, '')}`
}

function render (file: string, namespace: string): string {
  const out = helm(['template', releaseOf(file), CHART, '--namespace', namespace, '-f', join(CHART, 'ci', file)])
  if (out.status !== 0) throw new Error(`helm template ${file} failed: ${out.stderr}`)
  return out.stdout
}

/** Resource rows of `kubectl auth can-i --list`, minus what any authenticated user has, as "resource verbs" lines. */
function permissions (plane: ControlPlane, user: string, namespace: string): string[] {
  const baseline = new Set(resourceRows(plane, NOBODY(namespace), namespace))
  return resourceRows(plane, user, namespace).filter(row => !baseline.has(row))
}

function resourceRows (plane: ControlPlane, user: string, namespace: string): string[] {
  const out = plane.kubectl(['auth', 'can-i', '--list', `--as=${user}`, '-n', namespace]).stdout
  const rows: string[] = []
  for (const line of out.split('\n').slice(1)) {
    // Columns: Resources, Non-Resource URLs, Resource Names, Verbs ("[]" when empty).
    // A non-resource row has no Resources column.
    const match = /^(?:(\S+)\s+)?\[(.*?)\]\s+\[(.*?)\]\s+\[(.*?)\]\s*$/.exec(line.trim())
    if (match === null) continue
    const [, resource = '', nonResource, names, verbs] = match as unknown as [string, string | undefined, string, string, string]
    // Non-resource URLs count too (a stray `/logs` grant is a privilege as well).
    const what = nonResource !== '' ? `url ${nonResource}` : `${resource}${names === '' ? '' : ` (${names})`}`
    rows.push(`${what} ${verbs.split(' ').sort().join(',')}`)
  }
  return rows.sort()
}

t.test('the chart on a real kube-apiserver', needsControlPlane(), async t => {
  const plane = await startControlPlane()
  t.teardown(plane.stop)
  t.comment(`control plane at ${plane.url}: ${plane.kubectl(['version', '-o', 'json']).stdout.match(/"gitVersion": "([^"]+)"/g)?.join(' ')}`)

  for (const crd of CRDS) plane.kubectl(['apply', '--server-side', '-f', crd])
  plane.kubectl(['wait', '--for=condition=Established', '--timeout=60s', 'crd/servicemonitors.monitoring.coreos.com', 'crd/prometheusrules.monitoring.coreos.com'])

  for (const file of VALUE_FILES) {
    await t.test(file, async t => {
      const namespace = releaseOf(file)
      plane.kubectl(['create', 'namespace', namespace])
      // Warn and enforce the restricted standard: workloads are only warned about, so the warning is the check.
      plane.kubectl(['label', 'namespace', namespace, 'pod-security.kubernetes.io/enforce=restricted', 'pod-security.kubernetes.io/warn=restricted'])
      const manifests = render(file, namespace)
      // Objects a values file places elsewhere (a dashboard ConfigMap in Grafana's namespace) need that namespace.
      for (const other of new Set(parseManifests(manifests).map(m => m.metadata.namespace).filter(n => n !== undefined && n !== namespace))) {
        if (plane.kubectl(['get', 'namespace', other!], { allowFail: true }).status !== 0) plane.kubectl(['create', 'namespace', other!])
      }
      const dry = plane.kubectl(['apply', '--dry-run=server', '-f', '-'], { input: manifests, allowFail: true })
      t.equal(dry.status, 0, `server-side dry run accepts every object: ${dry.stderr}`)
      const applied = plane.kubectl(['apply', '-f', '-'], { input: manifests, allowFail: true })
      t.equal(applied.status, 0, `applied for real: ${applied.stderr}`)
      t.notMatch(applied.stderr, /would violate PodSecurity/, 'no workload violates the restricted Pod Security Standard')
      const kinds = plane.kubectl(['get', 'daemonsets,deployments,services,serviceaccounts', '-n', namespace, '-o', 'name']).stdout
      t.match(kinds, /daemonset\.apps\/.*agent/, 'the agent DaemonSet exists')
      t.match(kinds, /deployment\.apps\/.*aggregator/, 'the aggregator Deployment exists')
    })
  }

  await t.test('least privilege (default values: serviceAccount auth, discovery)', async t => {
    const namespace = releaseOf('default-values.yaml')
    const sa = (component: string): string => `system:serviceaccount:${namespace}:${releaseOf('default-values.yaml')}-pingfleet-${component}`
    const names = plane.kubectl(['get', 'serviceaccounts', '-n', namespace, '-o', 'name']).stdout
    t.match(names, `serviceaccount/${releaseOf('default-values.yaml')}-pingfleet-aggregator`, 'service account names as assumed here')

    // Discovery lists and watches Nodes and its own agent Pods; TokenReview checks agent tokens.
    t.same(permissions(plane, sa('aggregator'), namespace), [
      'nodes list,watch',
      'pods list,watch',
      'tokenreviews.authentication.k8s.io create'
    ], 'the aggregator can do exactly what discovery and TokenReview need')
    const elsewhere = plane.kubectl(['auth', 'can-i', 'list', 'pods', `--as=${sa('aggregator')}`, '-n', 'kube-system'], { allowFail: true })
    t.equal(elsewhere.stdout.trim(), 'no', 'the aggregator cannot read pods outside its namespace')
    for (const [verb, resource] of [['get', 'secrets'], ['patch', 'nodes'], ['create', 'pods'], ['delete', 'pods'], ['list', 'configmaps']] as const) {
      const out = plane.kubectl(['auth', 'can-i', verb, resource, `--as=${sa('aggregator')}`, '-n', namespace], { allowFail: true })
      t.equal(out.stdout.trim(), 'no', `aggregator cannot ${verb} ${resource}`)
    }
    t.same(permissions(plane, sa('agent'), namespace), [], 'the agent can do nothing against the API')
  })
})
