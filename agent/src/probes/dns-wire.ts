// The dns-wire probe: one A or AAAA query sent straight to one resolver, over UDP with a TCP retry
// when the answer is truncated (or over TCP only), bypassing getaddrinfo, the search list and the threadpool.

import { randomInt } from 'node:crypto'
import { createSocket } from 'node:dgram'
import { BlockList, connect, isIP } from 'node:net'
import dnsPacket from 'dns-packet'
import type { DecodedPacket, StringAnswer } from 'dns-packet'
import type { DnsOutcome } from '../dns-expect.ts'
import { hostPort, parseHostPort } from '../layers/address.ts'
import { classifyDnsDeadline, classifyError, classifyEvent, classifyRcode, classifyTruncated, closedEarly, type Classified } from '../layers/classify.ts'
import type { Probe, ProbeResult, Target } from '../probe.ts'

export type DnsWireType = 'A' | 'AAAA'
export type DnsWireTransport = 'udp' | 'tcp'

export interface DnsWireTarget extends Target {
  kind: 'dns-wire'
  /** Sent as a fully qualified name: no search list applies on the wire. */
  name: string
  type: DnsWireType
  /** The resolver's IP literal. */
  server: string
  port: number
  /** `udp` retries over TCP when the answer is truncated; `tcp` never uses UDP. */
  transport: DnsWireTransport
  /** What a healthy resolver answers (dns-expect.ts); default `answer`. */
  expect?: DnsOutcome
}

export const DNS_PORT = 53

/** Column id: `<name>@<server>:<port>/<type>`, plus `/tcp` for TCP only, e.g. `example.internal@198.18.0.53:53/A`. */
export function dnsWireTarget (fields: { name: string, type: DnsWireType, server: string, port?: number, transport?: DnsWireTransport, expect?: DnsOutcome }): DnsWireTarget {
  const port = fields.port ?? DNS_PORT
  const transport = fields.transport ?? 'udp'
  const id = `${fields.name}@${hostPort(fields.server, port)}/${fields.type}${transport === 'tcp' ? '/tcp' : ''}`
  const target: DnsWireTarget = { kind: 'dns-wire', id, name: fields.name, type: fields.type, server: fields.server, port, transport }
  if (fields.expect !== undefined && fields.expect !== 'answer') target.expect = fields.expect
  return target
}

/** A resolver the dns-wire probes ask: an IP literal and a port. */
export interface DnsServer {
  server: string
  port: number
}

/** Parses a resolver as configured: `ip`, `ip:port`, `[v6]` or `[v6]:port`; null when it is not one. */
export function parseDnsServer (text: string): DnsServer | null {
  const trimmed = text.trim()
  if (isIP(trimmed) !== 0) return { server: trimmed, port: DNS_PORT }
  const bracketed = /^\[([^\]]+)\]$/.exec(trimmed)
  if (bracketed !== null) return isIP(bracketed[1]!) === 6 ? { server: bracketed[1]!, port: DNS_PORT } : null
  const hp = parseHostPort(trimmed)
  return hp !== null && isIP(hp.host) !== 0 ? { server: hp.host, port: hp.port } : null
}

const RCODE_NAMES = ['NOERROR', 'FORMERR', 'SERVFAIL', 'NXDOMAIN', 'NOTIMP', 'REFUSED', 'YXDOMAIN', 'YXRRSET', 'NXRRSET', 'NOTAUTH', 'NOTZONE']

function rcodeName (packet: DecodedPacket): string {
  const code = (packet.flags ?? 0) & 0xf
  return RCODE_NAMES[code] ?? `RCODE_${code}`
}

type Failure = Classified
type Exchange = { ok: true, packet: DecodedPacket } | { ok: false, failure: Failure }

function sameName (a: string, b: string): boolean {
  return a.toLowerCase().replace(/\.$/, '') === b.toLowerCase().replace(/\.$/, '')
}

/** Why a decoded reply is not the answer to our query, or null when it is. */
function mismatch (packet: DecodedPacket, id: number, target: DnsWireTarget): 'NOT_A_RESPONSE' | 'ID_MISMATCH' | 'QUESTION_MISMATCH' | null {
  if (!packet.flag_qr) return 'NOT_A_RESPONSE'
  if (packet.id !== id) return 'ID_MISMATCH'
  const q = packet.questions
  if (q === undefined || q.length !== 1 || !sameName(q[0]!.name, target.name) || q[0]!.type !== target.type || (q[0]!.class ?? 'IN') !== 'IN') {
    return 'QUESTION_MISMATCH'
  }
  return null
}

function decode (message: Buffer): DecodedPacket | null {
  try {
    return dnsPacket.decode(message)
  } catch {
    return null
  }
}

/**
 * UDP: a fresh socket, one datagram out, and only datagrams from the server's address and port are
 * looked at. Like a stub resolver, a reply with the wrong id or question, or one that does not decode,
 * is skipped while we keep waiting; if nothing better arrives by the deadline, that is the failure.
 */
function udpExchange (query: Buffer, id: number, target: DnsWireTarget, signal: AbortSignal): Promise<Exchange> {
  return new Promise(resolve => {
    const family = isIP(target.server) === 6 ? 'ipv6' : 'ipv4'
    const allowed = new BlockList()
    allowed.addAddress(target.server, family)
    const socket = createSocket(family === 'ipv6' ? 'udp6' : 'udp4')
    let problem: Failure | undefined
    const finish = (exchange: Exchange): void => {
      signal.removeEventListener('abort', onAbort)
      socket.close()
      resolve(exchange)
    }
    const onAbort = (): void => finish({ ok: false, failure: problem ?? classifyDnsDeadline('udp', 'request') })
    signal.addEventListener('abort', onAbort, { once: true })
    socket.on('message', (message, rinfo) => {
      if (rinfo.port !== target.port || !allowed.check(rinfo.address, family)) return
      const packet = decode(message)
      if (packet === null) {
        problem ??= classifyEvent('DECODE_ERROR')
        return
      }
      const wrong = mismatch(packet, id, target)
      if (wrong !== null) {
        problem ??= classifyEvent(wrong)
        return
      }
      finish({ ok: true, packet })
    })
    socket.on('error', err => finish({ ok: false, failure: classifyError(err, 'connect') }))
    socket.send(query, target.port, target.server)
  })
}

/**
 * TCP: a fresh connection, one length-prefixed query, one length-prefixed reply. Nothing else can
 * share this connection, so a wrong or undecodable reply is final. The two-byte prefix bounds what is
 * read to 65,537 bytes (plus the chunk that completed it): once the reply is in, the socket is destroyed.
 */
function tcpExchange (query: Buffer, id: number, target: DnsWireTarget, signal: AbortSignal): Promise<Exchange> {
  return new Promise(resolve => {
    const socket = connect({ host: target.server, port: target.port })
    let connected = false
    let buffered = Buffer.alloc(0)
    const finish = (exchange: Exchange): void => {
      signal.removeEventListener('abort', onAbort)
      socket.destroy()
      resolve(exchange)
    }
    const onAbort = (): void => finish({ ok: false, failure: classifyDnsDeadline('tcp', connected ? 'request' : 'connect') })
    signal.addEventListener('abort', onAbort, { once: true })
    socket.once('connect', () => {
      connected = true
      const framed = Buffer.alloc(2 + query.length)
      framed.writeUInt16BE(query.length, 0)
      query.copy(framed, 2)
      socket.write(framed)
    })
    socket.on('data', chunk => {
      buffered = Buffer.concat([buffered, chunk])
      if (buffered.length < 2 || buffered.length < 2 + buffered.readUInt16BE(0)) return
      const packet = decode(buffered.subarray(2, 2 + buffered.readUInt16BE(0)))
      if (packet === null) return finish({ ok: false, failure: classifyEvent('DECODE_ERROR') })
      const wrong = mismatch(packet, id, target)
      if (wrong !== null) return finish({ ok: false, failure: classifyEvent(wrong) })
      finish({ ok: true, packet })
    })
    // The server closed (a FIN) without a complete reply: raw EOF, where a reset is raw ECONNRESET.
    socket.once('end', () => finish({ ok: false, failure: classifyError(closedEarly('closed before a complete reply'), 'request') }))
    socket.once('error', err => finish({ ok: false, failure: classifyError(err, connected ? 'request' : 'connect') }))
  })
}

/**
 * Judges a reply against the target's expectation. An expected negative answer is a success: the
 * resolver did its job. It keeps `detail.rcode` (NODATA or NXDOMAIN) so it stays visible in logs and
 * tests. An answer where the name should not exist is BAD_RESPONSE (raw UNEXPECTED_ANSWER / UNEXPECTED_NODATA).
 */
function fromReply (packet: DecodedPacket, target: DnsWireTarget, seconds: number, detail: Record<string, string | number>): ProbeResult {
  const rcode = rcodeName(packet)
  const expect = target.expect ?? 'answer'
  // A and AAAA records decode to their address as a string.
  const answers = rcode === 'NOERROR' ? (packet.answers ?? []).filter((a): a is StringAnswer => a.type === target.type) : []
  // An expected negative answer is a success; an answer where none was expected is BAD_RESPONSE.
  if (rcode === 'NOERROR' && answers.length === 0) {
    if (expect === 'nodata') return { ok: true, seconds, detail: { ...detail, rcode: 'NODATA' } }
    if (expect === 'nxdomain') return { ok: false, ...classifyEvent('UNEXPECTED_NODATA'), seconds, detail }
  }
  if (rcode === 'NOERROR' && answers.length > 0 && expect === 'nxdomain') return { ok: false, ...classifyEvent('UNEXPECTED_ANSWER'), seconds, detail: { ...detail, address: answers[0]!.data } }
  if (rcode === 'NXDOMAIN' && expect === 'nxdomain') return { ok: true, seconds, detail: { ...detail, rcode } }
  const failure = classifyRcode(rcode, answers.length > 0)
  if (failure !== null) return { ok: false, ...failure, seconds, detail }
  return { ok: true, seconds, detail: { ...detail, answers: answers.length, address: answers[0]!.data } }
}

/**
 * The probe: one query, straight to the target's resolver (UDP with a TCP retry on truncation, or TCP
 * only), on a fresh socket. `seconds` is the whole exchange; `detail.transport` says which carried the
 * answer (`truncated: 1` after a retry). DNS answers map to their own reasons (NXDOMAIN, NODATA, …);
 * transport failures are classified by layers/classify.ts; running out of time is DNS_TIMEOUT (raw
 * UDP_TIMEOUT, TCP_TIMEOUT or TCP_CONNECT_TIMEOUT). Never rejects.
 */
export const dnsWireProbe: Probe<DnsWireTarget> = async function dnsWireProbe (target, signal) {
  const start = performance.now()
  const seconds = (): number => (performance.now() - start) / 1000
  const id = randomInt(0, 0x10000)
  const query = dnsPacket.encode({
    type: 'query',
    id,
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ type: target.type, name: target.name, class: 'IN' }]
  })
  if (signal.aborted) return { ok: false, ...classifyDnsDeadline('none', 'connect'), seconds: 0 }

  if (target.transport === 'tcp') {
    const exchange = await tcpExchange(query, id, target, signal)
    if (!exchange.ok) return { ok: false, ...exchange.failure, seconds: seconds(), detail: { transport: 'tcp' } }
    return fromReply(exchange.packet, target, seconds(), { transport: 'tcp' })
  }

  const udp = await udpExchange(query, id, target, signal)
  if (!udp.ok) return { ok: false, ...udp.failure, seconds: seconds(), detail: { transport: 'udp' } }
  if (!udp.packet.flag_tc) return fromReply(udp.packet, target, seconds(), { transport: 'udp' })

  // Truncated: ask again over TCP with the same id, as a stub resolver does.
  const tcp = await tcpExchange(query, id, target, signal)
  const detail = { transport: 'tcp', truncated: 1 }
  if (!tcp.ok) return { ok: false, ...classifyTruncated(tcp.failure), seconds: seconds(), detail }
  return fromReply(tcp.packet, target, seconds(), detail)
}
