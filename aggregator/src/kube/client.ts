// A thin Kubernetes API client: JSON GET and POST, and watch streams read as JSON lines.
// Why not @kubernetes/client-node: the aggregator makes four kinds of call (list, watch, TokenReview
// create), and the official client brings a large generated model and dependency tree for that, plus
// its own watch loop whose resume and 410 handling we would have to wrap anyway. node:https with the
// in-cluster service account (token, CA, KUBERNETES_SERVICE_HOST/PORT) is enough and keeps every
// retry decision in kube/watch.ts. The base URL, token file and CA file are options, so tests point
// it at a local fake API server.

import { readFileSync } from 'node:fs'
import http from 'node:http'
import https from 'node:https'
import type { IncomingMessage } from 'node:http'
import { AggregatorError, ERR_KUBE_API } from '../errors.ts'

export const IN_CLUSTER_DIR = '/var/run/secrets/kubernetes.io/serviceaccount'
/** The kubelet rewrites the projected token well before it expires; re-reading each minute is plenty. */
const TOKEN_REREAD_MS = 60_000
/**
 * Bounds on what one answer may make us hold (bytes). etcd refuses requests over 1.5 MiB by default
 * (`--max-request-bytes`), so one object, and one watch event, stays well below MAX_EVENT_BYTES; a
 * list is read in pages (watch.ts), and a page over MAX_BODY_BYTES is asked again in smaller ones.
 */
export const MAX_BODY_BYTES = 64 * 1024 * 1024
export const MAX_EVENT_BYTES = 16 * 1024 * 1024

export interface KubeClientOptions {
  /** https://host:port (or http:// for a local fake), no trailing slash. */
  url: string
  /** File holding the bearer token; empty for none. */
  tokenFile: string
  /** PEM CA bundle for the API server's certificate; empty to use Node's roots. */
  caFile: string
  /** Time limit of a non-watch request. */
  timeoutMs?: number
  /** Largest answer body json() reads, and largest watch event line (bytes); defaults MAX_BODY_BYTES, MAX_EVENT_BYTES. */
  maxBodyBytes?: number
  maxEventBytes?: number
}

/** A non-2xx answer from the API server, with its HTTP status and Status reason where given. */
export class KubeApiError extends AggregatorError {
  readonly status: number
  readonly reason: string
  constructor (status: number, reason: string, message: string) {
    super(ERR_KUBE_API, message, 502)
    this.status = status
    this.reason = reason
  }
}

/** An answer larger than the client reads (KubeClientOptions.maxBodyBytes / maxEventBytes). */
export class KubeBodyTooLargeError extends AggregatorError {
  readonly limit: number
  constructor (what: string, limit: number) {
    super(ERR_KUBE_API, `${what}: the Kubernetes API answer exceeds ${limit} bytes; not read further`, 502)
    this.limit = limit
  }
}

export interface WatchEvent<T> {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR'
  object: T
}

export class KubeClient {
  readonly url: URL
  private readonly options: KubeClientOptions
  private readonly agent: http.Agent
  private token = ''
  private tokenReadAt = -Infinity

  constructor (options: KubeClientOptions) {
    this.options = options
    this.url = new URL(options.url)
    const secure = this.url.protocol === 'https:'
    // Bounded: after an aggregator restart every agent reconnects at once, and each needs a
    // TokenReview; queueing them beats opening a thousand connections to the API server.
    const pool = { keepAlive: true, maxSockets: 32 }
    this.agent = secure
      ? new https.Agent({ ...pool, ca: options.caFile === '' ? undefined : readFileSync(options.caFile) })
      : new http.Agent(pool)
  }

  close (): void {
    this.agent.destroy()
  }

  private bearer (): string {
    if (this.options.tokenFile === '') return ''
    const now = Date.now()
    if (now - this.tokenReadAt > TOKEN_REREAD_MS) {
      try {
        this.token = readFileSync(this.options.tokenFile, 'utf8').trim()
        this.tokenReadAt = now
      } catch (err) {
        throw new AggregatorError(ERR_KUBE_API, `cannot read the Kubernetes API token ${this.options.tokenFile}: ${(err as Error).message}`, 502)
      }
    }
    return this.token
  }

  private open (method: 'GET' | 'POST', path: string, body: string | null, timeoutMs: number, signal?: AbortSignal): Promise<IncomingMessage> {
    return new Promise((resolve, reject) => {
      const headers: Record<string, string> = { accept: 'application/json' }
      const token = this.bearer()
      if (token !== '') headers.authorization = `Bearer ${token}`
      if (body !== null) {
        headers['content-type'] = 'application/json'
        headers['content-length'] = String(Buffer.byteLength(body))
      }
      const target = new URL(this.url.pathname.replace(/\/+$/, '') + path, this.url)
      const request = (this.url.protocol === 'https:' ? https : http).request(target, { method, headers, agent: this.agent, signal, timeout: timeoutMs }, resolve)
      // `timeout` is socket inactivity: for a watch it catches a silently dead connection.
      request.on('timeout', () => request.destroy(new AggregatorError(ERR_KUBE_API, `${method} ${path}: no data from the Kubernetes API for ${timeoutMs} ms`, 502)))
      request.on('error', reject)
      request.end(body ?? undefined)
    })
  }

  /**
   * GET or POST, parsed JSON back. Throws a KubeApiError for a non-2xx status or invalid JSON, and a
   * KubeBodyTooLargeError when the body exceeds maxBodyBytes (the connection is dropped there).
   */
  async json<T> (method: 'GET' | 'POST', path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
    const response = await this.open(method, path, body === undefined ? null : JSON.stringify(body), this.options.timeoutMs ?? 10_000, signal)
    const text = await readAll(response, this.options.maxBodyBytes ?? MAX_BODY_BYTES, `${method} ${path}`)
    if (response.statusCode === undefined || response.statusCode < 200 || response.statusCode > 299) throw statusError(method, path, response.statusCode ?? 0, text)
    try {
      return JSON.parse(text) as T
    } catch {
      throw new KubeApiError(response.statusCode, '', `${method} ${path}: the Kubernetes API answered with invalid JSON`)
    }
  }

  /**
   * Streams a watch: one event per JSON line until the server ends the response (its timeout),
   * `signal` aborts, or no byte arrives for `idleMs`. A non-2xx answer throws a KubeApiError; an
   * event line longer than maxEventBytes throws a KubeBodyTooLargeError (the caller resumes the watch).
   */
  async * watch<T> (path: string, idleMs: number, signal: AbortSignal): AsyncGenerator<WatchEvent<T>> {
    const response = await this.open('GET', path, null, idleMs, signal)
    if (response.statusCode === undefined || response.statusCode < 200 || response.statusCode > 299) {
      throw statusError('GET', path, response.statusCode ?? 0, await readAll(response, this.options.maxBodyBytes ?? MAX_BODY_BYTES, `GET ${path}`))
    }
    response.setEncoding('utf8')
    const maxLine = this.options.maxEventBytes ?? MAX_EVENT_BYTES
    let buffered = ''
    try {
      for await (const chunk of response as AsyncIterable<string>) {
        buffered += chunk
        let newline
        while ((newline = buffered.indexOf('\n')) !== -1) {
          if (newline > maxLine) throw new KubeBodyTooLargeError(`watch ${path}`, maxLine)
          const line = buffered.slice(0, newline).trim()
          buffered = buffered.slice(newline + 1)
          if (line !== '') yield JSON.parse(line) as WatchEvent<T>
        }
        // Lines are measured in UTF-16 units, within 4× of bytes, which bounds them well enough.
        if (buffered.length > maxLine) throw new KubeBodyTooLargeError(`watch ${path}`, maxLine)
      }
    } finally {
      response.destroy()
    }
    if (buffered.trim() !== '') yield JSON.parse(buffered) as WatchEvent<T>
  }
}

/** The whole body as text; past `max` bytes the response is destroyed and a KubeBodyTooLargeError thrown. */
async function readAll (response: IncomingMessage, max: number, what: string): Promise<string> {
  const parts: Buffer[] = []
  let size = 0
  for await (const chunk of response) {
    size += (chunk as Buffer).length
    if (size > max) {
      response.destroy()
      throw new KubeBodyTooLargeError(what, max)
    }
    parts.push(chunk as Buffer)
  }
  return Buffer.concat(parts).toString('utf8')
}

/** A metav1.Status body names the reason (Expired, Forbidden…); anything else is shown as is. */
function statusError (method: string, path: string, status: number, text: string): KubeApiError {
  let reason = ''
  let message = text.slice(0, 200)
  try {
    const body = JSON.parse(text) as { reason?: string, message?: string }
    reason = body.reason ?? ''
    message = body.message ?? message
  } catch {}
  return new KubeApiError(status, reason, `${method} ${path}: HTTP ${status}${reason === '' ? '' : ` ${reason}`}: ${message}`)
}
