import t from 'tap'
import { connectTimed } from '../../src/layers/connect.ts'
import { closedPort, startSilentPeer, startUnansweredPort } from '../../../test/helpers/slow-peer.ts'

t.test('resolves with the socket and the handshake time in seconds', async t => {
  const peer = await startSilentPeer('127.0.0.1')
  t.teardown(peer.close)
  const { socket, seconds } = await connectTimed('127.0.0.1', peer.port, AbortSignal.timeout(5000))
  t.teardown(() => { socket.destroy() })
  t.ok(seconds >= 0 && seconds < 5)
  t.equal(socket.remotePort, peer.port)
})

t.test('rejects with the socket error', async t => {
  await t.rejects(connectTimed('127.0.0.1', await closedPort('127.0.0.1'), AbortSignal.timeout(5000)), { code: 'ECONNREFUSED' })
})

t.test('rejects with ABORT_ERR when the signal fires first, or had fired already', async t => {
  const peer = await startUnansweredPort('127.0.0.1')
  t.teardown(peer.close)
  await t.rejects(connectTimed(peer.host, peer.port, AbortSignal.timeout(100)), { code: 'ABORT_ERR', name: 'AbortError' })
  await t.rejects(connectTimed('127.0.0.1', 9, AbortSignal.abort()), { code: 'ABORT_ERR' })
})
