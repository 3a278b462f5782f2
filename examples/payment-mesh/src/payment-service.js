// payment-service: Fastify with fastify-mtls (optional mode, so a probe without a certificate reaches
// /health), fastify-mtls-identity, fastify-mtls-authz and @fastify/under-pressure.
import Fastify from 'fastify'
import underPressure from '@fastify/under-pressure'
import fastifyMtls, { loadServerTls } from 'fastify-mtls'
import fastifyMtlsIdentity from 'fastify-mtls-identity'
import fastifyMtlsAuthz from 'fastify-mtls-authz'

export const policy = {
  acl: [
    { identities: ['spiffe://mycompany.com/production/order-service'], roles: ['payments:charge'] },
    { identities: ['spiffe://mycompany.com/production/**'], roles: ['payments:read'] }
  ],
  defaultPolicy: 'deny'
}

const chargeSchema = {
  body: {
    type: 'object',
    required: ['orderId', 'amount', 'currency'],
    additionalProperties: false,
    properties: {
      orderId: { type: 'string', minLength: 1, maxLength: 64 },
      amount: { type: 'integer', minimum: 1 },
      currency: { type: 'string', enum: ['EUR', 'USD'] }
    }
  }
}

/** Starts payment-service on host:port with the certificate files given; resolves with the Fastify app. */
export async function startPaymentService ({ certFile, keyFile, caFile, host = '127.0.0.1', port = 0, logger = false }) {
  const tls = await loadServerTls({ certFile, keyFile, caFile, mode: 'optional' })
  const app = Fastify({ https: tls.httpsOptions, logger })
  await app.register(fastifyMtls, { tls, watch: { debounceMs: 50 } })
  await app.register(fastifyMtlsIdentity)
  await app.register(fastifyMtlsAuthz, { policy, allowLogLevel: 'debug' })
  await app.register(underPressure, { healthCheck: app.mtls.healthCheck, exposeStatusRoute: { url: '/health', routeOpts: { config: { mtls: { public: true } } } } })

  const payments = new Map()
  app.post('/api/payments/charge', { schema: chargeSchema, config: { mtls: { roles: ['payments:charge'] } } }, async (request, reply) => {
    const payment = { id: String(payments.size + 1), ...request.body, status: 'charged', requestedBy: request.peerIdentity.id }
    payments.set(payment.id, payment)
    return reply.code(200).send(payment)
  })
  app.get('/api/payments/:id', { config: { mtls: { roles: ['payments:read'] } } }, async (request, reply) => {
    const payment = payments.get(request.params.id)
    return payment ?? reply.code(404).send({ statusCode: 404, error: 'Not Found', message: `no payment ${request.params.id}` })
  })

  await app.listen({ host, port })
  return app
}

// Run as a process of its own: `node payment-service.js <certFile> <keyFile> <caFile> [port]`, reporting on IPC when started.
if (process.argv[1] === new URL(import.meta.url).pathname) {
  const [certFile, keyFile, caFile, port = '0'] = process.argv.slice(2)
  const app = await startPaymentService({ certFile, keyFile, caFile, port: Number(port), logger: process.env.DEMO_LOG === '1' })
  process.on('message', message => {
    if (message === 'status') process.send?.({ status: app.mtls.status(), stats: app.mtls.stats() })
  })
  process.on('SIGTERM', () => { app.close().then(() => process.exit(0)) })
  process.send?.({ port: app.server.address().port })
}
