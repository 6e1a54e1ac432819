// A small "cluster" of network namespaces on one machine, for the e2e suite: nodes with one real
// agent each (half cniplugin=aws, half cniplugin=cilium, one pod subnet per group), a router that
// forwards between them, load-balances a Service VIP with nftables DNAT like kube-proxy and carries
// the injected faults, a dnsmasq cluster resolver, an "external" HTTP endpoint and the aggregator.
// Every address is in 198.18.0.0/15; nothing is routed anywhere else. Everything the cluster
// creates is recorded and removed by teardown(), which is synchronous so an exit handler can run it.

import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { chmodSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs'
import { request } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { sweepCgroups, throttle, throttledPeriods, unthrottle, type Throttle } from './cpu-throttle.ts'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const HELPER = fileURLToPath(new URL('./ns-helper.ts', import.meta.url))

/** Every namespace of this suite starts with this, then a 4-hex run id: `pfe2e1a2b-n1`. */
export const PREFIX = 'pfe2e'
const OWNERS = '/run/pingfleet-e2e'

export const GROUPS = ['aws', 'cilium'] as const
export type Group = typeof GROUPS[number]
export const SUBNET: Record<Group, string> = { aws: '198.18.1.0/24', cilium: '198.18.2.0/24' }
const GATEWAY = '198.18.0.1'
export const AGGREGATOR = { ip: '198.18.3.10', port: 8080 }
export const DNS = { ip: '198.18.3.53', port: 53 }
/** A second address of the resolver's namespace: a front that answers A but never AAAA (ns-helper.ts dns-no-aaaa). */
const DNS_NO_AAAA = '198.18.3.54'
export const EXTERNAL = { ip: '198.19.0.80', port: 80 }
export const VIP = { ip: '198.18.4.100', port: 8081 }
export const AGENT_PORT = 8081
/** The names the cluster resolver serves, and the Service name probes use. */
export const SERVICE_FQDN = 'pingfleet-agent.default.svc.cluster.local'
export const DNS_FQDN = 'kube-dns.kube-system.svc.cluster.local'

export interface ClusterNode {
  name: string
  group: Group
  ip: string
  ns: string
  /** The router's end of this node's veth. */
  veth: string
}

export interface Proc {
  name: string
  child: ChildProcess
  stop: (signal?: NodeJS.Signals) => Promise<void>
}

/** Runs a command; throws with its stderr when it fails. */
export function sh (cmd: string, args: readonly string[], input?: string): string {
  const r = spawnSync(cmd, args, { input, encoding: 'utf8', timeout: 15_000 })
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status ?? r.signal}): ${(r.stderr || r.error?.message || '').trim()}`)
  return r.stdout
}

function has (command: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0
}

/** Why the suite cannot run on this machine, or null when it can. */
export function missingPrerequisite (): string | null {
  if (process.platform !== 'linux') return `needs Linux network namespaces (platform is ${process.platform})`
  if (process.getuid?.() !== 0) return 'needs root (network namespaces, veths and nftables)'
  for (const [command, pkg] of [['ip', 'iproute2'], ['nft', 'nftables'], ['dnsmasq', 'dnsmasq-base']] as const) {
    if (!has(command)) return `needs \`${command}\` (Debian package ${pkg})`
  }
  // `ip netns exec` bind-mounts /etc/netns/<ns>/resolv.conf over this file, so it must exist.
  if (!existsSync('/etc/resolv.conf')) return 'needs /etc/resolv.conf to exist (ip netns exec mounts each node\'s over it)'
  const probe = `${PREFIX}chk${process.pid % 10000}`
  const r = spawnSync('ip', ['netns', 'add', probe], { encoding: 'utf8' })
  if (r.status !== 0) return `cannot create a network namespace: ${r.stderr.trim()}`
  try {
    // `ip netns exec` needs a mount namespace too; nft needs nf_tables in the kernel.
    const e = spawnSync('ip', ['netns', 'exec', probe, 'nft', 'list', 'ruleset'], { encoding: 'utf8' })
    return e.status === 0 ? null : `cannot run nft inside a network namespace: ${e.stderr.trim()}`
  } finally {
    spawnSync('ip', ['netns', 'del', probe])
  }
}

const alive = (pid: number): boolean => {
  try { process.kill(pid, 0); return true } catch (err) { return (err as NodeJS.ErrnoException).code === 'EPERM' }
}

function removeNamespace (ns: string): void {
  // Processes left inside (agents, dnsmasq, helpers) belong to this suite by construction.
  const pids = spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).stdout?.split(/\s+/).filter(Boolean) ?? []
  for (const pid of pids) try { process.kill(Number(pid), 'SIGKILL') } catch {}
  spawnSync('ip', ['netns', 'del', ns])
  rmSync(`/etc/netns/${ns}`, { recursive: true, force: true })
}

/**
 * Removes what earlier runs left behind when their process died before teardown (a crash, SIGKILL):
 * namespaces (and the processes in them), CPU-throttling cgroups, /etc/netns entries and the run's temporary directory. A run
 * whose owner file names a live process other than this one is left alone.
 */
export function sweepStale (): string[] {
  const live = (id: string): boolean => {
    const owner = join(OWNERS, id)
    const pid = existsSync(owner) ? Number(readFileSync(owner, 'utf8')) : NaN
    return Number.isInteger(pid) && pid !== process.pid && alive(pid)
  }
  const runOf = (name: string): string | null => new RegExp(`^${PREFIX}([0-9a-f]{4})-`).exec(name)?.[1] ?? null
  const swept: string[] = []
  const list = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout ?? ''
  for (const ns of list.split('\n').map(l => l.split(' ')[0] ?? '')) {
    const id = runOf(ns)
    if (id === null || live(id)) continue
    removeNamespace(ns)
    swept.push(ns)
  }
  for (const cgroup of sweepCgroups(name => { const id = runOf(name); return id !== null && !live(id) })) swept.push(`cgroup ${cgroup}`)
  for (const entry of existsSync('/etc/netns') ? readdirSync('/etc/netns') : []) {
    const id = runOf(entry)
    if (id !== null && !live(id)) rmSync(join('/etc/netns', entry), { recursive: true, force: true })
  }
  for (const id of existsSync(OWNERS) ? readdirSync(OWNERS) : []) {
    if (live(id)) continue
    // Only a run that died keeps its owner file: logs a finished run kept on purpose stay.
    for (const entry of readdirSync(tmpdir())) {
      if (entry.startsWith(`${PREFIX}${id}-`)) rmSync(join(tmpdir(), entry), { recursive: true, force: true })
    }
    rmSync(join(OWNERS, id), { force: true })
  }
  return swept
}

export interface ClusterOptions {
  nodesPerGroup: number
  token: string
  /** Extra environment for every agent and for the aggregator. */
  agentEnv: Record<string, string>
  /** Environment for one agent on top of agentEnv, such as its own token file. */
  agentEnvFor?: (node: ClusterNode) => Record<string, string>
  aggregatorEnv: Record<string, string>
  /** resolv.conf `options` line of every node, after ndots:5. */
  resolverOptions: string
}

export class Cluster {
  readonly id = randomBytes(2).toString('hex')
  readonly dir = mkdtempSync(join(tmpdir(), `${PREFIX}${this.id}-`))
  readonly router = `${PREFIX}${this.id}-r`
  readonly aggNs = `${PREFIX}${this.id}-agg`
  readonly dnsNs = `${PREFIX}${this.id}-dns`
  readonly extNs = `${PREFIX}${this.id}-ext`
  readonly nodes: ClusterNode[] = []
  readonly bridgeSocket = join(this.dir, 'bridge.sock')
  readonly hostsFile = join(this.dir, 'cluster.hosts')
  readonly agents = new Map<string, Proc>()
  aggregator: Proc | undefined
  private dnsmasq: Proc | undefined
  private readonly namespaces: string[] = []
  private readonly procs = new Set<Proc>()
  private readonly throttles = new Map<string, Throttle>()
  private readonly nudgers = new Map<string, NodeJS.Timeout>()
  private tornDown = false
  readonly options: ClusterOptions

  constructor (options: ClusterOptions) {
    this.options = options
    chmodSync(this.dir, 0o755)
    mkdirSync(OWNERS, { recursive: true })
    writeFileSync(join(OWNERS, this.id), String(process.pid))
    for (const group of GROUPS) {
      for (let i = 0; i < options.nodesPerGroup; i++) {
        const n = this.nodes.length + 1
        this.nodes.push({
          name: `${group}-${i + 1}`,
          group,
          ip: SUBNET[group].replace(/0\/24$/, String(11 + i)),
          ns: `${PREFIX}${this.id}-n${n}`,
          veth: `vn${n}`
        })
      }
    }
  }

  node (name: string): ClusterNode {
    const n = this.nodes.find(x => x.name === name)
    if (n === undefined) throw new Error(`no node ${name}`)
    return n
  }

  log (name: string): string { return join(this.dir, `${name}.log`) }

  /** Namespaces, veths, routes, the base nftables ruleset, the resolver, the external endpoint and the bridge. */
  async build (): Promise<void> {
    this.addNamespace(this.router)
    const ns = (name: string, ...args: string[]): string => sh('ip', ['-n', name, ...args])
    ns(this.router, 'link', 'set', 'lo', 'up')
    // /proc/sys/net belongs to the namespace of whoever opens it (no dependency on procps' sysctl).
    sh('ip', ['netns', 'exec', this.router, 'sh', '-c',
      'echo 1 > /proc/sys/net/ipv4/ip_forward && echo 0 > /proc/sys/net/ipv4/conf/all/rp_filter && echo 0 > /proc/sys/net/ipv4/conf/default/rp_filter'])
    const attach = (name: string, veth: string, ip: string): void => {
      this.addNamespace(name)
      // Routed like a /32-per-pod CNI: the router owns the gateway address on every veth, each pod a /32.
      ns(this.router, 'link', 'add', veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', name)
      ns(this.router, 'addr', 'add', `${GATEWAY}/32`, 'dev', veth)
      ns(this.router, 'link', 'set', veth, 'up')
      ns(this.router, 'route', 'add', `${ip}/32`, 'dev', veth)
      ns(name, 'link', 'set', 'lo', 'up')
      ns(name, 'addr', 'add', `${ip}/32`, 'dev', 'eth0')
      ns(name, 'link', 'set', 'eth0', 'up')
      ns(name, 'route', 'add', `${GATEWAY}/32`, 'dev', 'eth0')
      ns(name, 'route', 'add', 'default', 'via', GATEWAY, 'dev', 'eth0')
    }
    for (const n of this.nodes) {
      attach(n.ns, n.veth, n.ip)
      // `ip netns exec` bind-mounts this over /etc/resolv.conf: a pod's resolver settings.
      mkdirSync(`/etc/netns/${n.ns}`, { recursive: true })
      writeFileSync(`/etc/netns/${n.ns}/resolv.conf`,
        `nameserver ${DNS.ip}\nsearch default.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5 ${this.options.resolverOptions}\n`)
    }
    attach(this.aggNs, 'vagg', AGGREGATOR.ip)
    attach(this.dnsNs, 'vdns', DNS.ip)
    ns(this.dnsNs, 'addr', 'add', `${DNS_NO_AAAA}/32`, 'dev', 'eth0')
    ns(this.router, 'route', 'add', `${DNS_NO_AAAA}/32`, 'dev', 'vdns')
    attach(this.extNs, 'vext', EXTERNAL.ip)
    this.nft(this.baseRuleset())

    this.writeHosts(this.hostsEntries())
    this.dnsmasq = await this.spawnIn(this.dnsNs, 'dnsmasq', 'dnsmasq', [
      '--no-daemon', '--no-resolv', '--no-hosts', '--conf-file=/dev/null', `--addn-hosts=${this.hostsFile}`,
      '--local=/cluster.local/', '--domain-needed', `--listen-address=${DNS.ip}`, '--bind-interfaces',
      '--pid-file=', '--cache-size=0', `--log-facility=${this.log('dnsmasq')}`,
      ...(process.env.PINGFLEET_E2E_KEEP_LOGS === undefined ? [] : ['--log-queries'])
    ])
    // Idle until setDnsFault('no-aaaa') sends the cluster's DNS traffic to it.
    await this.spawnIn(this.dnsNs, 'dns-no-aaaa', process.execPath, [HELPER, 'dns-no-aaaa', DNS_NO_AAAA, DNS.ip])
    await this.spawnIn(this.extNs, 'external', process.execPath, [HELPER, 'http', EXTERNAL.ip, String(EXTERNAL.port)])
    await this.spawnIn(this.router, 'bridge', process.execPath, [HELPER, 'bridge', this.bridgeSocket])
    await this.until('the bridge', async () => existsSync(this.bridgeSocket) && (await this.get(EXTERNAL.ip, EXTERNAL.port, '/')).status === 200, 10_000)
  }

  /**
   * Names the cluster resolver answers, as hosts-file lines (FQDN only: no search list on the server side).
   * Agents' own names sit under `pingfleet-agent-pods…`, not under the Service name: a name with names below
   * it is an empty non-terminal, answered NODATA rather than NXDOMAIN once its own record is gone.
   */
  hostsEntries (omit: readonly string[] = []): string[] {
    const lines = [`${VIP.ip} ${SERVICE_FQDN}`, `${DNS.ip} ${DNS_FQDN}`]
    for (const n of this.nodes) lines.push(`${n.ip} ${n.name}.pingfleet-agent-pods.default.svc.cluster.local`)
    return lines.filter(l => !omit.some(name => l.endsWith(` ${name}`)))
  }

  /** Rewrites the resolver's hosts file and makes dnsmasq re-read it (SIGHUP). */
  writeHosts (lines: readonly string[]): void {
    writeFileSync(this.hostsFile, lines.join('\n') + '\n', { mode: 0o644 })
    this.dnsmasq?.child.kill('SIGHUP')
  }

  private addNamespace (name: string): void {
    sh('ip', ['netns', 'add', name])
    this.namespaces.push(name)
  }

  /** Loads nftables text into the router. */
  nft (text: string): void { sh('ip', ['netns', 'exec', this.router, 'nft', '-f', '-'], text) }

  private serviceMap (wrong?: { node: string, port: number }): string {
    return this.nodes.map((n, i) => `${i} : ${n.ip} . ${wrong?.node === n.name ? wrong.port : AGENT_PORT}`).join(', ')
  }

  /**
   * kube-proxy's choice of backend, by a hash of the client's address and (ephemeral) port: each new
   * connection lands anywhere. `numgen inc` would not do here: the agents probe on a steady period, so a
   * round-robin counter can keep handing each agent the same few backends for many rounds.
   */
  private serviceRule (wrong?: { node: string, port: number }): string {
    return `ip daddr ${VIP.ip} tcp dport ${VIP.port} dnat ip to jhash ip saddr . tcp sport mod ${this.nodes.length} seed ${this.seed} map { ${this.serviceMap(wrong)} }`
  }

  private readonly seed = `0x${randomBytes(4).toString('hex')}`

  private baseRuleset (): string {
    const hairpin = this.nodes.map(n => `    ct status dnat ip saddr ${n.ip} ip daddr ${n.ip} masquerade`).join('\n')
    return `table ip pingfleet {
  chain services {
    ${this.serviceRule()}
  }
  chain dnsfault {
  }
  chain prerouting {
    type nat hook prerouting priority dstnat; policy accept;
    jump dnsfault
    jump services
  }
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    # A pod reaching itself through the Service: masquerade so the answer comes back through the router.
${hairpin}
  }
  chain faults {
  }
  chain forward {
    type filter hook forward priority filter; policy accept;
    jump faults
  }
}
`
  }

  /** Replaces the router's fault rules (forwarded packets only: the bridge's own traffic is never touched). */
  setFaults (rules: readonly string[]): void {
    this.nft(`flush chain ip pingfleet faults\n${rules.map(r => `add rule ip pingfleet faults ${r}`).join('\n')}\n`)
  }

  /** Points one backend of the Service's DNAT map at a wrong port (null restores every backend). */
  setServiceFault (wrong: { node: string, port: number } | null): void {
    this.nft(`flush chain ip pingfleet services\nadd rule ip pingfleet services ${this.serviceRule(wrong ?? undefined)}\n`)
  }

  /**
   * `no-aaaa`: the resolver's UDP traffic goes to a front that relays every query but AAAA, which it never
   * answers; null restores the resolver. DNAT, as kube-proxy does for a DNS Service: the answers still come
   * from the resolver's address. Only new flows move: glibc opens a new socket per lookup.
   */
  setDnsFault (fault: 'no-aaaa' | null): void {
    const rule = fault === null ? '' : `add rule ip pingfleet dnsfault ip daddr ${DNS.ip} udp dport ${DNS.port} dnat ip to ${DNS_NO_AAAA}\n`
    this.nft(`flush chain ip pingfleet dnsfault\n${rule}`)
  }

  /** Starts a process inside a namespace, output to <dir>/<name>.log. */
  async spawnIn (ns: string, name: string, command: string, args: readonly string[], env: Record<string, string> = {}): Promise<Proc> {
    const fd = openSync(this.log(name), 'a')
    // The caller's own PINGFLEET_* settings (a developer's shell) must not leak into the cluster's processes.
    const inherited = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('PINGFLEET_')))
    const child = spawn('ip', ['netns', 'exec', ns, command, ...args], { cwd: ROOT, env: { ...inherited, ...env }, stdio: ['ignore', fd, fd] })
    closeSync(fd)
    const exited = new Promise<void>(resolve => child.once('exit', () => resolve()))
    const proc: Proc = {
      name,
      child,
      stop: async (signal = 'SIGTERM') => {
        if (child.exitCode === null && child.signalCode === null) child.kill(signal)
        await exited
        this.procs.delete(proc)
      }
    }
    this.procs.add(proc)
    await new Promise(resolve => setTimeout(resolve, 50))
    if (child.exitCode !== null) throw new Error(`${name} exited with ${child.exitCode}: ${this.tail(name)}`)
    return proc
  }

  tail (name: string, lines = 5): string {
    try { return readFileSync(this.log(name), 'utf8').trim().split('\n').slice(-lines).join('\n') } catch { return '' }
  }

  async startAggregator (): Promise<Proc> {
    const proc = await this.spawnIn(this.aggNs, 'aggregator', process.execPath, ['aggregator/src/main.ts'], {
      PINGFLEET_LISTEN: `${AGGREGATOR.ip}:${AGGREGATOR.port}`,
      PINGFLEET_TOKEN: this.options.token,
      ...this.options.aggregatorEnv
    })
    await this.until('the aggregator to be healthy', async () => {
      if (proc.child.exitCode !== null) throw new Error(`aggregator exited: ${this.tail('aggregator')}`)
      return (await this.get(AGGREGATOR.ip, AGGREGATOR.port, '/healthz')).status === 200
    }, 15_000)
    this.aggregator = proc
    return proc
  }

  async startAgent (node: ClusterNode): Promise<Proc> {
    const proc = await this.spawnIn(node.ns, node.name, process.execPath, ['agent/src/main.ts'], {
      PINGFLEET_AGGREGATOR_URL: `http://${AGGREGATOR.ip}:${AGGREGATOR.port}`,
      PINGFLEET_TOKEN: this.options.token,
      PINGFLEET_NODE_NAME: node.name,
      PINGFLEET_POD_NAME: `pingfleet-agent-${node.name}`,
      PINGFLEET_POD_IP: node.ip,
      PINGFLEET_LISTEN: `${node.ip}:${AGENT_PORT}`,
      PINGFLEET_LABELS: `cniplugin=${node.group}`,
      ...this.options.agentEnv,
      ...this.options.agentEnvFor?.(node)
    })
    await this.until(`${node.name} to be healthy`, async () => {
      if (proc.child.exitCode !== null) throw new Error(`${node.name} exited: ${this.tail(node.name)}`)
      return (await this.get(node.ip, AGENT_PORT, '/healthz')).status === 200
    }, 15_000)
    this.agents.set(node.name, proc)
    return proc
  }

  /**
   * Puts a node's agent under a CPU limit of `quotaUs` per `periodUs` (a cgroup, as a Kubernetes limit does),
   * and keeps it busy enough that the limit bites: a quiet agent can stay under its quota (an agent with five
   * peers stayed under 10 ms per 100 ms in one of four CI runs), and then nothing was throttled. So while the
   * limit is on, every 250 ms without a newly throttled period sends the agent a burst of /ping requests
   * (8, doubling up to 64 while the quota still does not bite; back to 8 once it does). A burst costs the
   * agent a few ms of CPU; its stalls stay bounded by the period, as they are under a real limit.
   */
  throttleAgent (node: string, quotaUs: number, periodUs: number): void {
    const pid = this.agents.get(node)?.child.pid
    // `ip netns exec` execs the command in place, so the child is the agent itself.
    if (pid === undefined || !readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('agent/src/main.ts')) throw new Error(`no agent process for ${node}`)
    this.throttles.set(node, throttle(`${PREFIX}${this.id}-cpu-${node}`, pid, quotaUs, periodUs))
    const ip = this.node(node).ip
    let seen = this.agentThrottledPeriods(node)
    let burst = 8
    let inFlight = false
    this.nudgers.set(node, setInterval(() => {
      const now = this.agentThrottledPeriods(node)
      if (now > seen) {
        seen = now
        burst = 8
        return
      }
      if (inFlight) return
      inFlight = true
      void Promise.all(Array.from({ length: burst }, () => this.get(ip, AGENT_PORT, '/ping', 2000).catch(() => {})))
        .finally(() => { inFlight = false })
      burst = Math.min(64, burst * 2)
    }, 250))
  }

  /**
   * How often the kernel throttled a node's agent so far, read on the host. The agent cannot read it
   * itself here: `ip netns exec` mounts a fresh /sys, which hides /sys/fs/cgroup from the agents.
   */
  agentThrottledPeriods (node: string): number {
    const t = this.throttles.get(node)
    return t === undefined ? 0 : throttledPeriods(t)
  }

  unthrottleAgent (node: string): void {
    clearInterval(this.nudgers.get(node))
    this.nudgers.delete(node)
    const t = this.throttles.get(node)
    if (t === undefined) return
    unthrottle(t)
    this.throttles.delete(node)
  }

  /** GET through the bridge in the router namespace. */
  get (ip: string, port: number, path: string, timeoutMs = 4000): Promise<{ status: number, body: string }> {
    return new Promise((resolve, reject) => {
      const req = request({ socketPath: this.bridgeSocket, path: `/${ip}:${port}${path}`, timeout: timeoutMs }, res => {
        let body = ''
        res.setEncoding('utf8').on('data', (chunk: string) => { body += chunk }).on('end', () => resolve({ status: res.statusCode ?? 0, body }))
      })
      req.on('timeout', () => req.destroy(new Error(`GET ${ip}:${port}${path} timed out`)))
      req.on('error', reject)
      req.end()
    })
  }

  async getJson<T> (ip: string, port: number, path: string): Promise<T> {
    const r = await this.get(ip, port, path)
    if (r.status !== 200) throw new Error(`GET ${ip}:${port}${path}: ${r.status} ${r.body.slice(0, 300)}`)
    return JSON.parse(r.body) as T
  }

  api<T> (path: string): Promise<T> { return this.getJson<T>(AGGREGATOR.ip, AGGREGATOR.port, path) }

  async until<T> (what: string, fn: () => Promise<T | undefined | false>, timeoutMs: number, everyMs = 100): Promise<{ value: T, ms: number }> {
    const start = Date.now()
    let last: unknown
    while (Date.now() - start < timeoutMs) {
      try {
        const value = await fn()
        if (value !== undefined && value !== false) return { value, ms: Date.now() - start }
      } catch (err) { last = err }
      await new Promise(resolve => setTimeout(resolve, everyMs))
    }
    throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last === undefined ? '' : `: ${String(last)}`}`)
  }

  /** Kills every process, deletes every namespace and file. Idempotent and synchronous (exit handlers). */
  teardown (): void {
    if (this.tornDown) return
    this.tornDown = true
    for (const timer of this.nudgers.values()) clearInterval(timer)
    for (const t of this.throttles.values()) try { unthrottle(t) } catch {}
    for (const p of this.procs) try { p.child.kill('SIGKILL') } catch {}
    for (const ns of this.namespaces.reverse()) removeNamespace(ns)
    try { rmdirSync('/etc/netns') } catch {} // only when empty: created for this run, or by nobody else
    rmSync(join(OWNERS, this.id), { force: true })
    if (process.env.PINGFLEET_E2E_KEEP_LOGS === undefined) rmSync(this.dir, { recursive: true, force: true })
  }
}

/** Whether a namespace with this name exists (for the teardown check). */
export function namespaceExists (ns: string): boolean {
  return execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }).split('\n').some(l => l.split(' ')[0] === ns)
}
