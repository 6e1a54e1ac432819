// Error codes of the aggregator. Each carries the HTTP status it maps to where one applies.

export class AggregatorError extends Error {
  readonly code: string
  readonly statusCode: number
  constructor (code: string, message: string, statusCode = 500) {
    super(message)
    this.name = 'AggregatorError'
    this.code = code
    this.statusCode = statusCode
  }
}

export const ERR_CONFIG = 'PINGFLEET_ERR_CONFIG'
export const ERR_BAD_QUERY = 'PINGFLEET_ERR_BAD_QUERY'
export const ERR_MATRIX_TOO_LARGE = 'PINGFLEET_ERR_MATRIX_TOO_LARGE'
export const ERR_UNAUTHORIZED = 'PINGFLEET_ERR_UNAUTHORIZED'
export const ERR_NOT_FOUND = 'PINGFLEET_ERR_NOT_FOUND'
export const ERR_BODY_TOO_LARGE = 'PINGFLEET_ERR_BODY_TOO_LARGE'

export function badQuery (message: string): AggregatorError {
  return new AggregatorError(ERR_BAD_QUERY, message, 400)
}
/** A Kubernetes API call failed (unreachable, non-2xx, unreadable token): discovery retries with backoff. */
export const ERR_KUBE_API = 'PINGFLEET_ERR_KUBE_API'
/** TokenReview could not be asked (API unreachable or refusing): the agent is refused with 503 and retries. */
export const ERR_TOKEN_REVIEW_UNAVAILABLE = 'PINGFLEET_ERR_TOKEN_REVIEW_UNAVAILABLE'
/** A reviewed token's node differs from the node its hello claims: the websocket is closed with 4003. */
export const ERR_NODE_MISMATCH = 'PINGFLEET_ERR_NODE_MISMATCH'
/** Two agent processes (different bootIds) claim one node; the one not kept is closed with 4009. */
export const ERR_DUPLICATE_NODE = 'PINGFLEET_ERR_DUPLICATE_NODE'
/** An agent's clock differs from the aggregator's by more than CLOCK_WARN_MS (logged, not refused). */
export const ERR_CLOCK_OFFSET = 'PINGFLEET_ERR_CLOCK_OFFSET'
