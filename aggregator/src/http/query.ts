// What every JSON route shares: the error body's schema, the `window` query parameter and the span an answer covers.

import { formatDuration, parseDuration } from '@pingfleet/protocol'
import { badQuery } from '../errors.ts'

export const errorSchema = {
  type: 'object',
  required: ['code', 'message'],
  properties: { code: { type: 'string' }, message: { type: 'string' } }
} as const

/** A `window=` value in milliseconds; a 400 with a clear message when it is not a duration or too long. */
export function queryWindow (text: string, maxWindowMs: number): number {
  const windowMs = parseDuration(text)
  if (windowMs === null) throw badQuery(`window=${JSON.stringify(text)} is not a duration such as 30s, 5m or 1h`)
  if (windowMs > maxWindowMs) throw badQuery(`window=${text} is longer than the ${formatDuration(maxWindowMs)} kept (PINGFLEET_MAX_WINDOW)`)
  return windowMs
}

/**
 * Schema of an answer's `from` or `to`: the span its data really covers, which whole time slots
 * make up to one interval longer or one coarse slot shorter than the window asked for (README, "Windows").
 */
export function spanEdge (edge: 'start' | 'end'): { type: 'string', format: 'date-time', description: string } {
  return {
    type: 'string',
    format: 'date-time',
    description: edge === 'start'
      ? 'start of the span the answer covers: for short windows less than one report interval before now - window; for long ones never before it, and later by at most one slot width'
      : 'end of the span the answer covers: the time of the answer'
  }
}
