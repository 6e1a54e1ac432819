// An aggregator started in-process whose findings evaluation is synthetic: the test sets what each
// evaluation detects and waits for evaluations to happen, on the engine's own timer.

import pino, { type Logger } from 'pino'
import { startAggregator, type Aggregator } from '../../src/app.ts'
import { loadConfig } from '../../src/config.ts'
import type { Detection } from '../../src/findings/finding.ts'
import type { FindingsContext } from '../../src/findings/input.ts'
import { TOKEN } from '../helpers.ts'

export interface SyntheticFleet {
  agg: Aggregator
  url: string
  /** What every evaluation from now on detects; a function may throw to make an evaluation fail. */
  detect: (next: Detection[] | (() => Detection[])) => void
  /** Resolves once `n` more evaluations have run (or thrown). */
  evaluations: (n: number) => Promise<void>
  /** The contexts the evaluations were given, latest last. */
  contexts: FindingsContext[]
}

/**
 * An aggregator evaluating findings every 200 ms with a synthetic evaluation, detecting `initial`
 * until told otherwise, with more configuration in `env`; close it with `agg.close()`.
 */
export async function syntheticFleet (log: Logger = pino({ level: 'silent' }), initial: Detection[] | (() => Detection[]) = [], env: Record<string, string> = {}): Promise<SyntheticFleet> {
  let current = initial
  let count = 0
  const waiters: Array<{ at: number, resolve: () => void }> = []
  const contexts: FindingsContext[] = []
  const config = loadConfig({ PINGFLEET_LISTEN: '127.0.0.1:0', PINGFLEET_TOKEN: TOKEN, PINGFLEET_INTERVAL: '200ms', PINGFLEET_FINDINGS_WINDOW: '2s', ...env })
  const agg = await startAggregator(config, log, Date.now, {
    evaluateFindings: ctx => {
      contexts.push(ctx)
      if (contexts.length > 50) contexts.shift()
      count++
      for (const w of waiters.filter(w => count >= w.at)) {
        waiters.splice(waiters.indexOf(w), 1)
        setImmediate(w.resolve)
      }
      return typeof current === 'function' ? current() : current
    }
  })
  return {
    agg,
    url: agg.address(),
    contexts,
    detect: next => { current = next },
    evaluations: n => new Promise(resolve => waiters.push({ at: count + n, resolve }))
  }
}
