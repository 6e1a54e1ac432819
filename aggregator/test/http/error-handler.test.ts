// The one error handler over a real socket: each kind of failure gets its catalogued code and status,
// and only our own failures (500) are logged, with the code and without leaking details to the client.

import t from 'tap'
import { readdirSync, readFileSync } from 'node:fs'
import { Writable } from 'node:stream'
import Fastify from 'fastify'
import pino from 'pino'
import { AggregatorError, AGGREGATOR_ERRORS, badQuery, ERR_NOT_FOUND } from '../../src/errors.ts'
import { errorHandler, notFoundHandler } from '../../src/http/error-handler.ts'
import { aggregator } from '../helpers.ts'

const lines: Array<Record<string, unknown>> = []
const log = pino({ level: 'info' }, new Writable({ write (chunk, _enc, done) { lines.push(JSON.parse(String(chunk))); done() } }))
const app = Fastify({ loggerInstance: log, bodyLimit: 1024 })
app.setErrorHandler(errorHandler)
app.setNotFoundHandler(notFoundHandler)
app.get('/not-found', async () => { throw new AggregatorError(ERR_NOT_FOUND, 'no gate named "x"') })
app.get('/bad', async () => { throw badQuery('window="soon" is not a duration') })
app.get('/schema', { schema: { querystring: { type: 'object', properties: { n: { type: 'integer' } } } } }, async () => ({ ok: true }))
app.post('/small', { bodyLimit: 16 }, async () => ({ ok: true }))
app.post('/json', async () => ({ ok: true }))
app.get('/bug', async () => { throw new TypeError('secret detail') })
// A plugin's routes inherit the handler: no second one is needed.
await app.register(async child => { child.get('/child-bug', async () => { throw new Error('in a plugin') }) })
await app.listen({ host: '127.0.0.1', port: 0 })
t.teardown(() => app.close())
const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`

async function call (path: string, init?: RequestInit): Promise<{ status: number, body: { code: string, message: string } }> {
  const r = await fetch(base + path, init)
  return { status: r.status, body: await r.json() as { code: string, message: string } }
}

t.test('an AggregatorError keeps its code, and its status defaults to the catalogue\'s', async t => {
  t.same(await call('/not-found'), { status: 404, body: { code: 'PINGFLEET_ERR_NOT_FOUND', message: 'no gate named "x"' } })
  t.equal(AGGREGATOR_ERRORS.PINGFLEET_ERR_NOT_FOUND.status, 404)
  t.same(await call('/bad'), { status: 400, body: { code: 'PINGFLEET_ERR_BAD_QUERY', message: 'window="soon" is not a duration' } })
})

t.test('a schema violation is 400 PINGFLEET_ERR_BAD_QUERY', async t => {
  // The message names the parameter, the value given and what was expected (docs/errors.md).
  t.same(await call('/schema?n=x'), { status: 400, body: { code: 'PINGFLEET_ERR_BAD_QUERY', message: 'query parameter n: got "x", expected an integer' } })
})

t.test('a body over the route\'s limit is 413 and names the limit', async t => {
  t.same(await call('/small', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ pad: 'x'.repeat(100) }) }),
    { status: 413, body: { code: 'PINGFLEET_ERR_BODY_TOO_LARGE', message: 'request body larger than 16 bytes' } })
})

t.test('another 4xx fastify raises keeps its status, as PINGFLEET_ERR_BAD_QUERY', async t => {
  t.match(await call('/json', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{' }), { status: 400, body: { code: 'PINGFLEET_ERR_BAD_QUERY' } })
  t.match(await call('/json', { method: 'POST', headers: { 'content-type': 'application/x-unknown' }, body: 'x' }), { status: 415, body: { code: 'PINGFLEET_ERR_BAD_QUERY' } })
})

t.test('anything else is a 500 without details, logged once with the code and the stack', async t => {
  lines.length = 0
  t.same(await call('/bug'), { status: 500, body: { code: 'PINGFLEET_ERR_INTERNAL', message: 'internal error' } })
  t.same(await call('/child-bug'), { status: 500, body: { code: 'PINGFLEET_ERR_INTERNAL', message: 'internal error' } })
  const logged = lines.filter(l => l.code === 'PINGFLEET_ERR_INTERNAL')
  t.equal(logged.length, 2)
  t.match(logged[0], { level: 50, msg: 'request failed', err: { type: 'TypeError', message: 'secret detail', stack: /TypeError: secret detail/ } })
  t.same(lines.filter(l => l.level as number >= 40 && l.code !== 'PINGFLEET_ERR_INTERNAL'), [], '4xx answers are not logged as failures')
})

t.test('the aggregator sets this handler once, and no other: plugins inherit it', async t => {
  const src = new URL('../../src/', import.meta.url)
  const calls = readdirSync(src, { recursive: true, encoding: 'utf8' }).filter(f => f.endsWith('.ts'))
    .flatMap(f => [...readFileSync(new URL(f, src), 'utf8').matchAll(/setErrorHandler\(([^)]*)\)/g)].map(m => m[1]))
  t.same(calls, ['errorHandler'], 'one setErrorHandler(errorHandler) in aggregator/src')
})

t.test('an unknown route or a wrong method is 404 PINGFLEET_ERR_NOT_FOUND, not logged as a failure', async t => {
  lines.length = 0
  t.same(await call('/no/such/path?x=1'), { status: 404, body: { code: 'PINGFLEET_ERR_NOT_FOUND', message: 'no route GET /no/such/path' } })
  t.same(await call('/bad', { method: 'DELETE' }), { status: 404, body: { code: 'PINGFLEET_ERR_NOT_FOUND', message: 'no route DELETE /bad' } })
  t.same(lines.filter(l => l.level as number >= 40), [])
})

t.test('the aggregator answers unknown routes and wrong methods with the catalogued code, over a real socket', async t => {
  const agg = await aggregator()
  t.teardown(() => agg.close())
  for (const [method, path] of [['GET', '/api/v1/nope'], ['DELETE', '/api/v1/gates'], ['POST', '/metrics']] as const) {
    const r = await fetch(`${agg.address()}${path}`, { method })
    t.equal(r.status, 404, `${method} ${path}`)
    t.match(r.headers.get('content-type'), /^application\/json/)
    t.same(await r.json(), { code: 'PINGFLEET_ERR_NOT_FOUND', message: `no route ${method} ${path}` })
  }
})

t.test('the aggregator sets one not-found handler, this one', async t => {
  const src = new URL('../../src/', import.meta.url)
  const calls = readdirSync(src, { recursive: true, encoding: 'utf8' }).filter(f => f.endsWith('.ts'))
    .flatMap(f => [...readFileSync(new URL(f, src), 'utf8').matchAll(/setNotFoundHandler\(([^)]*)\)/g)].map(m => m[1]))
  t.same(calls, ['notFoundHandler'], 'one setNotFoundHandler(notFoundHandler) in aggregator/src')
})
