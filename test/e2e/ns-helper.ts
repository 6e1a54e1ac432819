// Small servers the e2e cluster runs inside its network namespaces:
//   bridge <socket>        HTTP on a unix socket, forwarding GET /<ip>:<port>/<path> to http://<ip>:<port>/<path>.
//                          A unix socket path is the same in every netns, so the test process (in the
//                          machine's own namespace) reaches the cluster without a route into it.
//   http <host> <port>     the "external" endpoint: 200 on every path.
//   dns-no-aaaa <host> <upstream>
//                          a resolver that answers A but fails AAAA: UDP on <host>:53; AAAA questions are
//                          never answered (as behind a middlebox that drops them), every other datagram is
//                          relayed to <upstream>:53 and its answer back. (A SERVFAIL for AAAA would not do:
//                          glibc then returns the A answer at once, and an AF_UNSPEC lookup shows nothing.)

import { createSocket, type RemoteInfo } from 'node:dgram'
import { createServer, request } from 'node:http'
import { rmSync } from 'node:fs'

const [mode, a, b] = process.argv.slice(2)
const AAAA = 28

/** The first question's type, or null when the message is too short or malformed to say. */
function questionType (msg: Buffer): number | null {
  if (msg.length < 12 || msg.readUInt16BE(4) < 1) return null
  let at = 12
  while (at < msg.length && msg[at] !== 0) {
    // Queries carry no compression pointers; a label length above 63 is not a query we relay as such.
    if (msg[at]! > 63) return null
    at += msg[at]! + 1
  }
  return at + 3 <= msg.length ? msg.readUInt16BE(at + 1) : null
}

if (mode === 'bridge' && a !== undefined) {
  rmSync(a, { force: true })
  const server = createServer((req, res) => {
    const match = /^\/(\d{1,3}(?:\.\d{1,3}){3}):(\d{1,5})(\/.*)$/.exec(req.url ?? '')
    if (match === null) {
      res.writeHead(400).end('expected /<ip>:<port>/<path>\n')
      return
    }
    const upstream = request({ host: match[1], port: Number(match[2]), path: match[3], method: req.method, timeout: 3000 }, answer => {
      res.writeHead(answer.statusCode ?? 502, answer.headers)
      answer.pipe(res)
    })
    upstream.on('timeout', () => upstream.destroy(new Error('upstream timeout')))
    upstream.on('error', err => {
      if (!res.headersSent) res.writeHead(502).end(`bridge: ${(err as NodeJS.ErrnoException).code ?? err.message}\n`)
      else res.destroy()
    })
    req.pipe(upstream)
  })
  server.listen(a)
} else if (mode === 'http' && a !== undefined && b !== undefined) {
  createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' }).end('ok: pingfleet e2e external endpoint\n')
  }).listen(Number(b), a)
} else if (mode === 'dns-no-aaaa' && a !== undefined && b !== undefined) {
  const server = createSocket('udp4')
  server.on('message', (msg: Buffer, client: RemoteInfo) => {
    const type = questionType(msg)
    if (type === null || type === AAAA) return
    // One upstream socket per query: the answer goes back to whoever asked, unchanged.
    const upstream = createSocket('udp4')
    const done = (): void => { clearTimeout(timer); upstream.close() }
    const timer = setTimeout(done, 5000)
    upstream.on('message', answer => { server.send(answer, client.port, client.address); done() })
    upstream.on('error', done)
    upstream.send(msg, 53, b)
  })
  server.bind(53, a)
} else {
  process.stderr.write('usage: ns-helper.ts bridge <socket> | http <host> <port> | dns-no-aaaa <host> <upstream>\n')
  process.exit(2)
}
