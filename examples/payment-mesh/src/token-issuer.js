// token-issuer: a small OAuth-style token endpoint (RFC 8705 section 3) for the demo. A service calls it over mTLS
// and gets a JWT bound to the certificate of that very connection: `cnf: { 'x5t#S256': <its thumbprint> }`.
// A token copied to another service is worthless there: payment-service checks the binding (boundToken).
import { generateKeyPairSync } from 'node:crypto'
import Fastify from 'fastify'
import fastifyJwt from '@fastify/jwt'
import fastifyMtls, { loadServerTls } from 'fastify-mtls'
import fastifyMtlsIdentity from 'fastify-mtls-identity'

export const ISSUER = 'spiffe://mycompany.com/production/token-issuer'
export const AUDIENCE = 'payment-service'

/** An ES256 key pair in PEM: the issuer signs with the private key, payment-service verifies with the public one. */
export function makeSigningKeys () {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  return { privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }), publicKey: publicKey.export({ type: 'spki', format: 'pem' }) }
}

/** Starts the issuer on 127.0.0.1 (require mode: no certificate, no handshake). POST /token answers `{ access_token }`. */
export async function startTokenIssuer ({ certFile, keyFile, caFile, keys, host = '127.0.0.1', port = 0 }) {
  const tls = await loadServerTls({ certFile, keyFile, caFile, mode: 'require' })
  const app = Fastify({ https: tls.httpsOptions })
  await app.register(fastifyMtls, { tls, watch: false })
  await app.register(fastifyMtlsIdentity)
  await app.register(fastifyJwt, { secret: { private: keys.privateKey, public: keys.publicKey }, sign: { algorithm: 'ES256', iss: ISSUER, aud: AUDIENCE, expiresIn: '5m' } })
  app.post('/token', async request => {
    const peer = request.peerIdentity
    // The binding: the thumbprint of the certificate this client presented on this connection.
    const token = app.jwt.sign({ sub: peer.id, scope: 'payments:receipt', cnf: { 'x5t#S256': peer.thumbprintS256 } })
    return { access_token: token, token_type: 'Bearer', expires_in: 300 }
  })
  await app.listen({ host, port })
  return app
}
