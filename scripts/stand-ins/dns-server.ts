// Local stand-in for the cluster resolver (CoreDNS): answers A queries for a fixed set of names
// over UDP and TCP on a loopback address, NXDOMAIN for anything else, and never forwards a query.

import { createSocket } from 'node:dgram'
import { once } from 'node:events'
import { createServer, type Socket } from 'node:net'
import dnsPacket from 'dns-packet'
import type { Answer, DecodedPacket } from 'dns-packet'

export interface DnsStandIn {
  /** `host:port`, as PINGFLEET_DNS_SERVERS takes it. */
  address: string
  queries: () => number
  close: () => Promise<void>
}

const NXDOMAIN = 3

/** `records` maps a name (no trailing dot) to its IPv4 addresses. AAAA questions for known names get NODATA. */
export async function startDnsStandIn (host: string, port: number, records: Readonly<Record<string, readonly string[]>>): Promise<DnsStandIn> {
  let queries = 0
  const answer = (message: Buffer): Buffer | null => {
    let query: DecodedPacket
    try {
      query = dnsPacket.decode(message)
    } catch {
      return null
    }
    const question = query.questions?.[0]
    if (question === undefined) return null
    queries++
    const addresses = records[question.name.toLowerCase().replace(/\.$/, '')]
    const answers: Answer[] = question.type === 'A' && addresses !== undefined
      ? addresses.map(data => ({ type: 'A', name: question.name, ttl: 5, data }))
      : []
    const flags = dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE | (addresses === undefined ? NXDOMAIN : 0)
    return dnsPacket.encode({ type: 'response', id: query.id ?? 0, flags, questions: [question], answers })
  }

  const udp = createSocket('udp4')
  udp.on('message', (message, from) => {
    const reply = answer(message)
    if (reply !== null) udp.send(reply, from.port, from.address)
  })
  udp.bind(port, host)
  await once(udp, 'listening')

  const connections = new Set<Socket>()
  const tcp = createServer(socket => {
    connections.add(socket)
    socket.on('close', () => connections.delete(socket)).on('error', () => socket.destroy())
    let buffered = Buffer.alloc(0)
    socket.on('data', chunk => {
      buffered = Buffer.concat([buffered, chunk])
      // RFC 1035 4.2.2: each message is preceded by its two-byte length.
      while (buffered.length >= 2 && buffered.length >= 2 + buffered.readUInt16BE(0)) {
        const reply = answer(buffered.subarray(2, 2 + buffered.readUInt16BE(0)))
        buffered = buffered.subarray(2 + buffered.readUInt16BE(0))
        if (reply === null) continue
        const length = Buffer.alloc(2)
        length.writeUInt16BE(reply.length)
        socket.write(Buffer.concat([length, reply]))
      }
    })
  })
  try {
    await new Promise<void>((resolve, reject) => tcp.once('error', reject).listen(port, host, resolve))
  } catch (err) {
    udp.close()
    throw err
  }

  return {
    address: `${host}:${port}`,
    queries: () => queries,
    close: async () => {
      for (const socket of connections) socket.destroy()
      await Promise.all([new Promise(resolve => tcp.close(resolve)), new Promise(resolve => udp.close(() => resolve(null)))])
    }
  }
}
