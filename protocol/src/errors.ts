// Error codes of the protocol package.

export class ProtocolError extends Error {
  readonly code: string
  constructor (code: string, message: string) {
    super(message)
    this.name = 'ProtocolError'
    this.code = code
  }
}

export const PROTOCOL_ERR_JSON = 'PINGFLEET_ERR_PROTOCOL_JSON'
export const PROTOCOL_ERR_TYPE = 'PINGFLEET_ERR_PROTOCOL_TYPE'
export const PROTOCOL_ERR_SCHEMA = 'PINGFLEET_ERR_PROTOCOL_SCHEMA'
export const PROTOCOL_ERR_SEMANTIC = 'PINGFLEET_ERR_PROTOCOL_SEMANTIC'
