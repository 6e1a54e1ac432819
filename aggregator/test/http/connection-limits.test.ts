// Slow and idle clients on the aggregator's HTTP port are cut off within API_SERVER_LIMITS (issue 14),
// and the agents' websockets, once upgraded, are not.

import { connect } from 'node:net'
import t from 'tap'
import { API_SERVER_LIMITS } from '../../src/app.ts'
import { aggregator, hello, RawAgent } from '../helpers.ts'

/** Connects, optionally writes `first`, and resolves with what the server sent once it ended the connection, and when. */
function until408 (address: string, first: string | null): Promise<{ answer: string, afterMs: number }> {
  const url = new URL(address)
  const started = Date.now()
  return new Promise((resolve, reject) => {
    const socket = connect({ host: url.hostname, port: Number(url.port) })
    let answer = ''
    socket.on('data', chunk => { answer += chunk.toString() })
    socket.once('error', reject)
    socket.once('close', () => resolve({ answer, afterMs: Date.now() - started }))
    socket.once('connect', () => { if (first !== null) socket.write(first) })
  })
}

t.test('a request whose headers never finish is answered 408 within the headers bound; a websocket stays', async t => {
  const agg = await aggregator()
  t.teardown(() => agg.close())
  const agent = new RawAgent(agg.address())
  await agent.opened()
  agent.send(hello('n1'))
  await agent.waitFor(m => m.type === 'welcome')
  const slow = await until408(agg.address(), 'GET /healthz HTTP/1.1\r\nHost: x\r\n')
  t.match(slow.answer, /^HTTP\/1\.1 408 /)
  const bound = API_SERVER_LIMITS.http.headersTimeout + API_SERVER_LIMITS.http.connectionsCheckingInterval
  t.ok(slow.afterMs <= bound + 1000, `closed after ${slow.afterMs} ms, within ${bound} ms and a second of slack`)
  t.equal(agent.socket.readyState, agent.socket.OPEN, 'the agent\'s websocket, silent meanwhile, is still open')
  agent.socket.close()
})
