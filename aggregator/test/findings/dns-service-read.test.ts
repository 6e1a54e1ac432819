import t from 'tap'
import { bucketIndex } from '@pingfleet/protocol'
import { dnsServiceFindings, readDnsServiceInput } from '../../src/findings/dns-service.ts'
import { parseLookupTarget, parseWireTarget, resolverLabel } from '../../src/findings/dns-service-input.ts'
import type { FindingsSources } from '../../src/findings/input.ts'
import type { CellInput } from '../../src/store/cell-sum.ts'
import { defaultTiers, Store } from '../../src/store/store.ts'
import { AT, fleet } from './dns-service-fixture.ts'

const ms = bucketIndex(0.002)

t.test('targets parse as the agent writes them', async t => {
  t.same(parseLookupTarget('kubernetes.default@getaddrinfo'), { name: 'kubernetes.default', family: 0 })
  t.same(parseLookupTarget('db.example.@getaddrinfo/6'), { name: 'db.example.', family: 6 })
  t.equal(parseLookupTarget('db.example'), null)
  t.same(parseWireTarget('a.example@10.96.0.10:53/AAAA'), { name: 'a.example', resolver: '10.96.0.10', type: 'AAAA' })
  t.same(parseWireTarget('a.example@[fd00::a]:53/A/tcp'), { name: 'a.example', resolver: 'fd00::a', type: 'A' })
  t.same(parseWireTarget('a.example@10.0.0.1:5353/A'), { name: 'a.example', resolver: '10.0.0.1:5353', type: 'A' })
  t.equal(parseWireTarget('a.example@10.0.0.1:53/MX'), null)
  t.equal(resolverLabel('[fd00::a]:5353'), '[fd00::a]:5353')
})

t.test('readDnsServiceInput reads a real node store: cells, reasons, backends and pod sums; findings follow', async t => {
  const ctx = fleet({ aws: 3, cilium: 3 })
  const store = new Store(defaultTiers(5000, 15 * 60_000), () => AT)
  store.advance(AT)
  const names = ctx.nodes.map(n => n.name)
  const ok = (count: number): CellInput => ({ count, latency: [ms, count] })
  const failed = (count: number, reason: string, raw: string): CellInput => ({ count, latency: [], errors: [{ reason, raw, count }] })
  // Twelve 5 s reports over the last minute; cilium's getaddrinfo says ENOTFOUND for db.example.
  for (let k = 0; k < 12; k++) {
    const at = AT - 55_000 + k * 5000
    for (const [i, node] of ctx.nodes.entries()) {
      const cilium = node.group === 'cilium'
      const ids: number[] = []
      const cells: CellInput[] = []
      const add = (probe: Parameters<Store['cellId']>[1], target: string, cell: CellInput): void => { ids.push(store.cellId(node.name, probe, target)); cells.push(cell) }
      for (const peer of names) if (peer !== node.name) add('pod', peer, ok(1))
      add('dns-lookup', 'kubernetes.default@getaddrinfo', ok(1))
      add('dns-lookup', 'db.example.@getaddrinfo', cilium ? failed(1, 'ENOTFOUND', 'EAI_NONAME') : ok(1))
      add('dns-wire', 'db.example@10.96.0.10:53/A', ok(1))
      add('dns-wire', 'db.example@10.96.0.10:53/AAAA', k === 0 ? failed(1, 'AGENT_OVERLOADED', 'CONCURRENCY_LIMIT') : ok(1))
      add('service', '10.96.0.20:8081', { ...ok(1), backends: [{ node: names[(i + k) % names.length]!, count: 1 }] })
      add('http', 'https://example.com/health', ok(1))
      add('tcp', 'example.com:443', ok(1))
      t.ok(store.write(at, ids, cells))
    }
  }
  // A node outside the context (terminating) is not read.
  store.write(AT - 1000, [store.cellId('gone', 'dns-lookup', 'db.example.@getaddrinfo')], [failed(5, 'ENOTFOUND', 'EAI_NONAME')])
  const input = readDnsServiceInput({ nodes: store } as unknown as FindingsSources, ctx)
  t.same(input.lookups.map(c => [c.target, c.name, c.family]).sort(), [['db.example.@getaddrinfo', 'db.example.', 0], ['kubernetes.default@getaddrinfo', 'kubernetes.default', 0]])
  t.same(input.wire.map(c => [c.resolver, c.name, c.type]).sort(), [['10.96.0.10', 'db.example', 'A'], ['10.96.0.10', 'db.example', 'AAAA']])
  const db = input.lookups.find(c => c.name === 'db.example.')!
  const cilium1 = ctx.nodes.findIndex(n => n.group === 'cilium')
  // The recent part (a quarter of the minute, in whole 5 s slots overlapping it): the last 4 reports.
  t.same(db.cells[cilium1], { samples: 12, errors: 12, reasons: [{ reason: 'ENOTFOUND', raw: 'EAI_NONAME', count: 12 }], recent: { samples: 4, errors: 4, reasons: [{ reason: 'ENOTFOUND', raw: 'EAI_NONAME', count: 4 }] } })
  t.same(db.cells[0], { samples: 12, errors: 0, reasons: [], recent: { samples: 4, errors: 0, reasons: [] } })
  t.same(input.wire.find(c => c.type === 'AAAA')!.cells[0], { samples: 11, errors: 0, reasons: [], recent: { samples: 4, errors: 0, reasons: [] } }, 'AGENT_OVERLOADED is no sample')
  const answered = input.services[0]!.backends.reduce((n, m) => n + [...m!.values()].reduce((a, b) => a + b, 0), 0)
  t.equal(answered, 72)
  t.same(input.external.map(c => c.probe), ['http', 'tcp'])
  t.same(input.podOut[0], { samples: 60, errors: 0 })
  t.same(input.podIn[5], { samples: 60, errors: 0 })
  const found = dnsServiceFindings(ctx, input, new Set())
  t.same(found.map(d => `${d.kind} ${d.subject.id}`), ['dns-group group/cilium'])
  t.equal(`${found[0]!.lead} since 10:00:00 ${found[0]!.rest}`,
    'cilium (3 nodes): getaddrinfo fails for db.example. from 3 of 3 nodes since 10:00:00 (ENOTFOUND, raw EAI_NONAME); the resolver answers on the wire; aws resolves it')
})

t.test('a fault gone from the window\'s recent part is no finding, though the older part still fails', async t => {
  const ctx = fleet({ aws: 3, cilium: 3 })
  const store = new Store(defaultTiers(5000, 15 * 60_000), () => AT)
  store.advance(AT)
  const names = ctx.nodes.map(n => n.name)
  const ok = (count: number): CellInput => ({ count, latency: [ms, count] })
  const failed = (count: number, reason: string, raw: string): CellInput => ({ count, latency: [], errors: [{ reason, raw, count }] })
  const write = (lastFailing: number): void => {
    for (let k = 0; k < 12; k++) {
      for (const node of ctx.nodes) {
        const ids: number[] = []
        const cells: CellInput[] = []
        const add = (probe: Parameters<Store['cellId']>[1], target: string, cell: CellInput): void => { ids.push(store.cellId(node.name, probe, target)); cells.push(cell) }
        for (const peer of names) if (peer !== node.name) add('pod', peer, ok(1))
        add('dns-lookup', 'db.example.@getaddrinfo', node.group === 'cilium' && k <= lastFailing ? failed(1, 'ENOTFOUND', 'EAI_NONAME') : ok(1))
        add('dns-wire', 'db.example@10.96.0.10:53/A', ok(1))
        store.write(AT - 55_000 + k * 5000, ids, cells)
      }
    }
  }
  // Failing for the first 7 reports, healed for the last 5: 7 of 12 fail over the window.
  write(6)
  const input = readDnsServiceInput({ nodes: store } as unknown as FindingsSources, ctx)
  const cilium1 = ctx.nodes.findIndex(n => n.group === 'cilium')
  const cell = input.lookups[0]!.cells[cilium1]!
  t.same([cell.errors, cell.samples, cell.recent!.errors, cell.recent!.samples], [7, 12, 0, 4])
  t.same(dnsServiceFindings(ctx, input, new Set()), [], 'healed in the recent part: nothing')
})
