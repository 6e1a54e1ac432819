// Error codes of the agent. Every error the agent raises or logs carries one of these codes;
// docs/errors.md explains each, and a test keeps the two equal.

import type { ErrorCatalogue } from '@pingfleet/protocol'

export const AGENT_ERR_CONFIG = 'PINGFLEET_ERR_AGENT_CONFIG'
export const AGENT_ERR_UPLINK_UNAUTHORIZED = 'PINGFLEET_ERR_AGENT_UPLINK_UNAUTHORIZED'
export const AGENT_ERR_UPLINK_CLOSED = 'PINGFLEET_ERR_AGENT_UPLINK_CLOSED'
export const AGENT_ERR_UPLINK_DUPLICATE_NODE = 'PINGFLEET_ERR_AGENT_UPLINK_DUPLICATE_NODE'
export const AGENT_ERR_UPLINK_SILENT = 'PINGFLEET_ERR_AGENT_UPLINK_SILENT'
export const AGENT_ERR_UPLINK_PROTOCOL = 'PINGFLEET_ERR_AGENT_UPLINK_PROTOCOL'
export const AGENT_ERR_REPORT_DROPPED = 'PINGFLEET_ERR_AGENT_REPORT_DROPPED'
export const AGENT_ERR_PROBE_THREW = 'PINGFLEET_ERR_AGENT_PROBE_THREW'
export const AGENT_ERR_SHUTDOWN_UNACKED = 'PINGFLEET_ERR_AGENT_SHUTDOWN_UNACKED'
export const AGENT_ERR_SHUTDOWN = 'PINGFLEET_ERR_AGENT_SHUTDOWN'
export const AGENT_ERR_LOOP_LAG = 'PINGFLEET_ERR_AGENT_LOOP_LAG'
export const AGENT_ERR_RESOLV_CONF = 'PINGFLEET_ERR_AGENT_RESOLV_CONF'

/** Every agent code. The agent answers no HTTP request with an error, so none has a status. */
export const AGENT_ERRORS = {
  [AGENT_ERR_CONFIG]: { status: null, message: 'a configuration value is missing, malformed or out of range: the agent does not start (exit 78)' },
  [AGENT_ERR_UPLINK_UNAUTHORIZED]: { status: null, message: 'the aggregator refused the token (upgrade answered 401/403, or close 4003), or the token file cannot be read' },
  [AGENT_ERR_UPLINK_CLOSED]: { status: null, message: 'the uplink websocket failed or closed: the agent reconnects with backoff' },
  // Close 4009 (CLOSE_DUPLICATE_NODE): two agents with one PINGFLEET_NODE_NAME evict each other unless one backs off.
  [AGENT_ERR_UPLINK_DUPLICATE_NODE]: { status: null, message: 'another agent process holds this node at the aggregator (close 4009): this one waits at least a minute before trying again' },
  [AGENT_ERR_UPLINK_SILENT]: { status: null, message: 'the aggregator sent no pong within a heartbeat interval: the connection is terminated' },
  [AGENT_ERR_UPLINK_PROTOCOL]: { status: null, message: 'a frame from the aggregator was invalid: a message that fails to decode is ignored, a frame the websocket refuses ends the connection' },
  [AGENT_ERR_REPORT_DROPPED]: { status: null, message: 'the report buffer was full while disconnected: the oldest report was dropped' },
  [AGENT_ERR_PROBE_THREW]: { status: null, message: 'a probe function threw instead of returning a result: a bug in the probe' },
  [AGENT_ERR_SHUTDOWN_UNACKED]: { status: null, message: 'the final report was not acknowledged before the shutdown deadline' },
  [AGENT_ERR_SHUTDOWN]: { status: null, message: 'shutting down failed: the agent exits 1' },
  [AGENT_ERR_LOOP_LAG]: { status: null, message: 'the event loop was late by more than PINGFLEET_LAG_THRESHOLD: probes timed meanwhile are flagged as lagged' },
  [AGENT_ERR_RESOLV_CONF]: { status: null, message: 'resolv.conf cannot be read: no dns-wire probes unless PINGFLEET_DNS_SERVERS is set' }
} as const satisfies ErrorCatalogue

export type AgentErrorCode = keyof typeof AGENT_ERRORS

/** An error the agent raises; `code` is one of AGENT_ERRORS. */
export class AgentError extends Error {
  readonly code: AgentErrorCode
  constructor (code: AgentErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'AgentError'
    this.code = code
  }
}
