// A scriptable DNS server on loopback, UDP and TCP on the same port, built on dns-packet.
// Per name (and optionally per query type) it answers, fails with an rcode, drops, truncates,
// delays, or sends a wrong id, wrong question, garbage or a reply from the wrong source port.

import { createSocket, type RemoteInfo, type Socket as UdpSocket } from 'node:dgram'
import { once } from 'node:events'
import { createServer, isIP, type Server, type Socket } from 'node:net'
import dnsPacket from 'dns-packet'
import type { Answer, DecodedPacket, Packet, Question } from 'dns-packet'

export type DnsBehaviour =
  /** NOERROR with the given addresses that fit the asked type; none fitting means NODATA. */
  | { kind: 'answer', addresses: string[], ttl?: number }
  | { kind: 'rcode', rcode: 'NXDOMAIN' | 'SERVFAIL' | 'REFUSED' | 'NOTIMP' | 'FORMERR' }
  /** No reply at all. */
  | { kind: 'drop' }
  /** TCP: close the connection without replying. UDP: same as drop. */
  | { kind: 'close' }
  /** UDP: an empty reply with the TC bit. TCP: behave as `tcp`. */
  | { kind: 'truncate', tcp: DnsBehaviour }
  | { kind: 'delay', ms: number, then: DnsBehaviour }
  /** A reply whose id is off by one; then, if given, the real reply. */
  | { kind: 'wrong-id', then?: DnsBehaviour }
  /** A reply for another name; then, if given, the real reply. */
  | { kind: 'wrong-question', then?: DnsBehaviour }
  /** Bytes that do not decode; then, if given, the real reply. */
  | { kind: 'garbage', then?: DnsBehaviour }
  /** UDP: an NXDOMAIN with the right id from another port; then, if given, the real reply from the right one. */
  | { kind: 'wrong-source', then?: DnsBehaviour }

export type QueryType = 'A' | 'AAAA'

export interface ReceivedQuery {
  name: string
  type: string
  transport: 'udp' | 'tcp'
}

type Send = (reply: Buffer, fromElsewhere?: boolean) => void

function normalise (name: string): string {
  return name.toLowerCase().replace(/\.$/, '')
}

export class TestDnsServer {
  readonly host: string
  readonly port: number
  /** Every query received, in order. */
  readonly queries: ReceivedQuery[] = []
  private readonly rules = new Map<string, DnsBehaviour>()
  private readonly udp: UdpSocket
  private readonly spoofer: UdpSocket
  private readonly tcp: Server
  private readonly connections = new Set<Socket>()
  private readonly timers = new Set<NodeJS.Timeout>()

  private constructor (host: string, port: number, udp: UdpSocket, spoofer: UdpSocket, tcp: Server) {
    this.host = host
    this.port = port
    this.udp = udp
    this.spoofer = spoofer
    this.tcp = tcp
    udp.on('message', (msg, rinfo) => this.onUdp(msg, rinfo))
    tcp.on('connection', socket => this.onTcp(socket))
  }

  /** Binds UDP and TCP on one port of a loopback address; port 0 picks a free high port for both. */
  static async start (options: { host?: string, port?: number } = {}): Promise<TestDnsServer> {
    const host = options.host ?? '127.0.0.1'
    const type = isIP(host) === 6 ? 'udp6' : 'udp4'
    for (let attempt = 0; attempt < 20; attempt++) {
      const udp = createSocket(type)
      udp.bind(options.port ?? 0, host)
      await once(udp, 'listening')
      const port = udp.address().port
      const tcp = createServer()
      try {
        tcp.listen({ host, port })
        await once(tcp, 'listening')
      } catch (err) {
        udp.close()
        if ((err as { code?: string }).code === 'EADDRINUSE' && options.port === undefined) continue
        throw err
      }
      const spoofer = createSocket(type)
      spoofer.bind(0, host)
      await once(spoofer, 'listening')
      return new TestDnsServer(host, port, udp, spoofer, tcp)
    }
    throw new Error('no free port for both UDP and TCP')
  }

  /** Sets what happens to queries for `name`, for one type or (without `type`) for both. */
  set (name: string, behaviour: DnsBehaviour, type?: QueryType): this {
    this.rules.set(type === undefined ? normalise(name) : `${normalise(name)}/${type}`, behaviour)
    return this
  }

  /** The server answers NXDOMAIN for names it has no rule for. */
  private behaviourFor (question: Question): DnsBehaviour {
    const name = normalise(question.name)
    return this.rules.get(`${name}/${question.type}`) ?? this.rules.get(name) ?? { kind: 'rcode', rcode: 'NXDOMAIN' }
  }

  async close (): Promise<void> {
    for (const timer of this.timers) clearTimeout(timer)
    for (const socket of this.connections) socket.destroy()
    this.tcp.close()
    await Promise.all([once(this.tcp, 'close'), new Promise(resolve => this.udp.close(() => resolve(null))), new Promise(resolve => this.spoofer.close(() => resolve(null)))])
  }

  private onUdp (msg: Buffer, rinfo: RemoteInfo): void {
    let query: DecodedPacket
    try {
      query = dnsPacket.decode(msg)
    } catch {
      return
    }
    const question = query.questions?.[0]
    if (question === undefined) return
    this.queries.push({ name: question.name, type: question.type, transport: 'udp' })
    const send: Send = (reply, fromElsewhere = false) => {
      (fromElsewhere ? this.spoofer : this.udp).send(reply, rinfo.port, rinfo.address)
    }
    this.perform(this.behaviourFor(question), query, question, 'udp', send, () => {})
  }

  private onTcp (socket: Socket): void {
    this.connections.add(socket)
    socket.on('close', () => this.connections.delete(socket))
    socket.on('error', () => {})
    let buffered = Buffer.alloc(0)
    socket.on('data', chunk => {
      buffered = Buffer.concat([buffered, chunk])
      while (buffered.length >= 2 && buffered.length >= 2 + buffered.readUInt16BE(0)) {
        const length = buffered.readUInt16BE(0)
        const message = buffered.subarray(2, 2 + length)
        buffered = buffered.subarray(2 + length)
        let query: DecodedPacket
        try {
          query = dnsPacket.decode(message)
        } catch {
          socket.destroy()
          return
        }
        const question = query.questions?.[0]
        if (question === undefined) continue
        this.queries.push({ name: question.name, type: question.type, transport: 'tcp' })
        const send: Send = reply => {
          const framed = Buffer.alloc(2 + reply.length)
          framed.writeUInt16BE(reply.length, 0)
          reply.copy(framed, 2)
          if (!socket.destroyed) socket.write(framed)
        }
        this.perform(this.behaviourFor(question), query, question, 'tcp', send, () => socket.destroy())
      }
    })
  }

  private perform (behaviour: DnsBehaviour, query: DecodedPacket, question: Question, transport: 'udp' | 'tcp', send: Send, close: () => void): void {
    const base: Packet = { type: 'response', id: query.id ?? 0, flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE, questions: [question] }
    const then = (next: DnsBehaviour | undefined): void => {
      if (next !== undefined) this.perform(next, query, question, transport, send, close)
    }
    switch (behaviour.kind) {
      case 'answer': {
        const family = question.type === 'A' ? 4 : question.type === 'AAAA' ? 6 : 0
        const answers = behaviour.addresses.filter(a => isIP(a) === family)
          .map((data): Answer => ({ type: question.type as 'A' | 'AAAA', name: question.name, class: 'IN', ttl: behaviour.ttl ?? 30, data }))
        send(dnsPacket.encode({ ...base, answers }))
        return
      }
      case 'rcode':
        send(encodeWithRcode(base, behaviour.rcode))
        return
      case 'drop':
        return
      case 'close':
        close()
        return
      case 'truncate':
        if (transport === 'tcp') then(behaviour.tcp)
        else send(dnsPacket.encode({ ...base, flags: base.flags! | dnsPacket.TRUNCATED_RESPONSE }))
        return
      case 'delay': {
        const timer = setTimeout(() => {
          this.timers.delete(timer)
          then(behaviour.then)
        }, behaviour.ms)
        this.timers.add(timer)
        return
      }
      case 'wrong-id':
        send(dnsPacket.encode({ ...base, id: ((query.id ?? 0) + 1) & 0xffff, answers: [] }))
        then(behaviour.then)
        return
      case 'wrong-question':
        send(dnsPacket.encode({ ...base, questions: [{ ...question, name: `wrong.${question.name}` }] }))
        then(behaviour.then)
        return
      case 'garbage':
        send(Buffer.from([0xde, 0xad, 0xbe, 0xef, 0x00]))
        then(behaviour.then)
        return
      case 'wrong-source':
        if (transport === 'udp') send(encodeWithRcode(base, 'NXDOMAIN'), true)
        then(behaviour.then)
    }
  }
}

const RCODES = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const

// dns-packet encodes the rcode from the low bits of `flags`.
function encodeWithRcode (base: Packet, rcode: keyof typeof RCODES): Buffer {
  return dnsPacket.encode({ ...base, flags: (base.flags ?? 0) | RCODES[rcode] })
}
