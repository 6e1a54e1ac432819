// Keeps credentials out of everything the agent shows: target ids (matrix columns, /metrics series),
// log lines and config error lines. The URL itself, with its credentials, is only used to connect.

/**
 * Query parameters whose value is a credential, by name (case-insensitive, matched anywhere in the
 * name): `token`, `access_token`, `X-Amz-Signature`, `api_key`, `apikey`, `password`, `secret`,
 * `sig`, `auth`, `credential`, `session`. Their values are shown as `***`; the name stays, so two
 * targets still tell apart.
 */
export const CREDENTIAL_PARAM = /token|secret|passw|pwd|key|sig|auth|credential|session/i

/** What a redacted credential reads as. */
export const REDACTED = '***'

/**
 * The URL as it may be shown: a password in the userinfo becomes `***` (`http://user:***@host/`), a
 * user name alone (often a token, as in `https://<token>@host/`) becomes `***`, and so does the value
 * of every query parameter CREDENTIAL_PARAM matches. Text that is not a URL comes back unchanged.
 */
export function redactUrl (text: string): string {
  const url = URL.parse(text)
  if (url === null || !/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) return text
  let changed = false
  if (url.password !== '') {
    url.password = REDACTED
    changed = true
  } else if (url.username !== '') {
    url.username = REDACTED
    changed = true
  }
  const params = [...url.searchParams.keys()].filter(name => CREDENTIAL_PARAM.test(name))
  // Rebuild the query by hand: URLSearchParams would re-encode `***` as %2A%2A%2A.
  if (params.length > 0) {
    url.search = url.search.slice(1).split('&').map(pair => {
      const at = pair.indexOf('=')
      const name = decodeURIComponent((at < 0 ? pair : pair.slice(0, at)).replace(/\+/g, ' '))
      return CREDENTIAL_PARAM.test(name) && at >= 0 ? `${pair.slice(0, at)}=${REDACTED}` : pair
    }).join('&')
    changed = true
  }
  return changed ? url.href : text
}

/**
 * Every URL inside free text (an error line, a JSON-quoted list) redacted as redactUrl does, and any
 * other `user:password@` (a URL written without its scheme, which the config then refuses) as `user:***@`.
 */
export function redactText (text: string): string {
  return text
    .replace(/[a-z][a-z0-9+.-]*:\/\/[^\s"',]+/gi, url => redactUrl(url))
    .replace(/([^\s"',/:@]+):(?!\*\*\*@)[^\s"',/@]+@/g, `$1:${REDACTED}@`)
}

/**
 * The Basic credentials a URL's userinfo carries, as an Authorization header value, or undefined.
 * The userinfo is percent-decoded first (RFC 3986 3.2.1; RFC 7617 for the header).
 */
export function basicAuth (url: URL): string | undefined {
  if (url.username === '' && url.password === '') return undefined
  const pair = `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`
  return `Basic ${Buffer.from(pair, 'utf8').toString('base64')}`
}
