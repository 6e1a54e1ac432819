// Agent authentication, the contract between the websocket (http/stream.ts) and its two
// implementations: the static shared token (here) and TokenReview (kube/token-review.ts).

import { timingSafeEqual } from 'node:crypto'
import { ERR_UNAUTHORIZED } from './errors.ts'

/** Who a token belongs to. node is null when neither the token nor discovery says (Kubernetes < 1.30). */
export interface Identity {
  username: string
  node: string | null
  pod: string | null
}

/**
 * Checks a bearer token before the upgrade. `identity` is who a reviewed token belongs to (null for
 * the static token); a refusal carries the HTTP status (401 bad token, 503 cannot check) and a code.
 */
export type AuthOutcome = { ok: true, identity: Identity | null } | { ok: false, status: 401 | 503, code: string, message: string }

/** `fresh`: ask again instead of answering from a cache (the periodic re-review of open connections). Never rejects. */
export type Authenticator = (token: string, options?: { fresh?: boolean }) => Promise<AuthOutcome>

/** The static-token check: one shared secret, compared in constant time. */
export function staticAuth (expected: string): Authenticator {
  const want = Buffer.from(expected)
  return async token => {
    const given = Buffer.from(token)
    return given.length === want.length && timingSafeEqual(given, want)
      ? { ok: true, identity: null }
      : { ok: false, status: 401, code: ERR_UNAUTHORIZED, message: 'missing or wrong bearer token' }
  }
}
