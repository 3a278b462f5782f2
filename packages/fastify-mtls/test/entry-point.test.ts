// Importing fastify-mtls loads no OCSP machinery (ASN.1 schemas, an HTTP client) and no OpenTelemetry: those come
// when a server turns ocspStapling on, or when @opentelemetry/api is installed and the plugin registers.
import t from 'tap'
import { recordThirdPartyImports } from 'mtls-test-support'

const loaded = recordThirdPartyImports()

t.test('fastify-mtls loads fastify-plugin and @fastify/error, and nothing of OCSP or OpenTelemetry', async t => {
  await import('../src/index.js')
  const packages = [...new Set(loaded.map(url => url.startsWith('@') ? url.split('/').slice(0, 2).join('/') : url.split('/')[0]))].sort()
  t.same(packages, ['@fastify/error', 'fastify-plugin'])
})
