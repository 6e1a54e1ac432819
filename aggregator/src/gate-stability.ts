// The stability rule of gates (`passFor`): a gate passes only once every check has passed at every
// evaluation for `passFor`; any evaluation that does not pass restarts the clock. Until then the
// verdict is insufficient_data, with a `passFor` check saying how long it has passed so far. This is
// what keeps a verdict from flapping fail → pass → fail right after a recovery.

import { formatDuration } from '@pingfleet/protocol'
import type { Check, GateResult, Verdict } from './gate-eval.ts'

/** Evaluations tracked at once (named gates and their scoped reads); the least recently used go first. */
export const STABILITY_KEYS_LIMIT = 256

/** Tracks, per gate (and per node scope it is read with), since when it has passed without a break. */
export class StabilityTracker {
  private readonly passingSince = new Map<string, number | null>()

  /**
   * Applies `passForMs` to a freshly evaluated result and returns it, with a `passFor` check added
   * (an unchanged result when passForMs is 0). `key` names what is evaluated: the gate, or the gate
   * and a node scope. `now` is the evaluation's time in epoch ms.
   */
  apply (key: string, passForMs: number, result: GateResult, now: number): GateResult {
    if (passForMs <= 0) return result
    let since = this.passingSince.get(key) ?? null
    this.passingSince.delete(key) // re-inserted last: Map order is the LRU order
    since = result.verdict === 'pass' ? since ?? now : null
    this.passingSince.set(key, since)
    while (this.passingSince.size > STABILITY_KEYS_LIMIT) this.passingSince.delete(this.passingSince.keys().next().value!)
    const passingMs = since === null ? 0 : now - since
    const stable = since !== null && passingMs >= passForMs
    const check: Check = {
      id: 'passFor',
      criterion: 'passFor',
      verdict: stable ? 'pass' : 'insufficient_data',
      observed: passingMs / 1000,
      threshold: passForMs / 1000,
      samples: null,
      window: formatDuration(passForMs),
      detail: since === null
        ? `not passing now; a pass counts once every check has passed for ${formatDuration(passForMs)} without a break`
        : `every check has passed at each evaluation since ${new Date(since).toISOString()} (${formatDuration(Math.round(passingMs))} of the ${formatDuration(passForMs)} required)`
    }
    const checks = [...result.checks, check]
    const summary: Record<Verdict, number> = { pass: 0, fail: 0, insufficient_data: 0 }
    for (const c of checks) summary[c.verdict]++
    const verdict: Verdict = summary.fail > 0 ? 'fail' : summary.insufficient_data > 0 ? 'insufficient_data' : 'pass'
    return { ...result, verdict, summary, checks }
  }
}
