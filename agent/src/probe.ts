// What every probe is: a function from a target and an abort signal to one result.
// Timeouts, retries and timing wrap probes (see scheduler); they are not special cases inside them.

import type { Phase, ProbeKind, Reason } from '@pingfleet/protocol'

/**
 * Phase timings in seconds, where the probe went through such a phase (protocol PHASES: `dns` only when
 * a name was resolved, `tls` only for https). results.ts folds them into the cell's `phases`.
 */
export type Phases = Partial<Record<Phase, number>>

interface Common {
  seconds: number
  phases?: Phases
  /**
   * The probe's own timing was untrustworthy, e.g. a lookup waited for a saturated threadpool.
   * The scheduler adds event-loop lateness on top; either way the sample counts as lagged.
   */
  lagged?: boolean
  /**
   * Milliseconds the agent's own machinery held the probe before the network got it (the lookup pool's
   * threadpool canary wait): added to the loop's stalls when judging whether a timeout was the agent's doing.
   */
  heldMs?: number
  detail?: Record<string, string | number>
  /** udp probes: what the train's datagrams did (see probes/udp.ts for what counts). */
  datagrams?: { sent: number, lost: number, jitterUs: number, jitterPairs: number }
}

export type ProbeResult =
  /** `backend`: the node that answered, where the target is a Service in front of several. */
  | Common & { ok: true, backend?: string }
  | Common & { ok: false, reason: Reason, raw: string }

/** One thing to probe. `id` is the matrix column the result is recorded under. */
export interface Target {
  kind: ProbeKind
  id: string
}

export type Probe<T extends Target = Target> = (target: T, signal: AbortSignal) => Promise<ProbeResult>
