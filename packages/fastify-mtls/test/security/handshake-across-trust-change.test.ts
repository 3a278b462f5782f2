// A handshake that begins under one trust and ends under the next (a client slow to send its second flight, or
// simply a reload landing mid-handshake) is verified again against the trust in force. Found under load: a
// resumed session of a legitimate client, begun just before the server moved to a new intermediate of the same
// root, was refused (its chain was not on record, and the new trust no longer knew the old intermediate). The
// intermediates of the trust it was accepted under complete it; a certificate of a withdrawn root stays refused.
import t from 'tap'
import { createRootCa, createTestPki } from 'mtls-pki'
import type { FastifyInstance } from 'fastify'
import { PemFeed, stallingRelay, until } from 'mtls-test-support'
import { attempt, sessionFrom, startServer } from '../helpers.js'

const pki = await createTestPki()
const PAYMENT = 'spiffe://mycompany.com/production/payment-service'

// Resolves once the server has read a ClientHello and sent its flight (the handshake's keys are logged then): the
// handshake has begun under the trust in force. Listened to before the client connects.
async function handshakeBegun (app: FastifyInstance): Promise<void> {
  await new Promise(resolve => app.server.once('keylog', resolve))
}

t.test('a resumed session begun before the server moved to a new intermediate of the same root is accepted', async t => {
  const next = await pki.root.createIntermediate({ commonName: 'next intermediate' })
  const moved = await next.issue({ spiffeId: PAYMENT, dnsNames: ['localhost'], usage: 'server' })
  const feed = new PemFeed({ cert: pki.server.chain, key: pki.server.key, trustDomains: { 'mycompany.com': pki.ca } })
  const { app, port } = await startServer(t, { x509Source: feed })
  const session = await sessionFrom(port, pki.orderService, pki.ca)
  const relay = await stallingRelay(t, port, 'client')
  const begun = handshakeBegun(app)
  const pending = attempt(relay.port, { ...pki.orderService, ca: pki.ca }, { session })
  await begun
  feed.push({ cert: moved.chain, key: moved.key, trustDomains: { 'mycompany.com': pki.ca } })
  await until(() => app.mtls.status().certificate.fingerprint256 === moved.fingerprint256, 'the new intermediate in force')
  relay.release()
  const result = await pending
  t.equal(result.reused, true, 'the session was resumed')
  t.equal(result.status, 200, 'and accepted')
  t.equal(app.mtls.stats().failures.unknown_ca, 0)
})

t.test('a handshake begun before its root was withdrawn is refused when it ends', async t => {
  const renewed = await createRootCa({ commonName: 'renewed root' })
  const renewedServer = await (await renewed.createIntermediate()).issue({ spiffeId: PAYMENT, dnsNames: ['localhost'], usage: 'server' })
  const feed = new PemFeed({ cert: pki.server.chain, key: pki.server.key, trustDomains: { 'mycompany.com': [pki.ca, renewed.certificate] } })
  const { app, port } = await startServer(t, { x509Source: feed })
  const relay = await stallingRelay(t, port, 'client')
  // The client trusts both roots: only the server's verdict on the client decides.
  const begun = handshakeBegun(app)
  const pending = attempt(relay.port, { ...pki.orderService, ca: `${pki.ca}${renewed.certificate}` })
  await begun
  feed.push({ cert: renewedServer.chain, key: renewedServer.key, trustDomains: { 'mycompany.com': renewed.certificate } })
  await until(() => app.mtls.status().authorities.length === 1, 'the old root withdrawn')
  relay.release()
  t.equal((await pending).status, null, 'refused')
  t.equal(app.mtls.stats().failures.unknown_ca, 1, 'counted')
})
