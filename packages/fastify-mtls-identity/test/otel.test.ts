import t from 'tap'
import Fastify from 'fastify'
import { FastifyOtelInstrumentation } from '@fastify/otel'
import { fastifyMtls, loadServerTls } from 'fastify-mtls'
import { createTestPki } from 'mtls-pki'
import { agentFor } from 'mtls-test-support'
import type { Teardown } from 'mtls-test-support'
import { startOtelSdk } from 'mtls-test-support/otel-sdk'
import { request } from 'undici'
import { fastifyMtlsIdentity, type FastifyMtlsIdentityOptions } from '../src/index.js'

const pki = await createTestPki()

// @fastify/otel first, as its README asks; an optional-mode server, so that a client without a certificate is served.
async function start (t: Teardown, options: FastifyMtlsIdentityOptions = {}): Promise<{ url: string }> {
  const serverTls = await loadServerTls({ cert: pki.server.chain, key: pki.server.key, ca: pki.ca, mode: 'optional' })
  const app = Fastify({ https: serverTls.httpsOptions })
  await app.register(new FastifyOtelInstrumentation().plugin())
  await app.register(fastifyMtls, { tls: serverTls, watch: false })
  await app.register(fastifyMtlsIdentity, options)
  app.get('/hello', async () => 'hello') // reads no identity
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  return { url: `https://localhost:${(app.server.address() as { port: number }).port}` }
}

async function get (t: Teardown, url: string, cert?: { chain: string, key: string }): Promise<number> {
  const response = await request(`${url}/hello`, { dispatcher: agentFor(t, pki, cert) })
  await response.body.text()
  return response.statusCode
}

t.test('without an SDK, a request is served', async t => {
  const { url } = await start(t, { openTelemetry: true })
  t.equal(await get(t, url, pki.orderService), 200)
})

t.test('with the SDK, the request span names the peer, even where no route reads it', async t => {
  const sdk = startOtelSdk(t)
  const { url } = await start(t)
  t.equal(await get(t, url, pki.orderService), 200)
  t.equal(await get(t, url), 200)
  const [withCertificate, without] = sdk.spans().filter(span => span.name === 'request')
  t.match(withCertificate?.attributes, { 'mtls.peer.id': 'spiffe://mycompany.com/production/order-service', 'mtls.peer.source': 'tls' })
  t.equal(without?.attributes['mtls.peer.id'], undefined, 'no certificate, no peer')
  t.equal(without?.attributes['mtls.peer.source'], undefined)

  sdk.reset()
  const off = await start(t, { openTelemetry: false })
  t.equal(await get(t, off.url, pki.orderService), 200)
  const span = sdk.spans().find(span => span.name === 'request')
  t.ok(span !== undefined)
  t.equal(span?.attributes['mtls.peer.id'], undefined, 'openTelemetry: false sets nothing')
  t.match(span?.attributes, { 'tls.protocol.version': '1.3' }, 'while fastify-mtls still reports the connection')
})

t.test('openTelemetry must be a boolean', async t => {
  const app = Fastify()
  t.teardown(() => app.close())
  app.register(fastifyMtlsIdentity, { openTelemetry: 'on' as unknown as boolean })
  await t.rejects(async () => await app.ready(), { code: 'FST_MTLS_IDENTITY_INVALID_OPTION', message: /openTelemetry must be true or false/ })
})
