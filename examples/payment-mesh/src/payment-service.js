// payment-service: Fastify with fastify-mtls (optional mode, so a probe without a certificate reaches
// /health; callers' certificates checked at their OCSP responder), fastify-mtls-identity, fastify-mtls-authz and
// @fastify/under-pressure.
import { readFile } from 'node:fs/promises'
import Fastify from 'fastify'
import fastifyJwt from '@fastify/jwt'
import underPressure from '@fastify/under-pressure'
import fastifyMtls, { loadServerTls } from 'fastify-mtls'
import fastifyMtlsIdentity from 'fastify-mtls-identity'
import fastifyMtlsAuthz from 'fastify-mtls-authz'
import { chargeSchema, policy, routeRules } from './policy.js'
import { AUDIENCE, ISSUER } from './token-issuer.js'

/**
 * Starts payment-service on host:port with the certificate files given; resolves with the Fastify app.
 * `issuerKeyFile`: token-issuer's public key (PEM); without it the receipt route, which needs a bound token, is left out.
 */
export async function startPaymentService ({ certFile, keyFile, caFile, issuerKeyFile, host = '127.0.0.1', port = 0, logger = false }) {
  const tls = await loadServerTls({ certFile, keyFile, caFile, mode: 'optional' })
  const app = Fastify({ https: tls.httpsOptions, logger })
  // revocation: each caller's certificate is checked at the OCSP responder it names, on its first connection.
  await app.register(fastifyMtls, { tls, watch: { debounceMs: 50 }, revocation: { ocsp: true } })
  await app.register(fastifyMtlsIdentity)
  await app.register(fastifyMtlsAuthz, { policy, allowLogLevel: 'debug' })
  await app.register(underPressure, { healthCheck: app.mtls.healthCheck, exposeStatusRoute: { url: routeRules.health.url, routeOpts: { config: { mtls: routeRules.health.mtls } } } })

  const payments = new Map()
  app.post(routeRules.charge.url, { schema: chargeSchema, config: { mtls: routeRules.charge.mtls } }, async (request, reply) => {
    const payment = { id: String(payments.size + 1), ...request.body, status: 'charged', requestedBy: request.peerIdentity.id }
    payments.set(payment.id, payment)
    return reply.code(200).send(payment)
  })
  app.get(routeRules.read.url, { config: { mtls: routeRules.read.mtls } }, async (request, reply) => {
    const payment = payments.get(request.params.id)
    return payment ?? reply.code(404).send({ statusCode: 404, error: 'Not Found', message: `no payment ${request.params.id}` })
  })

  if (issuerKeyFile !== undefined) {
    await app.register(fastifyJwt, { secret: { public: await readFile(issuerKeyFile, 'utf8') }, verify: { algorithms: ['ES256'], allowedIss: ISSUER, allowedAud: AUDIENCE } })
    // Verified in the route's onRequest hook; fastify-mtls-authz checks the binding after every onRequest hook.
    app.get(routeRules.receipt.url, { onRequest: request => request.jwtVerify(), config: { mtls: routeRules.receipt.mtls } }, async (request, reply) => {
      const payment = payments.get(request.params.id)
      if (payment === undefined) return reply.code(404).send({ statusCode: 404, error: 'Not Found', message: `no payment ${request.params.id}` })
      return { id: payment.id, orderId: payment.orderId, amount: payment.amount, currency: payment.currency, for: request.user.sub }
    })
  }

  await app.listen({ host, port })
  return app
}

// Run as a process of its own: `node payment-service.js <certFile> <keyFile> <caFile> [port] [issuerKeyFile]`, reporting on IPC when
// started ({ port }) or when it cannot listen ({ listenError: { code, port } }); SIGINT or SIGTERM closes it, exit 0.
async function main ([certFile, keyFile, caFile, port = '0', issuerKeyFile]) {
  let app = null
  let stopping = false
  // Ctrl-C reaches every process of the terminal's group, this one too: close and exit 0 rather than die of it.
  const stop = () => {
    if (stopping) return
    stopping = true
    if (app === null) process.exit(0)
    app.close().then(() => process.exit(0), () => process.exit(1))
  }
  process.on('SIGINT', stop)
  process.on('SIGTERM', stop)
  process.on('disconnect', stop) // the demo that forked us is gone: never outlive it
  try {
    app = await startPaymentService({ certFile, keyFile, caFile, issuerKeyFile, port: Number(port), logger: process.env.DEMO_LOG === '1' })
  } catch (err) {
    if (err.code !== 'EADDRINUSE' && err.code !== 'EACCES') throw err
    // The demo turns this into one line saying what to do; a stack would only hide it.
    if (process.send === undefined) {
      console.error(`payment-service cannot listen on 127.0.0.1:${port}: ${err.code}`)
      process.exit(1)
    }
    process.send({ listenError: { code: err.code, port: Number(port) } }, () => process.exit(1))
    return
  }
  process.on('message', message => {
    if (message === 'status') process.send?.({ status: app.mtls.status(), stats: app.mtls.stats() })
  })
  process.send?.({ port: app.server.address().port })
}

if (process.argv[1] === new URL(import.meta.url).pathname) await main(process.argv.slice(2))
