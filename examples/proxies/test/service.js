// The Fastify service behind the proxy, in either deployment shape:
// - 'mtls' (the zero-trust default): fastify-mtls serves TLS 1.3 and requires a client certificate; the proxy's own
//   certificate (its SPIFFE ID) is what makes it a trusted proxy;
// - 'http': plain HTTP, the proxy trusted by its address; forwarded certificates are verified against `ca` and `crl`
//   given to fastify-mtls-identity, since there is no fastify-mtls trust to borrow.
// Either way fastify-mtls-identity reads the forwarded certificate and fastify-mtls-authz decides on it.
import Fastify from 'fastify'
import fastifyMtls, { loadServerTls } from 'fastify-mtls'
import fastifyMtlsIdentity, { FORWARDED_PRESETS } from 'fastify-mtls-identity'
import fastifyMtlsAuthz from 'fastify-mtls-authz'
import { spiffe } from './pki-files.js'

export const POLICY = Object.freeze({
  acl: [
    { identities: [spiffe('production/order-service')], roles: ['payments:charge'] },
    { identities: [spiffe('production/**')], roles: ['payments:read'] }
  ],
  defaultPolicy: 'deny'
})

export const ROUTES = Object.freeze({
  whoami: { method: 'GET', url: '/whoami' },
  read: { method: 'GET', url: '/api/payments' },
  charge: { method: 'POST', url: '/api/payments/charge' }
})

/** The `{ header, format }` a `forwarded` option of fastify-mtls-identity stands for (a preset's, or the one given). */
export function forwardedSetting (forwarded) {
  const { header, format } = typeof forwarded === 'string' ? FORWARDED_PRESETS[forwarded] : forwarded
  return { header: header.toLowerCase(), format }
}

// Requests a connection serves before the service answers `Connection: close`: the proxy keeps opening new
// connections under load, so a certificate rotation meets new handshakes while requests are in flight.
const REQUESTS_PER_CONNECTION = 20

/**
 * Starts the service on 127.0.0.1 (a free port). `files` are writeProxyPki's; `forwarded` is fastify-mtls-identity's
 * option. Resolves with `{ app, port, seen, servedBy }`: `seen` holds the `x-probe-id` of every request that reached
 * the service; `servedBy` counts requests per fingerprint of the service certificate their connection was shown.
 */
export async function startService ({ shape, files, forwarded }) {
  let app
  if (shape === 'mtls') {
    const tls = await loadServerTls({ certFile: files.app.certFile, keyFile: files.app.keyFile, caFile: files.app.caFile, crlFile: files.app.crlFile, mode: 'require' })
    app = Fastify({ https: tls.httpsOptions, maxRequestsPerSocket: REQUESTS_PER_CONNECTION })
    await app.register(fastifyMtls, { tls, watch: false })
    await app.register(fastifyMtlsIdentity, { trustedProxies: { identities: [files.proxyIdentity] }, forwarded })
  } else if (shape === 'http') {
    app = Fastify({ maxRequestsPerSocket: REQUESTS_PER_CONNECTION })
    await app.register(fastifyMtlsIdentity, {
      trustedProxies: { addresses: ['127.0.0.1/32'] },
      forwarded,
      // A forwarded header carries the leaf alone: the intermediate that issues client certificates goes with the root.
      ca: [files.pki.ca, files.pki.intermediate.certificate],
      crl: [...files.pki.crl]
    })
  } else {
    throw new Error(`unknown shape ${shape}`)
  }

  const seen = new Set()
  const servedBy = new Map()
  const servedCertificate = new WeakMap()
  const { header } = forwardedSetting(forwarded)
  // Added before authz's hook, so refused requests are recorded too.
  app.addHook('onRequest', async request => {
    const probe = request.headers['x-probe-id']
    if (typeof probe === 'string') seen.add(probe)
    const socket = request.raw.socket
    if (typeof socket.getX509Certificate === 'function') {
      if (!servedCertificate.has(socket)) servedCertificate.set(socket, socket.getX509Certificate()?.fingerprint256 ?? null)
      const fingerprint = servedCertificate.get(socket)
      servedBy.set(fingerprint, (servedBy.get(fingerprint) ?? 0) + 1)
    }
  })
  await app.register(fastifyMtlsAuthz, { policy: POLICY, allowLogLevel: 'debug' })

  app.get(ROUTES.whoami.url, { config: { mtls: { public: true } } }, async request => ({
    id: request.peerIdentity?.id ?? null,
    source: request.peerIdentity?.source ?? null,
    error: request.peerCertificateError,
    forwardedHeader: request.headers[header] ?? null
  }))
  app.get(ROUTES.read.url, { config: { mtls: { roles: ['payments:read'] } } }, async request => ({ requestedBy: request.peerIdentity.id }))
  app.post(ROUTES.charge.url, { config: { mtls: { roles: ['payments:charge'] } } }, async request => ({ charged: true, requestedBy: request.peerIdentity.id }))

  await app.listen({ host: '127.0.0.1', port: 0 })
  return { app, port: app.server.address().port, seen, servedBy }
}
