// A real Kubernetes control plane for the test suites: etcd and kube-apiserver (built by
// .ci/install-control-plane.sh) on loopback, with unique ports, a throwaway PKI and an admin token,
// torn down by PID. No controller-manager, scheduler or kubelet: objects are created and their
// status is patched by the test, as a kubelet would.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { homedir, tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { Agent, request } from 'undici'
import { freePort } from '../helpers/relay.ts'

export const TOOLS_BIN = join(process.env.PINGFLEET_TOOLS_DIR ?? join(homedir(), '.cache/pingfleet-tools'), 'bin')
export const INSTALL_SCRIPT = '.ci/install-control-plane.sh'
export const IN_CI = process.env.CI === 'true'
/** ClusterIPs are only allocated, never routed: still kept inside the test range 198.18.0.0/15. */
export const SERVICE_CIDR = '198.19.0.0/16'

const BINARIES = ['etcd', 'kube-apiserver', 'kubectl'] as const

/** Why no control plane can run here, or null when it can. */
export function missingControlPlane (): string | null {
  const missing = BINARIES.map(b => join(TOOLS_BIN, b)).filter(path => !existsSync(path))
  if (missing.length > 0) return `${missing.join(', ')} missing: run bash ${INSTALL_SCRIPT}`
  if (spawnSync('openssl', ['version']).status !== 0) return 'openssl is not installed (Debian: apt-get install openssl)'
  return null
}

/** t.test options: skipped with the reason where the control plane cannot run, except under CI=true, where it fails. */
export function needsControlPlane (): { skip: string | false } {
  const missing = missingControlPlane()
  if (missing === null || IN_CI) return { skip: false }
  return { skip: `${missing}; CI=true makes this a failure` }
}

export interface ControlPlane {
  /** https://127.0.0.1:<port> */
  url: string
  /** Bearer token of a system:masters user. */
  adminToken: string
  /** PEM of the CA that signed the serving certificate (and client certificates). */
  caFile: string
  /** A kubeconfig for kubectl with the admin token. */
  kubeconfig: string
  /** The throwaway directory: PKI, etcd data, logs. */
  dir: string
  /** etcd's client URL, for compaction and other direct access. */
  etcdUrl: string
  /** Runs kubectl against this control plane; throws with stderr on a non-zero exit unless `allowFail`. */
  kubectl: (args: string[], options?: { input?: string, allowFail?: boolean }) => { status: number, stdout: string, stderr: string }
  /** An undici dispatcher trusting the control plane's CA. */
  dispatcher: Agent
  /** Restarts kube-apiserver (etcd keeps its data), running `whileDown` in between: for watch-resume tests. */
  restartApiServer: (whileDown?: () => Promise<void>) => Promise<void>
  stop: () => Promise<void>
}


function openssl (dir: string, args: string[]): void {
  const result = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' })
  if (result.status !== 0) throw new Error(`openssl ${args.join(' ')} failed: ${result.stderr}`)
}

/** CA, a serving certificate for 127.0.0.1, and a service-account signing key pair. */
function makePki (dir: string): void {
  openssl(dir, ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=pingfleet-test-ca', '-keyout', 'ca.key', '-out', 'ca.crt'])
  writeFileSync(join(dir, 'serving.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc\nextendedKeyUsage=serverAuth\n')
  openssl(dir, ['req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=kube-apiserver', '-keyout', 'serving.key', '-out', 'serving.csr'])
  openssl(dir, ['x509', '-req', '-in', 'serving.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '1', '-extfile', 'serving.ext', '-out', 'serving.crt'])
  openssl(dir, ['genrsa', '-out', 'sa.key', '2048'])
  openssl(dir, ['rsa', '-in', 'sa.key', '-pubout', '-out', 'sa.pub'])
}

/** `ip netns exec NS` in front of a command, or nothing. */
function inNetns (netns: string | undefined, command: string, args: string[]): [string, string[]] {
  return netns === undefined ? [command, args] : ['ip', ['netns', 'exec', netns, command, ...args]]
}

function startLogged (dir: string, name: string, netns: string | undefined, command: string, args: string[]): ChildProcess {
  const log = join(dir, `${name}.log`)
  const [cmd, argv] = inNetns(netns, command, args)
  // `ip netns exec` execs the command, so the process group below is the component's own.
  const child = spawn('sh', ['-c', `exec "$0" "$@" >>"${log}" 2>&1`, cmd, ...argv], { stdio: 'ignore', detached: true })
  child.unref()
  return child
}

async function stopProcess (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise<void>(resolve => child.once('exit', () => resolve()))
  try { process.kill(-child.pid!, 'SIGTERM') } catch {}
  const killed = await Promise.race([exited.then(() => true), sleep(5000).then(() => false)])
  if (!killed) {
    try { process.kill(-child.pid!, 'SIGKILL') } catch {}
    await exited
  }
}

async function waitFor (what: string, check: () => Promise<boolean>, log: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return
    await sleep(200)
  }
  const tail = spawnSync('tail', ['-n', '30', log], { encoding: 'utf8' }).stdout
  throw new Error(`${what} not ready within ${timeoutMs} ms; last log lines:\n${tail}`)
}

export interface ControlPlaneOptions {
  /**
   * Run etcd and kube-apiserver inside this network namespace, on its loopback (fixed ports 2379,
   * 2380 and 6443: the namespace is the test's own). Only what runs in that namespace reaches them;
   * the test's kubectl is run there too. For the network-namespace suite, where the aggregator runs
   * in a namespace of its own.
   */
  netns?: string
}

/**
 * Starts etcd and kube-apiserver on loopback and waits for the API server's /readyz.
 * Flags: kube-apiserver needs --endpoint-reconciler-type=none with a loopback advertise address;
 * RBAC and Node authorization and no anonymous access, as in a real cluster.
 * @throws Error when a binary is missing or a component is not ready within 60 s (with its log's tail).
 */
export async function startControlPlane (options: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const { netns } = options
  const missing = missingControlPlane()
  if (missing !== null) throw new Error(missing)
  const dir = mkdtempSync(join(tmpdir(), 'pingfleet-kube-'))
  makePki(dir)
  const adminToken = `admin-${Math.random().toString(36).slice(2)}${Date.now()}`
  writeFileSync(join(dir, 'tokens.csv'), `${adminToken},pingfleet-test-admin,pingfleet-test-admin,system:masters\n`)
  const [etcdClient, etcdPeer, apiPort] = netns === undefined ? [await freePort('127.0.0.1'), await freePort('127.0.0.1'), await freePort('127.0.0.1')] : [2379, 2380, 6443]
  const etcdUrl = `http://127.0.0.1:${etcdClient}`
  const peerUrl = `http://127.0.0.1:${etcdPeer}`
  const etcd = startLogged(dir, 'etcd', netns, join(TOOLS_BIN, 'etcd'), [
    '--name', 'test', '--data-dir', join(dir, 'etcd'),
    '--listen-client-urls', etcdUrl, '--advertise-client-urls', etcdUrl,
    '--listen-peer-urls', peerUrl, '--initial-advertise-peer-urls', peerUrl,
    '--initial-cluster', `test=${peerUrl}`, '--log-level', 'warn'
  ])
  const url = `https://127.0.0.1:${apiPort}`
  const apiArgs = [
    '--etcd-servers', etcdUrl,
    '--bind-address', '127.0.0.1', '--advertise-address', '127.0.0.1', '--secure-port', String(apiPort),
    '--endpoint-reconciler-type', 'none',
    '--tls-cert-file', join(dir, 'serving.crt'), '--tls-private-key-file', join(dir, 'serving.key'),
    '--client-ca-file', join(dir, 'ca.crt'), '--token-auth-file', join(dir, 'tokens.csv'),
    '--service-account-issuer', 'https://kubernetes.default.svc',
    '--service-account-key-file', join(dir, 'sa.pub'), '--service-account-signing-key-file', join(dir, 'sa.key'),
    '--authorization-mode', 'Node,RBAC', '--anonymous-auth=false',
    '--service-cluster-ip-range', SERVICE_CIDR,
    '--cert-dir', join(dir, 'certs')
  ]
  let apiServer = startLogged(dir, 'kube-apiserver', netns, join(TOOLS_BIN, 'kube-apiserver'), apiArgs)
  const dispatcher = new Agent({ connect: { ca: spawnSync('cat', [join(dir, 'ca.crt')], { encoding: 'utf8' }).stdout } })
  const ready = async (): Promise<boolean> => {
    // From outside the namespace only kubectl, run inside it, can ask.
    if (netns !== undefined) return kubectl(['get', '--raw', '/readyz'], { allowFail: true }).status === 0
    const res = await request(`${url}/readyz`, { dispatcher, headers: { authorization: `Bearer ${adminToken}` } })
    await res.body.dump()
    return res.statusCode === 200
  }
  const kubeconfig = join(dir, 'kubeconfig')
  writeFileSync(kubeconfig, JSON.stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'test', cluster: { server: url, 'certificate-authority': join(dir, 'ca.crt') } }],
    users: [{ name: 'admin', user: { token: adminToken } }],
    contexts: [{ name: 'test', context: { cluster: 'test', user: 'admin' } }],
    'current-context': 'test'
  }))
  const kubectl: ControlPlane['kubectl'] = (args, options = {}) => {
    const [cmd, argv] = inNetns(netns, join(TOOLS_BIN, 'kubectl'), ['--kubeconfig', kubeconfig, ...args])
    const result = spawnSync(cmd, argv, { encoding: 'utf8', input: options.input })
    const out = { status: result.status ?? -1, stdout: result.stdout ?? '', stderr: result.stderr ?? '' }
    if (out.status !== 0 && options.allowFail !== true) throw new Error(`kubectl ${args.join(' ')} exited ${out.status}: ${out.stderr}`)
    return out
  }
  const plane: ControlPlane = {
    url,
    adminToken,
    caFile: join(dir, 'ca.crt'),
    kubeconfig,
    dir,
    etcdUrl,
    kubectl,
    dispatcher,
    restartApiServer: async whileDown => {
      await stopProcess(apiServer)
      await whileDown?.()
      apiServer = startLogged(dir, 'kube-apiserver', netns, join(TOOLS_BIN, 'kube-apiserver'), apiArgs)
      await waitFor('kube-apiserver', ready, join(dir, 'kube-apiserver.log'))
    },
    stop: async () => {
      await stopProcess(apiServer)
      await stopProcess(etcd)
      await dispatcher.close()
      if (process.env.PINGFLEET_KUBE_KEEP === '1') process.stderr.write(`control plane kept in ${dir}\n`)
      else rmSync(dir, { recursive: true, force: true })
    }
  }
  try {
    await waitFor('kube-apiserver', ready, join(dir, 'kube-apiserver.log'))
  } catch (err) {
    await plane.stop()
    throw err
  }
  return plane
}
