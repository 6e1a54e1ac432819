import t from 'tap'
import { BUCKET_COUNT } from '@pingfleet/protocol'
import { INBOUND, NodeSums, OUTBOUND, peerKindSlot, peerNode, type NodeSide } from '../../src/store/node-sums.ts'

const POD = peerKindSlot('pod')

function side (sums: NodeSums, node: number, direction: number, kind = POD): NodeSide & { bits: Uint32Array } {
  const out = { samples: 0, errors: 0, reasons: null, peers: 0, dense: new Float64Array(BUCKET_COUNT), bits: new Uint32Array(8) }
  sums.read(kind, node, direction, out, out.bits, out.dense)
  return out
}

t.test('peerNode and peerKindSlot: which targets are nodes', async t => {
  t.equal(peerNode('node-a/8500'), 'node-a')
  t.equal(peerNode('node-a'), 'node-a')
  t.equal(peerKindSlot('mtu'), 1)
  t.equal(peerKindSlot('dns-lookup'), -1)
})

t.test('a cell is outbound for its source and inbound for its peer, open or closed', async t => {
  const sums = new NodeSums()
  sums.add(POD, 0, 1, { count: 3, latency: [10, 2], errors: [{ reason: 'CONNECT_TIMEOUT', raw: 'ETIMEDOUT', count: 1 }] })
  sums.add(POD, 2, 1, { count: 1, latency: [12, 1] })
  sums.add(POD, 2, 0, { count: 0, latency: [] })
  const check = (label: string): void => {
    const out = side(sums, 0, OUTBOUND)
    t.match(out, { samples: 3, errors: 1 }, label)
    t.same([...out.reasons!], [['CONNECT_TIMEOUT', 1]])
    t.equal(out.bits[0], 0b10)
    const inbound = side(sums, 1, INBOUND)
    t.match(inbound, { samples: 4, errors: 1 })
    t.equal(inbound.bits[0], 0b101, 'from nodes 0 and 2')
    t.same([inbound.dense![10], inbound.dense![12]], [2, 1])
    t.equal(side(sums, 0, INBOUND).bits[0], 0, 'a cell with no probe names no peer')
  }
  check('open')
  const bytes = sums.bytes
  sums.close()
  t.ok(sums.bytes < bytes, `closing packs the histograms: ${sums.bytes} < ${bytes} bytes`)
  check('closed')
  sums.add(POD, 0, 1, { count: 1, latency: [10, 1] })
  t.equal(side(sums, 1, INBOUND).dense![10], 3, 'a late cell reopens a closed slot')
})

t.test('capacity grows past the first 64 nodes without losing what was filed, open or closed', async t => {
  for (const closed of [false, true]) {
    const sums = new NodeSums()
    sums.add(POD, 5, 63, { count: 2, latency: [7, 2] })
    if (closed) sums.close()
    sums.add(POD, 200, 5, { count: 1, latency: [8, 1] })
    const five = side(sums, 5, OUTBOUND)
    t.match(five, { samples: 2 })
    t.equal(five.dense![7], 2)
    t.equal(five.bits[1], 2 ** 31, 'node 63')
    const in5 = side(sums, 5, INBOUND)
    t.equal(in5.bits[6], 1 << 8, 'node 200')
    t.equal(side(sums, 63, INBOUND).dense![7], 2)
  }
})

t.test('union sums two slots and leaves both alone; empty kinds stay empty', async t => {
  const a = new NodeSums()
  a.add(POD, 0, 1, { count: 2, latency: [10, 2] })
  a.close()
  const b = new NodeSums()
  b.add(POD, 3, 1, { count: 2, latency: [10, 1], errors: [{ reason: 'ECONNREFUSED', raw: 'ECONNREFUSED', count: 1 }] })
  b.add(POD, 70, 0, { count: 1, latency: [11, 1] })
  const u = NodeSums.union(a, b)
  const in1 = side(u, 1, INBOUND)
  t.match(in1, { samples: 4, errors: 1 })
  t.same([...in1.reasons!], [['ECONNREFUSED', 1]])
  t.equal(in1.bits[0], 0b1001)
  t.equal(in1.dense![10], 3)
  t.equal(side(u, 0, INBOUND).bits[2], 1 << 6, 'node 70, from the larger input')
  t.match(side(a, 1, INBOUND), { samples: 2, errors: 0 }, 'inputs unchanged')
  t.match(side(u, 1, INBOUND, peerKindSlot('mtu')), { samples: 0 })
})

t.test('union of two closed slots merges their packed histograms side by side', async t => {
  const a = new NodeSums()
  a.add(POD, 0, 1, { count: 3, latency: [10, 1, 12, 2] })
  a.add(POD, 2, 1, { count: 1, latency: [11, 1] })
  a.close()
  const b = new NodeSums()
  b.add(POD, 0, 1, { count: 2, latency: [9, 1, 12, 1] })
  b.add(POD, 100, 1, { count: 1, latency: [300, 1], errors: [{ reason: 'ECONNRESET', raw: 'ECONNRESET', count: 0 }] })
  b.close()
  const u = NodeSums.union(a, b)
  const in1 = side(u, 1, INBOUND)
  t.same([9, 10, 11, 12, 300].map(i => in1.dense![i]), [1, 1, 1, 3, 1])
  t.match(in1, { samples: 7 })
  t.same([in1.bits[0], in1.bits[3]], [0b101, 1 << 4], 'nodes 0, 2 and 100')
  t.same([...side(u, 0, OUTBOUND).dense!.entries()].filter(([, n]) => n > 0), [[9, 1], [10, 1], [12, 3]])
  t.same([...side(u, 100, OUTBOUND).reasons!], [['ECONNRESET', 0]])
  const again = NodeSums.union(u, a)
  t.equal(side(again, 1, INBOUND).dense![12], 5, 'a union unions again')
})

t.test('settle packs a slot only once no report reached it since the last settle', async t => {
  const sums = new NodeSums()
  sums.add(POD, 0, 1, { count: 1, latency: [10, 1] })
  const open = sums.bytes
  sums.settle()
  t.equal(sums.bytes, open, 'written since the last call: still dense')
  sums.add(POD, 0, 1, { count: 1, latency: [10, 1] })
  sums.settle()
  t.equal(sums.bytes, open, 'a late report keeps it dense')
  sums.settle()
  t.ok(sums.bytes < open, 'quiet for a call: packed')
  t.equal(side(sums, 1, INBOUND).dense![10], 2)
})

t.test('dense counts widen past 16 bits without losing a count, and reopen wide when packed counts need it', async t => {
  const sums = new NodeSums()
  sums.add(POD, 0, 1, { count: 60_000, latency: [10, 60_000] })
  sums.add(POD, 2, 1, { count: 10_000, latency: [10, 10_000, 11, 1] })
  t.equal(side(sums, 1, INBOUND).dense![10], 70_000)
  t.equal(side(sums, 0, OUTBOUND).dense![10], 60_000)
  sums.close()
  sums.add(POD, 0, 1, { count: 1, latency: [10, 1] })
  t.equal(side(sums, 1, INBOUND).dense![10], 70_001, 'reopened for a late report')
  t.equal(side(sums, 1, INBOUND).dense![11], 1)
})

t.test('loss counters (udp sent/lost, slowConnects) sum per side through growth, packing and union', async t => {
  const UDP = peerKindSlot('udp')
  const a = new NodeSums()
  a.add(UDP, 0, 1, { count: 1, latency: [10, 1], sent: 5, lost: 1 })
  a.add(POD, 0, 1, { count: 2, latency: [10, 2], slowConnects: 1 })
  a.add(POD, 0, 2, { count: 2, latency: [10, 2] })
  t.equal(side(a, 0, OUTBOUND, peerKindSlot('mtu')).loss, undefined, 'a kind whose cells carried no counter has none')
  t.same(side(a, 1, INBOUND, UDP).loss, { sent: 5, lost: 1, slowConnects: 0 })
  t.same(side(a, 0, OUTBOUND, POD).loss, { sent: 0, lost: 0, slowConnects: 1 })
  a.add(UDP, 100, 1, { count: 1, latency: [10, 1], sent: 5, lost: 2 })
  t.same(side(a, 1, INBOUND, UDP).loss, { sent: 10, lost: 3, slowConnects: 0 }, 'kept through growth past 64 nodes')
  const b = new NodeSums()
  b.add(UDP, 3, 1, { count: 1, latency: [10, 1], sent: 5, lost: 5 })
  const openUnion = NodeSums.union(a, b)
  a.close()
  b.close()
  const closedUnion = NodeSums.union(a, b)
  for (const [label, u] of [['open', openUnion], ['closed', closedUnion]] as const) {
    t.same(side(u, 1, INBOUND, UDP).loss, { sent: 15, lost: 8, slowConnects: 0 }, `union of ${label} slots`)
    t.same(side(u, 100, OUTBOUND, UDP).loss, { sent: 5, lost: 2, slowConnects: 0 })
  }
  t.same(side(a, 1, INBOUND, UDP).loss, { sent: 10, lost: 3, slowConnects: 0 }, 'union leaves its inputs alone')
})

t.test('a read without reasons still counts failures and leaves the per-reason map alone', async t => {
  const sums = new NodeSums()
  sums.add(POD, 0, 1, { count: 3, latency: [10, 2], errors: [{ reason: 'CONNECT_TIMEOUT', raw: 'ETIMEDOUT', count: 1 }] })
  const into: NodeSide = { samples: 0, errors: 0, reasons: null, peers: 0, dense: null }
  sums.read(POD, 1, INBOUND, into, new Uint32Array(2), null, false)
  t.match(into, { samples: 3, errors: 1, reasons: null })
})
