// A Service's backend coverage for gates, from the service view: the source group with the lowest
// ratio of backends answering through the Service to backends reachable directly.

import type { ServiceView } from '../views/service.ts'

/** Backend coverage of one Service in a window, for the source group where it is lowest. */
export interface ServiceBackends {
  /** Backends that answered through the Service. */
  reachable: number
  /** Those plus backends reached directly (pod probes, no errors) that the Service never handed out. */
  expected: number
  /** Service probes in the window, all source groups. */
  samples: number
  group: string
  /** Source groups with too few answers yet to tell a missing backend from chance. */
  unjudged: string[]
  /** The span (ms since the epoch) the service view covered, when known. */
  from?: number
  to?: number
}

/** Backend coverage of a Service over a window (ms); null when no service probe reported it. */
export type ServiceBackendsOf = (service: string, windowMs: number) => ServiceBackends | null

/**
 * Service backend coverage from the service view: the source group with the lowest ratio. The view
 * scans the node store, so answers are reused for `reuseMs` (every gate asking in one tick shares one).
 */
export function serviceBackendsFrom (view: (service: string, windowMs: number) => ServiceView, now: () => number = Date.now, reuseMs = 1000): ServiceBackendsOf {
  const cache = new Map<string, { at: number, value: ServiceBackends | null }>()
  return (service, windowMs) => {
    const t = now()
    const key = `${windowMs} ${service}`
    const hit = cache.get(key)
    if (hit !== undefined && t - hit.at >= 0 && t - hit.at < reuseMs) return hit.value
    if (cache.size > 1000) cache.clear()
    const value = backendsOf(view(service, windowMs), service)
    cache.set(key, { at: t, value })
    return value
  }
}

function backendsOf (view: ServiceView, service: string): ServiceBackends | null {
  let worst: ServiceBackends | null = null
  let samples = 0
  const unjudged: string[] = []
  for (const row of view.rows) {
    if (row.service !== service) continue
    samples += row.samples
    if (!row.judged) {
      unjudged.push(row.src)
      continue
    }
    const reachable = row.backends.length
    const expected = reachable + row.flagged.length
    if (worst === null || reachable * worst.expected < worst.reachable * expected) worst = { reachable, expected, samples: 0, group: row.src, unjudged }
  }
  if (worst === null && unjudged.length === 0) return null
  return { ...(worst ?? { reachable: 0, expected: 0, group: unjudged[0]! }), samples, unjudged, from: Date.parse(view.from), to: Date.parse(view.to) }
}
