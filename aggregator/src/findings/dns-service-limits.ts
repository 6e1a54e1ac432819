// The thresholds of the DNS, Service and egress findings, in one place: what makes a cell failing,
// how many nodes must agree, and which failure reasons belong to which layer (docs/findings.md).

/**
 * Probes a cell needs in the window before it is judged. Three keeps one lost probe (a 5 s DNS
 * conntrack-race timeout, a single SYN lost) from ever being the whole verdict.
 */
export const MIN_SAMPLES = 3

/** Failures a cell (or a pooled group) needs before it counts as failing, whatever its ratio. */
export const MIN_FAILURES = 2

/**
 * A cell fails when at least this share of its probes fail. A quarter: a hard fault that began
 * a quarter of the way into the window already shows, while one timeout in twelve probes does not.
 */
export const FAILING_RATIO = 0.25

/**
 * A finding about one node alone (dns-group for a node, egress from a node) needs its cells to fail
 * at least this often: one node has no peers to agree with, and a path losing 10% (a lost packet is a
 * failed probe at these timeouts) fails 2 of 8 probes in about one window of five, while it
 * reaches half of them in about one of 200.
 */
export const NODE_FAILING_RATIO = 0.5

/**
 * A set of nodes (a group, or the fleet) fails when more than this share of its judged nodes fail:
 * a strict majority, so one node of two is that node's fault, not its group's.
 */
export const GROUP_SHARE = 0.5

/**
 * Failing nodes spread over every group, with no group failing as a whole, still make a fleet-wide
 * finding (a resolver failing "from many nodes") when they are at least this share of the judged
 * nodes and at least MIN_AGREEING_NODES; fewer are reported node by node.
 */
export const SPREAD_SHARE = 0.25

/** A fleet-wide finding (dns-resolver, dns-name, dns-path) needs at least this many agreeing nodes. */
export const MIN_AGREEING_NODES = 2

/**
 * service-path: a node or group's error ratio through a Service must exceed its own pod probes'
 * outbound error ratio by this much. A broken group boundary fails pod and Service probes alike
 * (no excess); one wrong backend among six fails about 17% of Service probes (excess 0.17).
 */
export const SERVICE_EXCESS = 0.1

/** service-path for a single node whose group is fine: its excess must reach this (most of its probes). */
export const SERVICE_NODE_EXCESS = 0.5

/**
 * service-path: the excess must also be more than chance, a one-sided two-proportion z-test (pooled
 * variance; e.g. NIST/SEMATECH e-Handbook of Statistical Methods §7.3.3) at z ≥ 3, a false alarm in
 * about 1 of 740 comparisons under the normal approximation. With 25 Service probes at 8% against
 * pod probes at 10% (30% loss toward one of six nodes), a swing to 20% gives z ≈ 1.5: no finding;
 * one wrong backend of six over 30 probes against clean pod probes gives z ≈ 5.
 */
export const SERVICE_Z = 3

/**
 * DNS answers that are about the name, not the resolver (RFC 1035 §4.1.1 RCODE 3, NXDOMAIN; RFC
 * 2308 §2.2, NODATA: NOERROR with no record of the type), and BAD_RESPONSE for a name expected not
 * to exist that resolved. The agent records them only when they are not the expected answer
 * (agent/src/dns-expect.ts: an expected NXDOMAIN or NODATA is a success), so every one here is a fault.
 */
export const WIRE_NAME_REASONS: ReadonlySet<string> = new Set(['NXDOMAIN', 'NODATA'])
export const UNEXPECTED_ANSWER_RAWS: ReadonlySet<string> = new Set(['UNEXPECTED_ANSWER', 'UNEXPECTED_NODATA'])

/**
 * getaddrinfo raw codes that are a negative answer for every name tried (EAI_NONAME, EAI_NODATA;
 * Node folds both into ENOTFOUND) or an empty success (NO_ADDRESSES): docs/reasons.md.
 */
export const LOOKUP_NEGATIVE_RAWS: ReadonlySet<string> = new Set(['EAI_NONAME', 'EAI_NODATA', 'NO_ADDRESSES'])

/**
 * Reasons of a name lookup inside a service, http or tcp probe (its DNS phase): those failures are
 * DNS findings' business, so service-path and egress leave them out.
 */
export const LOOKUP_REASONS: ReadonlySet<string> = new Set(['ENOTFOUND', 'EAI_AGAIN', 'EAI_FAIL', 'LOOKUP_TIMEOUT'])

/**
 * service-path: the chance, fleet-wide, that some backend gets no answer through the Service by
 * random picks alone before "never answers" is said (see missingBackends in service-path.ts).
 */
export const MISSING_BACKEND_ALPHA = 0.001

/** Not a network failure (docs/reasons.md): the agent could not run the probe. Left out of every count. */
export const AGENT_REASONS: ReadonlySet<string> = new Set(['AGENT_OVERLOADED'])

/** The port a resolver's subject id leaves out (RFC 1035 §4.2: DNS over UDP and TCP uses port 53). */
export const DNS_PORT = 53
