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
/** A frame (or a message of fragments) over MAX_FRAME_BYTES; closed with 1009. */
export const PROTOCOL_ERR_FRAME_TOO_LARGE = 'PINGFLEET_ERR_PROTOCOL_FRAME_TOO_LARGE'
/** A text frame that is not valid UTF-8; closed with 1007. */
export const PROTOCOL_ERR_UTF8 = 'PINGFLEET_ERR_PROTOCOL_UTF8'
/** A frame that breaks RFC 6455 framing (unmasked, bad opcode, reserved bits, bad close code); closed with 1002. */
export const PROTOCOL_ERR_FRAMING = 'PINGFLEET_ERR_PROTOCOL_FRAMING'
