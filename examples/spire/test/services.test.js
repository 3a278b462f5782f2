// The two services of this example, run as they are in the compose file, against the test Workload API server
// of spiffe-workload-api (there is no SPIRE agent here): they start on their SVIDs, order-service charges
// payment-service, both take rotated SVIDs without a restart, and both stop cleanly on SIGTERM.
import t from 'tap'
import { ORDER_SERVICE_ID, PAYMENT_SERVICE_ID } from '../src/identities.js'
import { start } from './processes.js'
import { startTestWorkloadApi } from './workload-api.js'

t.test('payment-service and order-service on Workload API SVIDs: charges succeed, through a rotation, and both stop on SIGTERM', async t => {
  const { api, svids } = await startTestWorkloadApi(t)

  const payment = start(t, 'payment-service.js', { env: { SPIFFE_ENDPOINT_SOCKET: api.endpoint, HOST: '127.0.0.1', PORT: '0', JWT_PORT: '0' } })
  // Both lines come at once: wait for them together (a wait sees only the lines after it starts).
  const [[, port], [, jwtPort]] = await Promise.all([
    payment.waitFor(/payment-service: listening on https:\/\/127\.0\.0\.1:(\d+) as /, 'payment-service to listen'),
    payment.waitFor(/payment-service: JWT-SVID hop listening on https:\/\/127\.0\.0\.1:(\d+) /, 'the JWT-SVID hop to listen')
  ])
  t.ok(payment.lines.some(line => line.includes(`first SVID from the Workload API: ${PAYMENT_SERVICE_ID}`)), 'payment-service picked its own SVID')

  const order = start(t, 'order-service.js', {
    env: { SPIFFE_ENDPOINT_SOCKET: api.endpoint, PAYMENTS_URL: `https://127.0.0.1:${port}`, PAYMENTS_JWT_URL: `https://127.0.0.1:${jwtPort}`, CHARGE_INTERVAL_MS: '100' }
  })
  const { input: charged } = await order.waitFor(/order-service: order-\d+: 200 from /, 'a charge')
  t.match(charged, `payment-service saw us as ${ORDER_SERVICE_ID})`)

  const rotatedPayment = payment.waitFor(/payment-service: SVID rotated/, 'payment-service to rotate')
  const rotatedOrder = order.waitFor(/order-service: SVID rotated/, 'order-service to rotate')
  api.setX509(await svids())
  await Promise.all([rotatedPayment, rotatedOrder])
  await Promise.all([
    order.waitFor(/order-service: order-\d+: 200 from /, 'a charge after the rotation'),
    order.waitFor(/order-service: order-\d+-jwt over the JWT-SVID hop: 200 from /, 'a charge over the JWT-SVID hop after the rotation')
  ])
  t.notOk(order.lines.some(line => / failed: /.test(line)), 'no charge failed')

  for (const service of [order, payment]) {
    service.child.kill('SIGTERM')
    const { code } = await service.exit('exit on SIGTERM')
    t.equal(code, 0, 'stopped cleanly on SIGTERM')
  }
})
