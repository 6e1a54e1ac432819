// What every JSON route shares: the error body's schema and the `window` query parameter.

import { formatDuration, parseDuration } from '@pingfleet/protocol'
import { badQuery } from './errors.ts'

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
