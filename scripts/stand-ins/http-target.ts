// Local stand-in for an external endpoint (an API the workloads depend on): a small HTTP server
// that answers 200 on every path, for the agents' http and tcp probes.

import { createServer } from 'node:http'

export interface HttpStandIn {
  url: string
  requests: () => number
  close: () => Promise<void>
}

export async function startHttpStandIn (host: string, port: number): Promise<HttpStandIn> {
  let requests = 0
  const server = createServer((_req, res) => {
    requests++
    res.writeHead(200, { 'content-type': 'text/plain' }).end('ok: pingfleet local stand-in for an external endpoint\n')
  })
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, host, resolve))
  return {
    url: `http://${host}:${port}`,
    requests: () => requests,
    close: async () => {
      server.closeAllConnections()
      await new Promise(resolve => server.close(resolve))
    }
  }
}
