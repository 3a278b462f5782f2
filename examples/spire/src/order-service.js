// order-service with its identity from SPIRE: charges payment-service every CHARGE_INTERVAL_MS, two ways.
// - Over mTLS (PAYMENTS_URL), through an undici-mtls agent whose client SVID and trust bundles come from the SPIFFE
//   Workload API. The server must be spiffe://mycompany.com/production/payment-service: SPIRE's SVIDs name no host
//   (a SPIFFE ID URI SAN only), so the hostname check is off and the SPIFFE ID is checked instead, before any byte
//   of a request is sent.
// - Over the JWT-SVID hop (PAYMENTS_JWT_URL), a TLS hop that cannot carry a client certificate: the client presents
//   none, verifies payment-service the same way, and proves who it is with a JWT-SVID for payment-service's audience
//   (undici-mtls's jwtSvidInterceptor; tokens from a JwtSource, cached and renewed at half their lifetime).
//
//   SPIFFE_ENDPOINT_SOCKET=unix:///tmp/spire-agent/public/api.sock PAYMENTS_URL=https://payment-service:8443 \
//     PAYMENTS_JWT_URL=https://payment-service:8444 node src/order-service.js
import { request } from 'undici'
import { createJWTSource, createX509Source } from 'spiffe-workload-api'
import { createMtlsAgent, jwtSvidInterceptor } from 'undici-mtls'
import { routeRules } from '../../payment-mesh/src/policy.js'
import { JWT_AUDIENCE, ORDER_SERVICE_ID, PAYMENT_SERVICE_ID, TRUST_DOMAIN } from './identities.js'
import { serverAuthAgent } from './server-auth-agent.js'
import { closeOnSignals } from './shutdown.js'
import { startOrExit, workloadApiTimeoutMs } from './startup.js'
import { log, logJwtUpdates, logUpdates } from './svid-log.js'

const paymentsUrl = process.env.PAYMENTS_URL ?? 'https://127.0.0.1:8443'
const paymentsJwtUrl = process.env.PAYMENTS_JWT_URL ?? 'https://127.0.0.1:8444'
const intervalMs = Number(process.env.CHARGE_INTERVAL_MS ?? 5000)

let source = null
let jwtSource = null
let agent = null
let jwtAgent = null
let timer = null
const stopping = closeOnSignals('order-service', async () => {
  clearTimeout(timer)
  // Closing an agent does not close the source it was given: close them all.
  try {
    await Promise.all([agent?.close(), jwtAgent?.close()])
  } finally {
    source?.close()
    jwtSource?.close()
  }
})

let jwtHop = null
await startOrExit('order-service', async () => {
  source = await createX509Source({ pick: ORDER_SERVICE_ID, timeoutMs: workloadApiTimeoutMs })
  agent = await createMtlsAgent({ x509Source: source, verifyHostname: false, server: PAYMENT_SERVICE_ID })
  jwtSource = await createJWTSource({ timeoutMs: workloadApiTimeoutMs })
  jwtAgent = serverAuthAgent({ source, trustDomain: TRUST_DOMAIN, serverId: PAYMENT_SERVICE_ID })
  // `subject` is the JWT counterpart of `pick`: only our own SPIFFE ID's token, whatever else the agent could issue.
  const ownTokens = { fetchJWTSVID: ({ audience }) => jwtSource.fetchJWTSVID({ audience, subject: ORDER_SERVICE_ID }) }
  jwtHop = jwtAgent.compose(jwtSvidInterceptor({ source: ownTokens, audience: JWT_AUDIENCE }))
})
logUpdates('order-service', source, () => agent.status().x509Source)
logJwtUpdates('order-service', jwtSource)

let orders = 0
/** One charge through `dispatcher`; `via` names the path in the log line. */
async function charge (orderId, url, dispatcher, via) {
  try {
    const response = await request(new URL(routeRules.charge.url, url), {
      method: 'POST',
      dispatcher,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ orderId, amount: 1250, currency: 'EUR' })
    })
    const body = await response.body.json()
    // Reaching here means the server's SVID verified against the bundle and named PAYMENT_SERVICE_ID.
    log(`order-service: ${orderId}${via}: ${response.statusCode} from ${PAYMENT_SERVICE_ID}` +
      (response.statusCode === 200
        ? ` (payment ${body.id}, payment-service saw us as ${body.requestedBy}${via === '' ? '' : ` from a ${body.identitySource}`})`
        : ` ${JSON.stringify(body)}`))
  } catch (err) {
    log(`order-service: ${orderId}${via} failed: ${err.code ?? err.name}: ${err.message}`)
  }
}

async function loop () {
  orders += 1
  await charge(`order-${orders}`, paymentsUrl, agent, '')
  await charge(`order-${orders}-jwt`, paymentsJwtUrl, jwtHop, ' over the JWT-SVID hop')
  if (!stopping()) timer = setTimeout(loop, intervalMs)
}
log(`order-service: charging ${paymentsUrl} (mTLS) and ${paymentsJwtUrl} (JWT-SVID hop) every ${intervalMs} ms as ${source.current.svid.spiffeId}`)
await loop()
