// Agent authentication in serviceAccount mode: each agent's projected ServiceAccount token is
// checked with a TokenReview (audience pingfleet), must belong to the agents' ServiceAccount, and
// yields the node (and pod) it was issued for, which the agent's hello must then match.
// Results are cached briefly by a hash of the token, never the token itself.

import { createHash } from 'node:crypto'
import { AggregatorError, ERR_TOKEN_REVIEW_UNAVAILABLE, ERR_UNAUTHORIZED } from '../errors.ts'
import type { KubeClient } from './client.ts'
import type { Authenticator, Identity } from '../auth.ts'

export const NODE_NAME_EXTRA = 'authentication.kubernetes.io/node-name'
export const POD_NAME_EXTRA = 'authentication.kubernetes.io/pod-name'
export const TOKEN_REVIEW_PATH = '/apis/authentication.k8s.io/v1/tokenreviews'

export type Review = { ok: true, identity: Identity } | { ok: false, reason: string }

interface TokenReviewStatus {
  authenticated?: boolean
  audiences?: string[]
  error?: string
  user?: { username?: string, extra?: Record<string, string[]> }
}

export interface TokenReviewerOptions {
  client: KubeClient
  audience: string
  /** system:serviceaccount:<namespace>:<name> of the agents. */
  serviceAccount: string
  /** A pod's node from discovery, for tokens that carry a pod but no node. */
  nodeOfPod?: (pod: string) => string | null
  ttlMs?: number
  /** Denials are kept shorter, so a fixed agent is let in soon. */
  deniedTtlMs?: number
  maxEntries?: number
  now?: () => number
}

export class TokenReviewer {
  private readonly options: TokenReviewerOptions
  private readonly cache = new Map<string, { review: Review, until: number }>()
  private readonly inFlight = new Map<string, Promise<Review>>()
  private readonly now: () => number
  /** TokenReviews actually sent, for tests and the log. */
  requests = 0

  constructor (options: TokenReviewerOptions) {
    this.options = options
    this.now = options.now ?? Date.now
  }

  /**
   * Reviews a bearer token. Resolves to an identity or a denial; throws an AggregatorError
   * (PINGFLEET_ERR_TOKEN_REVIEW_UNAVAILABLE, 503) when the API cannot be asked. That is not cached.
   */
  async review (token: string, options: { fresh?: boolean } = {}): Promise<Review> {
    const key = createHash('sha256').update(token).digest('base64url')
    const now = this.now()
    const hit = this.cache.get(key)
    if (hit !== undefined && hit.until > now && options.fresh !== true) return hit.review
    if (hit !== undefined) this.cache.delete(key)
    let pending = this.inFlight.get(key)
    if (pending === undefined) {
      pending = this.ask(token).then(review => {
        this.remember(key, review)
        return review
      }).finally(() => this.inFlight.delete(key))
      this.inFlight.set(key, pending)
    }
    return pending
  }

  private remember (key: string, review: Review): void {
    const max = this.options.maxEntries ?? 4096
    // Map order is insertion order: the first entries are the oldest.
    while (this.cache.size >= max) this.cache.delete(this.cache.keys().next().value!)
    this.cache.set(key, { review, until: this.now() + (review.ok ? this.options.ttlMs ?? 60_000 : this.options.deniedTtlMs ?? 10_000) })
  }

  private async ask (token: string): Promise<Review> {
    this.requests++
    let answer: { status?: TokenReviewStatus }
    try {
      answer = await this.options.client.json('POST', TOKEN_REVIEW_PATH, {
        apiVersion: 'authentication.k8s.io/v1',
        kind: 'TokenReview',
        spec: { token, audiences: [this.options.audience] }
      })
    } catch (err) {
      throw new AggregatorError(ERR_TOKEN_REVIEW_UNAVAILABLE, `TokenReview failed: ${(err as Error).message}`, 503)
    }
    const status = answer.status ?? {}
    if (status.authenticated !== true) return { ok: false, reason: `token not authenticated${status.error === undefined ? '' : `: ${status.error}`}` }
    // An authenticated review without our audience means the token is for the API server itself.
    if (!(status.audiences ?? []).includes(this.options.audience)) return { ok: false, reason: `token is not for audience ${this.options.audience}` }
    const username = status.user?.username ?? ''
    if (username !== this.options.serviceAccount) return { ok: false, reason: `${username || 'the token\'s user'} is not the agents' service account ${this.options.serviceAccount}` }
    const extra = status.user?.extra ?? {}
    const pod = extra[POD_NAME_EXTRA]?.[0] ?? null
    const node = extra[NODE_NAME_EXTRA]?.[0] ?? (pod === null ? null : this.options.nodeOfPod?.(pod) ?? null)
    return { ok: true, identity: { username, node, pod } }
  }
}

/** The websocket's authenticator for serviceAccount mode: 401 on a denial, 503 when the API cannot be asked. */
export function tokenReviewAuth (reviewer: TokenReviewer): Authenticator {
  return async (token, options) => {
    try {
      const review = await reviewer.review(token, options)
      return review.ok ? { ok: true, identity: review.identity } : { ok: false, status: 401, code: ERR_UNAUTHORIZED, message: review.reason }
    } catch (err) {
      return { ok: false, status: 503, code: ERR_TOKEN_REVIEW_UNAVAILABLE, message: (err as Error).message }
    }
  }
}
