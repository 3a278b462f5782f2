// What importing mtls-core loads: its main and internal entry points bring no third-party module (each plugin and
// the client import them, so their cost is every user's start-up); OCSP's ASN.1 schemas and HTTP client come with
// `mtls-core/ocsp` only, and OpenTelemetry's API only when a plugin asks for it.
import t from 'tap'
import { recordThirdPartyImports } from 'mtls-test-support'

const loaded = recordThirdPartyImports()

t.test('mtls-core and mtls-core/internal load no third-party module; mtls-core/ocsp loads the ASN.1 schemas and undici', async t => {
  await import('../src/index.js')
  await import('../src/internal.js')
  t.same(loaded, [], 'nothing from node_modules')
  await import('../src/ocsp-api.js')
  t.ok(loaded.some(url => url.startsWith('@peculiar/asn1-ocsp/')), 'the OCSP schemas, with mtls-core/ocsp')
  t.ok(loaded.some(url => url.startsWith('undici/')), 'undici, with mtls-core/ocsp')
})
