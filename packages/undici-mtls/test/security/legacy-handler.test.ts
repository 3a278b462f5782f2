// Attacks on the legacy-handler translation (legacy-handler.ts) that lets Node's global fetch use the agent.
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import * as tls from 'node:tls'
import t from 'tap'
import { createTestPki } from 'mtls-pki'
import { until } from 'mtls-test-support'
import { Agent, request } from 'undici'
import { createMtlsAgent } from '../../src/index.js'

const pki = await createTestPki()
const client = { cert: pki.orderService.chain, key: pki.orderService.key, ca: pki.ca }

// A real mTLS server that answers every request with the given raw bytes; `head` is the request's head.
async function rawServer (t: { teardown: (fn: () => unknown) => void }, answer: (socket: tls.TLSSocket, head: string) => void): Promise<string> {
  const sockets = new Set<tls.TLSSocket>()
  const server = tls.createServer({ cert: pki.server.chain, key: pki.server.key, ca: pki.ca, requestCert: true, rejectUnauthorized: true }, socket => {
    sockets.add(socket)
    let seen = ''
    socket.on('data', chunk => {
      seen += String(chunk)
      if (seen.includes('\r\n\r\n')) { const head = seen; seen = ''; answer(socket, head) }
    })
    socket.on('error', () => {})
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => { for (const socket of sockets) socket.destroy(); return new Promise(resolve => server.close(resolve)) })
  return `https://127.0.0.1:${(server.address() as AddressInfo).port}`
}

t.test('response header bytes reach fetch as the server sent them', async t => {
  // Bytes C4 8A are U+010A in UTF-8; its low byte is a line feed.
  const value = Buffer.from([0x61, 0xc4, 0x8a, 0x62, 0xc4, 0x8d, 0x63])
  const url = await rawServer(t, socket => {
    socket.write(Buffer.concat([Buffer.from('HTTP/1.1 200 OK\r\nx-token: '), value, Buffer.from('\r\ncontent-length: 2\r\n\r\nok')]))
  })
  const plain = new Agent({ connect: client })
  t.teardown(() => plain.close())
  const agent = await createMtlsAgent(client)
  t.teardown(() => agent.close())
  // undici 8's own Agent refuses Node's fetch altogether ("invalid onRequestStart method"); undici 7's takes it.
  const viaPlain = await fetch(url, { dispatcher: plain } as unknown as RequestInit).then(response => response.headers.get('x-token'), () => value.toString('latin1'))
  const viaMtls = (await fetch(url, { dispatcher: agent } as unknown as RequestInit)).headers.get('x-token')
  t.equal(viaPlain, value.toString('latin1'), 'an undici Agent gives fetch the bytes as they came (latin1)')
  // Refused: legacy-handler.ts rebuilds raw headers from undici's parsed object with latin1, and undici 7.30
  // parses them as latin1 too, so the bytes survive. (Were the parse UTF-8, Ċ would become a bare LF.)
  t.equal(viaMtls, viaPlain, 'the MtlsAgent gives fetch the same value')
  t.notOk(/[\r\n\0]/.test(viaMtls ?? ''), 'no CR, LF or NUL appears in a header value')
})

t.test('a legacy handler without onError is refused at dispatch, as undici refuses it, not thrown from the error path', async t => {
  // GET /next is answered whole; anything else is closed mid-body, once part of the body is out.
  const url = await rawServer(t, (socket, head) => {
    if (head.startsWith('GET /next ')) socket.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok')
    else socket.write('HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\npartial', () => socket.destroy())
  })
  // One connection, one request at a time: a request dispatched after the handler's waits until the handler's has
  // ended, its error path run, so its answer is the sign that anything that was to escape has escaped.
  const agent = await createMtlsAgent({ ...client, agent: { connections: 1 } })
  t.teardown(() => agent.close())
  const plain = new Agent({ connect: client })
  t.teardown(() => plain.close())
  const handler = () => ({ onConnect () {}, onHeaders () { return true }, onData () { return true }, onComplete () {} })
  const origin = new URL(url).origin
  t.throws(() => plain.dispatch({ origin, path: '/', method: 'GET' }, handler() as never), { code: 'UND_ERR_INVALID_ARG' }, 'undici refuses it at once')
  const uncaught: Error[] = []
  const onUncaught = (err: Error): void => { uncaught.push(err) }
  process.on('uncaughtException', onUncaught)
  t.teardown(() => process.off('uncaughtException', onUncaught))
  let thrown: unknown = null
  try { agent.dispatch({ origin, path: '/', method: 'GET' }, handler() as never) } catch (err) { thrown = err }
  let next: string | null = null
  request(`${url}/next`, { dispatcher: agent }).then(async response => { next = await response.body.text() }, (err: Error) => { next = err.message })
  await until(() => next !== null || uncaught.length > 0, 'the request sent after it to end, or an uncaught exception', 10_000)
  // This got through before the fix: the agent takes the handler (its translation always has onRequestStart and onResponseError, so
  // undici's check is skipped), and when the server closes mid-body onResponseError rethrows the error
  // (legacy-handler.ts), which escapes as an uncaught exception: "other side closed" kills the process.
  t.same(uncaught.map(e => e.message), [], 'nothing escapes as an uncaught exception')
  t.ok(thrown !== null, 'the agent refuses it at dispatch too')
  t.equal(next, 'ok', 'and serves the next request')
})

t.test('CONNECT with a legacy handler without onUpgrade is refused, not left hanging with its socket', async t => {
  const url = await rawServer(t, socket => { socket.write('HTTP/1.1 200 Connection established\r\n\r\n') })
  const agent = await createMtlsAgent(client)
  t.teardown(() => agent.destroy())
  const plain = new Agent({ connect: client })
  t.teardown(() => plain.destroy())
  const origin = new URL(url).origin
  const handler = (events: string[]) => ({
    onConnect () { events.push('connect') },
    onHeaders () { events.push('headers'); return true },
    onData () { return true },
    onComplete () { events.push('complete') },
    onError (err: Error) { events.push(`error: ${err.message}`) }
  })
  const plainEvents: string[] = []
  // undici 7 turns the handler down through onError; undici 8 throws at dispatch (it takes no legacy handler).
  try { plain.dispatch({ origin, path: 'example.com:443', method: 'CONNECT' }, handler(plainEvents) as never) } catch { plainEvents.push('error: invalid onUpgrade method') }
  const events: string[] = []
  let refused = false
  try { agent.dispatch({ origin, path: 'example.com:443', method: 'CONNECT' }, handler(events) as never) } catch { refused = true }
  t.same(plainEvents, ['error: invalid onUpgrade method'], 'undici refuses it at once')
  // This got through before the fix: the agent takes it; the tunnel is established and handed to nobody (onRequestUpgrade calls
  // legacy.onUpgrade?.() and drops the socket): the handler hears 'connect' and then nothing, ever. The hang is the failure.
  const ended = (): boolean => refused || events.some(e => e === 'complete' || e.startsWith('error'))
  await until(ended, 'the request to end one way or another', 10_000)
  t.ok(ended(), `the request ends one way or another (saw: ${events.join(', ')})`)
})
