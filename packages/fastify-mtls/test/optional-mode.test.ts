import t from 'tap'
import { createTestPki } from 'mtls-pki'
import { attempt, clientOf, startServer } from './helpers.js'

const pki = await createTestPki()

t.test('optional mode: connections without a verified certificate reach the routes, which can tell', async t => {
  const { app, port } = await startServer(t, { cert: pki.server.chain, key: pki.server.key, ca: pki.ca, mode: 'optional' })
  const none = await attempt(port, clientOf(pki))
  t.equal(none.status, 200, 'a client without a certificate is served')
  t.same(JSON.parse(none.body), { authorized: false, peer: null })
  const foreign = await attempt(port, clientOf(pki, pki.otherCa))
  t.equal(foreign.status, 200)
  t.match(JSON.parse(foreign.body), { authorized: false }, 'a certificate that does not verify is not authorized')
  const caLeaf = await attempt(port, clientOf(pki, pki.caAsLeaf))
  t.equal(caLeaf.status, 200, 'in optional mode a CA:TRUE leaf is left to the routes and the identity plugin')
  const good = await attempt(port, clientOf(pki, pki.orderService))
  t.match(JSON.parse(good.body), { authorized: true })
  t.match(app.mtls.stats(), { handshakes: 4, unverified: 2 })
  t.equal(app.mtls.status().mode, 'optional')
})
