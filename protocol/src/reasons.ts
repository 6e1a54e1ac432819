// The closed set of failure reasons. Every failed probe lands in exactly one of these;
// the raw error code the runtime gave is carried beside it. docs/reasons.md explains each.

export const REASONS = {
  // transport
  ECONNREFUSED: 'the peer answered the SYN with a RST: nothing listens on that port',
  ECONNRESET: 'the connection was reset after it was established',
  EHOSTUNREACH: 'no route to the host, or an ICMP host-unreachable came back',
  ENETUNREACH: 'no route to the network',
  CONNECT_TIMEOUT: 'the TCP handshake did not finish before the connect timeout',
  RESPONSE_TIMEOUT: 'connected, but the response did not finish before the probe timeout',
  MTU_BLACKHOLE: 'a small exchange worked but the large response never arrived (path MTU black hole)',
  TLS_ERROR: 'the TLS handshake failed or the certificate was rejected',
  // HTTP answers
  HTTP_4XX: 'the server answered with a 4xx status',
  HTTP_5XX: 'the server answered with a 5xx status',
  HTTP_OTHER: 'the server answered with an unexpected 1xx or 3xx status',
  BAD_RESPONSE: 'the answer arrived but was not what the probe expects (body, size or identity)',
  // getaddrinfo (dns.lookup)
  ENOTFOUND: 'getaddrinfo found no address: EAI_NONAME or EAI_NODATA (NXDOMAIN, or no record after the search list)',
  EAI_AGAIN: 'getaddrinfo got a temporary failure: the resolver did not answer or answered SERVFAIL',
  EAI_FAIL: 'getaddrinfo got a non-recoverable resolver failure',
  LOOKUP_TIMEOUT: 'getaddrinfo did not return before the agent\'s own lookup timeout',
  // DNS on the wire
  NXDOMAIN: 'the resolver answered NXDOMAIN: the name does not exist',
  NODATA: 'the resolver answered NOERROR with no record of the asked type',
  SERVFAIL: 'the resolver answered SERVFAIL',
  REFUSED: 'the resolver answered REFUSED',
  DNS_TIMEOUT: 'the resolver did not answer before the probe timeout',
  TRUNCATED: 'the answer was truncated and could not be completed over TCP',
  MALFORMED: 'the answer could not be decoded',
  MISMATCH: 'the answer carried the wrong id or question',
  DNS_OTHER_RCODE: 'the resolver answered with another error rcode',
  // UDP echo
  UDP_NO_ECHO: 'no datagram of a udp train was echoed before the probe timeout: the path (either direction) or the peer\'s echo is down',
  // the agent itself
  AGENT_OVERLOADED: 'the agent could not start the probe in time (concurrency or threadpool exhausted)',
  OTHER: 'an error outside every class above; see the raw code'
} as const satisfies Record<string, string>

export type Reason = keyof typeof REASONS
export const REASON_CODES = Object.keys(REASONS) as Reason[]

export function isReason (value: string): value is Reason {
  return Object.hasOwn(REASONS, value)
}
