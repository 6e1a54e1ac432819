// `npm start` stopped as a user stops it: Ctrl-C in a terminal signals the whole process group, so
// the aggregator may be gone before the fleet script hears of it. Nothing may be printed as an error.

import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import t from 'tap'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
// Its own ports and addresses, apart from local-fleet.test.ts's and a developer's `npm start`.
const PORT = 27_000 + (process.pid % 1000) * 3
const SUBNET = `127.${100 + ((process.pid + 75) % 150)}`

t.test('Ctrl-C while the status printer runs stops the fleet without an error', async t => {
  const port = PORT
  const subnet = SUBNET
  // detached: its own process group, which a terminal's Ctrl-C signals as a whole.
  const child = spawn(process.execPath, ['scripts/local-fleet.ts', '--port', String(port), '--subnet', subnet, '--interval', '500ms'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], detached: true })
  let out = ''
  let err = ''
  child.stdout.on('data', chunk => { out += chunk })
  child.stderr.on('data', chunk => { err += chunk })
  const exited = new Promise<number | null>(resolve => child.once('exit', code => resolve(code)))
  t.teardown(async () => {
    if (child.exitCode === null) process.kill(-child.pid!, 'SIGKILL')
    await exited
  })
  // The printer's first round starts 5 s after the fleet is up; its first line is a pod cell.
  for (const until = Date.now() + 60_000; Date.now() < until && child.exitCode === null && !/^pod\s+\S+\s+→/m.test(out);) {
    await new Promise(resolve => setTimeout(resolve, 20))
  }
  t.match(out, /^pod\s+\S+\s+→/m, 'the status printer is running')
  process.kill(-child.pid!, 'SIGINT')
  t.equal(await exited, 0, 'the fleet exits 0')
  t.notMatch(err, /fetch failed|TypeError/, 'and prints no error from the status printer')
})
