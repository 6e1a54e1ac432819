// The stability rule of gates (`passFor`): a gate passes only once every check has passed at every
// evaluation for `passFor`; any evaluation that does not pass restarts the clock. Until then the
// verdict is insufficient_data, with a `passFor` check saying how long it has passed so far. This is
// what keeps a verdict from flapping fail → pass → fail right after a recovery.

import { formatDuration } from '@pingfleet/protocol'
import type { Check, GateResult, Verdict } from './eval.ts'

/** One evaluation stream's clock: since when every evaluation has passed, or null. */
export interface StabilityClock {
  passingSince: number | null
}

/**
 * Applies `passForMs` to a freshly evaluated result and returns it with a `passFor` check added
 * (the result unchanged when passForMs is 0), advancing `clock`. `now` is the evaluation's time, ms.
 */
export function applyStability (clock: StabilityClock, passForMs: number, result: GateResult, now: number): GateResult {
  if (passForMs <= 0) return result
  const since = clock.passingSince = result.verdict === 'pass' ? clock.passingSince ?? now : null
  const passingMs = since === null ? 0 : now - since
  const stable = since !== null && passingMs >= passForMs
  const required = formatDuration(passForMs)
  const check: Check = {
    id: 'passFor',
    criterion: 'passFor',
    verdict: stable ? 'pass' : 'insufficient_data',
    observed: Math.floor(passingMs / 1000),
    threshold: passForMs / 1000,
    samples: null,
    window: null,
    detail: since === null
      ? `not passing now; a pass counts once every check has passed for ${required} without a break`
      : `every check has passed at each evaluation since ${new Date(since).toISOString()}: ${Math.floor(passingMs / 1000)} s of the ${required} required`
  }
  const checks = [...result.checks, check]
  const summary: Record<Verdict, number> = { pass: 0, fail: 0, insufficient_data: 0 }
  for (const c of checks) summary[c.verdict]++
  const verdict: Verdict = summary.fail > 0 ? 'fail' : summary.insufficient_data > 0 ? 'insufficient_data' : 'pass'
  return { ...result, verdict, summary, checks }
}
