// Durations as people write them in env vars and query strings: 500ms, 5s, 15m, 1h.

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }
const PATTERN = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/

/** Milliseconds, or null when the text is not a positive duration. */
export function parseDuration (text: string): number | null {
  const match = PATTERN.exec(text.trim())
  if (match === null) return null
  const ms = Number(match[1]) * UNITS[match[2]!]!
  return ms > 0 && Number.isFinite(ms) ? Math.round(ms) : null
}

export function formatDuration (ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`
  if (ms % 60_000 === 0) return `${ms / 60_000}m`
  if (ms % 1000 === 0) return `${ms / 1000}s`
  return `${ms}ms`
}
