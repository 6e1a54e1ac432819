// A stand-in Kubernetes API server on loopback, for what cannot run here. It serves the real
// response shapes: NodeList/PodList with metadata.resourceVersion, watch streams of JSON lines
// ({"type":"ADDED|MODIFIED|DELETED|BOOKMARK|ERROR","object":…}), metav1.Status errors (410 Expired)
// and authentication.k8s.io/v1 TokenReviews, as documented on kubernetes.io. For the kubectl
// stand-in (test/helpers/kubectl-standin.ts) it also takes the few writes a node migration makes:
// a merge PATCH of a Node (labels, spec.unschedulable) and a graceful DELETE of a Pod.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'

export const API_TOKEN = 'aggregator-sa-token'
export const NAMESPACE = 'pingfleet'
export const AGENT_SA = 'system:serviceaccount:pingfleet:pingfleet-agent'
export const AGENT_LABELS = { 'app.kubernetes.io/name': 'pingfleet', 'app.kubernetes.io/instance': 'pingfleet', 'app.kubernetes.io/component': 'agent' }

type Obj = { metadata: { name: string, resourceVersion?: string, [k: string]: unknown }, [k: string]: unknown }
type EventType = 'ADDED' | 'MODIFIED' | 'DELETED'

interface Watcher { kind: 'Node' | 'Pod', res: ServerResponse }

/** What the TokenReview endpoint says about one token. */
export interface TokenAnswer {
  authenticated: boolean
  username?: string
  node?: string
  pod?: string
  audiences?: string[]
  error?: string
}

export function node (name: string, labels: Record<string, string>, unschedulable = false): Obj {
  return {
    metadata: { name, uid: `uid-${name}`, labels: { 'kubernetes.io/hostname': name, 'kubernetes.io/os': 'linux', ...labels }, creationTimestamp: '2026-01-01T00:00:00Z' },
    spec: { podCIDR: '10.244.0.0/24', ...(unschedulable ? { unschedulable: true, taints: [{ key: 'node.kubernetes.io/unschedulable', effect: 'NoSchedule', timeAdded: '2026-01-01T00:00:00Z' }] } : {}) },
    status: { conditions: [{ type: 'Ready', status: 'True' }], addresses: [{ type: 'InternalIP', address: '192.0.2.10' }] }
  }
}

/** A DaemonSet agent pod; `nodeName` empty means not yet scheduled (the node is in its affinity). */
export function pod (name: string, nodeName: string, extra: { phase?: string, podIP?: string, deleting?: boolean, scheduled?: boolean, ready?: 'True' | 'False' | 'Unknown' } = {}): Obj {
  return {
    metadata: {
      name,
      namespace: NAMESPACE,
      uid: `uid-${name}`,
      labels: { ...AGENT_LABELS, 'controller-revision-hash': '7d9f8c6b5', 'pod-template-generation': '1' },
      ownerReferences: [{ apiVersion: 'apps/v1', kind: 'DaemonSet', name: 'pingfleet-agent', uid: 'uid-ds', controller: true, blockOwnerDeletion: true }],
      ...(extra.deleting === true ? { deletionTimestamp: '2026-01-01T00:05:00Z', deletionGracePeriodSeconds: 30 } : {})
    },
    spec: {
      ...(extra.scheduled === false ? {} : { nodeName }),
      serviceAccountName: 'pingfleet-agent',
      affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchFields: [{ key: 'metadata.name', operator: 'In', values: [nodeName] }] }] } } },
      containers: [{ name: 'agent', ports: [{ name: 'http', containerPort: 8081, protocol: 'TCP' }] }]
    },
    status: {
      phase: extra.phase ?? 'Running',
      ...(extra.podIP === undefined && (extra.phase ?? 'Running') !== 'Running' ? {} : { podIP: extra.podIP ?? '10.244.0.5' }),
      ...(extra.ready === undefined ? {} : { conditions: [{ type: 'Ready', status: extra.ready, lastTransitionTime: '2026-01-01T00:01:00Z' }] })
    }
  }
}

export class FakeKube {
  readonly server: Server
  private rv = 100
  readonly nodes = new Map<string, Obj>()
  readonly pods = new Map<string, Obj>()
  private readonly history: Array<{ kind: 'Node' | 'Pod', rv: number, type: EventType, object: Obj }> = []
  private readonly watchers = new Set<Watcher>()
  private readonly sockets = new Set<Socket>()
  readonly tokens = new Map<string, TokenAnswer>()
  /** Every request line, e.g. `GET /api/v1/nodes?watch=1&resourceVersion=103&…`. */
  readonly requests: string[] = []
  /** Every list page served: the limit asked, where it started and how many objects it held. */
  readonly lists: Array<{ limit: number, offset: number, count: number }> = []
  /** Runs after each list page is served (a test's hook to change the world between pages). */
  afterListPage?: () => void
  /** Watches asking for a resourceVersion below this get 410: as an HTTP status or an in-stream ERROR. */
  expiredBelow = 0
  expiredAs: 'http' | 'event' = 'event'
  /** Every request has its connection destroyed: the API is unreachable. */
  down = false
  /**
   * What a DELETE of a pod does after the pod got its deletionTimestamp, standing in for the kubelet
   * and the DaemonSet controller (stop the agent, remove the pod, start a new one). Unset: nothing more.
   */
  onPodDelete?: (pod: Obj) => void

  constructor () {
    this.server = createServer((req, res) => this.handle(req, res))
    this.server.on('connection', socket => {
      this.sockets.add(socket)
      socket.on('close', () => this.sockets.delete(socket))
    })
  }

  async listen (): Promise<string> {
    await new Promise<void>(resolve => this.server.listen(0, '127.0.0.1', resolve))
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`
  }

  async close (): Promise<void> {
    for (const s of this.sockets) s.destroy()
    await new Promise(resolve => this.server.close(resolve))
  }

  get resourceVersion (): number { return this.rv }

  /** Adds, replaces or deletes an object and streams the event to open watches. */
  put (kind: 'Node' | 'Pod', object: Obj): void {
    const map = kind === 'Node' ? this.nodes : this.pods
    const type: EventType = map.has(object.metadata.name) ? 'MODIFIED' : 'ADDED'
    this.emit(kind, type, object)
  }

  remove (kind: 'Node' | 'Pod', name: string): void {
    const map = kind === 'Node' ? this.nodes : this.pods
    const object = map.get(name)
    if (object !== undefined) this.emit(kind, 'DELETED', object)
  }

  /** A BOOKMARK on every open watch at the current resourceVersion. */
  bookmark (): void {
    for (const w of this.watchers) this.write(w.res, { type: 'BOOKMARK', object: { kind: w.kind, apiVersion: 'v1', metadata: { resourceVersion: String(this.rv) } } })
  }

  /** Advances the resourceVersion without an event any watcher sees (other objects changing). */
  tick (n = 1): void { this.rv += n }

  /** Kills every open watch connection mid-stream, as a network drop would. */
  dropWatches (): void {
    for (const w of this.watchers) w.res.socket?.destroy()
    this.watchers.clear()
  }

  /** An ERROR event with 410 on every open watch, as the API server sends when the watch falls behind. */
  expireWatches (): void {
    this.errorWatches(410, 'Expired', `too old resource version: 1 (${this.rv})`)
  }

  /** An ERROR event (a metav1.Status) on every open watch, then the end of the stream. */
  errorWatches (code: number, reason: string, message: string): void {
    for (const w of this.watchers) {
      this.write(w.res, { type: 'ERROR', object: status(code, reason, message) })
      w.res.end()
    }
    this.watchers.clear()
  }

  openWatches (kind: 'Node' | 'Pod'): number {
    return [...this.watchers].filter(w => w.kind === kind).length
  }

  private emit (kind: 'Node' | 'Pod', type: EventType, object: Obj): void {
    const map = kind === 'Node' ? this.nodes : this.pods
    this.rv++
    const stamped = { ...object, metadata: { ...object.metadata, resourceVersion: String(this.rv) } }
    if (type === 'DELETED') map.delete(object.metadata.name)
    else map.set(object.metadata.name, stamped)
    this.history.push({ kind, rv: this.rv, type, object: stamped })
    for (const w of this.watchers) if (w.kind === kind) this.write(w.res, { type, object: stamped })
  }

  private write (res: ServerResponse, event: unknown): void {
    res.write(JSON.stringify(event) + '\n')
  }

  private handle (req: IncomingMessage, res: ServerResponse): void {
    this.requests.push(`${req.method} ${req.url}`)
    if (this.down) {
      req.socket.destroy()
      return
    }
    if (req.headers.authorization !== `Bearer ${API_TOKEN}`) return this.status(res, 401, 'Unauthorized', 'Unauthorized')
    const url = new URL(req.url ?? '/', 'http://x')
    if (req.method === 'POST' && url.pathname === '/apis/authentication.k8s.io/v1/tokenreviews') return this.tokenReview(req, res)
    const nodePath = /^\/api\/v1\/nodes\/([^/]+)$/.exec(url.pathname)
    if (nodePath !== null) return this.nodeItem(req, res, decodeURIComponent(nodePath[1]!))
    const podPath = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)$/.exec(url.pathname)
    if (podPath !== null) return this.podItem(req, res, decodeURIComponent(podPath[1]!), decodeURIComponent(podPath[2]!))
    let kind: 'Node' | 'Pod'
    // Lists filtered as the API server filters them; the watches the aggregator opens use none but its own selector.
    let filter = (_o: Obj): boolean => true
    if (url.pathname === '/api/v1/nodes') {
      kind = 'Node'
      const selector = url.searchParams.get('labelSelector') ?? ''
      if (selector !== '') filter = o => matchesSelector(selector, (o.metadata.labels ?? {}) as Record<string, string>)
    } else if (url.pathname === `/api/v1/namespaces/${NAMESPACE}/pods`) {
      kind = 'Pod'
      if (!matchesSelector(url.searchParams.get('labelSelector') ?? '', AGENT_LABELS)) return this.status(res, 400, 'BadRequest', 'the labelSelector does not match the agent pods')
    } else if (url.pathname === '/api/v1/pods' && url.searchParams.get('watch') !== '1') {
      // Every namespace (kubectl --all-namespaces), by field selector spec.nodeName=<node> only.
      kind = 'Pod'
      const field = url.searchParams.get('fieldSelector') ?? ''
      const m = /^spec\.nodeName=(.+)$/.exec(field)
      if (field !== '' && m === null) return this.status(res, 400, 'BadRequest', `field selector ${field} is not supported here`)
      if (m !== null) filter = o => (o.spec as { nodeName?: string } | undefined)?.nodeName === m[1]
    } else return this.status(res, 404, 'NotFound', `the server could not find the requested resource`)
    if (req.method !== 'GET') return this.status(res, 405, 'MethodNotAllowed', 'method not allowed')
    const map = kind === 'Node' ? this.nodes : this.pods
    if (url.searchParams.get('watch') !== '1') return this.list(res, kind, [...map.values()].filter(filter), url.searchParams)
    const from = Number(url.searchParams.get('resourceVersion'))
    if (from < this.expiredBelow && this.expiredAs === 'http') return this.status(res, 410, 'Expired', `too old resource version: ${from} (${this.rv})`)
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' })
    res.flushHeaders()
    if (from < this.expiredBelow) {
      this.write(res, { type: 'ERROR', object: status(410, 'Expired', `too old resource version: ${from} (${this.rv})`) })
      res.end()
      return
    }
    // Replay what happened after the requested resourceVersion, then stream live.
    for (const e of this.history) if (e.kind === kind && e.rv > from) this.write(res, { type: e.type, object: e.object })
    const watcher: Watcher = { kind, res }
    this.watchers.add(watcher)
    res.on('close', () => this.watchers.delete(watcher))
  }

  /**
   * A list, paged as the API server pages it: `limit` objects per page and an opaque `continue` token
   * naming the snapshot and the offset; a token whose snapshot is below expiredBelow gets 410 Expired.
   * (This stand-in serves later pages from the live map, which is enough for the tests that page.)
   */
  private list (res: ServerResponse, kind: string, items: Obj[], params: URLSearchParams): void {
    const limit = Number(params.get('limit') ?? 0)
    const token = params.get('continue')
    let offset = 0
    let rv = this.rv
    if (token !== null) {
      const [at, from] = Buffer.from(token, 'base64url').toString().split(':').map(Number)
      if (at! < this.expiredBelow) return this.status(res, 410, 'Expired', 'The provided continue parameter is too old to display a consistent list result.')
      rv = at!
      offset = from!
    }
    const end = limit > 0 ? Math.min(items.length, offset + limit) : items.length
    this.lists.push({ limit, offset, count: end - offset })
    const next = end < items.length ? { continue: Buffer.from(`${rv}:${end}`).toString('base64url') } : {}
    this.json(res, 200, { kind: `${kind}List`, apiVersion: 'v1', metadata: { resourceVersion: String(rv), ...next }, items: items.slice(offset, end) })
    this.afterListPage?.()
  }

  /** GET or PATCH one Node. A PATCH body is a JSON merge patch (RFC 7386): null removes a key. */
  private nodeItem (req: IncomingMessage, res: ServerResponse, name: string): void {
    const found = this.nodes.get(name)
    if (found === undefined) return this.status(res, 404, 'NotFound', `nodes "${name}" not found`)
    if (req.method === 'GET') return this.json(res, 200, found)
    if (req.method !== 'PATCH') return this.status(res, 405, 'MethodNotAllowed', 'method not allowed')
    const type = req.headers['content-type'] ?? ''
    if (!/^application\/(merge-patch|strategic-merge-patch)\+json/.test(type)) return this.status(res, 415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: application/merge-patch+json, application/strategic-merge-patch+json (got ${type})`)
    readBody(req).then(body => {
      const patched = mergePatch(found, JSON.parse(body)) as Obj
      this.put('Node', patched)
      this.json(res, 200, this.nodes.get(name))
    }, () => this.status(res, 400, 'BadRequest', 'unreadable body'))
  }

  /** GET or DELETE one Pod. A DELETE is graceful: the pod gets a deletionTimestamp, then onPodDelete runs. */
  private podItem (req: IncomingMessage, res: ServerResponse, namespace: string, name: string): void {
    const found = this.pods.get(name)
    if (found === undefined || found.metadata.namespace !== namespace) return this.status(res, 404, 'NotFound', `pods "${name}" not found`)
    if (req.method === 'GET') return this.json(res, 200, found)
    if (req.method !== 'DELETE') return this.status(res, 405, 'MethodNotAllowed', 'method not allowed')
    req.resume()
    if (found.metadata.deletionTimestamp === undefined) {
      this.put('Pod', { ...found, metadata: { ...found.metadata, deletionTimestamp: new Date().toISOString(), deletionGracePeriodSeconds: 30 } })
      this.onPodDelete?.(this.pods.get(name)!)
    }
    this.json(res, 200, this.pods.get(name) ?? found)
  }

  private json (res: ServerResponse, code: number, body: unknown): void {
    res.writeHead(code, { 'content-type': 'application/json' })
    res.end(JSON.stringify(body))
  }

  private tokenReview (req: IncomingMessage, res: ServerResponse): void {
    let body = ''
    req.setEncoding('utf8')
    req.on('data', chunk => { body += chunk })
    req.on('end', () => {
      const review = JSON.parse(body) as { apiVersion: string, kind: string, spec: { token: string, audiences?: string[] } }
      if (review.kind !== 'TokenReview' || review.apiVersion !== 'authentication.k8s.io/v1') return this.status(res, 400, 'BadRequest', 'not a TokenReview')
      const answer = this.tokens.get(review.spec.token)
      let reviewStatus: Record<string, unknown>
      if (answer === undefined || !answer.authenticated) {
        reviewStatus = { user: {}, error: answer?.error ?? '[invalid bearer token, token lookup failed]' }
      } else {
        const extra: Record<string, string[]> = { 'authentication.kubernetes.io/credential-id': ['JTI=5b2c4e6f-0000-4000-8000-000000000001'] }
        if (answer.node !== undefined) {
          extra['authentication.kubernetes.io/node-name'] = [answer.node]
          extra['authentication.kubernetes.io/node-uid'] = [`uid-${answer.node}`]
        }
        if (answer.pod !== undefined) {
          extra['authentication.kubernetes.io/pod-name'] = [answer.pod]
          extra['authentication.kubernetes.io/pod-uid'] = [`uid-${answer.pod}`]
        }
        const username = answer.username ?? AGENT_SA
        const ns = username.split(':')[2] ?? ''
        reviewStatus = {
          authenticated: true,
          user: { username, uid: `uid-${username}`, groups: ['system:serviceaccounts', `system:serviceaccounts:${ns}`, 'system:authenticated'], extra },
          audiences: answer.audiences ?? review.spec.audiences ?? ['https://kubernetes.default.svc.cluster.local']
        }
      }
      res.writeHead(201, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ kind: 'TokenReview', apiVersion: 'authentication.k8s.io/v1', metadata: { creationTimestamp: null }, spec: review.spec, status: reviewStatus }))
    })
  }

  private status (res: ServerResponse, code: number, reason: string, message: string): void {
    res.writeHead(code, { 'content-type': 'application/json' })
    res.end(JSON.stringify(status(code, reason, message)))
  }
}

/** Polls `check` until it holds; throws naming `what` after the timeout. */
export async function until (what: string, check: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`)
    await new Promise(resolve => setTimeout(resolve, 20))
  }
}

function status (code: number, reason: string, message: string): Record<string, unknown> {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code }
}

/**
 * Equality-based label selectors, as the API server reads them: `a=b`, `a==b`, `a!=b` (also true
 * when the label is absent), `a` (exists) and `!a` (absent), joined by commas.
 */
export function matchesSelector (selector: string, labels: Record<string, string>): boolean {
  return selector.split(',').every(raw => {
    const term = raw.trim()
    const ne = /^([^!=]+)!=(.*)$/.exec(term)
    if (ne !== null) return labels[ne[1]!.trim()] !== ne[2]!.trim()
    const eq = /^([^!=]+)==?(.*)$/.exec(term)
    if (eq !== null) return labels[eq[1]!.trim()] === eq[2]!.trim()
    if (term.startsWith('!')) return !(term.slice(1) in labels)
    return term in labels
  })
}

/** RFC 7386 JSON merge patch: objects merge key by key, null removes, anything else replaces. */
export function mergePatch (target: unknown, patch: unknown): unknown {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return patch
  const out: Record<string, unknown> = target !== null && typeof target === 'object' && !Array.isArray(target) ? { ...target as Record<string, unknown> } : {}
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete out[key]
    else out[key] = mergePatch(out[key], value)
  }
  return out
}

function readBody (req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let body = ''
    req.setEncoding('utf8')
    req.on('data', chunk => { body += chunk })
    req.on('end', () => resolve(body))
    req.on('error', reject)
  })
}
