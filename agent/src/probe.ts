// What every probe is: a function from a target and an abort signal to one result.
// Timeouts, retries and timing wrap probes (see scheduler); they are not special cases inside them.

import type { ProbeKind, Reason } from '@pingfleet/protocol'

/** Phase timings in seconds, where the probe has such a phase. */
export interface Phases {
  dns?: number
  connect?: number
  tls?: number
  firstByte?: number
}

export type ProbeResult =
  | { ok: true, seconds: number, phases?: Phases, detail?: Record<string, string | number> }
  | { ok: false, reason: Reason, raw: string, seconds: number, phases?: Phases, detail?: Record<string, string | number> }

/** One thing to probe. `id` is the matrix column the result is recorded under. */
export interface Target {
  kind: ProbeKind
  id: string
}

export type Probe<T extends Target = Target> = (target: T, signal: AbortSignal) => Promise<ProbeResult>
