// What the agent probes: one probe function per kind with its own time limit, and the wanted
// target set, which is the roster's peers (pod and mtu) plus the static targets from the config.

import { readFile } from 'node:fs/promises'
import type { Logger } from 'pino'
import type { Peer, ProbeKind } from '@pingfleet/protocol'
import { UDP_SPACING_MS, type AgentConfig } from './config.ts'
import { LookupPool } from './lookup-pool.ts'
import type { Probe, Target } from './probe.ts'
import { createDnsLookupProbe } from './probes/dns-lookup.ts'
import { dnsWireProbe, dnsWireTarget, parseDnsServer, type DnsServer } from './probes/dns-wire.ts'
import { createHttpProbe, loadHttpClient } from './probes/http.ts'
import { createMtuProbe, mtuTarget } from './probes/mtu.ts'
import { createPodProbe, type PodTarget } from './probes/pod.ts'
import { createServiceProbe } from './probes/service.ts'
import { createTcpProbe } from './probes/tcp.ts'
import { createUdpProbe, udpTarget } from './probes/udp.ts'
import { MAX_NAMESERVERS, readResolvConf } from './resolv-conf.ts'
import { expectedOutcome, lookupOutcome } from './dns-expect.ts'
import { AGENT_ERR_RESOLV_CONF } from './errors.ts'

export type SuiteConfig = Pick<AgentConfig, 'probeTimeoutMs' | 'mtuSizes' | 'mtuTimeoutMs' | 'udpCount' | 'targets' | 'serviceTimeoutMs' |
  'resolvConfPath' | 'dnsLookupTimeoutMs' | 'dnsWireNames' | 'dnsWireTypes' | 'dnsWireTransport' |
  'dnsWireTimeoutMs' | 'httpCaFile' | 'httpTimeoutMs' | 'tcpTimeoutMs' | 'lookupMaxInFlight' | 'lookupLagThresholdMs'> &
  Partial<Pick<AgentConfig, 'podIp' | 'dnsExpect'>>

export interface ProbeSuite {
  probes: Record<ProbeKind, Probe>
  timeouts: Record<ProbeKind, number>
  /** The one lookup pool every name-resolving probe shares. */
  pool: LookupPool
}

export function createProbeSuite (config: SuiteConfig): ProbeSuite {
  const pool = new LookupPool({
    ...(config.lookupMaxInFlight > 0 ? { maxInFlight: config.lookupMaxInFlight } : {}),
    lagThresholdMs: config.lookupLagThresholdMs
  })
  // undici only where http targets exist (it is ~9 MiB on import), loaded now so no probe waits for it.
  if (config.targets.http.length > 0) void loadHttpClient()
  // Each kind's probe is typed by its own target; the scheduler only hands it targets of that kind.
  const probes = {
    pod: createPodProbe({ timeoutMs: config.probeTimeoutMs }) as Probe,
    mtu: createMtuProbe({ timeoutMs: config.mtuTimeoutMs }) as Probe,
    service: createServiceProbe(pool, { timeoutMs: config.serviceTimeoutMs }) as Probe,
    'dns-lookup': createDnsLookupProbe(pool) as Probe,
    'dns-wire': dnsWireProbe as Probe,
    http: createHttpProbe(pool) as Probe,
    tcp: createTcpProbe(pool) as Probe,
    udp: createUdpProbe({ count: Math.max(1, config.udpCount), spacingMs: UDP_SPACING_MS, timeoutMs: config.probeTimeoutMs }) as Probe
  }
  const timeouts = {
    pod: config.probeTimeoutMs,
    mtu: config.mtuTimeoutMs,
    service: config.serviceTimeoutMs,
    'dns-lookup': config.dnsLookupTimeoutMs,
    'dns-wire': config.dnsWireTimeoutMs,
    http: config.httpTimeoutMs,
    tcp: config.tcpTimeoutMs,
    udp: config.probeTimeoutMs
  }
  return { probes, timeouts, pool }
}

/**
 * Pod-probe targets from the roster: every peer except this node and those `terminating`. A
 * `draining` (cordoned) peer is probed too: a migration keeps its batch cordoned until the gate
 * passes, so the gate must have data about exactly those nodes.
 */
export function podTargets (peers: readonly Peer[], self: string): PodTarget[] {
  return peers
    .filter(peer => peer.node !== self && peer.state !== 'terminating')
    .map(peer => ({ kind: 'pod', id: peer.node, podIp: peer.podIp, port: peer.port }))
}

/** Pod targets, and for each of them one mtu target per configured size and, with `udp`, one udp target. */
export function rosterTargets (peers: readonly Peer[], self: string, mtuSizes: readonly number[], udp = false): Target[] {
  const pods = podTargets(peers, self)
  const out: Target[] = [...pods]
  for (const pod of pods) {
    const peer = { node: pod.id, podIp: pod.podIp, port: pod.port }
    for (const size of mtuSizes) out.push(mtuTarget(peer, size))
    if (udp) out.push(udpTarget(peer))
  }
  return out
}

/**
 * The targets that do not depend on the roster, from the config's parsed targets: service, dns-lookup
 * (each with its DNS expectation), dns-wire (every name and type at every resolver in `servers`, see
 * wireServers), http (with the extra CA bundle `ca`, PEM text, when given) and tcp.
 */
export function staticTargets (config: SuiteConfig, servers: readonly DnsServer[], ca?: string): Target[] {
  const out: Target[] = [...config.targets.service]
  // Each DNS target carries what a healthy resolver answers for it (dns-expect.ts).
  const expectations = config.dnsExpect ?? []
  const podIp = config.podIp ?? '0.0.0.0'
  for (const target of config.targets.dnsLookup) {
    const expect = lookupOutcome(expectations, target.name, target.family, podIp)
    out.push(expect === 'answer' ? target : { ...target, expect })
  }
  for (const { server, port } of servers) {
    for (const name of config.dnsWireNames) {
      for (const type of config.dnsWireTypes) {
        out.push(dnsWireTarget({ name, type, server, port, transport: config.dnsWireTransport, expect: expectedOutcome(expectations, name, type, podIp) }))
      }
    }
  }
  for (const target of config.targets.http) out.push(ca === undefined ? target : { ...target, ca })
  out.push(...config.targets.tcp)
  return out
}

/**
 * The dns-wire resolvers: PINGFLEET_DNS_SERVERS, or else the first three nameservers of the
 * configured resolv.conf (the ones getaddrinfo uses). An unreadable file means no wire probes.
 */
export async function wireServers (config: SuiteConfig, logger?: Logger): Promise<DnsServer[]> {
  if (config.targets.dnsServers.length > 0 || config.dnsWireNames.length === 0) return [...config.targets.dnsServers]
  try {
    const conf = await readResolvConf(config.resolvConfPath)
    return conf.nameservers.slice(0, MAX_NAMESERVERS).map(parseDnsServer).filter(server => server !== null)
  } catch (err) {
    logger?.warn({ code: AGENT_ERR_RESOLV_CONF, err, path: config.resolvConfPath }, 'cannot read resolv.conf: no dns-wire probes unless PINGFLEET_DNS_SERVERS is set')
    return []
  }
}

/** Everything static, resolved once at start: resolvers from resolv.conf and the CA bundle read. */
export async function loadStaticTargets (config: SuiteConfig, logger?: Logger): Promise<Target[]> {
  const ca = config.httpCaFile === '' ? undefined : await readFile(config.httpCaFile, 'utf8')
  return staticTargets(config, await wireServers(config, logger), ca)
}
