import t from 'tap'
import { aggregator } from '../helpers.ts'

t.test('the matrix page is served at / and reads the matrix API', async t => {
  const agg = await aggregator()
  t.teardown(() => agg.close())
  const page = await agg.app.inject('/')
  t.equal(page.statusCode, 200)
  t.match(page.headers['content-type'], /^text\/html/)
  t.match(page.headers['content-security-policy'], /default-src 'self'/)
  t.match(page.body, /<title>pingfleet matrix<\/title>/)
  t.match(page.body, /api\/v1\/matrix\?/, 'the page fetches the matrix API relative to itself')
})
