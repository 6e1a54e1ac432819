// One list-then-watch loop over a Kubernetes collection, the way client-go's reflector does it:
// list for a full snapshot and its resourceVersion, watch from there (bookmarks advance it), resume
// from the last resourceVersion when a watch ends or drops, relist on 410 Gone, back off on failures.

import type { Logger } from 'pino'
import { ERR_KUBE_API } from '../errors.ts'
import { KubeApiError, KubeBodyTooLargeError, type KubeClient } from './client.ts'

/** Objects per list page: client-go's pager default (k8s.io/client-go/tools/pager, defaultPageSize). */
export const LIST_PAGE_SIZE = 500
/** A list whose continue token expires (410) this many times in a row gives up until the next retry. */
const MAX_LIST_RESTARTS = 3

export interface KubeObject {
  metadata: { name: string, namespace?: string, resourceVersion?: string, labels?: Record<string, string>, deletionTimestamp?: string }
}

interface List<T> {
  metadata: { resourceVersion: string, continue?: string }
  items: T[]
}

interface StatusObject {
  kind?: string
  code?: number
  reason?: string
  message?: string
}

export interface KubeWatchOptions<T extends KubeObject> {
  client: KubeClient
  /** Collection path, such as /api/v1/nodes or /api/v1/namespaces/x/pods. */
  path: string
  labelSelector?: string
  /** A fresh full snapshot (after every list): replaces what was known. */
  onList: (items: T[]) => void
  onEvent: (type: 'ADDED' | 'MODIFIED' | 'DELETED', object: T) => void
  log: Logger
  /** Server-side watch duration before it ends the stream and we resume. */
  watchSeconds?: number
  backoffMinMs?: number
  backoffMaxMs?: number
  random?: () => number
  /** Objects per list page (LIST_PAGE_SIZE); halved while a page is over the client's body bound. */
  pageSize?: number
}

/** Thrown inside the loop for an in-stream ERROR event with code 410: relist. */
class Gone extends Error {}

export class KubeWatch<T extends KubeObject> {
  private readonly options: KubeWatchOptions<T>
  private readonly abort = new AbortController()
  private rv: string | null = null
  private attempt = 0
  private pageSize: number
  private running: Promise<void> | null = null
  private wake: (() => void) | null = null
  /** Lists done, for tests and logs: a 410 shows as a second list. */
  lists = 0
  synced = false

  constructor (options: KubeWatchOptions<T>) {
    this.options = options
    this.pageSize = options.pageSize ?? LIST_PAGE_SIZE
  }

  get resourceVersion (): string | null { return this.rv }

  start (): void {
    this.running ??= this.loop()
  }

  async stop (): Promise<void> {
    this.abort.abort()
    this.wake?.()
    await this.running
  }

  private query (extra: Record<string, string>): string {
    const params = new URLSearchParams(extra)
    if (this.options.labelSelector !== undefined && this.options.labelSelector !== '') params.set('labelSelector', this.options.labelSelector)
    return `${this.options.path}?${params.toString()}`
  }

  private async loop (): Promise<void> {
    const { client, log, path } = this.options
    const signal = this.abort.signal
    const watchSeconds = this.options.watchSeconds ?? 300
    while (!signal.aborted) {
      try {
        if (this.rv === null) {
          const list = await this.list(signal)
          this.lists++
          this.rv = list.metadata.resourceVersion
          this.options.onList(list.items)
          this.synced = true
        }
        // Spread the reconnects of many watchers like client-go does: between 1× and 2× the duration.
        const seconds = Math.round(watchSeconds * (1 + (this.options.random ?? Math.random)()))
        const url = this.query({ watch: '1', resourceVersion: this.rv, allowWatchBookmarks: 'true', timeoutSeconds: String(seconds) })
        // Bookmarks come about once a minute; a silent minute past the server's timeout means a dead connection.
        let events = 0
        for await (const event of client.watch<T | StatusObject>(url, (seconds + 60) * 1000, signal)) {
          events++
          this.attempt = 0
          if (event.type === 'ERROR') {
            const status = event.object as StatusObject
            if (status.code === 410) throw new Gone(status.message ?? 'resourceVersion too old')
            throw new KubeApiError(status.code ?? 0, status.reason ?? '', `watch ${path}: ${status.message ?? 'ERROR event'}`)
          }
          const object = event.object as T
          const rv = object.metadata?.resourceVersion
          if (rv !== undefined) this.rv = rv
          if (event.type !== 'BOOKMARK') this.options.onEvent(event.type, object)
        }
        // The server ended the watch (its timeout): resume from the last resourceVersion. A watch
        // that ends without a single event gets a backoff first, so a flapping server is not hammered.
        if (events === 0) await this.sleep(this.delay())
      } catch (err) {
        if (signal.aborted) break
        if (err instanceof Gone || (err instanceof KubeApiError && err.status === 410)) {
          // Our resourceVersion fell out of the API server's window: a fresh list catches up.
          log.info({ path, resourceVersion: this.rv }, 'watch expired (410 Gone); relisting')
          this.rv = null
          continue
        }
        const delay = this.delay()
        log.warn({ code: ERR_KUBE_API, path, err: (err as Error).message, resourceVersion: this.rv, retryInMs: Math.round(delay) }, 'Kubernetes watch failed; retrying')
        await this.sleep(delay)
      }
    }
  }

  /**
   * One consistent snapshot, read in pages of `limit` objects chained by `continue` tokens, as
   * client-go's pager does, so no answer is unbounded. A page over the client's body bound is asked
   * again with half the limit; an expired continue token (410) starts the list over. Throws what
   * the client throws otherwise, or a KubeApiError after MAX_LIST_RESTARTS expiries.
   */
  private async list (signal: AbortSignal): Promise<List<T>> {
    const items: T[] = []
    let token = ''
    let restarts = 0
    for (;;) {
      const params: Record<string, string> = { limit: String(this.pageSize) }
      if (token !== '') params.continue = token
      let page: List<T>
      try {
        page = await this.options.client.json<List<T>>('GET', this.query(params), undefined, signal)
      } catch (err) {
        if (err instanceof KubeBodyTooLargeError && this.pageSize > 1) {
          this.pageSize = Math.max(1, this.pageSize >> 1)
          this.options.log.warn({ code: ERR_KUBE_API, path: this.options.path, pageSize: this.pageSize }, 'a list page was over the size bound; asking for smaller pages')
          continue
        }
        if (err instanceof KubeApiError && err.status === 410 && token !== '' && ++restarts <= MAX_LIST_RESTARTS) {
          items.length = 0
          token = ''
          continue
        }
        throw err
      }
      for (const item of page.items) items.push(item)
      token = page.metadata.continue ?? ''
      if (token === '') return { metadata: { resourceVersion: page.metadata.resourceVersion }, items }
    }
  }

  /** Full-jitter exponential backoff, like the agents' reconnects. */
  private delay (): number {
    const min = this.options.backoffMinMs ?? 500
    const max = this.options.backoffMaxMs ?? 30_000
    const ceiling = Math.min(max, min * 2 ** Math.min(this.attempt++, 30))
    return Math.max(min, (this.options.random ?? Math.random)() * ceiling)
  }

  private sleep (ms: number): Promise<void> {
    return new Promise(resolve => {
      const timer = setTimeout(done, ms)
      function done (): void { clearTimeout(timer); resolve() }
      this.wake = done
    })
  }
}
