// Error codes of the aggregator, each with the HTTP status it is answered with where one applies.
// docs/errors.md explains each, and a test keeps the two equal.

import type { ErrorCatalogue } from '@pingfleet/protocol'

export const ERR_CONFIG = 'PINGFLEET_ERR_CONFIG'
export const ERR_BAD_QUERY = 'PINGFLEET_ERR_BAD_QUERY'
export const ERR_MATRIX_TOO_LARGE = 'PINGFLEET_ERR_MATRIX_TOO_LARGE'
export const ERR_UNAUTHORIZED = 'PINGFLEET_ERR_UNAUTHORIZED'
export const ERR_NOT_FOUND = 'PINGFLEET_ERR_NOT_FOUND'
export const ERR_BODY_TOO_LARGE = 'PINGFLEET_ERR_BODY_TOO_LARGE'
export const ERR_INTERNAL = 'PINGFLEET_ERR_INTERNAL'
export const ERR_KUBE_API = 'PINGFLEET_ERR_KUBE_API'
export const ERR_TOKEN_REVIEW_UNAVAILABLE = 'PINGFLEET_ERR_TOKEN_REVIEW_UNAVAILABLE'
export const ERR_NODE_MISMATCH = 'PINGFLEET_ERR_NODE_MISMATCH'
export const ERR_DUPLICATE_NODE = 'PINGFLEET_ERR_DUPLICATE_NODE'
export const ERR_CLOCK_OFFSET = 'PINGFLEET_ERR_CLOCK_OFFSET'
export const ERR_AGENT_SILENT = 'PINGFLEET_ERR_AGENT_SILENT'
export const ERR_SHUTDOWN = 'PINGFLEET_ERR_SHUTDOWN'
export const ERR_FINDINGS_EVALUATION = 'PINGFLEET_ERR_FINDINGS_EVALUATION'
export const ERR_REPORTS_MISSED = 'PINGFLEET_ERR_REPORTS_MISSED'

/** Every aggregator code. HTTP answers carry `{code, message}` with the status given here (http/error-handler.ts). */
export const AGGREGATOR_ERRORS = {
  [ERR_CONFIG]: { status: null, message: 'a configuration value or the gates file is invalid: the aggregator does not start (exit 78)' },
  [ERR_BAD_QUERY]: { status: 400, message: 'a request parameter is invalid or unknown' },
  [ERR_MATRIX_TOO_LARGE]: { status: 400, message: 'the matrix asked for has more cells than PINGFLEET_MAX_MATRIX_CELLS' },
  [ERR_UNAUTHORIZED]: { status: 401, message: 'an agent\'s bearer token is missing or not accepted: refused before the websocket upgrade' },
  [ERR_NOT_FOUND]: { status: 404, message: 'no such route (path and method), or no such gate' },
  [ERR_BODY_TOO_LARGE]: { status: 413, message: 'a request body is over the route\'s limit' },
  [ERR_INTERNAL]: { status: 500, message: 'internal error' },
  // Raised by the Kubernetes client (kube/client.ts); discovery logs it and retries, no route answers with it.
  [ERR_KUBE_API]: { status: 502, message: 'a Kubernetes API call failed: unreachable, a non-2xx answer or an unreadable token' },
  [ERR_TOKEN_REVIEW_UNAVAILABLE]: { status: 503, message: 'TokenReview could not be asked: the agent is refused with 503 and Retry-After, and retries' },
  [ERR_NODE_MISMATCH]: { status: null, message: 'a reviewed token\'s node differs from the node its hello claims: the websocket is closed with 4003' },
  [ERR_DUPLICATE_NODE]: { status: null, message: 'two agent processes (different bootIds) claim one node: the one not kept is closed with 4009' },
  [ERR_CLOCK_OFFSET]: { status: null, message: 'an agent\'s clock differs from the aggregator\'s by more than 2 s: logged once per connection, not refused' },
  [ERR_AGENT_SILENT]: { status: null, message: 'an agent answered no websocket ping within a heartbeat interval: its connection is terminated' },
  [ERR_SHUTDOWN]: { status: null, message: 'shutting down failed: the aggregator exits 1' },
  [ERR_FINDINGS_EVALUATION]: { status: null, message: 'one findings evaluation failed: the findings stay as they were and the next interval tries again' },
  [ERR_REPORTS_MISSED]: { status: null, message: 'an agent\'s report seqs skipped some: it dropped them from its full buffer during an outage; logged and counted, not refused' }
} as const satisfies ErrorCatalogue

export type AggregatorErrorCode = keyof typeof AGGREGATOR_ERRORS

/** An error the aggregator raises; `statusCode` defaults to the code's status in AGGREGATOR_ERRORS, else 500. */
export class AggregatorError extends Error {
  readonly code: AggregatorErrorCode
  readonly statusCode: number
  constructor (code: AggregatorErrorCode, message: string, statusCode: number = AGGREGATOR_ERRORS[code].status ?? 500) {
    super(message)
    this.name = 'AggregatorError'
    this.code = code
    this.statusCode = statusCode
  }
}

/** A 400 PINGFLEET_ERR_BAD_QUERY with the given message. */
export function badQuery (message: string): AggregatorError {
  return new AggregatorError(ERR_BAD_QUERY, message, 400)
}
