// Error codes of the agent. Every error the agent raises or logs carries one of these codes.

export class AgentError extends Error {
  readonly code: string
  constructor (code: string, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'AgentError'
    this.code = code
  }
}

/** A configuration value is missing, malformed or out of range; the agent does not start. */
export const AGENT_ERR_CONFIG = 'PINGFLEET_ERR_AGENT_CONFIG'
/** The aggregator refused the websocket upgrade (HTTP 401/403): the token is wrong. */
export const AGENT_ERR_UPLINK_UNAUTHORIZED = 'PINGFLEET_ERR_AGENT_UPLINK_UNAUTHORIZED'
/** The uplink websocket failed or closed; the agent reconnects with backoff. */
export const AGENT_ERR_UPLINK_CLOSED = 'PINGFLEET_ERR_AGENT_UPLINK_CLOSED'
/**
 * Another agent process holds this node at the aggregator (close 4009, CLOSE_DUPLICATE_NODE): two
 * agents with one PINGFLEET_NODE_NAME. This one waits at least a minute before trying again.
 */
export const AGENT_ERR_UPLINK_DUPLICATE_NODE = 'PINGFLEET_ERR_AGENT_UPLINK_DUPLICATE_NODE'
/** The aggregator sent no pong within a heartbeat interval; the connection is terminated. */
export const AGENT_ERR_UPLINK_SILENT = 'PINGFLEET_ERR_AGENT_UPLINK_SILENT'
/** An incoming frame failed to decode; it is ignored. */
export const AGENT_ERR_UPLINK_PROTOCOL = 'PINGFLEET_ERR_AGENT_UPLINK_PROTOCOL'
/** The report buffer was full while disconnected; the oldest report was dropped. */
export const AGENT_ERR_REPORT_DROPPED = 'PINGFLEET_ERR_AGENT_REPORT_DROPPED'
/** A probe function threw instead of returning a result: a bug in the probe. */
export const AGENT_ERR_PROBE_THREW = 'PINGFLEET_ERR_AGENT_PROBE_THREW'
/** The final report was not acknowledged before the shutdown deadline. */
export const AGENT_ERR_SHUTDOWN_UNACKED = 'PINGFLEET_ERR_AGENT_SHUTDOWN_UNACKED'
