// The two services of this example, run as they are in the compose file, against the test Workload API server
// of spiffe-workload-api (there is no SPIRE agent here): they start on their SVIDs, order-service charges
// payment-service, both take rotated SVIDs without a restart, and both stop cleanly on SIGTERM.
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import t from 'tap'
import { createTestPki } from 'mtls-pki'
import { TestWorkloadApi, svidMessage } from 'spiffe-workload-api/testing'
import { ORDER_SERVICE_ID, PAYMENT_SERVICE_ID } from '../src/identities.js'

const pki = await createTestPki()

/** A service's process; `waitFor` resolves with the first output line (from now on) that matches. */
function start (t, script, env) {
  const child = spawn(process.execPath, [new URL(`../src/${script}`, import.meta.url).pathname], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  const lines = []
  const waiters = new Set()
  const read = stream => {
    let rest = ''
    stream.setEncoding('utf8').on('data', chunk => {
      const parts = (rest + chunk).split('\n')
      rest = parts.pop()
      for (const line of parts) {
        lines.push(line)
        for (const waiter of waiters) waiter(line)
      }
    })
  }
  read(child.stdout)
  read(child.stderr)
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  const waitFor = (pattern, what, timeoutMs = 15_000) => new Promise((resolve, reject) => {
    const timer = setTimeout(() => { waiters.delete(waiter); reject(new Error(`${script}: timed out waiting for ${what}; output:\n${lines.join('\n')}`)) }, timeoutMs)
    const waiter = line => {
      const match = pattern.exec(line)
      if (match === null) return
      clearTimeout(timer)
      waiters.delete(waiter)
      resolve(match)
    }
    waiters.add(waiter)
  })
  return { child, lines, waitFor }
}

async function svids () {
  const [payment, order] = await Promise.all([
    pki.intermediate.issue({ spiffeId: PAYMENT_SERVICE_ID, usage: 'both' }),
    pki.intermediate.issue({ spiffeId: ORDER_SERVICE_ID, usage: 'both' })
  ])
  return { payment, order, message: { svids: [svidMessage(PAYMENT_SERVICE_ID, payment), svidMessage(ORDER_SERVICE_ID, order)] } }
}

t.test('payment-service and order-service on Workload API SVIDs: charges succeed, through a rotation, and both stop on SIGTERM', { timeout: 60_000 }, async t => {
  const api = await TestWorkloadApi.start()
  t.teardown(() => api.close())
  const first = await svids()
  api.setX509(first.message)

  const payment = start(t, 'payment-service.js', { SPIFFE_ENDPOINT_SOCKET: api.endpoint, HOST: '127.0.0.1', PORT: '0' })
  const [, port] = await payment.waitFor(/payment-service: listening on https:\/\/127\.0\.0\.1:(\d+) as (\S+)/, 'payment-service to listen')
  t.ok(payment.lines.some(line => line.includes(`first SVID from the Workload API: ${PAYMENT_SERVICE_ID}`)), 'payment-service picked its own SVID')

  const order = start(t, 'order-service.js', { SPIFFE_ENDPOINT_SOCKET: api.endpoint, PAYMENTS_URL: `https://127.0.0.1:${port}`, CHARGE_INTERVAL_MS: '100' })
  const { input: charged } = await order.waitFor(/order-service: order-\d+: 200 from /, 'a charge')
  t.match(charged, `payment-service saw us as ${ORDER_SERVICE_ID}`)

  const second = await svids()
  const rotatedPayment = payment.waitFor(/payment-service: SVID rotated/, 'payment-service to rotate')
  const rotatedOrder = order.waitFor(/order-service: SVID rotated/, 'order-service to rotate')
  api.setX509(second.message)
  await Promise.all([rotatedPayment, rotatedOrder])
  await order.waitFor(/order-service: order-\d+: 200 from /, 'a charge after the rotation')
  t.notOk(order.lines.some(line => / failed: /.test(line)), 'no charge failed')

  for (const service of [order, payment]) {
    service.child.kill('SIGTERM')
    const [code] = await once(service.child, 'exit')
    t.equal(code, 0, 'stopped cleanly on SIGTERM')
  }
})
