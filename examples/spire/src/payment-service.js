// payment-service with its identity from SPIRE: the X.509-SVID and the trust bundles come from the SPIFFE
// Workload API (SPIFFE_ENDPOINT_SOCKET), and rotations are applied to new connections with no restart.
// mTLS in require mode: a client without a verified SVID is refused at the handshake. The policy is the
// payment-mesh example's: order-service holds payments:charge, /health is public.
//
//   SPIFFE_ENDPOINT_SOCKET=unix:///tmp/spire-agent/public/api.sock HOST=0.0.0.0 PORT=8443 node src/payment-service.js
import Fastify from 'fastify'
import { createX509Source } from 'spiffe-workload-api'
import { loadServerTls, fastifyMtls } from 'fastify-mtls'
import fastifyMtlsIdentity from 'fastify-mtls-identity'
import fastifyMtlsAuthz from 'fastify-mtls-authz'
import { chargeSchema, policy, routeRules } from '../../payment-mesh/src/policy.js'
import { PAYMENT_SERVICE_ID } from './identities.js'
import { closeOnSignals } from './shutdown.js'
import { startOrExit, workloadApiTimeoutMs } from './startup.js'
import { log, logUpdates } from './svid-log.js'

const host = process.env.HOST ?? '127.0.0.1'
const port = Number(process.env.PORT ?? 8443)

// createX509Source waits (30 s by default, WORKLOAD_API_TIMEOUT_MS) for the agent to attest this container and
// send its SVID; `pick` refuses to serve under any other identity than the one register.sh gives payment-service.
let source = null
let app = null
closeOnSignals('payment-service', async () => {
  try {
    await app?.close()
  } finally {
    source?.close()
  }
})

await startOrExit('payment-service', async () => {
  source = await createX509Source({ pick: PAYMENT_SERVICE_ID, timeoutMs: workloadApiTimeoutMs })

  const tls = await loadServerTls({ x509Source: source, mode: 'require' })
  app = Fastify({ https: tls.httpsOptions, logger: false })
  await app.register(fastifyMtls, { tls })
  await app.register(fastifyMtlsIdentity)
  await app.register(fastifyMtlsAuthz, { policy })
  logUpdates('payment-service', source, () => app.mtls.status().x509Source)

  let charged = 0
  app.post(routeRules.charge.url, { schema: chargeSchema, config: { mtls: routeRules.charge.mtls } }, async request => {
    charged += 1
    return { id: String(charged), ...request.body, status: 'charged', requestedBy: request.peerIdentity.id }
  })
  app.get(routeRules.health.url, { config: { mtls: routeRules.health.mtls } }, async () => ({ status: 'ok' }))

  await app.listen({ host, port })
})
log(`payment-service: listening on https://${host}:${app.server.address().port} as ${source.current.svid.spiffeId}`)
