// The list-then-watch loop against the fake API server: bookmarks, 410 in both forms, drops.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pino from 'pino'
import t, { type Test } from 'tap'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { KubeBodyTooLargeError, KubeClient } from '../../src/kube/client.ts'
import { KubeWatch, type KubeObject } from '../../src/kube/watch.ts'
import { API_TOKEN, FakeKube, node, until } from '../kube-fake.ts'

async function setup (t: Test, options: { pageSize?: number, maxBodyBytes?: number, maxEventBytes?: number } = {}) {
  const fake = new FakeKube()
  const url = await fake.listen()
  const dir = mkdtempSync(join(tmpdir(), 'pingfleet-kube-'))
  writeFileSync(join(dir, 'token'), API_TOKEN + '\n')
  const client = new KubeClient({ url, tokenFile: join(dir, 'token'), caFile: '', maxBodyBytes: options.maxBodyBytes, maxEventBytes: options.maxEventBytes })
  const seen: string[] = []
  const known = new Map<string, KubeObject>()
  const watch = new KubeWatch<KubeObject>({
    client,
    path: '/api/v1/nodes',
    log: pino({ level: 'silent' }),
    backoffMinMs: 10,
    backoffMaxMs: 50,
    pageSize: options.pageSize,
    onList: items => {
      known.clear()
      for (const i of items) known.set(i.metadata.name, i)
      seen.push(`LIST ${items.map(i => i.metadata.name).sort().join(',')}`)
    },
    onEvent: (type, object) => {
      if (type === 'DELETED') known.delete(object.metadata.name)
      else known.set(object.metadata.name, object)
      seen.push(`${type} ${object.metadata.name}`)
    }
  })
  t.teardown(async () => {
    await watch.stop()
    client.close()
    await fake.close()
    rmSync(dir, { recursive: true, force: true })
  })
  return { fake, watch, seen, known }
}

type Setup = Awaited<ReturnType<typeof setup>>
const watchRequests = (s: Setup) => s.fake.requests.filter(r => r.includes('watch=1'))
const lastWatchRv = (s: Setup) => new URL(watchRequests(s).at(-1)!.split(' ')[1]!, 'http://x').searchParams.get('resourceVersion')

t.test('lists, then watches from the list\'s resourceVersion with bookmarks', async t => {
  const s = await setup(t)
  s.fake.put('Node', node('a', {}))
  s.watch.start()
  await until('watching', () => s.fake.openWatches('Node') === 1)
  t.same(s.seen, ['LIST a'])
  const rv = String(s.fake.resourceVersion)
  t.equal(s.watch.resourceVersion, rv)
  const url = new URL(watchRequests(s)[0]!.split(' ')[1]!, 'http://x')
  t.equal(url.searchParams.get('resourceVersion'), rv)
  t.equal(url.searchParams.get('allowWatchBookmarks'), 'true')
  t.ok(Number(url.searchParams.get('timeoutSeconds')) > 0)

  s.fake.put('Node', node('b', {}))
  s.fake.put('Node', node('a', { x: '1' }))
  s.fake.remove('Node', 'b')
  await until('three events', () => s.seen.length === 4)
  t.same(s.seen.slice(1), ['ADDED b', 'MODIFIED a', 'DELETED b'])
  t.equal(s.watch.resourceVersion, String(s.fake.resourceVersion))

  s.fake.tick(50)
  s.fake.bookmark()
  await until('bookmark applied', () => s.watch.resourceVersion === String(s.fake.resourceVersion))
  t.equal(s.seen.length, 4, 'a bookmark is no event')
})

t.test('a dropped watch resumes from the last resourceVersion, missing nothing', async t => {
  const s = await setup(t)
  s.fake.put('Node', node('a', {}))
  s.watch.start()
  await until('watching', () => s.fake.openWatches('Node') === 1)
  s.fake.tick(5)
  s.fake.bookmark()
  await until('bookmark applied', () => s.watch.resourceVersion === String(s.fake.resourceVersion))
  const rv = s.watch.resourceVersion
  s.fake.dropWatches()
  // Changes while the watch is down are replayed from the resumed resourceVersion.
  s.fake.put('Node', node('c', {}))
  await until('rewatched', () => watchRequests(s).length === 2 && s.fake.openWatches('Node') === 1)
  t.equal(lastWatchRv(s), rv, 'resumed from the bookmark\'s resourceVersion')
  await until('replayed', () => s.known.has('c'))
  t.equal(s.watch.lists, 1, 'no relist')
})

t.test('an in-stream ERROR 410 relists', async t => {
  const s = await setup(t)
  s.fake.put('Node', node('a', {}))
  s.watch.start()
  await until('watching', () => s.fake.openWatches('Node') === 1)
  // The API server forgot history: a node deleted meanwhile must vanish after the relist.
  s.fake.expiredBelow = s.fake.resourceVersion + 10
  s.fake.expiredAs = 'event'
  s.fake.nodes.delete('a')
  s.fake.nodes.set('d', node('d', {}) as never)
  s.fake.tick(10)
  s.fake.expireWatches()
  await until('relisted', () => s.watch.lists === 2)
  t.same(s.seen.at(-1), 'LIST d')
  t.same([...s.known.keys()], ['d'])
  await until('watching again', () => s.fake.openWatches('Node') === 1)
  t.equal(lastWatchRv(s), String(s.fake.resourceVersion))
})

t.test('an HTTP 410 on the watch relists', async t => {
  const s = await setup(t)
  s.watch.start()
  await until('watching', () => s.fake.openWatches('Node') === 1)
  s.fake.expiredBelow = s.fake.resourceVersion + 1
  s.fake.expiredAs = 'http'
  s.fake.dropWatches()
  s.fake.tick(1)
  await until('relisted', () => s.watch.lists === 2)
  await until('watching again', () => s.fake.openWatches('Node') === 1)
  t.equal(lastWatchRv(s), String(s.fake.resourceVersion))
})

t.test('an unreachable API is retried with backoff until it answers', async t => {
  const s = await setup(t)
  s.fake.down = true
  s.watch.start()
  await until('a few attempts', () => s.fake.requests.length >= 3)
  t.equal(s.watch.synced, false)
  s.fake.down = false
  await until('listed', () => s.watch.synced)
  await until('watching', () => s.fake.openWatches('Node') === 1)
})

t.test('another ERROR event backs off and resumes without a relist', async t => {
  const s = await setup(t)
  s.watch.start()
  await until('watching', () => s.fake.openWatches('Node') === 1)
  const rv = s.watch.resourceVersion
  s.fake.errorWatches(500, 'InternalError', 'etcd leader changed')
  await until('rewatched', () => watchRequests(s).length === 2 && s.fake.openWatches('Node') === 1)
  t.equal(lastWatchRv(s), rv)
  t.equal(s.watch.lists, 1)
})

t.test('stop ends a watch and a list in flight at once', async t => {
  const s = await setup(t)
  s.watch.start()
  await until('watching', () => s.fake.openWatches('Node') === 1)
  const started = Date.now()
  await s.watch.stop()
  t.ok(Date.now() - started < 1000, 'no wait for the watch to end by itself')
  await until('the server saw it go', () => s.fake.openWatches('Node') === 0)
})

t.test('lists in pages of `limit` objects chained by continue tokens, as one snapshot', async t => {
  const s = await setup(t, { pageSize: 2 })
  for (const n of ['a', 'b', 'c', 'd', 'e']) s.fake.put('Node', node(n, {}))
  s.watch.start()
  await until('watching', () => s.fake.openWatches('Node') === 1)
  t.same(s.fake.lists, [{ limit: 2, offset: 0, count: 2 }, { limit: 2, offset: 2, count: 2 }, { limit: 2, offset: 4, count: 1 }])
  t.same(s.seen, ['LIST a,b,c,d,e'], 'one snapshot from three pages')
  t.equal(s.watch.lists, 1)
  t.equal(lastWatchRv(s), String(s.fake.resourceVersion))
})

t.test('a page over the body bound is asked again with half the limit, losing nothing', async t => {
  const one = JSON.stringify(node('node-00', {})).length
  // Room for about three nodes per answer: pages of 16, 8 and 4 are refused, pages of 2 fit.
  const s = await setup(t, { pageSize: 16, maxBodyBytes: 3 * one + 200 })
  const names = Array.from({ length: 9 }, (_, i) => `node-0${i}`)
  for (const n of names) s.fake.put('Node', node(n, {}))
  s.watch.start()
  await until('watching', () => s.fake.openWatches('Node') === 1)
  t.same(s.seen, [`LIST ${names.join(',')}`])
  t.same(s.fake.lists.map(l => l.limit).filter((l, i, all) => all.indexOf(l) === i), [16, 8, 4, 2])
  t.ok(s.fake.lists.filter(l => l.limit === 2).every(l => l.count <= 2))
})

t.test('an expired continue token (410) starts the list over, so the snapshot stays consistent', async t => {
  const s = await setup(t, { pageSize: 2 })
  for (const n of ['a', 'b', 'c']) s.fake.put('Node', node(n, {}))
  // After the first page the API server compacts past the snapshot, and node a goes away.
  s.fake.afterListPage = () => {
    s.fake.afterListPage = undefined
    s.fake.nodes.delete('a')
    s.fake.tick(5)
    s.fake.expiredBelow = s.fake.resourceVersion
  }
  s.watch.start()
  await until('watching', () => s.fake.openWatches('Node') === 1)
  t.same(s.seen, ['LIST b,c'], 'no object from the expired snapshot')
  t.same(s.fake.lists.map(l => l.offset), [0, 0], 'the first page again, whole now')
  t.equal(s.fake.requests.filter(r => r.includes('continue=')).length, 1, 'the one continue asked was refused')
})

t.test('a watch event over the event bound is not read, and the watch resumes where it was', async t => {
  const s = await setup(t, { maxEventBytes: 4096 })
  s.watch.start()
  await until('watching', () => s.fake.openWatches('Node') === 1)
  const rv = s.watch.resourceVersion
  s.fake.put('Node', node('huge', { big: 'x'.repeat(60), ...Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`k${i}`, 'v'.repeat(40)])) }))
  await until('rewatched', () => watchRequests(s).length >= 2)
  t.notOk(s.known.has('huge'))
  t.equal(lastWatchRv(s), rv, 'resumed from the last event it could read')
})

t.test('an endless answer to a request is cut at the body bound', async t => {
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' })
    const chunk = Buffer.alloc(64 * 1024, 0x20)
    const pump = (): void => { while (res.write(chunk)); }
    res.on('drain', pump)
    pump()
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { server.closeAllConnections(); server.close() })
  const client = new KubeClient({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, tokenFile: '', caFile: '', maxBodyBytes: 1024 * 1024 })
  t.teardown(() => client.close())
  const err = await client.json('GET', '/api/v1/nodes').then(() => null, (e: unknown) => e)
  t.ok(err instanceof KubeBodyTooLargeError, 'refused, not read to the end')
  t.match((err as Error).message, /exceeds 1048576 bytes/)
  t.equal((err as KubeBodyTooLargeError).code, 'PINGFLEET_ERR_KUBE_API')
})
