// Shared checks for the phases a successful probe reports (probe.ts Phases, protocol PHASES): exactly
// the phases the probe went through, each a duration inside the probe, and together no longer than it.

import type { Test } from 'tap'
import { PHASE_NAMES, type Phase } from '@pingfleet/protocol'
import { LookupPool } from '../../src/lookup-pool.ts'
import type { ProbeResult } from '../../src/probe.ts'

/**
 * Asserts `result` succeeded with exactly the phases `names` (dns only where a name was resolved, tls
 * only for https), each ≥ 0 and ≤ the whole probe, and their sum ≤ the whole probe: the phases follow
 * one another and never overlap. `atLeast` gives lower bounds (seconds) for phases the test made slow.
 */
export function checkPhases (t: Test, result: ProbeResult, names: readonly Phase[], atLeast: Partial<Record<Phase, number>> = {}): void {
  t.equal(result.ok, true, 'the probe succeeded')
  const phases = result.phases ?? {}
  t.same(PHASE_NAMES.filter(p => phases[p] !== undefined), PHASE_NAMES.filter(p => names.includes(p)), `phases ${names.join(', ')}, no others`)
  let sum = 0
  for (const name of names) {
    const seconds = phases[name]!
    t.ok(Number.isFinite(seconds) && seconds >= 0, `${name} is a duration (${seconds} s)`)
    t.ok(seconds <= result.seconds, `${name} ≤ the whole probe (${seconds} ≤ ${result.seconds} s)`)
    const floor = atLeast[name]
    if (floor !== undefined) t.ok(seconds >= floor, `${name} covers what the test made slow (${seconds} ≥ ${floor} s)`)
    sum += seconds
  }
  // 1 ns of slack for float rounding: each phase is a difference of the same performance.now() readings.
  t.ok(sum <= result.seconds + 1e-9, `the phases add up to no more than the whole probe (${sum} ≤ ${result.seconds} s)`)
}

/** A lookup pool whose getaddrinfo answers `127.0.0.1` after `delayMs`: a DNS phase of known least length. */
export function slowLookupPool (delayMs: number): LookupPool {
  return new LookupPool({
    resolve: () => new Promise(resolve => setTimeout(() => resolve([{ address: '127.0.0.1', family: 4 }]), delayMs))
  })
}

/** What the tests make slow: 40 ms. The checks ask for 30 ms, since timers may fire a little early. */
export const SLOW_MS = 40
export const SLOW_FLOOR_SECONDS = 0.03
