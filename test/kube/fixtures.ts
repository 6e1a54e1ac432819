// Objects for suites on the real control plane: Nodes and agent Pods as a kubelet-less cluster has
// them (status set through the status subresource), and the chart's RBAC for the aggregator.

import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { CHART, helm, parseManifests } from '../deploy/tools.ts'
import type { ControlPlane } from './control-plane.ts'

export const RELEASE = 'pf'
/** Names the chart gives its service accounts for release `pf`. */
export const AGGREGATOR_SA = `${RELEASE}-pingfleet-aggregator`
export const AGENT_SA = `${RELEASE}-pingfleet-agent`
export const AGENT_LABELS = { 'app.kubernetes.io/name': 'pingfleet', 'app.kubernetes.io/component': 'agent' }

/** A namespace with its `default` ServiceAccount, which no controller-manager creates here. */
export function createNamespace (plane: ControlPlane, namespace: string): void {
  plane.kubectl(['create', 'namespace', namespace])
  plane.kubectl(['create', 'serviceaccount', 'default', '-n', namespace])
}

/**
 * Applies the chart's ServiceAccounts and RBAC (values as given) and writes a token for the
 * aggregator's ServiceAccount into `dir`, as the kubelet would mount it. Returns the token file.
 */
export function applyChartAccess (plane: ControlPlane, namespace: string, dir: string, values: string[] = []): string {
  const rendered = helm(['template', RELEASE, CHART, '--namespace', namespace, ...values.flatMap(v => ['--set', v])])
  if (rendered.status !== 0) throw new Error(`helm template failed: ${rendered.stderr}`)
  const access = parseManifests(rendered.stdout).filter(m => /^(ServiceAccount|ClusterRole|ClusterRoleBinding|Role|RoleBinding)$/.test(m.kind))
  plane.kubectl(['apply', '-f', '-'], { input: access.map(m => JSON.stringify(m)).join('\n') })
  const tokenFile = join(dir, 'aggregator-token')
  writeFileSync(tokenFile, plane.kubectl(['create', 'token', AGGREGATOR_SA, '-n', namespace, '--duration=1h']).stdout.trim())
  return tokenFile
}

export function applyNode (plane: ControlPlane, name: string, labels: Record<string, string>): void {
  plane.kubectl(['apply', '-f', '-'], { input: JSON.stringify({ apiVersion: 'v1', kind: 'Node', metadata: { name, labels } }) })
}

/** An agent Pod bound to a node, then Running and Ready (or not) with the given pod IP. */
export function applyAgentPod (plane: ControlPlane, namespace: string, name: string, node: string, podIp: string, ready = true): void {
  plane.kubectl(['apply', '-f', '-'], {
    input: JSON.stringify({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, namespace, labels: AGENT_LABELS },
      spec: { nodeName: node, serviceAccountName: AGENT_SA, automountServiceAccountToken: false, containers: [{ name: 'agent', image: 'pingfleet:test' }] }
    })
  })
  setPodStatus(plane, namespace, name, podIp, ready)
}

export function setPodStatus (plane: ControlPlane, namespace: string, name: string, podIp: string, ready: boolean): void {
  const status = {
    phase: 'Running',
    podIP: podIp,
    podIPs: [{ ip: podIp }],
    conditions: [{ type: 'Ready', status: ready ? 'True' : 'False', lastTransitionTime: new Date().toISOString().replace(/\.\d+Z$/, 'Z') }]
  }
  plane.kubectl(['patch', 'pod', name, '-n', namespace, '--subresource=status', '--type=merge', '-p', JSON.stringify({ status })])
}
