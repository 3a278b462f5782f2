import { X509Certificate } from 'node:crypto'
import t from 'tap'
import Fastify from 'fastify'
import { FastifyOtelInstrumentation } from '@fastify/otel'
import { UndiciInstrumentation } from '@opentelemetry/instrumentation-undici'
import { fastifyMtls, loadServerTls } from 'fastify-mtls'
import { fastifyMtlsIdentity } from 'fastify-mtls-identity'
import { createTestPki } from 'mtls-pki'
import type { Teardown } from 'mtls-test-support'
import { startOtelSdk } from 'mtls-test-support/otel-sdk'
import { request } from 'undici'
import { createMtlsAgent, openTelemetryRequestHook } from 'undici-mtls'
import { fastifyMtlsAuthz, type FastifyMtlsAuthzOptions } from '../src/index.js'

const pki = await createTestPki()
const policy: FastifyMtlsAuthzOptions['policy'] = {
  acl: [{ identities: ['spiffe://mycompany.com/production/order-service'], roles: ['payments:charge'] }]
}

// A payment service as an operator runs it with OpenTelemetry: @fastify/otel first, then the three plugins.
async function startPaymentService (t: Teardown, authz: Partial<FastifyMtlsAuthzOptions> = {}): Promise<string> {
  const serverTls = await loadServerTls({ cert: pki.server.chain, key: pki.server.key, ca: pki.ca })
  const app = Fastify({ https: serverTls.httpsOptions })
  await app.register(new FastifyOtelInstrumentation().plugin())
  await app.register(fastifyMtls, { tls: serverTls, watch: false })
  await app.register(fastifyMtlsIdentity)
  await app.register(fastifyMtlsAuthz, { policy, ...authz })
  app.post('/charge', { config: { mtls: { roles: ['payments:charge'] } } }, async () => 'charged')
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  return `https://localhost:${(app.server.address() as { port: number }).port}`
}

async function charge (t: Teardown, url: string, as: { chain: string, key: string }): Promise<number> {
  const agent = await createMtlsAgent({ cert: as.chain, key: as.key, ca: pki.ca, server: 'spiffe://mycompany.com/production/payment-service' })
  t.teardown(() => agent.close())
  const response = await request(`${url}/charge`, { method: 'POST', dispatcher: agent })
  await response.body.text()
  return response.statusCode
}

t.test('end to end: a real mTLS request allowed and one denied, as the in-memory exporter sees them', async t => {
  const sdk = startOtelSdk(t)
  const undici = new UndiciInstrumentation({ requestHook: openTelemetryRequestHook })
  undici.enable()
  t.teardown(() => { undici.disable() })
  const url = await startPaymentService(t)

  t.equal(await charge(t, url, pki.orderService), 200)
  t.equal(await charge(t, url, pki.inventoryService), 403)

  const spans = sdk.spans()
  const serverSpans = spans.filter(span => span.name === 'request')
  const clientSpans = spans.filter(span => span.name === 'POST')
  t.equal(serverSpans.length, 2)
  t.equal(clientSpans.length, 2)
  const [allowed, denied] = serverSpans
  const orderCert = new X509Certificate(pki.orderService.certificate)
  t.match(allowed?.attributes, {
    'tls.protocol.version': '1.3',
    'tls.cipher': /^TLS_/,
    'tls.resumed': false,
    'tls.client.hash.sha256': orderCert.fingerprint256.replaceAll(':', ''),
    'tls.client.not_after': new Date(orderCert.validTo).toISOString(),
    'tls.client.subject': /order-service/,
    'mtls.peer.id': 'spiffe://mycompany.com/production/order-service',
    'mtls.peer.source': 'tls',
    'mtls.authz.decision': 'allow',
    'mtls.authz.rule': /payments:charge/
  })
  t.match(denied?.attributes, {
    'tls.client.hash.sha256': new X509Certificate(pki.inventoryService.certificate).fingerprint256.replaceAll(':', ''),
    'mtls.peer.id': 'spiffe://mycompany.com/production/inventory-service',
    'mtls.peer.source': 'tls',
    'mtls.authz.decision': 'deny',
    'mtls.authz.rule': /payments:charge/,
    'http.response.status_code': 403
  })
  for (const span of clientSpans) {
    t.match(span.attributes, {
      'mtls.server.id': 'spiffe://mycompany.com/production/payment-service',
      'tls.server.hash.sha256': new X509Certificate(pki.server.certificate).fingerprint256.replaceAll(':', ''),
      'tls.protocol.version': '1.3'
    })
  }
})

t.test('openTelemetry: false leaves the decision off the span; a wrong value fails ready()', async t => {
  const sdk = startOtelSdk(t)
  const url = await startPaymentService(t, { openTelemetry: false })
  t.equal(await charge(t, url, pki.orderService), 200)
  const span = sdk.spans().find(span => span.name === 'request')
  t.equal(span?.attributes['mtls.peer.id'], 'spiffe://mycompany.com/production/order-service', 'the identity plugin still reports')
  t.equal(span?.attributes['mtls.authz.decision'], undefined)

  const app = Fastify()
  t.teardown(() => app.close())
  app.register(fastifyMtlsIdentity)
  app.register(fastifyMtlsAuthz, { openTelemetry: 1 as unknown as boolean })
  await t.rejects(async () => await app.ready(), { code: 'FST_MTLS_AUTHZ_INVALID_OPTION', message: /openTelemetry must be true or false/ })
})
