// CPU-throttles one process the way a Kubernetes CPU limit does: a child cgroup with a CFS quota
// (cgroup v2 `cpu.max`, or v1 `cpu.cfs_quota_us` where the cpu controller is still on v1), the
// process moved into it, and moved back and the cgroup removed at teardown. Synchronous, so an exit
// handler can undo it.

import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

export interface CpuHierarchy {
  version: 1 | 2
  /** Where cgroups of the cpu controller are made. */
  root: string
}

/** The hierarchy that controls CPU on this machine, or null when neither can be used. */
export function cpuHierarchy (): CpuHierarchy | null {
  const v2 = '/sys/fs/cgroup'
  try {
    if (readFileSync(join(v2, 'cgroup.controllers'), 'utf8').split(/\s+/).includes('cpu')) return { version: 2, root: v2 }
  } catch {}
  const v1 = '/sys/fs/cgroup/cpu'
  return existsSync(join(v1, 'cpu.cfs_quota_us')) ? { version: 1, root: v1 } : null
}

/** Why throttling cannot be tested here, or null when it can. */
export function missingCpuControl (): string | null {
  if (process.getuid?.() !== 0) return 'needs root to create cgroups'
  return cpuHierarchy() === null ? 'needs the cgroup cpu controller (v2 cpu.max or v1 cpu.cfs_quota_us)' : null
}

/** The cgroup `pid` is in for this hierarchy, as a path under its root (`/` for the root). */
function cgroupOf (pid: number, h: CpuHierarchy): string {
  for (const line of readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n')) {
    const [id, controllers, path] = line.split(':')
    if (path === undefined) continue
    if (h.version === 2 ? id === '0' && controllers === '' : controllers!.split(',').includes('cpu')) return path
  }
  return '/'
}

export interface Throttle {
  dir: string
  /** Where the throttled processes go back to. */
  home: string
}

/**
 * Creates `<root>/<name>` with `quotaUs` of CPU per `periodUs` and moves `pid` into it. In v2 the
 * parent must delegate the cpu controller: the root's subtree_control gets `+cpu` when it lacks it.
 */
export function throttle (name: string, pid: number, quotaUs: number, periodUs: number): Throttle {
  const h = cpuHierarchy()
  if (h === null) throw new Error('no cgroup cpu controller')
  const home = join(h.root, cgroupOf(pid, h))
  const dir = join(h.root, name)
  if (h.version === 2) {
    const control = join(h.root, 'cgroup.subtree_control')
    if (!readFileSync(control, 'utf8').split(/\s+/).includes('cpu')) writeFileSync(control, '+cpu')
  }
  mkdirSync(dir)
  if (h.version === 2) writeFileSync(join(dir, 'cpu.max'), `${quotaUs} ${periodUs}`)
  else {
    writeFileSync(join(dir, 'cpu.cfs_period_us'), String(periodUs))
    writeFileSync(join(dir, 'cpu.cfs_quota_us'), String(quotaUs))
  }
  writeFileSync(join(dir, 'cgroup.procs'), String(pid))
  return { dir, home }
}

/** Periods in which the cgroup was throttled so far (`nr_throttled` of its cpu.stat, v1 and v2 alike). */
export function throttledPeriods (t: Throttle): number {
  const line = readFileSync(join(t.dir, 'cpu.stat'), 'utf8').split('\n').find(l => l.startsWith('nr_throttled '))
  return line === undefined ? 0 : Number(line.split(' ')[1])
}

/** Moves every process in the cgroup back home and removes it. Idempotent. */
export function unthrottle (t: Throttle): void {
  if (!existsSync(t.dir)) return
  for (const pid of readFileSync(join(t.dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean)) {
    try { writeFileSync(join(t.home, 'cgroup.procs'), pid) } catch {} // it may have exited meanwhile
  }
  rmdirSync(t.dir)
}

/** Removes cgroups an earlier run left behind (its process died before teardown): `<prefix>…` under the cpu root. */
export function sweepCgroups (isStale: (name: string) => boolean): string[] {
  const h = cpuHierarchy()
  if (h === null) return []
  const swept: string[] = []
  for (const entry of readdirSync(h.root, { withFileTypes: true })) {
    if (!entry.isDirectory() || !isStale(entry.name)) continue
    try {
      unthrottle({ dir: join(h.root, entry.name), home: h.root })
      swept.push(entry.name)
    } catch {}
  }
  return swept
}
