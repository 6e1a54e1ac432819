// The aggregator's configuration: read once from env and flags, checked against one schema, frozen.
// Every option is a PINGFLEET_* variable; the flag is its lower-case, dashed tail (--group-label).

import { parseArgs } from 'node:util'
import { Ajv } from 'ajv'
import { parseDuration } from '@pingfleet/protocol'
import { AggregatorError, ERR_CONFIG } from './errors.ts'
import { loadGatesFile, type GateSpec } from './gate-spec.ts'

export interface Config {
  listen: { host: string, port: number }
  token: string
  groupLabel: string
  intervalMs: number
  maxWindowMs: number
  peerTtlMs: number
  heartbeatMs: number
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
  token: { env: 'PINGFLEET_TOKEN', kind: 'string', description: 'bearer token agents must present (required)' },
  groupLabel: { env: 'PINGFLEET_GROUP_LABEL', default: 'cniplugin', kind: 'string', description: 'node label whose values form the groups of the group matrix and metrics' },
  interval: { env: 'PINGFLEET_INTERVAL', default: '5s', kind: 'duration', description: 'report interval the agents are told to use' },
  maxWindow: { env: 'PINGFLEET_MAX_WINDOW', default: '15m', kind: 'duration', description: 'longest window kept and queryable' },
  peerTtl: { env: 'PINGFLEET_PEER_TTL', default: '2m', kind: 'duration', description: 'how long a disconnected agent stays in the peer list' },
  heartbeat: { env: 'PINGFLEET_HEARTBEAT', default: '15s', kind: 'duration', description: 'websocket ping interval; a peer silent for two is dropped' },
  logLevel: { env: 'PINGFLEET_LOG_LEVEL', default: 'info', kind: 'level', description: 'pino log level' },
  gatesFile: { env: 'PINGFLEET_GATES_FILE', default: '', kind: 'string', description: 'JSON or YAML file of named migration gates (docs/gates.md); empty for none' }
} as const satisfies Record<string, Option>

const schema = {
  type: 'object',
  additionalProperties: false,
  required: Object.keys(OPTIONS),
  properties: {
    listen: { type: 'string', pattern: '^[^\\s]+:\\d{1,5}$' },
    token: { type: 'string', minLength: 8 },
    groupLabel: { type: 'string', minLength: 1, maxLength: 317, pattern: '^[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?$' },
    interval: { type: 'string' },
    maxWindow: { type: 'string' },
    peerTtl: { type: 'string' },
    heartbeat: { type: 'string' },
    logLevel: { enum: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] },
    gatesFile: { type: 'string' }
  }
} as const

const validate = new Ajv({ allErrors: false }).compile(schema)

function flagName (key: string): string {
  return OPTIONS[key as keyof typeof OPTIONS].env.slice('PINGFLEET_'.length).toLowerCase().replaceAll('_', '-')
}

function fail (key: string, value: string | undefined, expected: string): never {
  const option = OPTIONS[key as keyof typeof OPTIONS]
  throw new AggregatorError(ERR_CONFIG, `${option.env}=${JSON.stringify(value ?? '')} is invalid: expected ${expected}`)
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
    fail(key, raw[key], key === 'token' ? 'a token of at least 8 characters' : error.message ?? 'a valid value')
  }
  const durations: Record<string, number> = {}
  for (const key of ['interval', 'maxWindow', 'peerTtl', 'heartbeat']) {
    const ms = parseDuration(raw[key]!)
    if (ms === null) fail(key, raw[key], 'a duration such as 500ms, 5s, 15m or 1h')
    durations[key] = ms
  }
  if (durations.interval! < 100) fail('interval', raw.interval, 'at least 100ms')
  if (durations.maxWindow! < durations.interval! * 2) fail('maxWindow', raw.maxWindow, 'at least two intervals')
  const listen = raw.listen!
  const colon = listen.lastIndexOf(':')
  const port = Number(listen.slice(colon + 1))
  if (!(port >= 0 && port <= 65535)) fail('listen', listen, 'host:port with a port from 0 to 65535')
  const gatesFile = raw.gatesFile === '' ? null : raw.gatesFile!
  const gates = gatesFile === null ? [] : loadGatesFile(gatesFile, { intervalMs: durations.interval!, maxWindowMs: durations.maxWindow! })
  return Object.freeze({
    listen: Object.freeze({ host: listen.slice(0, colon).replace(/^\[(.*)\]$/, '$1'), port }),
    token: raw.token!,
    groupLabel: raw.groupLabel!,
    intervalMs: durations.interval!,
    maxWindowMs: durations.maxWindow!,
    peerTtlMs: durations.peerTtl!,
    heartbeatMs: durations.heartbeat!,
    logLevel: raw.logLevel!,
    gatesFile,
    gates
  })
}
