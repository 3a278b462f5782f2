// order-service: calls payment-service through undici-mtls, which checks that the server really is
// spiffe://mycompany.com/production/payment-service before sending a byte.
import { request } from 'undici'
import { createMtlsAgent } from 'undici-mtls'

/** `server`: who the server at `paymentsUrl` must be; undici-mtls refuses anyone else with ERR_MTLS_SERVER_UNAUTHORIZED. */
export async function createPaymentsClient ({ certFile, keyFile, caFile, paymentsUrl, server = 'spiffe://mycompany.com/production/payment-service' }) {
  const dispatcher = await createMtlsAgent({ certFile, keyFile, caFile, server })
  return {
    dispatcher,
    async charge (orderId, amount, currency = 'EUR') {
      const response = await request(`${paymentsUrl}/api/payments/charge`, {
        method: 'POST',
        dispatcher,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ orderId, amount, currency })
      })
      return { status: response.statusCode, body: await response.body.json() }
    },
    close: () => dispatcher.close()
  }
}
