// Frames the websocket layer refuses before any JSON is read (field report 8): each is closed with
// its RFC 6455 status, counted in pingfleet_ingest_rejected_total under a code, and logged once at
// warn. The frames are written by hand on a raw TCP socket, because a websocket client will not
// send them.

import t from 'tap'
import { connect, type Socket } from 'node:net'
import { MAX_FRAME_BYTES } from '@pingfleet/protocol'
import { aggregator, captureLog, hello, RawAgent, TOKEN } from '../helpers.ts'

/** Opens a websocket by hand and resolves with the socket once the 101 has been read. */
function rawUpgrade (base: string): Promise<{ socket: Socket, received: () => Buffer, ended: Promise<void> }> {
  const { hostname, port } = new URL(base)
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => {
      socket.write(`GET /api/v1/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`)
    })
    let buffer = Buffer.alloc(0)
    let upgraded = false
    const ended = new Promise<void>(resolve => socket.on('close', () => resolve()))
    socket.on('error', () => {})
    socket.on('data', chunk => {
      buffer = Buffer.concat([buffer, chunk])
      if (upgraded) return
      const end = buffer.indexOf('\r\n\r\n')
      if (end === -1) return
      const head = buffer.subarray(0, end).toString()
      if (!head.startsWith('HTTP/1.1 101')) return reject(new Error(head))
      upgraded = true
      buffer = buffer.subarray(end + 4)
      resolve({ socket, received: () => buffer, ended })
    })
  })
}

interface FrameOptions { opcode?: number, fin?: boolean, rsv?: number, mask?: boolean, length?: number }

/** One RFC 6455 frame; `length` overrides the announced payload length (the payload may be absent). */
function frame (payload: Buffer, o: FrameOptions = {}): Buffer {
  const { opcode = 1, fin = true, rsv = 0, mask = true } = o
  const length = o.length ?? payload.length
  const head: number[] = [(fin ? 0x80 : 0) | (rsv << 4) | opcode]
  const m = mask ? 0x80 : 0
  if (length < 126) head.push(m | length)
  else if (length < 65536) head.push(m | 126, length >> 8, length & 255)
  else {
    const big = Buffer.alloc(8)
    big.writeBigUInt64BE(BigInt(length))
    head.push(m | 127, ...big)
  }
  const key = Buffer.from([1, 2, 3, 4])
  const body = Buffer.from(payload)
  if (mask) for (let i = 0; i < body.length; i++) body[i]! ^= key[i % 4]!
  return Buffer.concat([Buffer.from(head), mask ? key : Buffer.alloc(0), body])
}

/** The status code of the first close frame the server sent, or null. */
function closeStatus (bytes: Buffer): number | null {
  let at = 0
  while (at + 2 <= bytes.length) {
    const opcode = bytes[at]! & 0x0f
    let length = bytes[at + 1]! & 0x7f
    let start = at + 2
    if (length === 126) { length = bytes.readUInt16BE(start); start += 2 } else if (length === 127) { length = Number(bytes.readBigUInt64BE(start)); start += 8 }
    if (opcode === 8) return length >= 2 ? bytes.readUInt16BE(start) : null
    at = start + length
  }
  return null
}

const cases: Array<{ name: string, bytes: () => Buffer, status: number, code: string }> = [
  { name: 'a frame over maxPayload (only its header is sent)', bytes: () => frame(Buffer.alloc(0), { length: MAX_FRAME_BYTES + 1 }), status: 1009, code: 'PINGFLEET_ERR_PROTOCOL_FRAME_TOO_LARGE' },
  { name: 'fragments that add up to more than maxPayload', bytes: () => Buffer.concat([frame(Buffer.alloc(MAX_FRAME_BYTES / 2 + 1, 0x20), { fin: false }), frame(Buffer.alloc(MAX_FRAME_BYTES / 2 + 1, 0x20), { opcode: 0 })]), status: 1009, code: 'PINGFLEET_ERR_PROTOCOL_FRAME_TOO_LARGE' },
  { name: 'a text frame that is not UTF-8', bytes: () => frame(Buffer.from([0x7b, 0xff, 0xfe, 0x7d])), status: 1007, code: 'PINGFLEET_ERR_PROTOCOL_UTF8' },
  { name: 'an unmasked client frame', bytes: () => frame(Buffer.from('{}'), { mask: false }), status: 1002, code: 'PINGFLEET_ERR_PROTOCOL_FRAMING' },
  { name: 'a reserved opcode', bytes: () => frame(Buffer.from('{}'), { opcode: 3 }), status: 1002, code: 'PINGFLEET_ERR_PROTOCOL_FRAMING' },
  { name: 'a reserved bit set', bytes: () => frame(Buffer.from('{}'), { rsv: 2 }), status: 1002, code: 'PINGFLEET_ERR_PROTOCOL_FRAMING' },
  { name: 'a fragmented ping', bytes: () => frame(Buffer.from('x'), { opcode: 9, fin: false }), status: 1002, code: 'PINGFLEET_ERR_PROTOCOL_FRAMING' },
  { name: 'a close frame with an invalid code', bytes: () => frame(Buffer.from([0x03, 0xe7]), { opcode: 8 }), status: 1002, code: 'PINGFLEET_ERR_PROTOCOL_FRAMING' }
]

for (const c of cases) {
  t.test(`${c.name}: closed with ${c.status}, counted as ${c.code}, logged once at warn`, async t => {
    const { log, lines } = captureLog()
    const agg = await aggregator({}, undefined, log)
    t.teardown(() => agg.close())
    const witness = new RawAgent(agg.address())
    await witness.opened()
    witness.send(hello('witness'))
    await witness.waitFor(m => m.type === 'welcome')
    const raw = await rawUpgrade(agg.address())
    raw.socket.write(c.bytes())
    await raw.ended
    t.equal(closeStatus(raw.received()), c.status, `close status ${c.status}`)
    const metrics = (await agg.app.inject('/metrics')).body
    t.match(metrics, new RegExp(`pingfleet_ingest_rejected_total\\{code="${c.code}"\\} 1\\n`), 'counted once under its code')
    const warned = lines.filter(l => l.code === c.code)
    t.equal(warned.length, 1, 'one log line')
    t.equal(warned[0]?.level, 40, 'at warn')
    t.equal(witness.socket.readyState, witness.socket.OPEN, 'another agent is untouched')
    witness.socket.close()
  })
}

t.test('a socket reset by the network is not counted as a rejection', async t => {
  const agg = await aggregator()
  t.teardown(() => agg.close())
  const raw = await rawUpgrade(agg.address())
  raw.socket.resetAndDestroy()
  await raw.ended
  await new Promise(resolve => setTimeout(resolve, 100))
  const metrics = (await agg.app.inject('/metrics')).body
  t.notMatch(metrics, /pingfleet_ingest_rejected_total\{/, 'no rejection')
})
