// Importing undici-mtls loads undici and nothing of OCSP (mtls-core/ocsp's ASN.1 schemas): those load on the first
// connection whose server staples a response or may demand one, although ocsp is 'prefer' by default.
import t from 'tap'
import { recordThirdPartyImports } from 'mtls-test-support'

const loaded = recordThirdPartyImports()

t.test('undici-mtls loads undici alone', async t => {
  await import('../src/index.js')
  const packages = [...new Set(loaded.map(url => url.startsWith('@') ? url.split('/').slice(0, 2).join('/') : url.split('/')[0]))].sort()
  t.same(packages, ['undici'])
})
