// The e2e fault table: each row is a fault a CNI migration can cause, the matrix cells it must turn
// red (and with which reasons), the /metrics series that must move or stay flat, and how fast.
// Adding a scenario is adding a row. Cells a row does not name must stay green.

import type { ProbeKind } from '@pingfleet/protocol'
import { AGENT_PORT, DNS, EXTERNAL, SERVICE_FQDN, SUBNET, VIP, type Group } from './cluster.ts'
import type { FindingExpectation } from './findings-watch.ts'

/** Report interval and per-kind probe timeouts the cluster runs with (cluster.test.ts passes them to the agents). */
export const INTERVAL_MS = 1000
export const TIMEOUT_MS = { pod: 500, mtu: 1500, service: 800, 'dns-lookup': 1500, 'dns-wire': 500, http: 800, tcp: 800, udp: 500 } as const satisfies Record<ProbeKind, number>
/** How long a `noLagged` fault is held before its cells are checked over everything since injection. */
export const NO_LAGGED_SETTLE_MS = 8000
/**
 * Findings: the window the aggregator's evaluation reads (PINGFLEET_FINDINGS_WINDOW), how long after
 * injection the row's findings may take to appear (mtu and udp are read over at least a minute, and a cell
 * fails at half its window: ~30 s; a missing one is reported as such, this is no speed bound: the table
 * prints the times),
 * how long the fault is then held for any other finding to show, and how long after removal every finding
 * must have resolved.
 */
export const FINDINGS_WINDOW_MS = 10 * INTERVAL_MS
export const FINDINGS_WITHIN_MS = 45_000
export const FINDINGS_HOLD_MS = 3 * INTERVAL_MS
export const FINDINGS_RESOLVE_MS = 75_000
/** Poll period, the bridge, report transit and ingest, on a machine that may be busy with other work. */
export const SLACK_MS = 800
/**
 * A fault must show within 2 report intervals of injection. A dropped packet is only a failure once the
 * probe's own deadline passes, so the bound for a drop is 2 intervals plus that kind's timeout.
 */
export const within = (kind: ProbeKind | null): number => 2 * INTERVAL_MS + (kind === null ? 0 : TIMEOUT_MS[kind]) + SLACK_MS
/**
 * Error reports must stop within 2 intervals of removal: a probe in flight at removal may still fail (its
 * kind's timeout, below one interval here) and is reported with the next interval's report.
 */
export const clears = (kind: ProbeKind | null): number => INTERVAL_MS + Math.max(kind === null ? 0 : TIMEOUT_MS[kind], INTERVAL_MS) + SLACK_MS

/** Node names are `<group>-<n>`; mtu columns are `<node>/<size>`. */
export const groupOf = (node: string): Group => node.slice(0, node.lastIndexOf('-')) as Group
const peer = (dst: string): string => dst.split('/')[0]!
export type CellSel = (src: string, dst: string) => boolean
export const none: CellSel = () => false
export const all: CellSel = () => true
export const toNode = (node: string): CellSel => (_src, dst) => peer(dst) === node
export const fromNode = (node: string): CellSel => src => src === node
export const involving = (node: string): CellSel => (src, dst) => src === node || peer(dst) === node
export const fromGroup = (group: Group): CellSel => src => groupOf(src) === group
export const across = (from: Group, to: Group): CellSel => (src, dst) => groupOf(src) === from && groupOf(peer(dst)) === to
export const column = (prefix: string): CellSel => (_src, dst) => dst.startsWith(prefix)
/** mtu columns of one size. */
export const size = (bytes: number): CellSel => (_src, dst) => dst.endsWith(`/${bytes}`)
export const and = (...sels: CellSel[]): CellSel => (src, dst) => sels.every(s => s(src, dst))
export const or = (...sels: CellSel[]): CellSel => (src, dst) => sels.some(s => s(src, dst))

export interface CellExpectation {
  probe: ProbeKind
  /** Cells (by source node and column, `groupBy=node`) the fault turns red; every other cell stays green. */
  red: CellSel
  /** Reasons allowed in red cells. */
  reasons: readonly string[]
  /** Raw codes allowed next to them, where the raw code tells more than the reason. */
  codes?: readonly string[]
  /**
   * Red cells must count no lagged sample: the agent's own stalls must not excuse the failures. Checked in
   * every detection snapshot, and over the whole fault once it has lasted NO_LAGGED_SETTLE_MS.
   */
  noLagged?: boolean
  /**
   * `all` (default): every selected cell red. `any`: at least one (a fault that hits a share of probes, like
   * one bad Service backend). `degraded`: the selected cells' pooled error ratio and worst p99 within `tolerance`.
   * `loss`: the selected cells' pooled loss signal within `loss`, every other cell's below `loss.maxElsewhere`.
   */
  mode?: 'all' | 'any' | 'degraded' | 'loss'
  /**
   * false: red when the fault is detected, but a cell may turn green again while the fault lasts, because
   * the system under it adapts (say why at the row); left out of the "still shown" check only.
   */
  lasting?: false
  /**
   * Cells outside `red` that may also be red, but only for `sideEffect.reasons`: a true consequence of
   * how the fault is made (a CPU-starved agent answers its peers late), not what the row tests.
   */
  sideEffect?: { cells: CellSel, reasons: readonly string[] }
  /** Selected cells that may be absent instead of red: their source cannot reach the aggregator. */
  absentOk?: CellSel
  /** The absent cells arrive red once the fault is gone: their agent buffered the reports. */
  backfilled?: boolean
  tolerance?: { minErrorRatio: number, maxErrorRatio: number, minP99Seconds: number, settleMs: number }
  /**
   * `loss` mode: `lossRatio` (udp: datagrams lost / sent) or `retransmitRatio` (slow handshakes / latency
   * samples), pooled over the selected cells once `settleMs` passed since injection.
   */
  loss?: { signal: 'lossRatio' | 'retransmitRatio', min: number, max: number, maxElsewhere: number, settleMs: number }
}

export interface MetricExpectation {
  name: string
  /** Sums every series carrying these labels. */
  labels: Record<string, string>
  /** `up`/`flat` compare injection with detection; a number is the value at detection. */
  expect: 'up' | 'flat' | number
}

export type Fault =
  | { kind: 'nft', rules: readonly string[] }
  /** nftables rules and, at the same time, one node's agent under a CPU limit (cgroup quota per period). */
  | { kind: 'throttled-nft', node: string, quotaUs: number, periodUs: number, rules: readonly string[] }
  | { kind: 'dns-omit', names: readonly string[] }
  | { kind: 'service-backend', node: string, port: number }
  | { kind: 'kill-agent', node: string }
  /** The resolver answers A but never AAAA (cluster.ts setDnsFault). */
  | { kind: 'dns-no-aaaa' }

export interface Scenario {
  name: string
  fault: Fault
  cells: readonly CellExpectation[]
  metrics: readonly MetricExpectation[]
  /** Nodes the agents API must show disconnected while the fault lasts. */
  disconnected?: readonly string[]
  /** Agent coverage (connected / expected) per group that a migration gate must see while the fault lasts. */
  coverage?: Partial<Record<Group, number>>
  /** Backends the service view must flag for every source group while the fault lasts. */
  serviceFlagged?: readonly string[]
  /** Ad-hoc gates (`/api/v1/gates/adhoc?…`) asked while the fault lasts, and the verdict each must give. */
  gates?: ReadonlyArray<{ query: string, verdict: 'pass' | 'fail' | 'insufficient_data', why: string }>
  /**
   * The diagnosis: every finding /api/v1/findings must show while the fault lasts, and none other
   * (findings-watch.ts scores every finding active at any poll during the fault). Empty: the fault is
   * real but no finding kind covers it, so none may appear.
   */
  findings: readonly FindingExpectation[]
  /**
   * Findings that may also appear, as a true consequence of how the fault is made (like a cell
   * expectation's `sideEffect`), not what the row tests. They count neither for nor against the score.
   */
  findingsMayAlso?: readonly FindingExpectation[]
  detectWithinMs: number
  recoverWithinMs: number
  /** Agent options the row needs; a missing one (not in agent/src/config.ts's OPTIONS) fails the row. */
  needs: readonly string[]
}

const BLACK_HOLED = 'cilium-3'
const LOSSY = 'aws-2'
const BAD_BACKEND = 'aws-3'
const MTU_SRC = 'aws-1'
const MTU_DST = 'cilium-1'
const KILLED = 'cilium-2'
const BLOCKED_IN = 'aws-1'
/**
 * A batch gate as docs/examples/migrate-nodes.sh asks it, node by node: each selected node's error
 * ratio, inbound and outbound, may exceed the rest of the fleet's by 10 points, and it needs results
 * with at least 4 of its 5 peers. Relative, because the other nodes' probes toward a broken one fail too:
 * their outbound ratio rises, but no more than everyone else's.
 */
const batchGate = (nodes: readonly string[]): string => `probe=pod&nodes=${nodes.join(',')}&maxNodeExcessErrorRatio=0.1&minPeers=4&window=2s&minSamples=1`
const THROTTLED = 'cilium-1'
const THROTTLED_TARGET = 'aws-1'
/** Nodes' addresses follow cluster.ts: <subnet>.11, .12, … in node order within a group. */
const ip = (node: string): string => SUBNET[groupOf(node)].replace(/0\/24$/, String(10 + Number(node.slice(node.lastIndexOf('-') + 1))))
const errors = (labels: Record<string, string>, expect: MetricExpectation['expect']): MetricExpectation => ({ name: 'pingfleet_probe_errors_total', labels, expect })
const nodeErrors = (node: string, direction: 'in' | 'out', probe: ProbeKind, expect: MetricExpectation['expect']): MetricExpectation =>
  ({ name: 'pingfleet_node_probe_errors_total', labels: { node, direction, probe }, expect })
/** docs/reasons.md: CONNECT_TIMEOUT's raw code is TIMEOUT (the probe's deadline) or ETIMEDOUT (the kernel gave up). */
const CONNECT_TIMEOUT_CODES = ['TIMEOUT', 'ETIMEDOUT']
const podGreen: CellExpectation = { probe: 'pod', red: none, reasons: [] }
const nodeFinding = (kind: 'node-inbound' | 'node-outbound' | 'node-isolated' | 'loss' | 'agent-degraded', node: string): FindingExpectation =>
  ({ kind, subject: { type: 'node', node } })

export const SCENARIOS: readonly Scenario[] = [
  {
    name: 'partition aws → cilium (new connections dropped one way)',
    fault: { kind: 'nft', rules: [`ct state new ip saddr ${SUBNET.aws} ip daddr ${SUBNET.cilium} drop`] },
    cells: [
      { probe: 'pod', red: across('aws', 'cilium'), reasons: ['CONNECT_TIMEOUT'], codes: CONNECT_TIMEOUT_CODES },
      { probe: 'mtu', red: across('aws', 'cilium'), reasons: ['CONNECT_TIMEOUT'], codes: CONNECT_TIMEOUT_CODES }
    ],
    metrics: [
      errors({ probe: 'pod', src_group: 'aws', dst_group: 'cilium' }, 'up'),
      errors({ probe: 'pod', src_group: 'cilium', dst_group: 'aws' }, 'flat'),
      errors({ probe: 'pod', src_group: 'aws', dst_group: 'aws' }, 'flat'),
      errors({ probe: 'pod', src_group: 'cilium', dst_group: 'cilium' }, 'flat')
    ],
    findings: [{ kind: 'group-boundary', subject: { type: 'group-pair', src: 'aws', dst: 'cilium', bothWays: false } }],
    detectWithinMs: within('mtu'),
    recoverWithinMs: clears('mtu'),
    needs: ['PINGFLEET_MTU_SIZES']
  },
  {
    name: 'partition aws ↔ cilium (both ways)',
    fault: { kind: 'nft', rules: [`ct state new ip saddr ${SUBNET.aws} ip daddr ${SUBNET.cilium} drop`, `ct state new ip saddr ${SUBNET.cilium} ip daddr ${SUBNET.aws} drop`] },
    cells: [
      { probe: 'pod', red: or(across('aws', 'cilium'), across('cilium', 'aws')), reasons: ['CONNECT_TIMEOUT'], codes: CONNECT_TIMEOUT_CODES },
      { probe: 'mtu', red: or(across('aws', 'cilium'), across('cilium', 'aws')), reasons: ['CONNECT_TIMEOUT'], codes: CONNECT_TIMEOUT_CODES }
    ],
    metrics: [
      errors({ probe: 'pod', src_group: 'aws', dst_group: 'cilium' }, 'up'),
      errors({ probe: 'pod', src_group: 'cilium', dst_group: 'aws' }, 'up'),
      errors({ probe: 'pod', src_group: 'aws', dst_group: 'aws' }, 'flat'),
      errors({ probe: 'pod', src_group: 'cilium', dst_group: 'cilium' }, 'flat')
    ],
    // One finding for the boundary, both ways; not one per direction, nor one per node of either group.
    findings: [{ kind: 'group-boundary', subject: { type: 'group-pair', bothWays: true }, groups: ['aws', 'cilium'] }],
    detectWithinMs: within('mtu'),
    recoverWithinMs: clears('mtu'),
    needs: ['PINGFLEET_MTU_SIZES']
  },
  {
    name: `node ${BLACK_HOLED} black-holed (every packet to and from it dropped)`,
    fault: { kind: 'nft', rules: [`ip saddr ${ip(BLACK_HOLED)} drop`, `ip daddr ${ip(BLACK_HOLED)} drop`] },
    cells: [
      // Its own probes fail too, but it cannot report them until the path is back.
      { probe: 'pod', red: involving(BLACK_HOLED), absentOk: fromNode(BLACK_HOLED), backfilled: true, reasons: ['CONNECT_TIMEOUT'], codes: CONNECT_TIMEOUT_CODES }
    ],
    metrics: [
      nodeErrors(BLACK_HOLED, 'in', 'pod', 'up'),
      { name: 'pingfleet_agents_connected', labels: { group: 'cilium' }, expect: 2 },
      { name: 'pingfleet_agents_connected', labels: { group: 'aws' }, expect: 3 }
    ],
    disconnected: [BLACK_HOLED],
    coverage: { cilium: 2 / 3, aws: 1 },
    // Its last green report stays in the 2 s query window for up to one more interval.
    // One node finding: not a boundary finding, and not one per peer.
    findings: [nodeFinding('node-isolated', BLACK_HOLED)],
    detectWithinMs: within('pod') + INTERVAL_MS,
    // Its buffered red reports arrive once it has reconnected: a connect attempt begun during the fault is
    // abandoned after the 1 s handshake timeout, and the next follows after ≤ 500 ms of backoff.
    recoverWithinMs: clears('pod') + 1500,
    needs: []
  },
  {
    name: `30% packet loss toward ${LOSSY}`,
    fault: { kind: 'nft', rules: [`ip daddr ${ip(LOSSY)} numgen random mod 100 < 30 drop`] },
    cells: [
      // A lost SYN waits 1 s for its retransmit (past the 500 ms probe timeout): an error. A lost data
      // segment waits for the ≥ 200 ms RTO: a slow success. Healthy p99 here is a few ms.
      { probe: 'pod', red: involving(LOSSY), reasons: ['CONNECT_TIMEOUT', 'RESPONSE_TIMEOUT', 'ECONNRESET'], mode: 'degraded', tolerance: { minErrorRatio: 0.1, maxErrorRatio: 0.8, minP99Seconds: 0.15, settleMs: 8000 } }
    ],
    // Its own probes suffer too (their answers are lost on the way back), so peers' `in` counters move as well;
    // pairs without it do not.
    metrics: [nodeErrors(LOSSY, 'in', 'pod', 'up'), nodeErrors(LOSSY, 'out', 'pod', 'up'), errors({ probe: 'pod', src_group: 'cilium', dst_group: 'cilium' }, 'flat')],
    findings: [nodeFinding('loss', LOSSY)],
    detectWithinMs: within('pod'),
    recoverWithinMs: clears('pod'),
    needs: []
  },
  {
    // Random loss, one direction: datagrams and segments toward the node are dropped, so the cells toward it
    // lose requests and the cells from it lose answers. Either way a round trip is lost with p = 10%.
    name: `10% packet loss toward ${LOSSY}, read as loss`,
    fault: { kind: 'nft', rules: [`ip daddr ${ip(LOSSY)} numgen random mod 10 < 1 drop`] },
    cells: [
      // 10% of 5-datagram trains: a whole train lost (UDP_NO_ECHO) is 1 in 100,000.
      { probe: 'udp', red: involving(LOSSY), reasons: ['UDP_NO_ECHO'], mode: 'loss', loss: { signal: 'lossRatio', min: 0.05, max: 0.19, maxElsewhere: 0.01, settleMs: 12_000 } },
      // A lost SYN or SYN-ACK is retransmitted after 1 s, within the mtu probe's deadline (TIMEOUT_MS.mtu):
      // a slow success, not an error. Pod probes give up at 500 ms, so for them the same loss is CONNECT_TIMEOUT.
      { probe: 'mtu', red: involving(LOSSY), reasons: ['CONNECT_TIMEOUT', 'RESPONSE_TIMEOUT', 'MTU_BLACKHOLE', 'ECONNRESET'], mode: 'loss', loss: { signal: 'retransmitRatio', min: 0.03, max: 0.3, maxElsewhere: 0.01, settleMs: 12_000 } }
    ],
    metrics: [
      { name: 'pingfleet_udp_datagrams_lost_total', labels: { dst_group: 'aws' }, expect: 'up' },
      { name: 'pingfleet_udp_datagrams_lost_total', labels: { src_group: 'cilium', dst_group: 'cilium' }, expect: 'flat' },
      { name: 'pingfleet_probe_slow_connects_total', labels: { probe: 'mtu', dst_group: 'aws' }, expect: 'up' },
      { name: 'pingfleet_probe_slow_connects_total', labels: { probe: 'mtu', src_group: 'cilium', dst_group: 'cilium' }, expect: 'flat' }
    ],
    // Both signals must show. The slow-connect one needs a lost SYN (or SYN-ACK) and its 1 s retransmit before
    // the probe completes, and the loss is random: each interval ~10 mtu probes involve the node, each losing a
    // handshake packet with p ≈ 0.1, so a round with none has p ≈ 0.9^10 ≈ 0.35. The bound allows five rounds
    // (p of none ≈ 0.5%) on top of the mtu kind's own bound and the RTO. One CI run missed the former bound
    // (within('udp'), 3.3 s) at 3.45 s.
    findings: [nodeFinding('loss', LOSSY)],
    detectWithinMs: within('mtu') + 1000 + 4 * INTERVAL_MS,
    recoverWithinMs: clears('mtu'),
    needs: ['PINGFLEET_UDP_COUNT', 'PINGFLEET_UDP_INTERVAL']
  },
  {
    // Issue 11: a busy agent turned a broken path green. A CPU limit of 10 ms per 100 ms (a Kubernetes
    // limit of 100m) freezes the agent for ~90 ms at a time: stalls above the lag threshold, yet three of
    // them cannot explain a 500 ms timeout. The dropped path must read as errors, not lagged. (At 5 ms per
    // 100 ms this agent's work here does not always fit the quota: a loop turn then spans two periods, and
    // stalls of ~200 ms can explain a 500 ms timeout, so the rule rightly excuses some.)
    name: `agent on ${THROTTLED} CPU-throttled (10 ms per 100 ms) with its path to ${THROTTLED_TARGET} dropped`,
    fault: {
      kind: 'throttled-nft',
      node: THROTTLED,
      quotaUs: 10_000,
      periodUs: 100_000,
      rules: [`ip saddr ${ip(THROTTLED)} ip daddr ${ip(THROTTLED_TARGET)} tcp dport ${AGENT_PORT} drop`]
    },
    cells: [
      // Every packet is dropped, established flows too: a probe already connected at injection ends as a
      // response timeout; the rest cannot connect. (mtu cells are left out: at one 1.5 s timeout per probe a
      // failing mtu cell can miss a 2 s window, so "still shown" would flake.)
      // The setup keeps the agent busy until the kernel throttles it (throttleAgent), so for ~90 ms of
      // every 100 ms it cannot answer its peers either: a peer's probe to it may time out, truly. Those
      // cells may be red, for a timeout only.
      {
        probe: 'pod',
        red: and(fromNode(THROTTLED), toNode(THROTTLED_TARGET)),
        reasons: ['CONNECT_TIMEOUT', 'RESPONSE_TIMEOUT'],
        codes: CONNECT_TIMEOUT_CODES,
        noLagged: true,
        sideEffect: { cells: toNode(THROTTLED), reasons: ['CONNECT_TIMEOUT', 'RESPONSE_TIMEOUT'] }
      }
    ],
    metrics: [
      nodeErrors(THROTTLED, 'out', 'pod', 'up'),
      nodeErrors(THROTTLED_TARGET, 'in', 'pod', 'up'),
      errors({ probe: 'pod', src_group: 'aws', dst_group: 'aws' }, 'flat')
    ],
    // The throttled agent's own reports are late by up to a frozen period.
    // One dropped pair is no kind's subject (node-outbound needs most peers, node-inbound most of the
    // target's): no finding. The throttled agent may rightly be judged degraded.
    findings: [],
    findingsMayAlso: [nodeFinding('agent-degraded', THROTTLED)],
    detectWithinMs: within('pod') + INTERVAL_MS,
    recoverWithinMs: clears('pod'),
    needs: []
  },
  {
    name: `DNS: ${SERVICE_FQDN} removed (NXDOMAIN)`,
    fault: { kind: 'dns-omit', names: [SERVICE_FQDN] },
    cells: [
      { probe: 'dns-lookup', red: column('pingfleet-agent'), reasons: ['ENOTFOUND'], codes: ['EAI_NONAME'] },
      { probe: 'dns-wire', red: column('pingfleet-agent'), reasons: ['NXDOMAIN'], codes: ['NXDOMAIN'] },
      podGreen
    ],
    metrics: [
      { name: 'pingfleet_dns_errors_total', labels: { path: 'getaddrinfo', reason: 'ENOTFOUND' }, expect: 'up' },
      { name: 'pingfleet_dns_errors_total', labels: { path: 'wire', reason: 'NXDOMAIN' }, expect: 'up' },
      errors({ probe: 'pod' }, 'flat')
    ],
    findings: [{ kind: 'dns-name', subject: { type: 'dns-name', name: SERVICE_FQDN } }],
    detectWithinMs: within(null),
    recoverWithinMs: clears(null),
    needs: ['PINGFLEET_DNS_NAMES', 'PINGFLEET_DNS_WIRE_NAMES', 'PINGFLEET_RESOLV_CONF']
  },
  {
    // The A/AAAA race without the race: the lookup asks for both (family 0), the A answer comes at once, the
    // AAAA never does. glibc waits out its timeout (resolv.conf timeout:1, attempts:1) per query, 3-4 s
    // here, past the 1.5 s lookup deadline. On the wire (dns-wire asks A) the resolver is fine.
    name: 'DNS: the resolver answers A but never AAAA',
    fault: { kind: 'dns-no-aaaa' },
    cells: [
      // Some nodes' short-name lookups succeed again after a while (two CI runs: one cell green over 2 s and over
      // 5 s, 9 and 14 s into the fault; not explained yet, glibc's handling of the lost AAAA answers is the suspect).
      // The row's detection, its findings and its recovery are still checked in full.
      { probe: 'dns-lookup', red: all, reasons: ['LOOKUP_TIMEOUT'], codes: ['TIMEOUT'], lasting: false },
      // The Service target by name resolves through getaddrinfo too; the one by address does not.
      { probe: 'service', red: column('pingfleet-agent:'), reasons: ['LOOKUP_TIMEOUT'], codes: ['TIMEOUT'] },
      { probe: 'dns-wire', red: none, reasons: [] },
      podGreen
    ],
    metrics: [
      { name: 'pingfleet_dns_errors_total', labels: { path: 'getaddrinfo', reason: 'LOOKUP_TIMEOUT' }, expect: 'up' },
      { name: 'pingfleet_dns_errors_total', labels: { path: 'wire' }, expect: 'flat' },
      errors({ probe: 'pod' }, 'flat')
    ],
    // The wire answers, getaddrinfo fails: the path, not the resolver.
    findings: [{ kind: 'dns-path', subject: { type: 'resolver', resolver: DNS.ip } }],
    // No lookup fails early here (the unreachable row's fully qualified names give up after 1 s): every one of
    // the 24 cells needs a lookup begun after injection to run its whole 1.5 s deadline, within one snapshot.
    // One more interval for the last of them (one full run measured 5.35 s at a load average of 12).
    detectWithinMs: within('dns-lookup') + INTERVAL_MS,
    // Lookups begun before removal still wait out glibc's timeouts (up to 4 s).
    recoverWithinMs: clears('dns-lookup') + 4000,
    needs: ['PINGFLEET_DNS_NAMES', 'PINGFLEET_RESOLV_CONF']
  },
  {
    name: 'DNS unreachable from cilium (UDP and TCP 53 dropped)',
    fault: { kind: 'nft', rules: [`ip saddr ${SUBNET.cilium} ip daddr ${DNS.ip} meta l4proto { tcp, udp } th dport 53 drop`] },
    cells: [
      // resolv.conf says timeout:1 attempts:1: a fully qualified name gives up after 1 s (EAI_AGAIN), a short
      // one walks the search list for 4 s, past the 1.5 s lookup timeout. Never ENOTFOUND.
      { probe: 'dns-lookup', red: fromGroup('cilium'), reasons: ['EAI_AGAIN', 'LOOKUP_TIMEOUT'], codes: ['EAI_AGAIN', 'TIMEOUT'] },
      { probe: 'dns-wire', red: fromGroup('cilium'), reasons: ['DNS_TIMEOUT'], codes: ['UDP_TIMEOUT', 'TCP_TIMEOUT'] },
      podGreen
    ],
    metrics: [
      { name: 'pingfleet_dns_errors_total', labels: { src_group: 'cilium', path: 'wire', reason: 'DNS_TIMEOUT' }, expect: 'up' },
      { name: 'pingfleet_dns_errors_total', labels: { src_group: 'aws' }, expect: 'flat' },
      { name: 'pingfleet_dns_errors_total', labels: { reason: 'ENOTFOUND' }, expect: 'flat' },
      errors({ probe: 'pod' }, 'flat')
    ],
    // Not dns-resolver: the resolver answers aws.
    findings: [{ kind: 'dns-group', subject: { type: 'group', group: 'cilium' } }],
    detectWithinMs: within('dns-lookup'),
    // Lookups stuck in getaddrinfo keep their threads on libc's schedule (up to 4 s) after the path is back;
    // lookups queued behind them can still time out.
    recoverWithinMs: clears('dns-lookup') + 4000,
    needs: ['PINGFLEET_DNS_NAMES', 'PINGFLEET_DNS_SERVERS', 'PINGFLEET_RESOLV_CONF']
  },
  {
    name: `Service DNAT sends ${BAD_BACKEND}'s share to a wrong port`,
    fault: { kind: 'service-backend', node: BAD_BACKEND, port: 9 },
    cells: [
      { probe: 'service', red: all, reasons: ['ECONNREFUSED'], codes: ['ECONNREFUSED'], mode: 'any' },
      podGreen
    ],
    metrics: [errors({ probe: 'service', reason: 'ECONNREFUSED' }, 'up'), nodeErrors(BAD_BACKEND, 'in', 'pod', 'flat')],
    serviceFlagged: [BAD_BACKEND],
    // Both Service targets are the one Service (by address and by name): one finding naming both (docs/findings.md).
    findings: [{ kind: 'service-path', subject: { type: 'service', id: `service/${[`${VIP.ip}:${VIP.port}`, `pingfleet-agent:${VIP.port}`].sort().join(',')}` } }],
    detectWithinMs: within('service'),
    recoverWithinMs: clears('service'),
    needs: ['PINGFLEET_SERVICE_TARGETS']
  },
  {
    name: 'egress blocked for cilium',
    fault: { kind: 'nft', rules: [`ct state new ip saddr ${SUBNET.cilium} ip daddr ${EXTERNAL.ip} drop`] },
    cells: [
      { probe: 'http', red: fromGroup('cilium'), reasons: ['CONNECT_TIMEOUT'], codes: CONNECT_TIMEOUT_CODES },
      { probe: 'tcp', red: fromGroup('cilium'), reasons: ['CONNECT_TIMEOUT'], codes: CONNECT_TIMEOUT_CODES },
      podGreen
    ],
    metrics: [
      errors({ probe: 'http', src_group: 'cilium' }, 'up'),
      errors({ probe: 'tcp', src_group: 'cilium' }, 'up'),
      errors({ probe: 'http', src_group: 'aws' }, 'flat'),
      errors({ probe: 'tcp', src_group: 'aws' }, 'flat')
    ],
    findings: [{ kind: 'egress', subject: { type: 'group', group: 'cilium' } }],
    detectWithinMs: within('http'),
    recoverWithinMs: clears('http'),
    needs: ['PINGFLEET_HTTP_TARGETS', 'PINGFLEET_TCP_TARGETS']
  },
  {
    name: `MTU black hole on ${MTU_DST} → ${MTU_SRC} (packets over 1400 bytes dropped)`,
    fault: { kind: 'nft', rules: [`ip saddr ${ip(MTU_DST)} ip daddr ${ip(MTU_SRC)} meta length > 1400 drop`] },
    cells: [
      // Only the large answer from MTU_DST to MTU_SRC crosses the hole; the 800-byte size stays green.
      { probe: 'mtu', red: and(fromNode(MTU_SRC), column(`${MTU_DST}/8500`)), reasons: ['MTU_BLACKHOLE'], codes: ['HEADERS_TIMEOUT', 'BODY_TIMEOUT'] },
      podGreen
    ],
    metrics: [
      errors({ probe: 'mtu', src_group: groupOf(MTU_SRC), dst_group: groupOf(MTU_DST), reason: 'MTU_BLACKHOLE' }, 'up'),
      errors({ probe: 'pod' }, 'flat')
    ],
    // One path is no finding's subject: the contract names nodes, group pairs and targets, never a node
    // pair, and a node side needs MIN_FAILING_PEERS (3) failing peers (docs/findings.md), so no finding is
    // right here. The MTU black hole a migration makes is the next row's, between the groups.
    findings: [],
    detectWithinMs: within('mtu'),
    recoverWithinMs: clears('mtu'),
    needs: ['PINGFLEET_MTU_SIZES', 'PINGFLEET_MTU_TIMEOUT']
  },
  {
    // A migration's classic: the new CNI encapsulates, so the path between the groups carries less than
    // the pods' MTU. Every large answer from cilium to aws is dropped; small ones pass.
    name: 'MTU black hole between the groups (cilium → aws packets over 1400 bytes dropped)',
    fault: { kind: 'nft', rules: [`ip saddr ${SUBNET.cilium} ip daddr ${SUBNET.aws} meta length > 1400 drop`] },
    cells: [
      // The large answers of aws's probes into cilium cross the hole; cilium's probes into aws get theirs the other way.
      { probe: 'mtu', red: and(across('aws', 'cilium'), size(8500)), reasons: ['MTU_BLACKHOLE'], codes: ['HEADERS_TIMEOUT', 'BODY_TIMEOUT'] },
      podGreen
    ],
    metrics: [
      errors({ probe: 'mtu', src_group: 'aws', dst_group: 'cilium', reason: 'MTU_BLACKHOLE' }, 'up'),
      errors({ probe: 'mtu', src_group: 'cilium', dst_group: 'aws' }, 'flat'),
      errors({ probe: 'pod' }, 'flat')
    ],
    // One finding for the link, not one per cilium node.
    findings: [{ kind: 'mtu', subject: { type: 'group-pair', src: 'aws', dst: 'cilium', bothWays: false } }],
    detectWithinMs: within('mtu'),
    recoverWithinMs: clears('mtu'),
    needs: ['PINGFLEET_MTU_SIZES', 'PINGFLEET_MTU_TIMEOUT']
  },
  {
    name: `inbound /ping port of ${BLOCKED_IN} blocked while its agent stays connected: its batch gate fails, another batch's passes`,
    fault: { kind: 'nft', rules: [`ip daddr ${ip(BLOCKED_IN)} tcp dport ${AGENT_PORT} drop`] },
    cells: [
      { probe: 'pod', red: toNode(BLOCKED_IN), reasons: ['CONNECT_TIMEOUT'], codes: CONNECT_TIMEOUT_CODES },
      { probe: 'mtu', red: toNode(BLOCKED_IN), reasons: ['CONNECT_TIMEOUT'], codes: CONNECT_TIMEOUT_CODES }
    ],
    metrics: [
      nodeErrors(BLOCKED_IN, 'in', 'pod', 'up'),
      nodeErrors(BLOCKED_IN, 'out', 'pod', 'flat'),
      // Its uplink is an outgoing connection: untouched, so the agent is connected and reporting.
      { name: 'pingfleet_agents_connected', labels: { group: 'aws' }, expect: 3 }
    ],
    coverage: { aws: 1, cilium: 1 },
    gates: [
      { query: batchGate([BLOCKED_IN]), verdict: 'fail', why: `the batch of ${BLOCKED_IN} alone: nothing reaches it` },
      { query: batchGate(['aws-3', 'cilium-2']), verdict: 'pass', why: 'another batch, across both groups: its nodes are fine' },
      // The same batch judged by a group gate passes or fails with the whole group: it cannot tell batches apart.
      { query: 'probe=pod&src=*&dst=aws&maxErrorRatio=0.1&window=2s&minSamples=1', verdict: 'fail', why: 'the group gate into aws sees a third of aws refusing' }
    ],
    findings: [nodeFinding('node-inbound', BLOCKED_IN)],
    detectWithinMs: within('mtu'),
    recoverWithinMs: clears('mtu'),
    needs: ['PINGFLEET_MTU_SIZES']
  },
  {
    name: `agent on ${KILLED} killed (SIGKILL)`,
    fault: { kind: 'kill-agent', node: KILLED },
    cells: [
      // Peers keep probing it for the aggregator's peer TTL: nothing listens, so the kernel refuses.
      { probe: 'pod', red: involving(KILLED), absentOk: fromNode(KILLED), reasons: ['ECONNREFUSED'], codes: ['ECONNREFUSED'] }
    ],
    metrics: [
      nodeErrors(KILLED, 'in', 'pod', 'up'),
      { name: 'pingfleet_agents_connected', labels: { group: 'cilium' }, expect: 2 }
    ],
    disconnected: [KILLED],
    coverage: { cilium: 2 / 3, aws: 1 },
    // Its last green report stays in the 2 s query window for up to one more interval.
    // Its agent is cut off and peers fail toward it: both directions are gone.
    findings: [nodeFinding('node-isolated', KILLED)],
    detectWithinMs: within(null) + INTERVAL_MS,
    // Recovery here is a restarted agent: process start, hello, first report.
    recoverWithinMs: clears('pod') + 5000,
    needs: []
  }
]
