// The README's Envoy configuration (forward_client_cert_details: SANITIZE_SET, set_current_client_cert_details:
// { cert: true, uri: true }), checked against the header Envoy writes for it: Envoy is no Debian package, so the
// end-to-end suite (examples/proxies) cannot run it, and this file builds its header byte for byte instead.
import t from 'tap'
import { createTestPki } from 'mtls-pki'
import { agentFor, envoyElement, envoyUrlEncode, startServer, who } from './helpers.js'

const pki = await createTestPki()
const envoyId = 'spiffe://mycompany.com/infra/envoy'
const envoy = await pki.intermediate.issue({ usage: 'client', spiffeId: envoyId })
const orderServiceId = 'spiffe://mycompany.com/production/order-service'
const inventoryServiceId = 'spiffe://mycompany.com/production/inventory-service'

t.test('the header builder writes what Envoy writes', async t => {
  t.equal(envoyUrlEncode('==abc\nde='), '%3D%3Dabc%0Ade%3D', 'Envoy\'s own test vector for the encoded Cert')
  const element = envoyElement([envoyId], pki.orderService, [orderServiceId])
  t.match(element, /^By=spiffe:\/\/mycompany\.com\/infra\/envoy;Hash=[0-9a-f]{64};Cert="-----BEGIN%20CERTIFICATE-----%0A[A-Za-z0-9%]+%0A-----END%20CERTIFICATE-----%0A";URI=spiffe:\/\/mycompany\.com\/production\/order-service$/, 'By, Hash, Cert, URI in Envoy\'s order and quoting')
  t.equal(element.split(';')[1], `Hash=${pki.orderService.fingerprint256.replaceAll(':', '').toLowerCase()}`, 'Hash is the certificate\'s SHA-256 fingerprint')
})

t.test('Envoy with SANITIZE_SET and cert + uri: the client behind it is the peer', async t => {
  const { url } = await startServer(t, pki, { trustedProxies: { identities: [envoyId] }, forwarded: 'envoy' })
  const header = envoyElement([envoyId], pki.orderService, [orderServiceId])
  const { status, body } = await who(url, agentFor(t, pki, envoy), ['x-forwarded-client-cert', header])
  t.equal(status, 200)
  t.same(body, { id: orderServiceId, source: 'forwarded', error: null })
})

t.test('a client\'s own XFCC left in front of Envoy\'s element (not sanitized) does not decide: the last element does', async t => {
  const { url } = await startServer(t, pki, { trustedProxies: { identities: [envoyId] }, forwarded: 'envoy' })
  const viaEnvoy = agentFor(t, pki, envoy)
  // What APPEND_FORWARD makes of a client's forged header: its element first, Envoy's appended after a comma. The
  // forged element holds a genuine, verifiable certificate, so only the rule "the last element counts" refuses it.
  const forged = envoyElement(['spiffe://mycompany.com/somewhere/else'], pki.inventoryService, [inventoryServiceId])
  const appended = `${forged},${envoyElement([envoyId], pki.orderService, [orderServiceId])}`
  const { body } = await who(url, viaEnvoy, ['x-forwarded-client-cert', appended])
  t.same(body, { id: orderServiceId, source: 'forwarded', error: null }, 'the element Envoy appended (the last) names the peer')
  const { body: forgedAlone } = await who(url, viaEnvoy, ['x-forwarded-client-cert', forged])
  t.same(forgedAlone, { id: inventoryServiceId, source: 'forwarded', error: null }, 'the forged element alone would have named another peer')
})

t.test('an Envoy whose own certificate has two URI SANs writes two By pairs: the element is still read', async t => {
  // Envoy's documentation: the proxy's certificate "may contain multiple URI type Subject Alternative Names, each will be a
  // separate key-value pair". By names the listener's certificate; Envoy connects upstream with the cluster's (its SVID).
  // Before By could repeat, every request behind such an Envoy was ERR_MTLS_FORWARDED_HEADER_MALFORMED.
  const { url } = await startServer(t, pki, { trustedProxies: { identities: [envoyId] }, forwarded: 'envoy' })
  const header = envoyElement([envoyId, 'http://envoy.mycompany.com'], pki.orderService, [orderServiceId])
  t.match(header, /^By=spiffe:[^;]+;By=http:\/\/envoy\.mycompany\.com;Hash=/)
  t.same((await who(url, agentFor(t, pki, envoy), ['x-forwarded-client-cert', header])).body, { id: orderServiceId, source: 'forwarded', error: null })
})
