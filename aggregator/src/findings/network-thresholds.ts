// Every threshold the network findings judge by, in one place, each with why it has its value.
// docs/findings.md ("How findings are evaluated") explains them for people.

/**
 * The window the network evaluator is meant to read (ms): FindingsContext.windowMs. 30 s is six
 * 5 s intervals. A cell counts as failing once half its window's probes fail (CELL_FAIL_RATIO), so a
 * node that dies outright is found about 15–20 s (3–4 intervals) after it dies and is resolved as
 * quickly after it heals. A shorter window reacts faster but judges each pair on fewer probes (one
 * lost probe of 3 already makes 33%); a longer one is steadier but slower to open and to close.
 */
export const NETWORK_WINDOW_MS = 30_000

/**
 * mtu and udp probes run every 30 s by default (agent PINGFLEET_MTU_INTERVAL, PINGFLEET_UDP_INTERVAL),
 * so a 30 s window may hold none of them: those kinds are read over at least this long (ms).
 */
export const SLOW_PROBE_WINDOW_MS = 60_000

/** A cell (one source toward one peer) fails when at least this share of its probes failed. */
export const CELL_FAIL_RATIO = 0.5

/**
 * The recent sub-window (ms) the evaluator confirms a detection on: this share of the window (60 s:
 * the last 12 s, two to three 5 s intervals; the e2e suite's 10 s: the last 2 s, two to three 1 s
 * intervals, as the store counts every slot that overlaps it). The DNS, Service and egress
 * evaluators confirm on the same span (dns-service-input.ts).
 * A finding must be about what is still happening: a fault that was removed drains out of the window
 * for a whole window, and what is left of it then (failures toward a node whose agent restarted, a
 * lossy node's datagrams) must not open a new, narrower finding.
 */
export const RECENT_WINDOW_SHARE = 0.2

/** The recent sub-window for an evaluation window of `windowMs` (ms). */
export function recentWindowMs (windowMs: number): number {
  return Math.round(windowMs * RECENT_WINDOW_SHARE)
}

/**
 * A failing pod cell counts toward a node or boundary cause only while it still fails: at least this
 * share of its probes in the recent sub-window failed. A broken path (a dead node, a dropped port or
 * boundary) fails every probe; a lossy path fails some: with 30% packet loss a cell fails ~a third of
 * its probes and, over a short window, crosses CELL_FAIL_RATIO now and then, but rarely fails all of
 * its recent probes as well. Cells with no recent probe do not count.
 */
export const STILL_FAILING_RATIO = 0.8

/**
 * A one-sided node finding (node-inbound, node-outbound) needs the node's other side seen over the
 * recent sub-window: its probes per peer there at least this share of the failing side's. Healthy
 * sides differ by a probe's jitter (±10% of an interval); an agent back for one report of two or
 * three has a half or a third.
 */
export const RECENT_COVERAGE = 0.75

/**
 * A candidate cause (a node's inbound side, its outbound side, or the link between two groups) is
 * accepted when at least this share of the cells through it that nothing accepted before explains
 * fail: deTector's "hit ratio" (Peng et al., ATC 2018, §4.3), NetBouncer's per-link failure
 * probability threshold (Tan et al., NSDI 2019, §4). 0.6: a boundary that fails one way between two
 * equal groups fails half of each node's cells, which must not make every node a suspect.
 */
export const HIT_RATIO = 0.6

/**
 * A candidate needs at least this many failing cells of its own (distinct peers for a node side,
 * distinct node pairs for a group link): with fewer, one flaky pair is no fault.
 */
export const MIN_FAILING_PEERS = 3

/**
 * Loss: a node side or group link is lossy when at least this share of its udp datagrams, or of
 * its successful connects (a SYN retransmit each, CONNECT_PROBE_KINDS), was lost; and it has at
 * least MIN_LOSS_PACKETS datagrams or connects to judge by. A healthy pod network loses well under
 * 0.1%; 2% is far above noise and well below what makes probes fail outright.
 */
export const LOSS_RATIO = 0.02
export const MIN_LOSS_PACKETS = 50

/**
 * Loss is judged against the rest of the fleet: a side or link is lossy only when its loss is at
 * least this many times the fleet's loss outside it (so loss everywhere is one fleet-wide symptom,
 * found per group link, not a node finding each).
 */
export const LOSS_EXCESS = 3

/**
 * Once a cause's loss is taken out of the candidates it overlaps (spread by its loss ratio over the
 * peers they share), what is left must exceed LOSS_RATIO by this many standard deviations of what was
 * taken out (lost datagrams are counts: sd ≈ √taken). Without it, a lossy node's random share left on
 * its group links and on its peers' sides reads as loss of its own there.
 */
export const LOSS_NOISE_SD = 3

/**
 * Where the recent sub-window (RECENT_WINDOW_SHARE) holds at least this many packets of a subject,
 * its loss must show there too (LOSS_RATIO): loss read over a minute outlives its fault by a minute.
 */
export const MIN_RECENT_LOSS_PACKETS = 20

/** How many cells a finding quotes as evidence, worst first (finding.ts: at most 10). */
export const EVIDENCE_CELLS = 10
/** How many reasons a finding quotes, dominant first (finding.ts: at most 3). */
export const EVIDENCE_REASONS = 3
