// One list-then-watch loop over a Kubernetes collection, the way client-go's reflector does it:
// list for a full snapshot and its resourceVersion, watch from there (bookmarks advance it), resume
// from the last resourceVersion when a watch ends or drops, relist on 410 Gone, back off on failures.

import type { Logger } from 'pino'
import { ERR_KUBE_API } from '../errors.ts'
import { KubeApiError, type KubeClient } from './client.ts'

export interface KubeObject {
  metadata: { name: string, namespace?: string, resourceVersion?: string, labels?: Record<string, string>, deletionTimestamp?: string }
}

interface List<T> {
  metadata: { resourceVersion: string }
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
}

/** Thrown inside the loop for an in-stream ERROR event with code 410: relist. */
class Gone extends Error {}

export class KubeWatch<T extends KubeObject> {
  private readonly options: KubeWatchOptions<T>
  private readonly abort = new AbortController()
  private rv: string | null = null
  private attempt = 0
  private running: Promise<void> | null = null
  private wake: (() => void) | null = null
  /** Lists done, for tests and logs: a 410 shows as a second list. */
  lists = 0
  synced = false

  constructor (options: KubeWatchOptions<T>) {
    this.options = options
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
          const list = await client.json<List<T>>('GET', this.query({}), undefined, signal)
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
