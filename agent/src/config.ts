// The agent's configuration: read once from env and CLI flags, checked against one JSON Schema, frozen.
// OPTIONS is the single list of settings; the README's configuration table mirrors it.

import { accessSync, constants, readFileSync } from 'node:fs'
import { isIP } from 'node:net'
import { parseArgs } from 'node:util'
import { Ajv } from 'ajv'
import { helloSchema, parseDuration, type Labels } from '@pingfleet/protocol'
import { AgentError, AGENT_ERR_CONFIG } from './errors.ts'
import { parseDnsLookupTarget, type DnsLookupTarget } from './probes/dns-lookup.ts'
import { parseDnsServer, type DnsServer } from './probes/dns-wire.ts'
import { parseHttpTarget, type HttpTarget } from './probes/http.ts'
import { parseServiceTarget, type ServiceTarget } from './probes/service.ts'
import { parseTcpTarget, type TcpTarget } from './probes/tcp.ts'
import { redactText, redactUrl } from './redact.ts'
import { expectationKey, parseDnsExpectation, type DnsExpectation } from './dns-expect.ts'
import { DEFAULT_RESOLV_CONF_PATH, getaddrinfoWorstCaseSeconds, parseResolvConf, type ResolvConf } from './resolv-conf.ts'
import { MAX_PING_SIZE } from './server.ts'

/**
 * The static targets, parsed once while the config is read: probe-suite.ts builds the probes' targets
 * from these, never from the text. The string lists of AgentConfig keep the same entries as
 * normalised text (for logs and the README's table); `http` URLs carry their credentials, so this
 * never goes into printableConfig.
 */
export interface ConfiguredTargets {
  /** PINGFLEET_SERVICE_TARGETS. */
  service: readonly ServiceTarget[]
  /** PINGFLEET_DNS_NAMES, without their expectations (probe-suite.ts adds those). */
  dnsLookup: readonly DnsLookupTarget[]
  /** PINGFLEET_DNS_SERVERS; empty means the resolvers of resolv.conf (probe-suite.ts wireServers). */
  dnsServers: readonly DnsServer[]
  /** PINGFLEET_HTTP_TARGETS, credentials included. */
  http: readonly HttpTarget[]
  /** PINGFLEET_TCP_TARGETS. */
  tcp: readonly TcpTarget[]
}

export interface AgentConfig {
  /** Base http(s) URL of the aggregator, without a trailing slash. */
  aggregatorUrl: string
  /** The shared bearer token; empty when tokenFile is used. */
  token: string
  /** File holding the bearer token (a projected ServiceAccount token), re-read on every connect; empty when token is used. */
  tokenFile: string
  nodeName: string
  podName: string
  podIp: string
  labels: Labels
  listenHost: string
  listenPort: number
  intervalMs: number
  probeTimeoutMs: number
  concurrency: number
  reportBuffer: number
  lagThresholdMs: number
  heartbeatMs: number
  reconnectMinMs: number
  reconnectMaxMs: number
  shutdownTimeoutMs: number
  /** After announcing shutdown, how long /ping keeps answering so peers get the new list first. */
  shutdownDrainMs: number
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace'
  /** Response sizes each peer is asked for by mtu probes; empty disables them. */
  mtuSizes: number[]
  mtuTimeoutMs: number
  /** Cadence of mtu probes; never faster than intervalMs. */
  mtuIntervalMs: number
  /** Datagrams per udp train; 0 disables udp probes (the echo still answers). */
  udpCount: number
  /** Cadence of udp probes; never faster than intervalMs. */
  udpIntervalMs: number
  /** `host:port` of the agents' Service, by ClusterIP and/or by name. */
  serviceTargets: string[]
  serviceTimeoutMs: number
  resolvConfPath: string
  /**
   * The cluster's DNS domain, e.g. `cluster.local`: PINGFLEET_CLUSTER_DOMAIN, else `<d>` from a
   * `svc.<d>` entry of the resolv.conf search list (the kubelet writes one into every pod), else
   * `cluster.local`. The default DNS names are built from it.
   */
  clusterDomain: string
  /** getaddrinfo names as written, each optionally `/4` or `/6`. */
  dnsNames: string[]
  dnsLookupTimeoutMs: number
  /** Resolvers for dns-wire probes, `ip` or `ip:port`; empty means the first three of resolv.conf. */
  dnsServers: string[]
  dnsWireNames: string[]
  dnsWireTypes: Array<'A' | 'AAAA'>
  dnsWireTransport: 'udp' | 'tcp'
  dnsWireTimeoutMs: number
  /** Explicit DNS expectations per name and type; the rest follow dns-expect.ts defaultOutcome. */
  dnsExpect: DnsExpectation[]
  /** Normalised URLs, credentials included (sent as Basic auth); show them only through printableConfig. */
  httpTargets: string[]
  /** Extra PEM CA bundle for https targets; empty for none. */
  httpCaFile: string
  httpTimeoutMs: number
  tcpTargets: string[]
  tcpTimeoutMs: number
  /** getaddrinfo calls in flight at once; 0 means half the libuv threadpool. */
  lookupMaxInFlight: number
  lookupLagThresholdMs: number
  /** The target lists above, parsed. */
  targets: ConfiguredTargets
}

type Kind = 'string' | 'secret' | 'url' | 'ip' | 'labels' | 'listen' | 'duration' | 'integer' | 'level' | 'list' | 'file'

/** A list item kept twice: its normalised text in the list, the parsed value in config.targets. */
interface Kept {
  text: string
  parsed: ConfiguredTargets[keyof ConfiguredTargets][number]
}

interface Option {
  key: Exclude<keyof AgentConfig, 'targets'> | 'listen'
  env: string
  flag: string
  kind: Kind
  /** Default as a user would write it; undefined means required. */
  default?: string
  expected: string
  /** For `list`: checks and normalises one comma-separated item; null rejects it. */
  item?: (text: string) => string | number | DnsExpectation | Kept | null
  /** For a list of targets: where its parsed items go in config.targets (`item` returns Kept). */
  targets?: keyof ConfiguredTargets
}

/** An item parser that keeps the parsed value beside its text (`text` picks the text from the value and the input). */
function keep<T extends Kept['parsed']> (parse: (text: string) => T | null, text: (parsed: T, input: string) => string): (input: string) => Kept | null {
  return input => {
    const parsed = parse(input)
    return parsed === null ? null : { text: text(parsed, input), parsed }
  }
}

const dnsName = (text: string): string | null => {
  const target = parseDnsLookupTarget(text)
  return target === null || target.family !== 0 ? null : target.name
}
/** Most datagrams per udp train, and the pause between two of them. */
export const MAX_UDP_COUNT = 50
export const UDP_SPACING_MS = 10

const size = (text: string): number | null => /^\d{1,5}$/.test(text) && Number(text) >= 64 && Number(text) <= MAX_PING_SIZE ? Number(text) : null

/** Stands for the cluster domain in defaults; replaced once the domain is known. */
const CLUSTER_DOMAIN = '<cluster-domain>'
/** Kubernetes' default cluster domain, when nothing says otherwise. */
export const DEFAULT_CLUSTER_DOMAIN = 'cluster.local'

/**
 * The cluster domain a pod's resolv.conf implies: the kubelet writes `search <ns>.svc.<domain>
 * svc.<domain> <domain>`, so `<domain>` follows the first `svc.` entry. Null when there is none
 * (not in a pod, or `dnsPolicy: Default`) or the file cannot be read.
 */
export function clusterDomainFromResolvConf (path: string, env: Record<string, string | undefined> = {}): string | null {
  const conf = readConf(path, env)
  const entry = conf?.search.find(domain => /^svc\.[^.]/.test(domain))
  return entry === undefined ? null : entry.slice(4).toLowerCase()
}

function readConf (path: string, env: Record<string, string | undefined>): ResolvConf | null {
  try {
    return parseResolvConf(readFileSync(path, 'utf8'), env)
  } catch {
    return null
  }
}

/** Slack over glibc's worst case: the threadpool hand-off and the event loop's own lateness. */
export const LOOKUP_TIMEOUT_MARGIN_MS = 1000
/** The longest getaddrinfo probe timeout the schema allows. */
const MAX_LOOKUP_TIMEOUT_MS = 60_000

/**
 * The default getaddrinfo probe timeout: glibc's worst case for the configured names under this
 * resolv.conf (resolv-conf.ts getaddrinfoWorstCaseSeconds) plus LOOKUP_TIMEOUT_MARGIN_MS, at most
 * 60 s. An unreadable file means glibc's defaults (timeout:5 attempts:2, one server). A lookup that
 * an application would still see succeed must never be cut off as LOOKUP_TIMEOUT.
 */
export function defaultLookupTimeoutMs (path: string, env: Record<string, string | undefined>, targets: readonly DnsLookupTarget[]): number {
  const conf = readConf(path, env) ?? parseResolvConf('', env)
  const lookup = {
    relative: targets.length === 0 || targets.some(target => !target.name.endsWith('.')),
    bothFamilies: targets.length === 0 || targets.some(target => target.family === 0)
  }
  return Math.min(MAX_LOOKUP_TIMEOUT_MS, getaddrinfoWorstCaseSeconds(conf, lookup) * 1000 + LOOKUP_TIMEOUT_MARGIN_MS)
}

export const OPTIONS: readonly Option[] = [
  { key: 'aggregatorUrl', env: 'PINGFLEET_AGGREGATOR_URL', flag: 'aggregator-url', kind: 'url', expected: 'an http:// or https:// URL such as http://127.0.0.1:8080' },
  { key: 'token', env: 'PINGFLEET_TOKEN', flag: 'token', kind: 'secret', default: '', expected: 'the bearer token the aggregator accepts (non-empty)' },
  { key: 'tokenFile', env: 'PINGFLEET_TOKEN_FILE', flag: 'token-file', kind: 'file', default: '', expected: 'a readable file holding the bearer token, such as a projected ServiceAccount token' },
  { key: 'nodeName', env: 'PINGFLEET_NODE_NAME', flag: 'node-name', kind: 'string', expected: 'the Kubernetes node name, 1 to 253 characters' },
  { key: 'podName', env: 'PINGFLEET_POD_NAME', flag: 'pod-name', kind: 'string', default: '', expected: 'the pod name, 1 to 253 characters (default: the node name)' },
  { key: 'podIp', env: 'PINGFLEET_POD_IP', flag: 'pod-ip', kind: 'ip', expected: 'the IPv4 or IPv6 address peers reach this agent on' },
  { key: 'labels', env: 'PINGFLEET_LABELS', flag: 'labels', kind: 'labels', default: '', expected: 'comma-separated key=value pairs such as cniplugin=aws,topology.kubernetes.io/zone=a (at most 64, values up to 63 characters)' },
  { key: 'listen', env: 'PINGFLEET_LISTEN', flag: 'listen', kind: 'listen', default: '0.0.0.0:8081', expected: 'host:port such as 0.0.0.0:8081 or [::]:8081 (port 0 to 65535)' },
  { key: 'intervalMs', env: 'PINGFLEET_INTERVAL', flag: 'interval', kind: 'duration', default: '5s', expected: 'a duration from 100ms to 1h such as 5s' },
  { key: 'probeTimeoutMs', env: 'PINGFLEET_PROBE_TIMEOUT', flag: 'probe-timeout', kind: 'duration', default: '2s', expected: 'a duration from 10ms to 1m such as 2s' },
  { key: 'concurrency', env: 'PINGFLEET_CONCURRENCY', flag: 'concurrency', kind: 'integer', default: '64', expected: 'an integer from 1 to 10000' },
  { key: 'reportBuffer', env: 'PINGFLEET_REPORT_BUFFER', flag: 'report-buffer', kind: 'integer', default: '720', expected: 'an integer from 1 to 100000 (reports kept while the aggregator is unreachable)' },
  { key: 'lagThresholdMs', env: 'PINGFLEET_LAG_THRESHOLD', flag: 'lag-threshold', kind: 'duration', default: '50ms', expected: 'a duration from 5ms to 10s such as 50ms' },
  { key: 'heartbeatMs', env: 'PINGFLEET_HEARTBEAT', flag: 'heartbeat', kind: 'duration', default: '10s', expected: 'a duration from 50ms to 5m such as 10s' },
  { key: 'reconnectMinMs', env: 'PINGFLEET_RECONNECT_MIN', flag: 'reconnect-min', kind: 'duration', default: '500ms', expected: 'a duration from 1ms to 1m such as 500ms, not above PINGFLEET_RECONNECT_MAX' },
  { key: 'reconnectMaxMs', env: 'PINGFLEET_RECONNECT_MAX', flag: 'reconnect-max', kind: 'duration', default: '30s', expected: 'a duration from 1ms to 1h such as 30s' },
  { key: 'shutdownTimeoutMs', env: 'PINGFLEET_SHUTDOWN_TIMEOUT', flag: 'shutdown-timeout', kind: 'duration', default: '3s', expected: 'a duration from 10ms to 1m such as 3s' },
  { key: 'shutdownDrainMs', env: 'PINGFLEET_SHUTDOWN_DRAIN', flag: 'shutdown-drain', kind: 'duration', default: '2s', expected: 'a duration from 1ms to 1m such as 2s' },
  { key: 'logLevel', env: 'PINGFLEET_LOG_LEVEL', flag: 'log-level', kind: 'level', default: 'info', expected: 'one of fatal, error, warn, info, debug, trace' },
  { key: 'mtuSizes', env: 'PINGFLEET_MTU_SIZES', flag: 'mtu-sizes', kind: 'list', item: size, default: '8500', expected: `comma-separated response sizes in bytes from 64 to ${MAX_PING_SIZE} such as 1400,8500 (empty disables mtu probes)` },
  { key: 'mtuTimeoutMs', env: 'PINGFLEET_MTU_TIMEOUT', flag: 'mtu-timeout', kind: 'duration', default: '2s', expected: 'a duration from 10ms to 1m such as 2s' },
  { key: 'mtuIntervalMs', env: 'PINGFLEET_MTU_INTERVAL', flag: 'mtu-interval', kind: 'duration', default: '30s', expected: 'a duration from 100ms to 1h such as 30s (mtu probes never run more often than PINGFLEET_INTERVAL)' },
  { key: 'udpCount', env: 'PINGFLEET_UDP_COUNT', flag: 'udp-count', kind: 'integer', default: '5', expected: `an integer from 0 to ${MAX_UDP_COUNT}: datagrams per udp train, ${UDP_SPACING_MS} ms apart, the train shorter than half of PINGFLEET_PROBE_TIMEOUT (0 disables udp probes)` },
  { key: 'udpIntervalMs', env: 'PINGFLEET_UDP_INTERVAL', flag: 'udp-interval', kind: 'duration', default: '30s', expected: 'a duration from 100ms to 1h such as 30s (udp probes never run more often than PINGFLEET_INTERVAL)' },
  { key: 'serviceTargets', env: 'PINGFLEET_SERVICE_TARGETS', flag: 'service-targets', kind: 'list', item: keep(parseServiceTarget, target => target.id), targets: 'service', default: '', expected: 'comma-separated host:port of the agents\' Service, host a ClusterIP or a name, such as 10.96.0.20:8081,pingfleet-agent.pingfleet:8081' },
  { key: 'serviceTimeoutMs', env: 'PINGFLEET_SERVICE_TIMEOUT', flag: 'service-timeout', kind: 'duration', default: '5s', expected: 'a duration from 10ms to 1m such as 5s' },
  { key: 'resolvConfPath', env: 'PINGFLEET_RESOLV_CONF', flag: 'resolv-conf', kind: 'string', default: '/etc/resolv.conf', expected: 'the path of the resolv.conf whose nameservers the dns-wire probes use by default' },
  { key: 'clusterDomain', env: 'PINGFLEET_CLUSTER_DOMAIN', flag: 'cluster-domain', kind: 'string', default: '', expected: 'a DNS domain such as cluster.local (empty: from the resolv.conf search list, else cluster.local)' },
  { key: 'dnsNames', env: 'PINGFLEET_DNS_NAMES', flag: 'dns-names', kind: 'list', item: keep(parseDnsLookupTarget, (_, input) => input.trim()), targets: 'dnsLookup', default: `kubernetes.default,kubernetes.default.svc.${CLUSTER_DOMAIN}.`, expected: 'comma-separated host names for getaddrinfo, each optionally ending in /4 or /6, such as kubernetes.default,example.com./4 (empty disables)' },
  { key: 'dnsLookupTimeoutMs', env: 'PINGFLEET_DNS_LOOKUP_TIMEOUT', flag: 'dns-lookup-timeout', kind: 'duration', default: '', expected: 'a duration from 10ms to 1m such as 30s (empty: glibc\'s worst case under PINGFLEET_RESOLV_CONF plus 1s)' },
  { key: 'dnsServers', env: 'PINGFLEET_DNS_SERVERS', flag: 'dns-servers', kind: 'list', item: keep(parseDnsServer, (_, input) => input.trim()), targets: 'dnsServers', default: '', expected: 'comma-separated resolver addresses ip, ip:port or [v6]:port (empty: the first three nameservers of PINGFLEET_RESOLV_CONF)' },
  { key: 'dnsWireNames', env: 'PINGFLEET_DNS_WIRE_NAMES', flag: 'dns-wire-names', kind: 'list', item: dnsName, default: `kubernetes.default.svc.${CLUSTER_DOMAIN}`, expected: 'comma-separated fully qualified names such as kubernetes.default.svc.cluster.local (empty disables dns-wire probes)' },
  { key: 'dnsWireTypes', env: 'PINGFLEET_DNS_WIRE_TYPES', flag: 'dns-wire-types', kind: 'list', item: t => t === 'A' || t === 'AAAA' ? t : null, default: 'A', expected: 'A, AAAA or A,AAAA' },
  { key: 'dnsWireTransport', env: 'PINGFLEET_DNS_WIRE_TRANSPORT', flag: 'dns-wire-transport', kind: 'string', default: 'udp', expected: 'udp (with a TCP retry when truncated) or tcp' },
  { key: 'dnsWireTimeoutMs', env: 'PINGFLEET_DNS_WIRE_TIMEOUT', flag: 'dns-wire-timeout', kind: 'duration', default: '3s', expected: 'a duration from 10ms to 1m such as 3s' },
  { key: 'dnsExpect', env: 'PINGFLEET_DNS_EXPECT', flag: 'dns-expect', kind: 'list', item: parseDnsExpectation, default: '', expected: 'comma-separated name/TYPE=outcome, TYPE A or AAAA, outcome answer, nodata or nxdomain, each naming a configured DNS name, such as absent.example/A=nxdomain,kubernetes.default.svc.cluster.local/AAAA=answer' },
  { key: 'httpTargets', env: 'PINGFLEET_HTTP_TARGETS', flag: 'http-targets', kind: 'list', item: keep(parseHttpTarget, target => target.url), targets: 'http', default: '', expected: 'comma-separated http:// or https:// URLs such as https://example.com/healthz (user:password@ is sent as Basic auth and shown as user:***@)' },
  { key: 'httpCaFile', env: 'PINGFLEET_HTTP_CA_FILE', flag: 'http-ca-file', kind: 'file', default: '', expected: 'a readable PEM file of extra CA certificates for https targets (empty for none)' },
  { key: 'httpTimeoutMs', env: 'PINGFLEET_HTTP_TIMEOUT', flag: 'http-timeout', kind: 'duration', default: '10s', expected: 'a duration from 10ms to 1m such as 10s' },
  { key: 'tcpTargets', env: 'PINGFLEET_TCP_TARGETS', flag: 'tcp-targets', kind: 'list', item: keep(parseTcpTarget, target => target.id), targets: 'tcp', default: '', expected: 'comma-separated host:port such as example.com:443,[2001:db8::1]:443' },
  { key: 'tcpTimeoutMs', env: 'PINGFLEET_TCP_TIMEOUT', flag: 'tcp-timeout', kind: 'duration', default: '5s', expected: 'a duration from 10ms to 1m such as 5s' },
  { key: 'lookupMaxInFlight', env: 'PINGFLEET_LOOKUP_MAX_IN_FLIGHT', flag: 'lookup-max-in-flight', kind: 'integer', default: '0', expected: 'an integer from 0 to 1023: getaddrinfo calls at once, kept below the threadpool size (0: half the threadpool)' },
  { key: 'lookupLagThresholdMs', env: 'PINGFLEET_LOOKUP_LAG_THRESHOLD', flag: 'lookup-lag-threshold', kind: 'duration', default: '25ms', expected: 'a duration from 1ms to 10s such as 25ms' }
]

const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const
const duration = (min: number, max: number) => ({ type: 'integer', minimum: min, maximum: max }) as const
const text = { type: 'string', minLength: 1, maxLength: 253 } as const
const list = (items: object) => ({ type: 'array', maxItems: 64, uniqueItems: true, items }) as const

export const configSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['aggregatorUrl', 'token', 'tokenFile', 'nodeName', 'podName', 'podIp', 'labels', 'listenHost', 'listenPort', 'intervalMs',
    'probeTimeoutMs', 'concurrency', 'reportBuffer', 'lagThresholdMs', 'heartbeatMs', 'reconnectMinMs', 'reconnectMaxMs',
    'shutdownTimeoutMs', 'shutdownDrainMs', 'logLevel', 'mtuSizes', 'mtuTimeoutMs', 'mtuIntervalMs', 'udpCount', 'udpIntervalMs', 'serviceTargets', 'serviceTimeoutMs', 'resolvConfPath', 'clusterDomain', 'dnsNames',
    'dnsLookupTimeoutMs', 'dnsServers', 'dnsWireNames', 'dnsWireTypes', 'dnsWireTransport', 'dnsWireTimeoutMs', 'dnsExpect', 'httpTargets',
    'httpCaFile', 'httpTimeoutMs', 'tcpTargets', 'tcpTimeoutMs', 'lookupMaxInFlight', 'lookupLagThresholdMs'],
  properties: {
    aggregatorUrl: { type: 'string', pattern: '^https?://[^/]', maxLength: 2048 },
    token: { type: 'string', maxLength: 4096 },
    tokenFile: { type: 'string', maxLength: 4096 },
    nodeName: text,
    podName: text,
    podIp: { type: 'string', minLength: 2, maxLength: 45 },
    labels: helloSchema.properties.labels,
    listenHost: { type: 'string', minLength: 1, maxLength: 253 },
    listenPort: { type: 'integer', minimum: 0, maximum: 65535 },
    intervalMs: duration(100, 3_600_000),
    probeTimeoutMs: duration(10, 60_000),
    concurrency: { type: 'integer', minimum: 1, maximum: 10_000 },
    reportBuffer: { type: 'integer', minimum: 1, maximum: 100_000 },
    lagThresholdMs: duration(5, 10_000),
    heartbeatMs: duration(50, 300_000),
    reconnectMinMs: duration(1, 60_000),
    reconnectMaxMs: duration(1, 3_600_000),
    shutdownTimeoutMs: duration(10, 60_000),
    shutdownDrainMs: duration(1, 60_000),
    logLevel: { enum: LEVELS },
    mtuSizes: list({ type: 'integer', minimum: 64, maximum: MAX_PING_SIZE }),
    mtuTimeoutMs: duration(10, 60_000),
    mtuIntervalMs: duration(100, 3_600_000),
    udpCount: { type: 'integer', minimum: 0, maximum: MAX_UDP_COUNT },
    udpIntervalMs: duration(100, 3_600_000),
    serviceTargets: list(text),
    serviceTimeoutMs: duration(10, 60_000),
    resolvConfPath: { type: 'string', minLength: 1, maxLength: 4096 },
    clusterDomain: { type: 'string', minLength: 1, maxLength: 253, pattern: '^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$' },
    dnsNames: list(text),
    dnsLookupTimeoutMs: duration(10, 60_000),
    dnsServers: list({ type: 'string', minLength: 2, maxLength: 53 }),
    dnsWireNames: list(text),
    dnsWireTypes: list({ enum: ['A', 'AAAA'] }),
    dnsWireTransport: { enum: ['udp', 'tcp'] },
    dnsWireTimeoutMs: duration(10, 60_000),
    dnsExpect: {
      type: 'array',
      maxItems: 128,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'type', 'outcome'],
        properties: { name: text, type: { enum: ['A', 'AAAA'] }, outcome: { enum: ['answer', 'nodata', 'nxdomain'] } }
      }
    },
    httpTargets: list({ type: 'string', minLength: 1, maxLength: 2048 }),
    httpCaFile: { type: 'string', maxLength: 4096 },
    httpTimeoutMs: duration(10, 60_000),
    tcpTargets: list(text),
    tcpTimeoutMs: duration(10, 60_000),
    lookupMaxInFlight: { type: 'integer', minimum: 0, maximum: 1023 },
    lookupLagThresholdMs: duration(1, 10_000)
  }
} as const

const validate = new Ajv({ allErrors: false, strict: true }).compile(configSchema)

/** Turns one raw string into its typed value, or undefined when it has the wrong shape. */
function convert (kind: Kind, raw: string, item?: Option['item']): unknown {
  switch (kind) {
    case 'list': {
      const out: Array<string | number | DnsExpectation | Kept> = []
      for (const part of raw.split(',')) {
        if (part.trim() === '') continue
        const value = item!(part.trim())
        if (value === null) return undefined
        out.push(value)
      }
      return out
    }
    case 'file':
      if (raw === '') return raw
      try {
        accessSync(raw, constants.R_OK)
        return raw
      } catch {
        return undefined
      }
    case 'string':
    case 'secret':
    case 'level':
      return raw
    case 'url': {
      if (!URL.canParse(raw)) return undefined
      const url = new URL(raw)
      if (url.search !== '' || url.hash !== '') return undefined
      return url.href.replace(/\/+$/, '')
    }
    case 'ip':
      return isIP(raw) === 0 ? undefined : raw
    case 'labels':
      return parseLabels(raw)
    case 'listen':
      return parseListen(raw)
    case 'duration':
      return parseDuration(raw) ?? undefined
    case 'integer':
      return /^\d{1,9}$/.test(raw) ? Number(raw) : undefined
  }
}

/** `a=b,c=d` to `{ a: 'b', c: 'd' }`; undefined when a pair has no `=` or an empty key. */
export function parseLabels (raw: string): Labels | undefined {
  const labels: Labels = {}
  for (const pair of raw.split(',')) {
    if (pair.trim() === '') continue
    const at = pair.indexOf('=')
    if (at <= 0) return undefined
    const key = pair.slice(0, at).trim()
    if (key === '' || Object.hasOwn(labels, key)) return undefined
    labels[key] = pair.slice(at + 1).trim()
  }
  return labels
}

function parseListen (raw: string): { host: string, port: number } | undefined {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(raw)
  if (match === null) return undefined
  return { host: match[1] ?? match[2]!, port: Number(match[3]) }
}

function fail (source: string, shown: string, option: Option): never {
  throw new AgentError(AGENT_ERR_CONFIG, `${source}=${shown} is invalid: expected ${option.expected}`)
}

/**
 * Builds the frozen config from an env object and argv (flags win over env).
 * Throws an AgentError with code PINGFLEET_ERR_AGENT_CONFIG and a one-line message.
 */
export function loadConfig (env: Record<string, string | undefined>, argv: readonly string[] = []): Readonly<AgentConfig> {
  let flags: Record<string, string | boolean | undefined>
  try {
    flags = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: Object.fromEntries(OPTIONS.map(o => [o.flag, { type: 'string' as const }]))
    }).values
  } catch (err) {
    throw new AgentError(AGENT_ERR_CONFIG, `invalid command line: ${(err as Error).message}`)
  }

  const values: Record<string, unknown> = {}
  const targets: Record<string, unknown> = {}
  const sources = new Map<string, { source: string, shown: string, option: Option }>()
  // The cluster domain fills the DNS names' defaults, so it is settled before the loop reaches them.
  const rawOf = (key: string): string | undefined => {
    const option = OPTIONS.find(o => o.key === key)!
    const fromFlag = flags[option.flag]
    return typeof fromFlag === 'string' ? fromFlag : env[option.env]
  }
  const clusterDomain = rawOf('clusterDomain')?.trim() ||
    clusterDomainFromResolvConf(rawOf('resolvConfPath')?.trim() || DEFAULT_RESOLV_CONF_PATH, env) || DEFAULT_CLUSTER_DOMAIN
  if (!new RegExp(configSchema.properties.clusterDomain.pattern).test(clusterDomain) || clusterDomain.length > 253) {
    const option = OPTIONS.find(o => o.key === 'clusterDomain')!
    fail(typeof flags[option.flag] === 'string' ? `--${option.flag}` : option.env, JSON.stringify(clusterDomain), option)
  }
  for (const option of OPTIONS) {
    const fromFlag = flags[option.flag]
    const source = typeof fromFlag === 'string' ? `--${option.flag}` : option.env
    const raw = typeof fromFlag === 'string' ? fromFlag : env[option.env] ?? option.default?.replaceAll(CLUSTER_DOMAIN, clusterDomain)
    if (raw === undefined || (raw.trim() === '' && option.default === undefined)) {
      throw new AgentError(AGENT_ERR_CONFIG, `${option.env} is not set (nor --${option.flag}): expected ${option.expected}`)
    }
    // No credential reaches the error line: a URL's password and credential-like query values are masked.
    // Derived once the names and the resolv.conf path are known (below).
    if (option.key === 'dnsLookupTimeoutMs' && raw.trim() === '') continue
    const shown = option.kind === 'secret' ? '<redacted>' : redactText(JSON.stringify(raw))
    const value = convert(option.kind, raw.trim(), option.item)
    if (value === undefined) fail(source, shown, option)
    if (option.key === 'listen') {
      const listen = value as { host: string, port: number }
      values.listenHost = listen.host
      values.listenPort = listen.port
      sources.set('listenHost', { source, shown, option })
      sources.set('listenPort', { source, shown, option })
    } else if (option.targets !== undefined) {
      const items = value as Kept[]
      values[option.key] = items.map(item => item.text)
      targets[option.targets] = Object.freeze(items.map(item => item.parsed))
      sources.set(option.key, { source, shown, option })
    } else {
      values[option.key] = value
      sources.set(option.key, { source, shown, option })
    }
  }
  if (values.podName === '') values.podName = values.nodeName
  if (values.clusterDomain === '') values.clusterDomain = clusterDomain
  values.dnsLookupTimeoutMs ??= defaultLookupTimeoutMs(values.resolvConfPath as string, env, targets.dnsLookup as DnsLookupTarget[])

  if (!validate(values)) {
    const error = validate.errors![0]!
    // "/labels/zone" names the labels option; "/labels" with a propertyNames error likewise.
    const key = error.instancePath.split('/')[1] ?? ''
    const known = sources.get(key)!
    fail(known.source, known.shown, known.option)
  }
  const config = { ...values, targets: Object.freeze(targets) } as unknown as AgentConfig
  // Exactly one source of the token: a shared secret, or a file the kubelet keeps fresh.
  if (config.token === '' && config.tokenFile === '') {
    throw new AgentError(AGENT_ERR_CONFIG, 'PINGFLEET_TOKEN is not set (nor PINGFLEET_TOKEN_FILE, --token or --token-file): expected exactly one of them')
  }
  if (config.token !== '' && config.tokenFile !== '') {
    throw new AgentError(AGENT_ERR_CONFIG, 'PINGFLEET_TOKEN and PINGFLEET_TOKEN_FILE are both set: expected exactly one of them')
  }
  if (config.reconnectMinMs > config.reconnectMaxMs) {
    const known = sources.get('reconnectMinMs')!
    fail(known.source, known.shown, known.option)
  }
  // The whole train must leave well within the time each datagram waits for its echo (probes/udp.ts).
  if (config.udpCount > 0 && (config.udpCount - 1) * UDP_SPACING_MS >= config.probeTimeoutMs / 2) {
    const known = sources.get('udpCount')!
    fail(known.source, known.shown, known.option)
  }
  // Each expectation names a configured DNS name, once per type: a typo must not pass silently.
  const known = new Set([...config.dnsWireNames, ...config.targets.dnsLookup.map(target => target.name)].map(expectationKey))
  const seen = new Set<string>()
  for (const e of config.dnsExpect) {
    const key = `${e.name}/${e.type}`
    if (!known.has(e.name) || seen.has(key)) {
      const source = sources.get('dnsExpect')!
      throw new AgentError(AGENT_ERR_CONFIG, `${source.source}=${source.shown} is invalid: ${seen.has(key) ? `${key} is given twice` : `${e.name} is not one of PINGFLEET_DNS_NAMES or PINGFLEET_DNS_WIRE_NAMES`}`)
    }
    seen.add(key)
  }
  // Targets are shown (and recorded) redacted: two URLs that differ only in a credential would share a column.
  const shownTargets = config.httpTargets.map(redactUrl)
  const twice = shownTargets.find((id, i) => shownTargets.indexOf(id) !== i)
  if (twice !== undefined) {
    const known = sources.get('httpTargets')!
    throw new AgentError(AGENT_ERR_CONFIG, `${known.source}=${known.shown} is invalid: two targets differ only in credentials (both shown as ${twice})`)
  }
  Object.freeze(config.labels)
  for (const key of ['mtuSizes', 'serviceTargets', 'dnsNames', 'dnsServers', 'dnsWireNames', 'dnsWireTypes', 'dnsExpect', 'httpTargets', 'tcpTargets'] as const) Object.freeze(config[key])
  return Object.freeze(config)
}

/**
 * The config as it may be logged: no token, and every URL redacted (redact.ts) — the aggregator URL
 * and the http targets may carry credentials.
 */
export function printableConfig (config: Readonly<AgentConfig>): Record<string, unknown> {
  // `targets` repeats the lists, with the http credentials: it is left out.
  const { token: _token, targets: _targets, ...rest } = config
  return { ...rest, aggregatorUrl: redactUrl(config.aggregatorUrl), httpTargets: config.httpTargets.map(redactUrl) }
}
