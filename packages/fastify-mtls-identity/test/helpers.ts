import type { FastifyInstance } from 'fastify'
import { fastifyMtls, loadServerTls, type MtlsMode } from 'fastify-mtls'
import type { TestPki } from 'mtls-pki'
import { startFastifyServer, type Teardown } from 'mtls-test-support'
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

export { beforeExpiry, pastExpiry } from 'mtls-test-support'
