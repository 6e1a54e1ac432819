// The first layer of a probe (address → resolve → connect → exchange → classify): how a host and a
// port are written and read back, shared by every probe kind and by the config.

import { isIP } from 'node:net'

/** `host:port`, with IPv6 literals in brackets: `[2001:db8::1]:443`. */
export function hostPort (host: string, port: number): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`
}

/**
 * Splits `host:port` or `[v6]:port` (surrounding blanks ignored); null when the text is not one, the
 * port is outside 1–65535, or the brackets hold something other than an IPv6 literal.
 */
export function parseHostPort (text: string): { host: string, port: number } | null {
  const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([^[\]:\s]+)):(\d{1,5})$/.exec(text.trim())
  if (match === null) return null
  const host = match[1] ?? match[2]!
  const port = Number(match[3])
  if (port < 1 || port > 65535 || (match[1] !== undefined && isIP(host) !== 6)) return null
  return { host, port }
}
