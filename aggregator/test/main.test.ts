import t from 'tap'
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const MAIN = fileURLToPath(new URL('../src/main.ts', import.meta.url))

function run (env: Record<string, string>, args: string[] = []): { status: number | null, stderr: string } {
  const r = spawnSync(process.execPath, [MAIN, ...args], { env: { PATH: process.env.PATH ?? '', ...env }, encoding: 'utf8', timeout: 20_000 })
  return { status: r.status, stderr: r.stderr }
}

const cases: Array<[string, Record<string, string>, string[], RegExp]> = [
  ['a missing token', { PINGFLEET_LISTEN: '127.0.0.1:0' }, [], /PINGFLEET_TOKEN="" is invalid: expected a token of at least 8 characters/],
  ['a bad interval', { PINGFLEET_TOKEN: 'token-0123456', PINGFLEET_INTERVAL: 'often' }, [], /PINGFLEET_INTERVAL="often" is invalid: expected a duration/],
  ['a bad flag value', { PINGFLEET_TOKEN: 'token-0123456' }, ['--listen', 'nowhere'], /PINGFLEET_LISTEN="nowhere" is invalid/],
  ['a matrix limit that is not a number', { PINGFLEET_TOKEN: 'token-0123456', PINGFLEET_MAX_MATRIX_CELLS: 'lots' }, [], /PINGFLEET_MAX_MATRIX_CELLS="lots" is invalid: expected a whole number of cells/],
  ['a window shorter than two intervals', { PINGFLEET_TOKEN: 'token-0123456', PINGFLEET_INTERVAL: '1m', PINGFLEET_MAX_WINDOW: '1m' }, [], /PINGFLEET_MAX_WINDOW="1m" is invalid: expected at least two intervals/]
]

for (const [what, env, args, message] of cases) {
  t.test(`${what} stops the aggregator with one line and exit 78`, async t => {
    const r = run(env, args)
    t.equal(r.status, 78)
    t.match(r.stderr, /^pingfleet-aggregator: PINGFLEET_ERR_CONFIG: /)
    t.match(r.stderr, message)
    t.equal(r.stderr.trim().split('\n').length, 1, 'exactly one line')
    t.notMatch(r.stderr, /token-0123456/, 'the token is never echoed')
  })
}
