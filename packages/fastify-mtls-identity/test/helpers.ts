import type { FastifyInstance } from 'fastify'
import { fastifyMtls, loadServerTls, type MtlsMode } from 'fastify-mtls'
import type { TestPki } from 'mtls-pki'
import { hangLimit, startFastifyServer, until, type Teardown } from 'mtls-test-support'
import { request, type Agent } from 'undici'
import { fastifyMtlsIdentity, type FastifyMtlsIdentityOptions } from '../src/index.js'

export { agentFor } from 'mtls-test-support'

/** A Fastify mTLS server with the identity plugin; GET /who answers with what the request knows of its peer, GET /thumbprint with its RFC 8705 thumbprint. */
export async function startServer (t: Teardown, pki: TestPki, identity: FastifyMtlsIdentityOptions = {}, mode: MtlsMode = 'optional', fastifyOptions: Record<string, unknown> = {}, trust: { ca?: string | string[], crl?: readonly string[] } = {}): Promise<{ app: FastifyInstance, url: string }> {
  const serverTls = await loadServerTls({ cert: pki.server.chain, key: pki.server.key, ca: trust.ca ?? pki.ca, ...(trust.crl === undefined ? {} : { crl: [...trust.crl] }), mode })
  const { app, url } = await startFastifyServer(t, { https: serverTls.httpsOptions, fastify: fastifyOptions }, async app => {
    await app.register(fastifyMtls, { tls: serverTls })
    await app.register(fastifyMtlsIdentity, identity)
    app.get('/who', async request => ({
      id: request.peerIdentity?.id ?? null,
      source: request.peerIdentity?.source ?? null,
      error: request.peerCertificateError
    }))
    app.get('/thumbprint', async request => request.peerIdentity?.thumbprintS256 ?? '')
    app.get('/anonymous', async () => 'ok')
  })
  return { app, url }
}

export interface Who { id: string | null, source: string | null, error: string | null }

/** GET /who through an agent, with extra headers (a flat list, so names may repeat). */
export async function who (url: string, dispatcher: Agent, headers: string[] = []): Promise<{ status: number, body: Who }> {
  const response = await request(`${url}/who`, { dispatcher, headers })
  return { status: response.statusCode, body: await response.body.json() as Who }
}

/**
 * Builds something that expires (a certificate's notAfter, a CRL's nextUpdate) at `expiry`, a whole second as X.509
 * has it, and looks at it while it is valid: `setup` returns what it saw, for the test to assert. A setup that ends
 * at or past `expiry` (or fails then: a handshake refused for the expiry) cannot tell what it saw was before it: it
 * runs again with twice the lead, so that no machine is too slow for the test, and a fast one waits about two seconds.
 */
export async function beforeExpiry<T> (t: { comment: (message: string) => void }, setup: (expiry: Date) => Promise<T>, leadMs = 1000): Promise<T & { expiry: Date }> {
  for (let lead = leadMs; ; lead *= 2) {
    const expiry = new Date(Math.ceil((Date.now() + lead) / 1000) * 1000)
    try {
      const seen = await setup(expiry)
      if (Date.now() < expiry.getTime()) return { ...seen, expiry }
    } catch (err) {
      if (Date.now() < expiry.getTime() || lead > hangLimit(30_000)) throw err
    }
    t.comment(`the setup outlasted its ${lead} ms before the expiry: again with ${2 * lead} ms`)
  }
}

/** Resolves once `expiry` has passed for OpenSSL too, which counts whole seconds. */
export async function pastExpiry (expiry: Date): Promise<void> {
  const end = expiry.getTime() + 1000
  await until(() => Date.now() > end, `the clock past ${expiry.toISOString()}`, Math.max(30_000, end - Date.now() + 30_000))
}
