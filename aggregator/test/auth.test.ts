// The static-token authenticator: the one shared secret lets an agent in, anything else is a 401
// with PINGFLEET_ERR_UNAUTHORIZED (the websocket suites check the same through the upgrade).

import t from 'tap'
import { staticAuth } from '../src/auth.ts'
import { ERR_UNAUTHORIZED } from '../src/errors.ts'

t.test('staticAuth: the token lets in with no identity; a wrong, shorter, longer or empty one is refused', async t => {
  const auth = staticAuth('s3cret-token')
  t.same(await auth('s3cret-token'), { ok: true, identity: null })
  for (const token of ['s3cret-tokeN', 's3cret-toke', 's3cret-token-', '']) {
    t.same(await auth(token), { ok: false, status: 401, code: ERR_UNAUTHORIZED, message: 'missing or wrong bearer token' }, JSON.stringify(token))
  }
  t.same(await auth('s3cret-token', { fresh: true }), { ok: true, identity: null }, 'fresh asks again: same answer')
})
