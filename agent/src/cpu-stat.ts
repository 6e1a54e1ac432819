// Reads the CPU throttling of the agent's own cgroup (`cpu.stat`, cgroup v2, or v1 where the node still has it), so throttling is
// observed rather than guessed from event-loop stalls. Anything missing turns the feature off silently.

import { readFile } from 'node:fs/promises'
import type { CpuThrottling } from '@pingfleet/protocol'

export interface CpuStatPaths {
  /** The process's cgroup membership; default /proc/self/cgroup. */
  selfCgroup?: string
  /** Where the cgroup v2 hierarchy is mounted; default /sys/fs/cgroup. */
  root?: string
}

/** One cpu.stat file that may hold this process's throttling, and which hierarchy it belongs to. */
export interface CpuStatFile {
  path: string
  /** v2: `throttled_usec`; v1: `throttled_time` in nanoseconds. */
  version: 1 | 2
}

/**
 * Where this process's cpu.stat may be, in order: the cgroup v2 (unified) line of /proc/self/cgroup
 * (`0::/path`) under the mount root, then a cgroup v1 line whose controllers include `cpu`
 * (`4:cpu,cpuacct:/path`) under `<root>/cpu`, for nodes still on v1 or hybrid hierarchies. In a
 * container with its own cgroup namespace the path is `/`, so the first is /sys/fs/cgroup/cpu.stat.
 * Read on every call: the process may be moved to another cgroup while it runs.
 */
export async function cpuStatFiles (paths: CpuStatPaths = {}): Promise<CpuStatFile[]> {
  let text: string
  try {
    text = await readFile(paths.selfCgroup ?? '/proc/self/cgroup', 'utf8')
  } catch {
    return []
  }
  const root = paths.root ?? '/sys/fs/cgroup'
  const out: CpuStatFile[] = []
  for (const line of text.split('\n')) {
    const match = /^(\d+):([^:]*):(\/.*)$/.exec(line.trim())
    if (match === null) continue
    const path = match[3]!.replace(/\/+$/, '')
    // A path outside our mount namespace's view cannot be read from here.
    if (path.split('/').includes('..')) continue
    if (match[1] === '0' && match[2] === '') out.unshift({ path: `${root}${path}/cpu.stat`, version: 2 })
    else if (match[2]!.split(',').includes('cpu')) out.push({ path: `${root}/cpu${path}/cpu.stat`, version: 1 })
  }
  return out
}

/**
 * Parses cpu.stat (`key value` lines). Null when the throttling keys are absent: the root cgroup of
 * v2, or a cgroup without the cpu controller.
 */
export function parseCpuStat (text: string, version: 1 | 2 = 2): CpuThrottling | null {
  const values = new Map<string, number>()
  for (const line of text.split('\n')) {
    const [key, value] = line.trim().split(/\s+/)
    if (key === undefined || value === undefined || !/^\d{1,19}$/.test(value)) continue
    values.set(key, Number(value))
  }
  const periods = values.get('nr_periods')
  const throttledPeriods = values.get('nr_throttled')
  const throttled = version === 2 ? values.get('throttled_usec') : values.get('throttled_time')
  if (periods === undefined || throttledPeriods === undefined || throttled === undefined) return null
  return { periods, throttledPeriods, throttledUsec: version === 2 ? throttled : Math.floor(throttled / 1000) }
}

/** The throttling counters of this process's cgroup, or null when they cannot be read. Never throws. */
export async function readCpuThrottling (paths: CpuStatPaths = {}): Promise<CpuThrottling | null> {
  for (const file of await cpuStatFiles(paths)) {
    try {
      const stat = parseCpuStat(await readFile(file.path, 'utf8'), file.version)
      if (stat !== null) return stat
    } catch {
      // Not mounted here, or not this hierarchy: try the next.
    }
  }
  return null
}
