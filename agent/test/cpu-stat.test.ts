import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { cpuStatFiles, parseCpuStat, readCpuThrottling } from '../src/cpu-stat.ts'

const V2 = 'usage_usec 9812\nuser_usec 7000\nsystem_usec 2812\nnr_periods 600\nnr_throttled 41\nthrottled_usec 3895000\nnr_bursts 0\nburst_usec 0\n'
const V1 = 'nr_periods 11\nnr_throttled 11\nthrottled_time 762575486\nnr_bursts 0\nburst_time 0\n'

function fakeSys (t: Test, cgroup: string, files: Record<string, string>): { selfCgroup: string, root: string } {
  const dir = mkdtempSync(join(tmpdir(), 'pf-cpustat-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  writeFileSync(join(dir, 'cgroup'), cgroup)
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(join(dir, 'fs', path, '..'), { recursive: true })
    writeFileSync(join(dir, 'fs', path), text)
  }
  return { selfCgroup: join(dir, 'cgroup'), root: join(dir, 'fs') }
}

t.test('cgroup v2: the cpu.stat of the process\'s own cgroup', async t => {
  const paths = fakeSys(t, '0::/kubepods/burstable/pod1/agent\n', { 'kubepods/burstable/pod1/agent/cpu.stat': V2 })
  t.same(await readCpuThrottling(paths), { periods: 600, throttledPeriods: 41, throttledUsec: 3_895_000 })
})

t.test('in a container\'s own cgroup namespace the path is the mount root', async t => {
  const paths = fakeSys(t, '0::/\n', { 'cpu.stat': V2 })
  t.same(await readCpuThrottling(paths), { periods: 600, throttledPeriods: 41, throttledUsec: 3_895_000 })
})

t.test('cgroup v1 (or hybrid): the cpu controller\'s cpu.stat, throttled_time in nanoseconds', async t => {
  const paths = fakeSys(t, '4:memory:/x\n1:cpu,cpuacct:/lim\n0::/\n', { 'cpu/lim/cpu.stat': V1, 'cpu.stat': 'usage_usec 1\n' })
  t.same(await readCpuThrottling(paths), { periods: 11, throttledPeriods: 11, throttledUsec: 762_575 }, 'the v2 root without throttling keys is skipped')
  t.same((await cpuStatFiles(paths)).map(f => f.version), [2, 1], 'v2 is tried first')
})

t.test('anything missing turns the feature off, silently', async t => {
  t.equal(await readCpuThrottling({ selfCgroup: '/nonexistent/cgroup' }), null, 'no /proc/self/cgroup')
  t.equal(await readCpuThrottling(fakeSys(t, '0::/a\n', {})), null, 'no cpu.stat')
  t.equal(await readCpuThrottling(fakeSys(t, '0::/../escape\n', { '../escape/cpu.stat': V2 })), null, 'a path outside our view')
  t.equal(await readCpuThrottling(fakeSys(t, '3:pids:/a\n', {})), null, 'no cpu hierarchy at all')
  t.equal(parseCpuStat('usage_usec 5\n'), null, 'the v2 root has no throttling keys')
  t.equal(parseCpuStat('nr_periods x\nnr_throttled 1\nthrottled_usec 2\n'), null)
})
