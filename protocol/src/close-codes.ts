// Websocket close codes both sides agree on, and the codes the aggregator counts for frames the
// websocket layer itself refuses (before any JSON is read).

import {
  PROTOCOL_ERR_FRAME_TOO_LARGE, PROTOCOL_ERR_FRAMING, PROTOCOL_ERR_UTF8, type ProtocolErrorCode
} from './errors.ts'

/** The aggregator closed this connection because the same agent (same bootId) connected again. */
export const CLOSE_REPLACED = 4000
/** The hello names a node other than the one the agent's token was issued for. */
export const CLOSE_NODE_MISMATCH = 4003
/**
 * Another agent process (a different bootId) holds this node, and the aggregator prefers it: a
 * DaemonSet rollout with maxSurge, or two agents configured with the same node name. The agent
 * must not reconnect at its normal pace (the two would evict each other); it waits at least
 * DUPLICATE_NODE_BACKOFF_MS.
 */
export const CLOSE_DUPLICATE_NODE = 4009
/** Least wait before an agent closed with CLOSE_DUPLICATE_NODE tries again. */
export const DUPLICATE_NODE_BACKOFF_MS = 60_000

/** `ws` errors about size: a message over maxPayload, a 64-bit length, too many fragments. */
const TOO_LARGE = new Set(['WS_ERR_UNSUPPORTED_MESSAGE_LENGTH', 'WS_ERR_UNSUPPORTED_DATA_PAYLOAD_LENGTH', 'WS_ERR_TOO_MANY_BUFFERED_PARTS'])

/**
 * The pingfleet code for an error the `ws` library raised on a frame it refused, or null for any
 * other error (a reset socket is not a protocol violation). `ws` (8.x, lib/receiver.js) names these
 * errors `WS_ERR_*` and closes with the RFC 6455 status: 1009 for size, 1007 for invalid UTF-8, 1002
 * for everything else, which is where an error code unknown here lands too.
 */
export function frameErrorCode (err: { code?: unknown }): ProtocolErrorCode | null {
  if (typeof err.code !== 'string' || !err.code.startsWith('WS_ERR_')) return null
  if (TOO_LARGE.has(err.code)) return PROTOCOL_ERR_FRAME_TOO_LARGE
  if (err.code === 'WS_ERR_INVALID_UTF8') return PROTOCOL_ERR_UTF8
  return PROTOCOL_ERR_FRAMING
}
