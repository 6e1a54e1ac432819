// Error codes of the wire protocol, and the shape every package's error catalogue shares.
// docs/errors.md lists every code of every package; a test keeps it equal to the catalogues.

/** What a catalogue says of one code: the HTTP status it is answered with, if any, and its meaning. */
export interface ErrorSpec {
  /** The HTTP status an answer with this code carries; null where the code never reaches an HTTP answer (a log line, a websocket close, an exit). */
  readonly status: number | null
  /** One line: what happened. Raised errors carry their own, more specific message. */
  readonly message: string
}

/** A package's codes, each declared once, as `{ [code]: spec }`. */
export type ErrorCatalogue = Readonly<Record<string, ErrorSpec>>

export const PROTOCOL_ERR_JSON = 'PINGFLEET_ERR_PROTOCOL_JSON'
export const PROTOCOL_ERR_TYPE = 'PINGFLEET_ERR_PROTOCOL_TYPE'
export const PROTOCOL_ERR_SCHEMA = 'PINGFLEET_ERR_PROTOCOL_SCHEMA'
export const PROTOCOL_ERR_SEMANTIC = 'PINGFLEET_ERR_PROTOCOL_SEMANTIC'
export const PROTOCOL_ERR_HELLO = 'PINGFLEET_ERR_PROTOCOL_HELLO'
export const PROTOCOL_ERR_FRAME_TOO_LARGE = 'PINGFLEET_ERR_PROTOCOL_FRAME_TOO_LARGE'
export const PROTOCOL_ERR_UTF8 = 'PINGFLEET_ERR_PROTOCOL_UTF8'
export const PROTOCOL_ERR_FRAMING = 'PINGFLEET_ERR_PROTOCOL_FRAMING'

/**
 * Every protocol code. The aggregator closes the agent's websocket with the close code given here
 * and the code as the close reason, and counts it in pingfleet_ingest_rejected_total{code}.
 */
export const PROTOCOL_ERRORS = {
  [PROTOCOL_ERR_JSON]: { status: null, message: 'a frame is not a JSON text message (closed with 1008)' },
  [PROTOCOL_ERR_TYPE]: { status: null, message: 'a message has an unknown type (closed with 1008)' },
  [PROTOCOL_ERR_SCHEMA]: { status: null, message: 'a message does not match its JSON Schema (closed with 1008)' },
  [PROTOCOL_ERR_SEMANTIC]: { status: null, message: 'a report matches its schema but contradicts itself (closed with 1008)' },
  [PROTOCOL_ERR_HELLO]: { status: null, message: 'no hello in time, a second hello, or a report before the hello (closed with 1008)' },
  [PROTOCOL_ERR_FRAME_TOO_LARGE]: { status: null, message: 'a frame, or a message of fragments, over MAX_FRAME_BYTES (closed with 1009)' },
  [PROTOCOL_ERR_UTF8]: { status: null, message: 'a text frame that is not valid UTF-8 (closed with 1007)' },
  [PROTOCOL_ERR_FRAMING]: { status: null, message: 'a frame that breaks RFC 6455 framing: unmasked, a reserved opcode or bit, a bad close code (closed with 1002)' }
} as const satisfies ErrorCatalogue

export type ProtocolErrorCode = keyof typeof PROTOCOL_ERRORS

/** A message that breaks the protocol; `code` is one of PROTOCOL_ERRORS. */
export class ProtocolError extends Error {
  readonly code: ProtocolErrorCode
  constructor (code: ProtocolErrorCode, message: string) {
    super(message)
    this.name = 'ProtocolError'
    this.code = code
  }
}
