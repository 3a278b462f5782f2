// payment-service with its identity from SPIRE: the X.509-SVID and the trust bundles come from the SPIFFE
// Workload API (SPIFFE_ENDPOINT_SOCKET), and rotations are applied to new connections with no restart.
// Two listeners, one policy (the payment-mesh example's: order-service holds payments:charge, /health is public):
// - PORT, mTLS in require mode: a client without a verified SVID is refused at the handshake;
// - JWT_PORT, the JWT-SVID hop: TLS with the same server SVID, no client certificate needed (as behind an L7 load
//   balancer that terminates TLS), and the caller's identity from a JWT-SVID bearer token for JWT_AUDIENCE,
//   validated against the JWT bundles the Workload API pushes.
//
//   SPIFFE_ENDPOINT_SOCKET=unix:///tmp/spire-agent/public/api.sock HOST=0.0.0.0 PORT=8443 JWT_PORT=8444 node src/payment-service.js
import Fastify from 'fastify'
import { createJWTSource, createX509Source } from 'spiffe-workload-api'
import { loadServerTls, fastifyMtls } from 'fastify-mtls'
import fastifyMtlsIdentity from 'fastify-mtls-identity'
import fastifyMtlsAuthz from 'fastify-mtls-authz'
import { chargeSchema, policy, routeRules } from '../../payment-mesh/src/policy.js'
import { JWT_AUDIENCE, PAYMENT_SERVICE_ID } from './identities.js'
import { closeOnSignals } from './shutdown.js'
import { startOrExit, workloadApiTimeoutMs } from './startup.js'
import { log, logJwtUpdates, logUpdates } from './svid-log.js'

const host = process.env.HOST ?? '127.0.0.1'
const port = Number(process.env.PORT ?? 8443)
const jwtPort = Number(process.env.JWT_PORT ?? 8444)

// createX509Source waits (30 s by default, WORKLOAD_API_TIMEOUT_MS) for the agent to attest this container and
// send its SVID; `pick` refuses to serve under any other identity than the one register.sh gives payment-service.
let source = null
let jwtSource = null
const apps = []
closeOnSignals('payment-service', async () => {
  try {
    await Promise.all(apps.map(app => app.close()))
  } finally {
    source?.close()
    jwtSource?.close()
  }
})

// Both listeners share the charge counter: they are one service, reached two ways.
let charged = 0

/** A Fastify app on the source's SVID, in `mode`, with the payment-mesh routes and policy. */
async function paymentApp (mode, identityOptions) {
  const tls = await loadServerTls({ x509Source: source, mode })
  const app = Fastify({ https: tls.httpsOptions, logger: false })
  apps.push(app)
  await app.register(fastifyMtls, { tls })
  await app.register(fastifyMtlsIdentity, identityOptions)
  await app.register(fastifyMtlsAuthz, { policy })
  app.post(routeRules.charge.url, { schema: chargeSchema, config: { mtls: routeRules.charge.mtls } }, async request => {
    charged += 1
    const { id, source: identitySource } = request.peerIdentity
    return { id: String(charged), ...request.body, status: 'charged', requestedBy: id, identitySource }
  })
  app.get(routeRules.health.url, { config: { mtls: routeRules.health.mtls } }, async () => ({ status: 'ok' }))
  return app
}

let mtlsApp = null
let jwtApp = null
await startOrExit('payment-service', async () => {
  source = await createX509Source({ pick: PAYMENT_SERVICE_ID, timeoutMs: workloadApiTimeoutMs })
  // The JWT bundles (the keys JWT-SVIDs are signed with), kept current from the Workload API's stream.
  jwtSource = await createJWTSource({ timeoutMs: workloadApiTimeoutMs })

  mtlsApp = await paymentApp('require', {})
  logUpdates('payment-service', source, () => mtlsApp.mtls.status().x509Source)
  // 'optional': the client certificate is asked for but not needed. A caller that sends none (the hop cannot carry
  // one) is who its JWT-SVID says; one that sends a certificate is who the certificate says, and a token naming
  // another SPIFFE ID beside it is refused (fastify-mtls-identity: the certificate wins, a disagreement is a 401).
  jwtApp = await paymentApp('optional', { jwtSvid: { source: jwtSource, audience: JWT_AUDIENCE } })
  logJwtUpdates('payment-service', jwtSource)

  await mtlsApp.listen({ host, port })
  await jwtApp.listen({ host, port: jwtPort })
})
log(`payment-service: listening on https://${host}:${mtlsApp.server.address().port} as ${source.current.svid.spiffeId}`)
log(`payment-service: JWT-SVID hop listening on https://${host}:${jwtApp.server.address().port} (no client certificate needed; callers ` +
  `prove who they are with a JWT-SVID for ${JWT_AUDIENCE})`)
