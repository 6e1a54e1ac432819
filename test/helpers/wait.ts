// Polls until a condition yields a value: the one way suites wait for a fleet to converge.

/** Calls fn every `everyMs` until it returns something other than undefined; errors count as "not yet". */
export async function until<T> (what: string, fn: () => Promise<T | undefined>, timeoutMs: number, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  while (Date.now() < deadline) {
    try {
      const value = await fn()
      if (value !== undefined) return value
    } catch (err) { last = err }
    await new Promise(resolve => setTimeout(resolve, everyMs))
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last === undefined ? '' : `: ${String(last)}`}`)
}

/** until(), also returning how long the wait took: detection and recovery times. */
export async function timedUntil<T> (what: string, fn: () => Promise<T | undefined>, timeoutMs: number): Promise<{ value: T, ms: number }> {
  const start = Date.now()
  const value = await until(what, fn, timeoutMs)
  return { value, ms: Date.now() - start }
}
