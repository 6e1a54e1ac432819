// The probe kinds a report may carry. Each kind's targets form the columns of its matrix.

export const PROBE_KINDS = {
  pod: 'HTTP GET /ping to a peer agent\'s pod IP on a new connection',
  mtu: 'HTTP GET /ping?size=N to a peer agent: a large response, to catch path MTU black holes',
  service: 'HTTP GET /ping through the agents\' ClusterIP Service, by IP or by DNS name',
  'dns-lookup': 'dns.lookup (getaddrinfo): the path applications take, with search list and ndots',
  'dns-wire': 'A and AAAA queries sent straight to one resolver over UDP (TCP when truncated)',
  http: 'HTTP(S) request to an external URL',
  tcp: 'TCP connect to an external host:port',
  udp: 'a short train of UDP datagrams to a peer agent\'s echo (its /ping port, udp), counting the echoes: loss, round trip and jitter'
} as const satisfies Record<string, string>

export type ProbeKind = keyof typeof PROBE_KINDS
export const PROBE_KIND_NAMES = Object.keys(PROBE_KINDS) as ProbeKind[]

/** Kinds whose targets are peer nodes, so their columns can be grouped by node label. */
export const PEER_PROBE_KINDS: readonly ProbeKind[] = ['pod', 'mtu', 'udp']

/**
 * Kinds whose every probe opens exactly one new TCP connection: for them a handshake of 1 s or more is a
 * SYN (or SYN-ACK) retransmit, since Linux's initial retransmission timeout is 1 s (TCP_TIMEOUT_INIT,
 * include/net/tcp.h; RFC 6298 §2.1 and §5.7). Their cells carry `slowConnects`.
 */
export const CONNECT_PROBE_KINDS: readonly ProbeKind[] = ['pod', 'mtu', 'service', 'http', 'tcp']

/** The initial SYN retransmission timeout in seconds (see CONNECT_PROBE_KINDS). */
export const SYN_RTO_SECONDS = 1

export function isProbeKind (value: string): value is ProbeKind {
  return Object.hasOwn(PROBE_KINDS, value)
}

/**
 * The phases of one probe, in order, each timed on its own: `dns` (resolving a name, when the target has
 * one), `connect` (the TCP handshake), `tls` (the TLS handshake, https only), `firstByte` (from the request
 * written to the answer's first byte). A probe's total is its cell's `latency`.
 */
export const PHASES = {
  dns: 'resolving the target\'s name (getaddrinfo), when it has one',
  connect: 'the TCP handshake, SYN to SYN-ACK as the client sees it',
  tls: 'the TLS handshake, https targets only',
  firstByte: 'from the request written to the first byte of the answer'
} as const satisfies Record<string, string>

export type Phase = keyof typeof PHASES
export const PHASE_NAMES = Object.keys(PHASES) as Phase[]

/** Kinds whose cells may carry `phases` (each probe opens one new connection, so each phase is its own). */
export const PHASE_PROBE_KINDS: readonly ProbeKind[] = ['pod', 'service', 'mtu', 'http', 'tcp']
