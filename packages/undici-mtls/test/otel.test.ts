import { X509Certificate } from 'node:crypto'
import t from 'tap'
import { UndiciInstrumentation } from '@opentelemetry/instrumentation-undici'
import { createTestPki } from 'mtls-pki'
import { agentFor } from 'mtls-test-support'
import { startOtelSdk } from 'mtls-test-support/otel-sdk'
import { request } from 'undici'
import { createMtlsAgent, openTelemetryRequestHook } from '../src/index.js'
import { startServer } from './helpers.js'

const pki = await createTestPki()
const server = { cert: pki.server.chain, key: pki.server.key, ca: pki.ca }
const client = { cert: pki.orderService.chain, key: pki.orderService.key, ca: pki.ca }

t.test('with @opentelemetry/instrumentation-undici, the client span carries the server\'s identity and the TLS session', async t => {
  const sdk = startOtelSdk(t)
  const instrumentation = new UndiciInstrumentation({ requestHook: openTelemetryRequestHook })
  instrumentation.enable()
  t.teardown(() => { instrumentation.disable() })
  const { url } = await startServer(t, server)
  const agent = await createMtlsAgent({ ...client, server: 'spiffe://mycompany.com/production/payment-service' })
  t.teardown(() => agent.close())

  for (let i = 0; i < 2; i++) {
    const response = await request(`${url}/whoami`, { dispatcher: agent })
    t.equal(response.statusCode, 200)
    await response.body.text()
  }
  // A request through another dispatcher (no undici-mtls agent) is traced, and left alone.
  const plain = await request(`${url}/whoami`, { dispatcher: agentFor(t, pki, pki.orderService) })
  await plain.body.text()

  const spans = sdk.spans().filter(span => span.name === 'GET')
  t.equal(spans.length, 3, 'instrumentation-undici made one client span per request')
  const cert = new X509Certificate(pki.server.certificate)
  for (const span of spans.slice(0, 2)) {
    t.match(span.attributes, {
      'mtls.server.id': 'spiffe://mycompany.com/production/payment-service',
      'tls.protocol.name': 'tls',
      'tls.protocol.version': '1.3',
      'tls.cipher': /^TLS_[A-Z0-9_]+$/,
      'tls.server.hash.sha256': cert.fingerprint256.replaceAll(':', ''),
      'tls.server.not_after': new Date(cert.validTo).toISOString(),
      'tls.server.subject': 'CN=localhost'
    })
  }
  // Node 24 names the group a connection agreed (X25519MLKEM768 by default); Node 22 names only classical ones.
  const named = Number(process.versions.node.split('.')[0]) >= 24
  t.equal(spans[0]?.attributes['mtls.key_exchange.group'], named ? 'X25519MLKEM768' : undefined, 'the key-exchange group agreed, where Node names it')
  t.equal(spans[0]?.attributes['tls.resumed'], false, 'the first connection is a full handshake')
  t.equal(typeof spans[1]?.attributes['tls.resumed'], 'boolean', 'a later one may resume: its identity is the one its session was verified with')
  t.equal(spans[2]?.attributes['mtls.server.id'], undefined, 'another dispatcher\'s connection is not ours to describe')
  t.equal(spans[2]?.attributes['tls.cipher'], undefined)
})

t.test('a span that does not record is left alone', async t => {
  let set = 0
  openTelemetryRequestHook({ isRecording: () => false, setAttributes: () => { set++ } }, {})
  t.equal(set, 0)
})
