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
export const ERR_UNAUTHORIZED = 'PINGFLEET_ERR_UNAUTHORIZED'
export const ERR_NOT_FOUND = 'PINGFLEET_ERR_NOT_FOUND'
export const ERR_BODY_TOO_LARGE = 'PINGFLEET_ERR_BODY_TOO_LARGE'

export function badQuery (message: string): AggregatorError {
  return new AggregatorError(ERR_BAD_QUERY, message, 400)
}
