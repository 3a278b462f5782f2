// The mark of TLS options built from trust kept by trust domain, on a real server: fastify-mtls-identity refuses to
// run on such a server where it cannot see fastify-mtls.
import https from 'node:https'
import t from 'tap'
import { createTestPki } from 'mtls-pki'
import { isTrustDomainTls, markTrustDomainTls } from '../src/internal.js'

const pki = await createTestPki()

t.test('a TLS server started with options marked as trust kept by trust domain is told from another', async t => {
  const marked = { cert: pki.server.chain, key: pki.server.key, ca: [pki.ca] }
  markTrustDomainTls(marked)
  markTrustDomainTls({}) // no ca: nothing to mark
  const scoped = https.createServer(marked)
  const plain = https.createServer({ cert: pki.server.chain, key: pki.server.key, ca: [pki.ca] })
  t.equal(isTrustDomainTls(scoped), true)
  t.equal(isTrustDomainTls(plain), false, 'the same CAs in another list')
  t.equal(isTrustDomainTls(https.createServer({ cert: pki.server.chain, key: pki.server.key })), false, 'no ca at all')
  scoped.setSecureContext({ cert: pki.server.chain, key: pki.server.key, ca: [pki.ca] })
  t.equal(isTrustDomainTls(scoped), false, 'a context set since, from unmarked options, is what counts')
})
