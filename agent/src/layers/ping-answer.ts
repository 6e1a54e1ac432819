// Reading a peer agent's /ping answer: the one place that parses the body and checks it names the
// right node, so pod, service and mtu probes give the same raw code for the same bad answer.

import { classifyPingAnswer, type Classified } from './classify.ts'

/** A body that is an agent's /ping answer, naming `node`; or why it is not one. */
export type PingAnswerRead =
  | { ok: true, node: string }
  | (Classified & { ok: false, detail?: { node: string } })

/**
 * Parses a 2xx /ping body (`{node, pod, labels}`, agent/src/server.ts) and, when `expectedNode` is
 * given, checks that it names that node. Outcomes (reason BAD_RESPONSE, from layers/classify.ts):
 * raw INVALID_JSON when the body is not JSON; NOT_A_PING_ANSWER when it is JSON but not an object with
 * a non-empty string `node`; NODE_MISMATCH, with `detail.node` the node that answered, when it names
 * another node. Never throws.
 */
export function readPingAnswer (body: string, expectedNode?: string): PingAnswerRead {
  let parsed: unknown
  try {
    parsed = JSON.parse(body)
  } catch {
    return { ok: false, ...classifyPingAnswer('INVALID_JSON') }
  }
  const node = typeof parsed === 'object' && parsed !== null ? (parsed as { node?: unknown }).node : undefined
  if (typeof node !== 'string' || node === '') return { ok: false, ...classifyPingAnswer('NOT_A_PING_ANSWER') }
  if (expectedNode !== undefined && node !== expectedNode) return { ok: false, ...classifyPingAnswer('NODE_MISMATCH'), detail: { node } }
  return { ok: true, node }
}
