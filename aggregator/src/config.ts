// The aggregator's configuration: read once from env and flags, checked against one schema, frozen.
// Every option is a PINGFLEET_* variable; the flag is its lower-case, dashed tail (--group-label).

import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { Ajv } from 'ajv'
import { parseDuration } from '@pingfleet/protocol'
import { AggregatorError, ERR_CONFIG } from './errors.ts'
import { loadGatesFile, type GateSpec } from './gates/spec.ts'
import { IN_CLUSTER_DIR } from './kube/client.ts'

/** How agents authenticate: one shared token, or their projected ServiceAccount token (TokenReview). */
export type AuthMode = 'static' | 'serviceAccount'

export interface Config {
  listen: { host: string, port: number }
  authMode: AuthMode
  /** The shared token (static mode); empty in serviceAccount mode. */
  token: string
  tokenAudience: string
  /** system:serviceaccount:<namespace>:<name> whose tokens are agents (serviceAccount mode). */
  agentServiceAccount: string
  /** Node and agent-pod watches from the Kubernetes API; off outside a cluster. */
  discovery: boolean
  namespace: string
  agentSelector: string
  /** Kubernetes API access; url is empty when there is no API to talk to. */
  kube: { url: string, tokenFile: string, caFile: string }
  groupLabel: string
  intervalMs: number
  maxWindowMs: number
  /** The window each findings evaluation reads (docs/findings.md). */
  findingsWindowMs: number
  maxMatrixCells: number
  peerTtlMs: number
  heartbeatMs: number
  /** How often open agent connections' tokens are reviewed again (serviceAccount mode). */
  tokenReviewPeriodMs: number
  logLevel: string
  /** Named gates from PINGFLEET_GATES_FILE, checked against their schema here; empty without a file. */
  gatesFile: string | null
  gates: readonly GateSpec[]
}

interface Option {
  env: string
  default?: string
  description: string
  kind: 'string' | 'duration' | 'address' | 'level'
}

export const OPTIONS = {
  listen: { env: 'PINGFLEET_LISTEN', default: '0.0.0.0:8080', kind: 'address', description: 'host:port for HTTP, /metrics and the agent websocket' },
  authMode: { env: 'PINGFLEET_AUTH_MODE', default: '', kind: 'string', description: 'static or serviceAccount (default: serviceAccount in a cluster without PINGFLEET_TOKEN, else static)' },
  token: { env: 'PINGFLEET_TOKEN', default: '', kind: 'string', description: 'bearer token agents must present (static mode, required there)' },
  tokenAudience: { env: 'PINGFLEET_TOKEN_AUDIENCE', default: 'pingfleet', kind: 'string', description: 'audience agent tokens must be issued for (serviceAccount mode)' },
  agentServiceAccount: { env: 'PINGFLEET_AGENT_SERVICE_ACCOUNT', default: '', kind: 'string', description: 'system:serviceaccount:<namespace>:<name> of the agents (serviceAccount mode, required there)' },
  discovery: { env: 'PINGFLEET_DISCOVERY', default: 'auto', kind: 'string', description: 'kubernetes, off, or auto (kubernetes when the Kubernetes API is configured)' },
  namespace: { env: 'PINGFLEET_NAMESPACE', default: '', kind: 'string', description: 'namespace of the agent pods (default: the service account\'s namespace, else default)' },
  agentSelector: { env: 'PINGFLEET_AGENT_SELECTOR', default: 'app.kubernetes.io/name=pingfleet,app.kubernetes.io/component=agent', kind: 'string', description: 'label selector of the agent pods' },
  kubeApiUrl: { env: 'PINGFLEET_KUBE_API_URL', default: '', kind: 'string', description: 'Kubernetes API base URL (default: https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT)' },
  kubeTokenFile: { env: 'PINGFLEET_KUBE_TOKEN_FILE', default: `${IN_CLUSTER_DIR}/token`, kind: 'string', description: 'bearer token file for the Kubernetes API, re-read every minute (empty for none)' },
  kubeCaFile: { env: 'PINGFLEET_KUBE_CA_FILE', default: `${IN_CLUSTER_DIR}/ca.crt`, kind: 'string', description: 'CA bundle of the Kubernetes API server, for https' },
  groupLabel: { env: 'PINGFLEET_GROUP_LABEL', default: 'cniplugin', kind: 'string', description: 'node label whose values form the groups of the group matrix and metrics' },
  interval: { env: 'PINGFLEET_INTERVAL', default: '5s', kind: 'duration', description: 'report interval the agents are told to use' },
  maxWindow: { env: 'PINGFLEET_MAX_WINDOW', default: '15m', kind: 'duration', description: 'longest window kept and queryable' },
  // 30s: findings/network-thresholds.ts NETWORK_WINDOW_MS, the window its thresholds were chosen for.
  findingsWindow: { env: 'PINGFLEET_FINDINGS_WINDOW', default: '30s', kind: 'duration', description: 'window each findings evaluation reads (every interval); from two intervals to PINGFLEET_MAX_WINDOW' },
  peerTtl: { env: 'PINGFLEET_PEER_TTL', default: '2m', kind: 'duration', description: 'how long a disconnected agent stays in the peer list' },
  heartbeat: { env: 'PINGFLEET_HEARTBEAT', default: '15s', kind: 'duration', description: 'websocket ping interval; a peer silent for two is dropped' },
  tokenReviewPeriod: { env: 'PINGFLEET_TOKEN_REVIEW_PERIOD', default: '1m', kind: 'duration', description: 'how often open agent connections\' tokens are reviewed again (serviceAccount mode)' },
  logLevel: { env: 'PINGFLEET_LOG_LEVEL', default: 'info', kind: 'level', description: 'pino log level' },
  gatesFile: { env: 'PINGFLEET_GATES_FILE', default: '', kind: 'string', description: 'JSON or YAML file of named migration gates (docs/gates.md); empty for none' },
  maxMatrixCells: { env: 'PINGFLEET_MAX_MATRIX_CELLS', default: '250000', kind: 'string', description: 'largest matrix one request may return; larger ones are refused with a hint to filter' }
} as const satisfies Record<string, Option>

const schema = {
  type: 'object',
  additionalProperties: false,
  required: Object.keys(OPTIONS),
  properties: {
    listen: { type: 'string', pattern: '^[^\\s]+:\\d{1,5}$' },
    authMode: { enum: ['', 'static', 'serviceAccount'] },
    token: { anyOf: [{ const: '' }, { type: 'string', minLength: 8 }] },
    tokenAudience: { type: 'string', minLength: 1, maxLength: 253 },
    agentServiceAccount: { anyOf: [{ const: '' }, { type: 'string', pattern: '^system:serviceaccount:[a-z0-9]([-a-z0-9]*[a-z0-9])?:[a-z0-9]([-.a-z0-9]*[a-z0-9])?$' }] },
    discovery: { enum: ['auto', 'kubernetes', 'off'] },
    namespace: { type: 'string', pattern: '^([a-z0-9]([-a-z0-9]*[a-z0-9])?)?$', maxLength: 63 },
    agentSelector: { type: 'string', minLength: 1, maxLength: 1024 },
    kubeApiUrl: { anyOf: [{ const: '' }, { type: 'string', pattern: '^https?://[^/\\s]+/?$' }] },
    kubeTokenFile: { type: 'string' },
    kubeCaFile: { type: 'string' },
    groupLabel: { type: 'string', minLength: 1, maxLength: 317, pattern: '^[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?$' },
    interval: { type: 'string' },
    maxWindow: { type: 'string' },
    findingsWindow: { type: 'string' },
    peerTtl: { type: 'string' },
    heartbeat: { type: 'string' },
    tokenReviewPeriod: { type: 'string' },
    logLevel: { enum: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] },
    gatesFile: { type: 'string' },
    maxMatrixCells: { type: 'string', pattern: '^[1-9][0-9]{0,8}$' }
  }
} as const

const validate = new Ajv({ allErrors: false }).compile(schema)

/** What a bad value should have been, where the schema's own message would not say. */
const EXPECTED: Record<string, string> = {
  token: 'a token of at least 8 characters',
  maxMatrixCells: 'a whole number of cells from 1 to 999999999',
  authMode: 'static or serviceAccount',
  agentServiceAccount: 'system:serviceaccount:<namespace>:<name>',
  discovery: 'kubernetes, off or auto',
  namespace: 'a namespace name',
  kubeApiUrl: 'an http(s) URL with no path, such as https://10.96.0.1:443'
}

/**
 * The Kubernetes API URL and namespace: explicit settings win; in a pod they come from the
 * KUBERNETES_SERVICE_* variables and the mounted service account. Empty URL: no API here.
 */
function kubeAccess (raw: Record<string, string | undefined>, env: NodeJS.ProcessEnv): { url: string, namespace: string } {
  let url = raw.kubeApiUrl!.replace(/\/+$/, '')
  const host = env.KUBERNETES_SERVICE_HOST ?? ''
  if (url === '' && host !== '') url = `https://${host.includes(':') ? `[${host}]` : host}:${env.KUBERNETES_SERVICE_PORT ?? '443'}`
  let namespace = raw.namespace!
  if (namespace === '') {
    try {
      namespace = readFileSync(`${IN_CLUSTER_DIR}/namespace`, 'utf8').trim()
    } catch {
      namespace = 'default'
    }
  }
  return { url, namespace }
}

function flagName (key: string): string {
  return OPTIONS[key as keyof typeof OPTIONS].env.slice('PINGFLEET_'.length).toLowerCase().replaceAll('_', '-')
}

function fail (key: string, value: string | undefined, expected: string): never {
  const option = OPTIONS[key as keyof typeof OPTIONS]
  // A token is never echoed, not even a wrong one.
  const shown = key === 'token' && value !== '' ? '<redacted>' : JSON.stringify(value ?? '')
  throw new AggregatorError(ERR_CONFIG, `${option.env}=${shown} is invalid: expected ${expected}`)
}

/** Reads and checks the configuration; throws an AggregatorError naming the first bad option. */
export function loadConfig (env: NodeJS.ProcessEnv, argv: string[] = []): Readonly<Config> {
  const flags = parseArgs({
    args: argv,
    options: Object.fromEntries(Object.keys(OPTIONS).map(k => [flagName(k), { type: 'string' as const }])),
    strict: true,
    allowPositionals: false
  }).values as Record<string, string | undefined>
  const raw: Record<string, string | undefined> = {}
  for (const [key, option] of Object.entries(OPTIONS) as Array<[string, Option]>) {
    raw[key] = flags[flagName(key)] ?? env[option.env] ?? option.default
  }
  if (!validate(raw)) {
    const error = validate.errors![0]!
    const key = error.instancePath.slice(1) || String(error.params.missingProperty ?? '')
    fail(key, raw[key], EXPECTED[key] ?? error.message ?? 'a valid value')
  }
  const durations: Record<string, number> = {}
  for (const key of ['interval', 'maxWindow', 'findingsWindow', 'peerTtl', 'heartbeat', 'tokenReviewPeriod']) {
    const ms = parseDuration(raw[key]!)
    if (ms === null) fail(key, raw[key], 'a duration such as 500ms, 5s, 15m or 1h')
    durations[key] = ms
  }
  if (durations.interval! < 100) fail('interval', raw.interval, 'at least 100ms')
  if (durations.tokenReviewPeriod! < 1000) fail('tokenReviewPeriod', raw.tokenReviewPeriod, 'at least 1s')
  if (durations.maxWindow! < durations.interval! * 2) fail('maxWindow', raw.maxWindow, 'at least two intervals')
  // Defaults first: a short PINGFLEET_MAX_WINDOW caps the default findings window instead of refusing it.
  if (flags[flagName('findingsWindow')] === undefined && env.PINGFLEET_FINDINGS_WINDOW === undefined) durations.findingsWindow = Math.min(durations.findingsWindow!, durations.maxWindow!)
  if (durations.findingsWindow! < durations.interval! * 2 || durations.findingsWindow! > durations.maxWindow!) {
    fail('findingsWindow', raw.findingsWindow, `a duration from two intervals (${raw.interval} each) to PINGFLEET_MAX_WINDOW (${raw.maxWindow})`)
  }
  const listen = raw.listen!
  const colon = listen.lastIndexOf(':')
  const port = Number(listen.slice(colon + 1))
  if (!(port >= 0 && port <= 65535)) fail('listen', listen, 'host:port with a port from 0 to 65535')
  const access = kubeAccess(raw, env)
  const authMode: AuthMode = raw.authMode === '' ? (access.url !== '' && raw.token === '' ? 'serviceAccount' : 'static') : raw.authMode as AuthMode
  if (authMode === 'static' && raw.token === '') fail('token', '', 'a token of at least 8 characters (PINGFLEET_AUTH_MODE=static)')
  if (authMode === 'serviceAccount') {
    if (raw.token !== '') fail('token', raw.token, 'no PINGFLEET_TOKEN with PINGFLEET_AUTH_MODE=serviceAccount (agents present ServiceAccount tokens)')
    if (raw.agentServiceAccount === '') fail('agentServiceAccount', '', EXPECTED.agentServiceAccount! + ' (PINGFLEET_AUTH_MODE=serviceAccount)')
    if (access.url === '') fail('kubeApiUrl', '', 'a Kubernetes API URL for TokenReview: run in a cluster or set PINGFLEET_KUBE_API_URL')
  }
  if (access.url.startsWith('https:') && raw.kubeCaFile !== '') {
    try {
      readFileSync(raw.kubeCaFile!)
    } catch {
      fail('kubeCaFile', raw.kubeCaFile, 'a readable PEM file with the API server\'s CA (empty: Node\'s own roots)')
    }
  }
  const discovery = raw.discovery === 'kubernetes' || (raw.discovery === 'auto' && access.url !== '')
  if (discovery && access.url === '') fail('kubeApiUrl', '', 'a Kubernetes API URL for PINGFLEET_DISCOVERY=kubernetes: run in a cluster or set PINGFLEET_KUBE_API_URL')
  const gatesFile = raw.gatesFile === '' ? null : raw.gatesFile!
  const gates = gatesFile === null ? [] : loadGatesFile(gatesFile, { intervalMs: durations.interval!, maxWindowMs: durations.maxWindow! })
  return Object.freeze({
    listen: Object.freeze({ host: listen.slice(0, colon).replace(/^\[(.*)\]$/, '$1'), port }),
    authMode,
    token: raw.token!,
    tokenAudience: raw.tokenAudience!,
    agentServiceAccount: raw.agentServiceAccount!,
    discovery,
    namespace: access.namespace,
    agentSelector: raw.agentSelector!,
    kube: Object.freeze({ url: access.url, tokenFile: raw.kubeTokenFile!, caFile: raw.kubeCaFile! }),
    groupLabel: raw.groupLabel!,
    intervalMs: durations.interval!,
    maxWindowMs: durations.maxWindow!,
    findingsWindowMs: durations.findingsWindow!,
    maxMatrixCells: Number(raw.maxMatrixCells),
    peerTtlMs: durations.peerTtl!,
    heartbeatMs: durations.heartbeat!,
    tokenReviewPeriodMs: durations.tokenReviewPeriod!,
    logLevel: raw.logLevel!,
    gatesFile,
    gates
  })
}
