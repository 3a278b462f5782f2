// An agent that shuts down resets its streams without a gRPC status (SPIRE's agent does): grpc-js reports that as
// Internal, "Received RST_STREAM with code 2". The source calls it what it is, the agent going away, and retries;
// an Internal status the agent does send stays a failed call. The agent here is a bare HTTP/2 server, so that the
// test chooses what goes on the wire.
import { once } from 'node:events'
import * as http2 from 'node:http2'
import type { AddressInfo } from 'node:net'
import * as grpc from '@grpc/grpc-js'
import t from 'tap'
import { hangLimit, until } from 'mtls-test-support'
import { X509Source } from '../src/index.js'

const LIMIT = { timeout: hangLimit(20_000) }

/** An HTTP/2 server on 127.0.0.1 that answers every call with `answer(stream)`; counts the calls. */
async function bareAgent (t: { teardown: (fn: () => unknown) => void }, answer: (stream: http2.ServerHttp2Stream) => void): Promise<{ endpoint: string, calls: () => number }> {
  let calls = 0
  const server = http2.createServer()
  server.on('stream', stream => {
    calls += 1
    stream.on('error', () => {})
    answer(stream)
  })
  const sessions = new Set<http2.ServerHttp2Session>()
  server.on('session', session => { sessions.add(session); session.on('close', () => sessions.delete(session)) })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(async () => {
    for (const session of sessions) session.destroy()
    await new Promise(resolve => { server.close(resolve) })
  })
  return { endpoint: `tcp://127.0.0.1:${(server.address() as AddressInfo).port}`, calls: () => calls }
}

function watched (t: { teardown: (fn: () => unknown) => void }, endpoint: string): { source: X509Source, errors: Array<{ code: string, grpcCode: number | null, message: string }> } {
  const source = new X509Source({ endpoint, backoff: { initialMs: 20, maxMs: 200 } })
  t.teardown(() => source.close())
  const errors: Array<{ code: string, grpcCode: number | null, message: string }> = []
  source.on('error', error => errors.push({ code: error.code, grpcCode: error.grpcCode, message: error.message }))
  return { source, errors }
}

t.test('a stream the agent resets without a status is the agent going away (Unavailable), retried', LIMIT, async t => {
  const agent = await bareAgent(t, stream => {
    stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR)
  })
  const { source, errors } = watched(t, agent.endpoint)
  await until(() => errors.length >= 2 && agent.calls() >= 2, 'two resets, and a call again after each')
  t.match(errors[0], { code: 'ERR_MTLS_WORKLOAD_UNAVAILABLE', grpcCode: grpc.status.INTERNAL }, 'gRPC says Internal; the source says the agent went away')
  t.match(errors[0]?.message, /Received RST_STREAM with code 2/, 'the message keeps what gRPC said')
  t.equal(source.status().lastError?.code, 'ERR_MTLS_WORKLOAD_UNAVAILABLE')
  t.equal(source.status().closed, false, 'still watching')
})

t.test('an Internal status the agent sends is a failed call, as before', LIMIT, async t => {
  const agent = await bareAgent(t, stream => {
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true })
    stream.on('wantTrailers', () => { stream.sendTrailers({ 'grpc-status': String(grpc.status.INTERNAL), 'grpc-message': 'the agent failed' }) })
    stream.end()
  })
  const { errors } = watched(t, agent.endpoint)
  await until(() => errors.length >= 1, 'the failed call')
  t.match(errors[0], { code: 'ERR_MTLS_WORKLOAD_RPC_FAILED', grpcCode: grpc.status.INTERNAL, message: /the agent failed/ })
})

t.test('a source closed before its first SVID, by code that never called ready(), leaves no unhandled rejection', LIMIT, async t => {
  const rejections: unknown[] = []
  const record = (reason: unknown): void => { rejections.push(reason) }
  process.on('unhandledRejection', record)
  t.teardown(() => { process.off('unhandledRejection', record) })
  const agent = await bareAgent(t, stream => { stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR) })
  const source = new X509Source({ endpoint: agent.endpoint })
  source.close()
  // Unhandled rejections are reported once the microtasks of a turn have run: two turns of the event loop.
  await new Promise(resolve => setImmediate(resolve))
  await new Promise(resolve => setImmediate(resolve))
  t.same(rejections, [], 'nothing unhandled')
  await t.rejects(source.ready(1000), { code: 'ERR_MTLS_WORKLOAD_CLOSED' }, 'ready() still says why')
})
