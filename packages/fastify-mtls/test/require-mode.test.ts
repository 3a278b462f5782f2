import t from 'tap'
import { createTestPki } from 'mtls-pki'
import { FAILURE_REASONS } from '../src/index.js'
import { attempt, clientOf, sessionFrom, startServer } from './helpers.js'

const pki = await createTestPki()

t.test('require mode: a valid client is served; each bad one is refused and counted under its own reason', async t => {
  const { app, port } = await startServer(t, { cert: pki.server.chain, key: pki.server.key, ca: pki.ca, crl: [...pki.crl] })

  const good = await attempt(port, clientOf(pki, pki.orderService))
  t.equal(good.status, 200)
  t.match(JSON.parse(good.body), { authorized: true, peer: 'URI:spiffe://mycompany.com/production/order-service' })
  t.equal(good.serverFingerprint, pki.server.fingerprint256)

  const refused: Array<[string, ReturnType<typeof clientOf>, string]> = [
    ['no certificate', clientOf(pki), 'no_certificate'],
    ['another CA', clientOf(pki, pki.otherCa), 'unknown_ca'],
    ['expired', clientOf(pki, pki.expired), 'expired'],
    ['not yet valid', clientOf(pki, pki.notYetValid), 'not_yet_valid'],
    ['a CA certificate as leaf', clientOf(pki, pki.caAsLeaf), 'ca_as_leaf'],
    ['a server-only certificate', clientOf(pki, pki.serverOnly), 'unsuitable_purpose'],
    ['revoked', clientOf(pki, pki.revoked), 'revoked']
  ]
  for (const [what, client, reason] of refused) {
    const before = app.mtls.stats()
    const result = await attempt(port, client)
    t.equal(result.status, null, `${what}: no HTTP answer`)
    const after = app.mtls.stats()
    t.equal(after.failures[reason as keyof typeof after.failures], before.failures[reason as keyof typeof before.failures] + 1, `${what}: counted as ${reason}`)
    t.equal(after.handshakes, before.handshakes, `${what}: not counted as a handshake`)
  }
  const noCertificate = await attempt(port, clientOf(pki))
  t.equal(noCertificate.errorCode, 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED', 'a client without a certificate hears why')

  const stats = app.mtls.stats()
  t.equal(stats.handshakes, 1)
  t.equal(stats.unverified, 0)
  t.same(stats.failures, { ...Object.fromEntries(FAILURE_REASONS.map(r => [r, r === 'no_certificate' ? 2 : 0])), unknown_ca: 1, expired: 1, not_yet_valid: 1, ca_as_leaf: 1, unsuitable_purpose: 1, revoked: 1 }, 'the counters match what the test did, exactly')
})

t.test('a TLS 1.2 client is refused by default and counted as protocol', async t => {
  const { app, port } = await startServer(t, { cert: pki.server.chain, key: pki.server.key, ca: pki.ca })
  const result = await attempt(port, clientOf(pki, pki.orderService), { maxVersion: 'TLSv1.2' })
  t.equal(result.status, null)
  t.equal(result.errorCode, 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION')
  t.equal(app.mtls.stats().failures.protocol, 1)
})

t.test('TLS 1.2 on explicit opt-in', async t => {
  const { port } = await startServer(t, { cert: pki.server.chain, key: pki.server.key, ca: pki.ca, minVersion: 'TLSv1.2' })
  const result = await attempt(port, clientOf(pki, pki.orderService), { maxVersion: 'TLSv1.2' })
  t.equal(result.status, 200)
})

t.test('resumed sessions are counted', async t => {
  const { app, port } = await startServer(t, { cert: pki.server.chain, key: pki.server.key, ca: pki.ca })
  const session = await sessionFrom(port, pki.orderService, pki.ca)
  const second = await attempt(port, clientOf(pki, pki.orderService), { session })
  t.equal(second.status, 200)
  t.equal(second.reused, true)
  t.match(app.mtls.stats(), { handshakes: 2, resumed: 1 })
})
