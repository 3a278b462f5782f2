// The JWT-SVID hop: payment-service's second listener, TLS with no client certificate, where the caller is who its
// JWT-SVID says. order-service's charges through it are authorized as its charges over mTLS are, by the same policy;
// the test's own client (no certificate either, the server checked by its SVID) sends what order-service would not:
// no token, a token for another audience, a token of a SPIFFE ID without the role.
import { createServer } from 'node:https'
import t from 'tap'
import { createTestPki } from 'mtls-pki'
import { request } from 'undici'
import { createX509Source, WorkloadApiClient } from 'spiffe-workload-api'
import { routeRules } from '../../payment-mesh/src/policy.js'
import { JWT_AUDIENCE, ORDER_SERVICE_ID, PAYMENT_SERVICE_ID, TRUST_DOMAIN } from '../src/identities.js'
import { serverAuthAgent } from '../src/server-auth-agent.js'
import { start } from './processes.js'
import { startTestWorkloadApi } from './workload-api.js'

// In the payment-mesh policy this ID holds payments:read, not payments:charge.
const INVENTORY_SERVICE_ID = 'spiffe://mycompany.com/production/inventory-service'

t.test('the JWT-SVID hop: order-service is authorized by its JWT-SVID; no token, another audience, another ID are refused', async t => {
  const { api } = await startTestWorkloadApi(t, { jwtIds: [PAYMENT_SERVICE_ID, ORDER_SERVICE_ID, INVENTORY_SERVICE_ID] })

  const payment = start(t, 'payment-service.js', { env: { SPIFFE_ENDPOINT_SOCKET: api.endpoint, HOST: '127.0.0.1', PORT: '0', JWT_PORT: '0' } })
  // Both lines come at once: wait for them together (a wait sees only the lines after it starts).
  const [[, port], [, jwtPort]] = await Promise.all([
    payment.waitFor(/payment-service: listening on https:\/\/127\.0\.0\.1:(\d+) as /, 'payment-service to listen'),
    payment.waitFor(/payment-service: JWT-SVID hop listening on https:\/\/127\.0\.0\.1:(\d+) /, 'the JWT-SVID hop to listen')
  ])
  const jwtUrl = `https://127.0.0.1:${jwtPort}`

  const order = start(t, 'order-service.js', {
    env: { SPIFFE_ENDPOINT_SOCKET: api.endpoint, PAYMENTS_URL: `https://127.0.0.1:${port}`, PAYMENTS_JWT_URL: jwtUrl, CHARGE_INTERVAL_MS: '100' }
  })
  const [[, mtlsSeenAs], [, jwtSeenAs, jwtSource]] = await Promise.all([
    order.waitFor(/order-service: order-\d+: 200 from \S+ \(payment \d+, payment-service saw us as (\S+)\)$/, 'a charge over mTLS'),
    order.waitFor(/order-service: order-\d+-jwt over the JWT-SVID hop: 200 from \S+ \(payment \d+, payment-service saw us as (\S+) from a (\S+)\)$/, 'a charge over the JWT-SVID hop')
  ])
  t.equal(jwtSeenAs, ORDER_SERVICE_ID, 'over the JWT-SVID hop, payment-service saw order-service\'s SPIFFE ID')
  t.equal(jwtSource, 'jwt-svid', 'from its JWT-SVID (peerIdentity.source)')
  t.equal(mtlsSeenAs, ORDER_SERVICE_ID, 'the mTLS path still works, beside the hop')
  t.notOk(order.lines.some(line => / failed: /.test(line)), 'no charge failed')

  // A client of the hop as order-service's: the server's chain checked against the bundle and its SPIFFE ID, no
  // certificate presented; tokens from the Workload API for the subject and audience each case needs.
  const x509Source = await createX509Source({ endpoint: api.endpoint, pick: ORDER_SERVICE_ID })
  t.teardown(() => x509Source.close())
  const client = new WorkloadApiClient({ endpoint: api.endpoint })
  t.teardown(() => client.close())
  const agent = serverAuthAgent({ source: x509Source, trustDomain: TRUST_DOMAIN, serverId: PAYMENT_SERVICE_ID })
  t.teardown(() => agent.close())
  const tokenOf = async (subject, audience) => (await client.fetchJWTSVID({ audience, subject })).token
  const charge = async authorization => {
    const response = await request(new URL(routeRules.charge.url, jwtUrl), {
      method: 'POST',
      dispatcher: agent,
      headers: { 'content-type': 'application/json', ...(authorization === undefined ? {} : { authorization }) },
      body: JSON.stringify({ orderId: 'order-test', amount: 100, currency: 'EUR' })
    })
    return { statusCode: response.statusCode, body: await response.body.json() }
  }

  const accepted = await charge(`Bearer ${await tokenOf(ORDER_SERVICE_ID, JWT_AUDIENCE)}`)
  t.equal(accepted.statusCode, 200, 'order-service\'s token for payment-service\'s audience: 200')
  t.equal(accepted.body.requestedBy, ORDER_SERVICE_ID, 'seen as order-service')
  t.equal(accepted.body.identitySource, 'jwt-svid', 'from the JWT-SVID')

  const none = await charge(undefined)
  t.equal(none.statusCode, 401, 'no token: 401')
  t.equal(none.body.code, 'FST_MTLS_AUTHZ_PEER_REQUIRED')
  t.match(none.body.message, 'ERR_MTLS_JWT_SVID_MISSING', 'neither a certificate nor a token')

  const otherAudience = await charge(`Bearer ${await tokenOf(ORDER_SERVICE_ID, INVENTORY_SERVICE_ID)}`)
  t.equal(otherAudience.statusCode, 401, 'order-service\'s token for another audience: 401')
  t.equal(otherAudience.body.code, 'FST_MTLS_AUTHZ_PEER_REQUIRED')
  t.match(otherAudience.body.message, 'ERR_MTLS_JWT_AUDIENCE', 'refused for its audience')

  const withoutRole = await charge(`Bearer ${await tokenOf(INVENTORY_SERVICE_ID, JWT_AUDIENCE)}`)
  t.equal(withoutRole.statusCode, 403, 'a valid token of a SPIFFE ID without payments:charge: 403')
  t.equal(withoutRole.body.code, 'FST_MTLS_AUTHZ_FORBIDDEN')

  for (const service of [order, payment]) {
    service.child.kill('SIGTERM')
    const { code } = await service.exit('exit on SIGTERM')
    t.equal(code, 0, 'stopped cleanly on SIGTERM')
  }
})

t.test('order-service\'s client for the hop sends no request to a server that is not payment-service', async t => {
  const { api, pki } = await startTestWorkloadApi(t)
  const other = await createTestPki()
  const x509Source = await createX509Source({ endpoint: api.endpoint, pick: ORDER_SERVICE_ID })
  t.teardown(() => x509Source.close())
  const agent = serverAuthAgent({ source: x509Source, trustDomain: TRUST_DOMAIN, serverId: PAYMENT_SERVICE_ID })
  t.teardown(() => agent.close())

  const servers = [
    // Its chain verifies against the bundle; its SPIFFE ID is the wrong one.
    ['another SPIFFE ID of the trust domain', await pki.intermediate.issue({ spiffeId: INVENTORY_SERVICE_ID, usage: 'both' }),
      { message: `is ${INVENTORY_SERVICE_ID}, not ${PAYMENT_SERVICE_ID}` }],
    // The right SPIFFE ID, from a CA the bundle does not hold: OpenSSL refuses the chain.
    ['payment-service\'s SPIFFE ID from another CA', await other.intermediate.issue({ spiffeId: PAYMENT_SERVICE_ID, usage: 'both' }),
      { code: /^(UNABLE_TO_GET_ISSUER_CERT_LOCALLY|UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED_CERT_IN_CHAIN)$/ }]
  ]
  for (const [what, issued, refusal] of servers) {
    let requests = 0
    const server = createServer({ cert: issued.chain, key: issued.key }, (request, response) => { requests += 1; response.end('{}') })
    await new Promise(resolve => server.listen(0, '127.0.0.1', resolve))
    t.teardown(() => server.close())
    await t.rejects(request(`https://127.0.0.1:${server.address().port}/`, { dispatcher: agent }), refusal, what)
    t.equal(requests, 0, `${what}: no request reached it`)
  }
})
