// Shared by the deploy suites: where the pinned Kubernetes tools and schemas are, how to run them,
// and the skip-or-fail rule for a missing tool (skip locally, fail under CI=true).

import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { join, resolve } from 'node:path'
import { parse, parseAllDocuments } from 'yaml'

export const ROOT = resolve(import.meta.dirname, '../..')
export const CHART = join(ROOT, 'charts/pingfleet')
export const INSTALL_SCRIPT = '.ci/install-k8s-tools.sh'
export const TOOLS_DIR = process.env.PINGFLEET_TOOLS_DIR ?? join(homedir(), '.cache/pingfleet-tools')
export const IN_CI = process.env.CI === 'true'

/** The start commands of the two components, as the image, the chart and compose must run them. */
export const START = {
  agent: ['node', 'agent/src/main.ts'],
  aggregator: ['node', 'aggregator/src/main.ts']
} as const

/** A value pinned in the install script, e.g. KUBERNETES_VERSIONS: one source of truth. */
export function pinned (name: string): string {
  const script = readFileSync(join(ROOT, INSTALL_SCRIPT), 'utf8')
  const match = new RegExp(`^${name}="?([^"\\n]*)"?$`, 'm').exec(script)
  if (match === null) throw new Error(`${name} is not pinned in ${INSTALL_SCRIPT}`)
  return match[1]!
}

export const KUBERNETES_VERSIONS = pinned('KUBERNETES_VERSIONS').split(/\s+/).filter(Boolean)

/** kubeconform's -schema-location templates for the generated Kubernetes and CRD schemas. */
export const SCHEMA_LOCATIONS = [
  join(TOOLS_DIR, 'schemas/kubernetes/{{.NormalizedKubernetesVersion}}-standalone{{.StrictSuffix}}/{{.ResourceKind}}{{.KindSuffix}}.json'),
  join(TOOLS_DIR, 'schemas/crds/{{.Group}}/{{.ResourceKind}}_{{.ResourceAPIVersion}}.json')
]

/** Why the deploy tools are unusable, or null when every one of them is in place. */
export function missingTools (): string | null {
  const wanted = [
    join(TOOLS_DIR, 'bin/helm'),
    join(TOOLS_DIR, 'bin/kubeconform'),
    ...KUBERNETES_VERSIONS.map(v => join(TOOLS_DIR, `schemas/kubernetes/v${v}-standalone-strict`)),
    join(TOOLS_DIR, 'schemas/crds/monitoring.coreos.com/servicemonitor_v1.json')
  ]
  const missing = wanted.filter(path => !existsSync(path))
  if (missing.length === 0) return null
  return `${missing.join(', ')} missing: run bash ${INSTALL_SCRIPT}`
}

/** Finds a command on PATH, or returns null. */
export function onPath (command: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    if (dir !== '' && existsSync(join(dir, command))) return join(dir, command)
  }
  return null
}

/**
 * The options for a t.test that needs a tool: skipped with the reason when it is missing, except
 * under CI=true, where a missing tool must fail the run (a green CI that validated nothing lies).
 */
export function needs (reason: string | null): { skip?: string } {
  return reason === null || IN_CI ? {} : { skip: reason }
}

export interface Run { status: number | null, stdout: string, stderr: string }

export function run (command: string, args: readonly string[], input?: string): Run {
  const result = spawnSync(command, args, { cwd: ROOT, input, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 })
  if (result.error !== undefined) return { status: null, stdout: '', stderr: String(result.error) }
  return { status: result.status, stdout: result.stdout, stderr: result.stderr }
}

export function helm (args: readonly string[]): Run {
  return run(join(TOOLS_DIR, 'bin/helm'), args)
}

export function kubeconform (args: readonly string[], input: string): Run {
  return run(join(TOOLS_DIR, 'bin/kubeconform'), args, input)
}

/** Renders the chart with a CI values file ('' for the defaults) and extra helm flags. */
export function template (valuesFile: string, extra: readonly string[] = []): Run {
  const values = valuesFile === '' ? [] : ['-f', join(CHART, 'ci', valuesFile)]
  return helm(['template', 'pingfleet', CHART, '--namespace', 'pingfleet', ...values, ...extra])
}

/**
 * Parsed YAML (manifests, compose, Prometheus config) is untyped data whose shape the tests check
 * themselves; they walk it through this deliberately loose type.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Loose = any

export type Manifest = { apiVersion: string, kind: string, metadata: { name: string, namespace?: string, labels?: Record<string, string> } } & Record<string, Loose>

/** docker-compose.yml as docker-compose reads it: YAML merge keys (<<: *anchor) resolved. */
export function readCompose (): { services: Record<string, Loose>, networks: Record<string, unknown> } {
  return parse(readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8'), { merge: true })
}

export function parseManifests (text: string): Manifest[] {
  return parseAllDocuments(text).map(doc => {
    const [error] = doc.errors
    if (error !== undefined) throw error
    return doc.toJS() as Manifest | null
  }).filter((m): m is Manifest => m !== null)
}
