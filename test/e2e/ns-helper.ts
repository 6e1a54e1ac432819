// Small servers the e2e cluster runs inside its network namespaces:
//   bridge <socket>        HTTP on a unix socket, forwarding GET /<ip>:<port>/<path> to http://<ip>:<port>/<path>.
//                          A unix socket path is the same in every netns, so the test process (in the
//                          machine's own namespace) reaches the cluster without a route into it.
//   http <host> <port>     the "external" endpoint: 200 on every path.

import { createServer, request } from 'node:http'
import { rmSync } from 'node:fs'

const [mode, a, b] = process.argv.slice(2)

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
} else {
  process.stderr.write('usage: ns-helper.ts bridge <socket> | http <host> <port>\n')
  process.exit(2)
}
