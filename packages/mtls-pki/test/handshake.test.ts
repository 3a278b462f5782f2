import { X509Certificate } from 'node:crypto'
import t from 'tap'
import { createTestPki, type IssuedCertificate } from '../src/index.js'
import { connectOnce } from './tls-harness.js'

const pki = await createTestPki()

// The server asks for a certificate but does not reject, so the test can read OpenSSL's verdict on it.
const inspectingServer = { key: pki.server.key, cert: pki.server.chain, ca: pki.ca, requestCert: true, rejectUnauthorized: false }
const asClient = (cert: IssuedCertificate) => ({ ca: pki.ca, cert: cert.chain, key: cert.key })

t.test('the service clients are verified by the server and verify it in turn', async t => {
  for (const name of ['orderService', 'inventoryService'] as const) {
    const { server, client } = await connectOnce({ ...inspectingServer, crl: [...pki.crl] }, asClient(pki[name]))
    t.equal(server?.authorized, true, `${name}: the server verified the client`)
    t.equal(server?.peerSerial, pki[name].serialNumber, `${name}: the server saw this certificate`)
    t.equal(client.authorized, true, `${name}: the client verified the server`)
    t.equal(client.peerSerial, pki.server.serialNumber)
    t.equal(client.received, 'hello\n')
  }
})

t.test('the server certificate is valid for localhost, 127.0.0.1 and ::1', async t => {
  for (const host of ['127.0.0.1', '::1']) {
    const { client } = await connectOnce(inspectingServer, { ...asClient(pki.orderService), host, servername: '' })
    t.equal(client.authorized, true, `connected to ${host} by address`)
    t.equal(client.received, 'hello\n')
  }
  const { client } = await connectOnce(inspectingServer, { ...asClient(pki.orderService), servername: 'localhost' })
  t.equal(client.authorized, true, 'connected to localhost by name')
})

t.test('a client certificate is refused for its own reason', async t => {
  const cases: Array<[keyof typeof pki, string]> = [
    ['expired', 'CERT_HAS_EXPIRED'],
    ['notYetValid', 'CERT_NOT_YET_VALID'],
    ['otherCa', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY'],
    ['serverOnly', 'INVALID_PURPOSE']
  ]
  for (const [name, reason] of cases) {
    const { server } = await connectOnce(inspectingServer, asClient(pki[name] as IssuedCertificate))
    t.equal(server?.authorized, false, `${name} is not authorized`)
    t.equal(server?.authorizationError, reason, `${name} fails with ${reason}`)
  }
})

t.test('the revoked certificate is refused once the CRL is loaded, and only then', async t => {
  const withoutCrl = await connectOnce(inspectingServer, asClient(pki.revoked))
  t.equal(withoutCrl.server?.authorized, true, 'without the CRL OpenSSL cannot know')
  const withCrl = await connectOnce({ ...inspectingServer, crl: [...pki.crl] }, asClient(pki.revoked))
  t.equal(withCrl.server?.authorizationError, 'CERT_REVOKED')
  const other = await connectOnce({ ...inspectingServer, crl: [...pki.crl] }, asClient(pki.orderService))
  t.equal(other.server?.authorized, true, 'the CRL revokes nothing else')
})

t.test('a server that requires certificates refuses a bad one at the handshake', async t => {
  const { server, client } = await connectOnce({ ...inspectingServer, rejectUnauthorized: true }, asClient(pki.expired))
  t.equal(server, null, 'the connection never reached the application')
  t.equal(client.received, '', 'the client got nothing from the server')
  const noCertificate = await connectOnce({ ...inspectingServer, rejectUnauthorized: true }, { ca: pki.ca })
  t.equal(noCertificate.server, null)
  t.equal(noCertificate.client.errorCode, 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED')
})

t.test('a client certificate is not accepted as a server certificate', async t => {
  const { client } = await connectOnce({ key: pki.orderService.key, cert: pki.orderService.chain }, { ca: pki.ca, servername: '' })
  t.equal(client.authorized, false)
  t.equal(client.errorCode, 'INVALID_PURPOSE')
})

t.test('a client from another CA does not trust our server either', async t => {
  const { client } = await connectOnce(inspectingServer, { ca: pki.otherCaAuthority.root.certificate })
  t.equal(client.errorCode, 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY')
})

t.test('OpenSSL accepts a CA:TRUE leaf, so refusing it is left to mtls-core', async t => {
  const { server } = await connectOnce(inspectingServer, asClient(pki.caAsLeaf))
  t.equal(server?.authorized, true)
  t.equal(new X509Certificate(pki.caAsLeaf.certificate).ca, true)
})

t.test('the SAN oddities reach the server intact', async t => {
  const expected: Array<[keyof typeof pki, string | undefined]> = [
    ['twoUriSans', 'URI:spiffe://mycompany.com/production/order-service, URI:spiffe://mycompany.com/production/payment-service'],
    ['invalidSpiffeId', 'URI:spiffe://mycompany.com/production/../payment-service'],
    ['noSan', undefined],
    ['sanInjection', 'DNS:"evil.example\\u002c URI:spiffe://mycompany.com/production/admin"']
  ]
  for (const [name, subjectAltName] of expected) {
    const issued = pki[name] as IssuedCertificate
    const { server } = await connectOnce(inspectingServer, asClient(issued))
    t.equal(server?.authorized, true, `${name}: OpenSSL does not look at SPIFFE rules`)
    t.equal(new X509Certificate(issued.certificate).subjectAltName, subjectAltName, `${name}: SANs as issued`)
  }
  t.equal(new X509Certificate(pki.noSan.certificate).subject, 'CN=no-san-service')
})

t.test('every key type makes a working mTLS hierarchy', async t => {
  for (const keyType of ['p384', 'ed25519', 'rsa2048'] as const) {
    const set = await createTestPki({ keyType, trustDomain: 'example.org' })
    const { server, client } = await connectOnce(
      { key: set.server.key, cert: set.server.chain, ca: set.ca, requestCert: true, rejectUnauthorized: false },
      { ca: set.ca, cert: set.orderService.chain, key: set.orderService.key }
    )
    t.equal(server?.authorized, true, `${keyType}: client verified`)
    t.equal(client.authorized, true, `${keyType}: server verified`)
    t.equal(set.orderService.keyType, keyType)
    t.match(new X509Certificate(set.orderService.certificate).subjectAltName, 'spiffe://example.org/production/order-service')
  }
})
