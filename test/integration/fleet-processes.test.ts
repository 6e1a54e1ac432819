// The fleet launcher (scripts/fleet-processes.ts) behind `npm start` and the integration suites:
// a process that does not come up is reported with what it said, from stderr or else from its log.

import t from 'tap'
import { HEALTHY_WITHIN_MS, spawnNode } from '../../scripts/fleet-processes.ts'

// Nothing listens on the discard port of loopback in the test environment.
const url = 'http://127.0.0.1:9'

t.test('a process that is not healthy in time is killed, quoting its log when stderr is empty', async t => {
  const started = spawnNode({ name: 'slow-agent', entry: 'test/helpers/never-healthy.ts', env: {}, url, log: 'ignore', healthyWithinMs: 4000 })
  await t.rejects(started, /^slow-agent did not become healthy at http:\/\/127\.0\.0\.1:9 within 4 s; nothing on stderr; last log lines: .*still loading the probe suite/)
})

t.test('its stderr is quoted when there is any', async t => {
  const started = spawnNode({ name: 'loud-agent', entry: 'test/helpers/never-healthy.ts', env: { NEVER_HEALTHY_STDERR: 'Error: EADDRINUSE 127.0.0.1:8081' }, url, log: 'ignore', healthyWithinMs: 4000 })
  await t.rejects(started, /within 4 s; stderr: Error: EADDRINUSE 127\.0\.0\.1:8081$/)
})

t.test('the default wait is 15 s', async t => {
  t.equal(HEALTHY_WITHIN_MS, 15_000)
})
