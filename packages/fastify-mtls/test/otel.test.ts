import { X509Certificate } from 'node:crypto'
import t from 'tap'
import Fastify from 'fastify'
import { FastifyOtelInstrumentation } from '@fastify/otel'
import { request } from 'undici'
import { createTestPki } from 'mtls-pki'
import { agentFor } from 'mtls-test-support'
import type { Teardown } from 'mtls-test-support'
import { startOtelSdk } from 'mtls-test-support/otel-sdk'
import { fastifyMtls, loadServerTls, type FastifyMtlsOptions } from '../src/index.js'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { attempt, clientOf, sessionFrom, tempDir } from './helpers.js'

const pki = await createTestPki()
const material = { cert: pki.server.chain, key: pki.server.key, ca: pki.ca }

// A server as an operator runs it with OpenTelemetry: @fastify/otel (the official instrumentation) registered first.
async function startInstrumented (t: Teardown, plugin: Partial<FastifyMtlsOptions> = {}, files?: { certFile: string, keyFile: string, caFile: string }): Promise<{ port: number, app: ReturnType<typeof Fastify> }> {
  const serverTls = await loadServerTls(files ?? material)
  const app = Fastify({ https: serverTls.httpsOptions })
  await app.register(new FastifyOtelInstrumentation().plugin())
  await app.register(fastifyMtls, { tls: serverTls, watch: false, ...plugin })
  app.get('/hello', async () => 'hello')
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  return { port: (app.server.address() as { port: number }).port, app }
}

t.test('without an SDK registered, requests are served and nothing breaks', async t => {
  const { port } = await startInstrumented(t)
  const response = await request(`https://localhost:${port}/hello`, { dispatcher: agentFor(t, pki, pki.orderService) })
  t.equal(response.statusCode, 200)
  t.equal(await response.body.text(), 'hello')
})

t.test('with the SDK', async t => {
  const sdk = startOtelSdk(t)

  t.test('the request span carries the connection\'s TLS attributes, by the semantic conventions', async t => {
    sdk.reset()
    const { port } = await startInstrumented(t)
    const response = await request(`https://localhost:${port}/hello`, { dispatcher: agentFor(t, pki, pki.orderService) })
    t.equal(response.statusCode, 200)
    await response.body.text()
    const spans = sdk.spans()
    const requestSpan = spans.find(span => span.name === 'request')
    if (requestSpan === undefined) throw new Error(`no request span among ${spans.map(span => span.name).join(', ')}`)
    // An independent reading of the client certificate: Node's own X509Certificate.
    const cert = new X509Certificate(pki.orderService.certificate)
    t.match(requestSpan.attributes, {
      'tls.protocol.name': 'tls',
      'tls.protocol.version': '1.3',
      'tls.cipher': /^TLS_[A-Z0-9_]+$/,
      'tls.resumed': false,
      'tls.established': true,
      'tls.client.hash.sha256': cert.fingerprint256.replaceAll(':', ''),
      'tls.client.not_after': new Date(cert.validTo).toISOString(),
      'tls.client.subject': /order-service/
    })
    t.match(requestSpan.attributes['tls.client.hash.sha256'], /^[0-9A-F]{64}$/, 'uppercase hex')
    const hookSpans = spans.filter(span => span.name !== 'request')
    t.ok(hookSpans.length > 0, '@fastify/otel made hook spans too')
    t.ok(hookSpans.every(span => span.attributes['tls.cipher'] === undefined), 'the attributes go on the request span, not on a hook\'s')
  })

  t.test('a resumed session says so', async t => {
    sdk.reset()
    const { port } = await startInstrumented(t)
    const client = clientOf(pki, pki.orderService)
    const first = await attempt(port, client, {}, '/hello')
    t.equal(first.status, 200)
    const session = await sessionFrom(port, pki.orderService, pki.ca)
    const resumed = await attempt(port, client, { session }, '/hello')
    t.equal(resumed.reused, true)
    const spans = sdk.spans().filter(span => span.name === 'request')
    t.equal(spans[0]?.attributes['tls.resumed'], false)
    t.equal(spans.at(-1)?.attributes['tls.resumed'], true)
    t.equal(spans.at(-1)?.attributes['tls.client.hash.sha256'], spans[0]?.attributes['tls.client.hash.sha256'], 'the resumed session\'s certificate is the one of its full handshake')
  })

  t.test('openTelemetry: false sets nothing', async t => {
    sdk.reset()
    const { port } = await startInstrumented(t, { openTelemetry: false })
    t.equal((await attempt(port, clientOf(pki, pki.orderService), {}, '/hello')).status, 200)
    const requestSpan = sdk.spans().find(span => span.name === 'request')
    t.ok(requestSpan !== undefined, 'the request was traced')
    t.equal(requestSpan?.attributes['tls.cipher'], undefined)
  })

  t.test('refusals, reloads and expiry are OpenTelemetry metrics read at collection time', async t => {
    const dir = await tempDir(t)
    const files = { certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key'), caFile: join(dir, 'ca.crt') }
    await Promise.all([writeFile(files.certFile, pki.server.chain), writeFile(files.keyFile, pki.server.key), writeFile(files.caFile, pki.ca)])
    const { port, app } = await startInstrumented(t, {}, files)
    t.equal((await attempt(port, clientOf(pki, pki.orderService), {}, '/hello')).status, 200)
    t.equal((await attempt(port, clientOf(pki, pki.expired), {}, '/hello')).status, null)
    t.equal((await attempt(port, clientOf(pki), {}, '/hello')).status, null)
    await writeFile(files.certFile, '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n')
    await t.rejects(app.mtls.reload(), { code: 'FST_MTLS_RELOAD_FAILED' })
    const collected = await sdk.collect()
    const points = (name: string): Array<{ attributes: Record<string, unknown>, value: unknown }> =>
      (collected.get(name)?.dataPoints ?? []) as Array<{ attributes: Record<string, unknown>, value: unknown }>
    const value = (name: string, attributes: Record<string, string> = {}): unknown =>
      points(name).find(point => Object.entries(attributes).every(([key, v]) => point.attributes[key] === v))?.value
    t.equal(value('mtls.handshakes'), app.mtls.stats().handshakes)
    t.equal(value('mtls.handshake_failures', { reason: 'expired' }), 1)
    t.equal(value('mtls.handshake_failures', { reason: 'no_certificate' }), 1)
    t.equal(value('mtls.handshake_failures', { reason: 'revoked' }), 0)
    t.equal(value('mtls.reloads', { result: 'success' }), 0)
    t.equal(value('mtls.reloads', { result: 'failure' }), 1, 'the corrupt file was refused')
    t.equal(value('mtls.resumed_sessions'), 0)
    const leaf = points('mtls.certificate_expiry').find(point => point.attributes.certificate === 'leaf')
    t.equal(leaf?.attributes.fingerprint256, pki.server.fingerprint256)
    t.equal(collected.get('mtls.certificate_expiry')?.descriptor.unit, 's')
    t.ok(typeof leaf?.value === 'number' && Math.abs(leaf.value - app.mtls.status().certificate.secondsToExpiry) <= 2, 'the leaf\'s seconds to expiry')
  })

  t.test('openTelemetry must be a boolean', async t => {
    const serverTls = await loadServerTls(material)
    const app = Fastify({ https: serverTls.httpsOptions })
    t.teardown(() => app.close())
    app.register(fastifyMtls, { tls: serverTls, openTelemetry: 'yes' as unknown as boolean })
    await t.rejects(async () => await app.ready(), { code: 'FST_MTLS_INVALID_OPTION', message: /openTelemetry must be true or false/ })
  })
})
