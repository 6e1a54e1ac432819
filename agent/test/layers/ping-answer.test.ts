import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import { readPingAnswer } from '../../src/layers/ping-answer.ts'
import { LookupPool } from '../../src/lookup-pool.ts'
import { createMtuProbe, mtuTarget } from '../../src/probes/mtu.ts'
import { createPodProbe } from '../../src/probes/pod.ts'
import { createServiceProbe, serviceTarget } from '../../src/probes/service.ts'
import type { ProbeResult } from '../../src/probe.ts'

// The same bad /ping answer must read the same from every probe that reads /ping (issue 10).

async function listen (t: Test, body: (size: number) => string): Promise<number> {
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const size = Number(new URL(req.url!, 'http://x').searchParams.get('size') ?? 0)
    res.writeHead(200, { 'content-type': 'application/json' }).end(body(size))
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => {
    server.closeAllConnections()
    await new Promise(resolve => server.close(resolve))
  })
  return (server.address() as AddressInfo).port
}

/** An agent's answer naming `node`, padded to `size` bytes as the real server pads it. */
const agentBody = (node: string) => (size: number): string => {
  const base = JSON.stringify({ node, pod: node, labels: {}, pad: '' }).length
  return JSON.stringify({ node, pod: node, labels: {}, pad: 'x'.repeat(Math.max(0, size - base)) })
}
const padded = (text: string) => (size: number): string => text.padEnd(size, ' ')

const probes: Record<string, (port: number) => Promise<ProbeResult>> = {
  pod: port => createPodProbe({ timeoutMs: 2000 })({ kind: 'pod', id: 'n2', podIp: '127.0.0.1', port }, AbortSignal.timeout(2000)),
  service: port => createServiceProbe(new LookupPool(), { timeoutMs: 2000 })(serviceTarget('127.0.0.1', port), AbortSignal.timeout(2000)),
  mtu: port => createMtuProbe({ timeoutMs: 2000 })(mtuTarget({ node: 'n2', podIp: '127.0.0.1', port }, 1200), AbortSignal.timeout(2000))
}

const cases: Array<{ name: string, body: (size: number) => string, expected: Partial<ProbeResult>, service?: Partial<ProbeResult> }> = [
  { name: 'a body that is not JSON', body: padded('hello'), expected: { ok: false, reason: 'BAD_RESPONSE', raw: 'INVALID_JSON' } },
  { name: 'JSON that is not a ping answer', body: padded('{"status":"ok"}'), expected: { ok: false, reason: 'BAD_RESPONSE', raw: 'NOT_A_PING_ANSWER' } },
  { name: 'JSON null', body: padded('null'), expected: { ok: false, reason: 'BAD_RESPONSE', raw: 'NOT_A_PING_ANSWER' } },
  { name: 'an empty node name', body: agentBody(''), expected: { ok: false, reason: 'BAD_RESPONSE', raw: 'NOT_A_PING_ANSWER' } },
  {
    name: 'another node\'s answer',
    body: agentBody('n9'),
    expected: { ok: false, reason: 'BAD_RESPONSE', raw: 'NODE_MISMATCH', detail: { node: 'n9' } },
    // Through a Service any agent may answer: the one that did is the backend.
    service: { ok: true, backend: 'n9' }
  }
]

for (const c of cases) {
  t.test(c.name, async t => {
    const port = await listen(t, c.body)
    for (const [kind, run] of Object.entries(probes)) {
      const expected = kind === 'service' && c.service !== undefined ? c.service : c.expected
      t.match(await run(port), expected, kind)
    }
  })
}

t.test('readPingAnswer', async t => {
  t.same(readPingAnswer('{"node":"n2","pod":"p","labels":{}}', 'n2'), { ok: true, node: 'n2' })
  t.same(readPingAnswer('{"node":"n2"}'), { ok: true, node: 'n2' }, 'no expected node: any agent')
  t.same(readPingAnswer('{"node":"n3"}', 'n2'), { ok: false, reason: 'BAD_RESPONSE', raw: 'NODE_MISMATCH', detail: { node: 'n3' } })
  t.same(readPingAnswer('{"node":3}'), { ok: false, reason: 'BAD_RESPONSE', raw: 'NOT_A_PING_ANSWER' })
  t.same(readPingAnswer('[]'), { ok: false, reason: 'BAD_RESPONSE', raw: 'NOT_A_PING_ANSWER' })
  t.same(readPingAnswer(''), { ok: false, reason: 'BAD_RESPONSE', raw: 'INVALID_JSON' })
})
