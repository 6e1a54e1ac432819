// Slow and idle clients on the aggregator's HTTP port are cut off within API_SERVER_LIMITS (issue 14),
// and the agents' websockets, once upgraded, are not.

import { connect } from 'node:net'
import t from 'tap'
import { API_MAX_WAITING, API_SERVER_LIMITS } from '../../src/app.ts'
import { aggregator, hello, RawAgent } from '../helpers.ts'
import { until } from '../kube-fake.ts'

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

t.test('a flood of connections that send nothing closes the oldest of them, never an agent\'s websocket', async t => {
  const agg = await aggregator()
  t.teardown(() => agg.close())
  const agent = new RawAgent(agg.address())
  await agent.opened()
  agent.send(hello('n1'))
  await agent.waitFor(m => m.type === 'welcome')
  const url = new URL(agg.address())
  // Opened in batches well below the listen backlog, so the kernel's accept queue never overflows; the
  // server may close one (a reset) before its client saw it connect: either way it settles.
  const open = (): Promise<{ closed: Promise<void>, destroy: () => void }> => new Promise(resolve => {
    const socket = connect({ host: url.hostname, port: Number(url.port) })
    const closed = new Promise<void>(done => socket.once('close', () => done()))
    const settled = { closed, destroy: () => socket.destroy() }
    socket.on('error', () => {})
    socket.once('connect', () => resolve(settled))
    socket.once('close', () => resolve(settled))
  })
  const flood: Array<{ closed: Promise<void>, destroy: () => void }> = []
  while (flood.length < API_MAX_WAITING + 20) flood.push(...await Promise.all(Array.from({ length: Math.min(64, API_MAX_WAITING + 20 - flood.length) }, open)))
  t.teardown(() => { for (const c of flood) c.destroy() })
  // Connections opened at once are accepted in any order: count the closed ones, not which.
  let closed = 0
  for (const c of flood) void c.closed.then(() => { closed++ })
  await until('20 closed', () => closed >= 20, 15_000).catch(() => { throw new Error(`only ${closed} of the flood closed`) })
  await new Promise(resolve => setTimeout(resolve, 200))
  t.equal(closed, 20, 'exactly the 20 past the bound were closed by the server')
  t.equal((await agg.app.inject('/healthz')).statusCode, 200)
  t.equal(agent.socket.readyState, agent.socket.OPEN, 'the agent\'s websocket, silent and older than all of them, is still open')
  agent.socket.close()
})
