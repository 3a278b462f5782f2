// order-service with its identity from SPIRE: charges payment-service every CHARGE_INTERVAL_MS through an
// undici-mtls agent whose client SVID and trust bundles come from the SPIFFE Workload API. The server must be
// spiffe://mycompany.com/production/payment-service: SPIRE's SVIDs name no host (a SPIFFE ID URI SAN only), so
// the hostname check is off and the SPIFFE ID is checked instead, before any byte of a request is sent.
//
//   SPIFFE_ENDPOINT_SOCKET=unix:///tmp/spire-agent/public/api.sock PAYMENTS_URL=https://payment-service:8443 node src/order-service.js
import { request } from 'undici'
import { createX509Source } from 'spiffe-workload-api'
import { createMtlsAgent } from 'undici-mtls'
import { routeRules } from '../../payment-mesh/src/policy.js'
import { ORDER_SERVICE_ID, PAYMENT_SERVICE_ID } from './identities.js'
import { closeOnSignals } from './shutdown.js'
import { startOrExit, workloadApiTimeoutMs } from './startup.js'
import { log, logUpdates } from './svid-log.js'

const paymentsUrl = process.env.PAYMENTS_URL ?? 'https://127.0.0.1:8443'
const intervalMs = Number(process.env.CHARGE_INTERVAL_MS ?? 5000)

let source = null
let agent = null
let timer = null
const stopping = closeOnSignals('order-service', async () => {
  clearTimeout(timer)
  // Closing the agent does not close the source it was given: close both.
  try {
    await agent?.close()
  } finally {
    source?.close()
  }
})

await startOrExit('order-service', async () => {
  source = await createX509Source({ pick: ORDER_SERVICE_ID, timeoutMs: workloadApiTimeoutMs })
  agent = await createMtlsAgent({ x509Source: source, verifyHostname: false, server: PAYMENT_SERVICE_ID })
})
logUpdates('order-service', source, () => agent.status().x509Source)

let orders = 0
async function charge () {
  orders += 1
  const orderId = `order-${orders}`
  try {
    const response = await request(new URL(routeRules.charge.url, paymentsUrl), {
      method: 'POST',
      dispatcher: agent,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ orderId, amount: 1250, currency: 'EUR' })
    })
    const body = await response.body.json()
    // Reaching here means undici-mtls verified the server's SVID against the bundle and found PAYMENT_SERVICE_ID.
    log(`order-service: ${orderId}: ${response.statusCode} from ${PAYMENT_SERVICE_ID}` +
      (response.statusCode === 200 ? ` (payment ${body.id}, payment-service saw us as ${body.requestedBy})` : ` ${JSON.stringify(body)}`))
  } catch (err) {
    log(`order-service: ${orderId} failed: ${err.code ?? err.name}: ${err.message}`)
  }
}

async function loop () {
  await charge()
  if (!stopping()) timer = setTimeout(loop, intervalMs)
}
log(`order-service: charging ${paymentsUrl} every ${intervalMs} ms as ${source.current.svid.spiffeId}`)
await loop()
